"""Datamodules on tiny files written here, and on the real mirror beside the checkout."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Value

from emo_lightning.data.files import FilesDataModule
from emo_lightning.data.hub_datasets import EmotionDataModule, GoEmotionsDataModule, SemEval2018DataModule
from emo_lightning.utils.errors import ConfigError
from tests.conftest import require_shared

HUB_MODULES = [
    (EmotionDataModule, 6, False),
    (GoEmotionsDataModule, 28, True),
    (SemEval2018DataModule, 11, True),
]


def make(cls, tokenizer, **kwargs):
    return cls(tokenizer=str(tokenizer), max_length=32, batch_size=4, **kwargs)


@pytest.mark.parametrize(("cls", "num_labels", "multi_label"), HUB_MODULES)
def test_hub_datamodules_on_tiny_mirror(cls, num_labels, multi_label, tiny_mirror, tiny_tokenizer_dir):
    dm = make(cls, tiny_tokenizer_dir, data_dir=str(tiny_mirror))
    dm.setup("fit")
    assert dm.num_labels == num_labels and dm.multi_label is multi_label
    assert set(dm.tokenized) == {"train", "validation", "test"}
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape == batch["attention_mask"].shape
    expected_labels = (4, num_labels) if multi_label else (4,)
    assert batch["labels"].shape == expected_labels
    assert batch["labels"].dtype == (torch.float32 if multi_label else torch.int64)
    # dynamic padding: the batch is as long as its longest text, not max_length
    assert batch["input_ids"].shape[1] == batch["attention_mask"].sum(1).max()


def test_go_emotions_multi_hot_matches_label_ids(tiny_mirror, tiny_tokenizer_dir):
    dm = make(GoEmotionsDataModule, tiny_tokenizer_dir, data_dir=str(tiny_mirror))
    dm.setup()
    row = dm.labeled.splits["train"][3]
    assert [i for i, v in enumerate(row["labels"]) if v == 1.0] == sorted({3, 21})
    assert dm.label_names[-1] == "neutral"


@pytest.mark.parametrize(
    ("cls", "num_labels", "multi_label", "first", "sizes"),
    [
        (EmotionDataModule, 6, False, "sadness", (16000, 2000, 2000)),
        (GoEmotionsDataModule, 28, True, "admiration", (43410, 5426, 5427)),
        (SemEval2018DataModule, 11, True, "anger", (6838, 886, 3259)),
    ],
)
def test_hub_datamodules_on_real_mirror(cls, num_labels, multi_label, first, sizes):
    data = require_shared("data")
    tokenizer = require_shared("models/sentence-transformers/all-MiniLM-L6-v2")
    dm = make(cls, tokenizer, data_dir=str(data))
    dm.setup()
    assert (dm.num_labels, dm.multi_label, dm.label_names[0]) == (num_labels, multi_label, first)
    assert tuple(len(dm.tokenized[s]) for s in ("train", "validation", "test")) == sizes
    counts = dm.train_label_counts()
    assert counts.shape == (num_labels,) and counts.min() > 0


# ---------------------------------------------------------------- user files


def test_csv_with_label_names_and_held_out_validation(tmp_path, tiny_tokenizer_dir):
    rows = [("i am so happy", "joy"), ("i feel sad", "sadness"), ("so angry now", "anger")] * 10
    pd.DataFrame(rows, columns=["sentence", "emotion"]).to_csv(tmp_path / "train.csv", index=False)
    dm = make(
        FilesDataModule,
        tiny_tokenizer_dir,
        train_file=str(tmp_path / "train.csv"),
        text_column="sentence",
        label_column="emotion",
        validation_fraction=0.2,
    )
    dm.setup()
    assert dm.label_names == ["anger", "joy", "sadness"] and not dm.multi_label
    assert (len(dm.tokenized["train"]), len(dm.tokenized["validation"])) == (24, 6)
    assert not dm.has_test
    # stratified: every class is in the held-out split
    assert set(dm.labeled.splits["validation"]["labels"]) == {0, 1, 2}


def test_seed_style_semicolon_txt_without_header(tmp_path, tiny_tokenizer_dir):
    for split, n in (("train", 12), ("val", 6)):
        lines = [f"i feel {'great' if i % 2 else 'awful'} today;{'joy' if i % 2 else 'sadness'}" for i in range(n)]
        (tmp_path / f"{split}.txt").write_text("\n".join(lines) + "\n")
    dm = make(
        FilesDataModule,
        tiny_tokenizer_dir,
        train_file=str(tmp_path / "train.txt"),
        validation_file=str(tmp_path / "val.txt"),
        label_column="label",
        delimiter=";",
        column_names=["text", "label"],
    )
    dm.setup()
    assert dm.label_names == ["joy", "sadness"]
    assert len(dm.tokenized["validation"]) == 6


def test_jsonl_with_label_lists_is_multi_label(tmp_path, tiny_tokenizer_dir):
    rows = [
        {"text": "happy and loving", "labels": ["joy", "love"]},
        {"text": "scared", "labels": ["fear"]},
        {"text": "nothing", "labels": []},
    ] * 4
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    dm = make(
        FilesDataModule,
        tiny_tokenizer_dir,
        train_file=str(tmp_path / "train.jsonl"),
        label_column="labels",
        validation_fraction=0.25,
    )
    dm.setup()
    assert dm.multi_label and dm.label_names == ["fear", "joy", "love"]
    assert dm.train_label_counts().sum() > 0


def test_parquet_with_binary_columns(tmp_path, tiny_tokenizer_dir):
    df = pd.DataFrame(
        {
            "text": ["a joyful day", "a sad day", "a scary sad day"] * 4,
            "joy": [1, 0, 0] * 4,
            "sadness": [0, 1, 1] * 4,
            "fear": [0, 0, 1] * 4,
        }
    )
    for split in ("train", "validation", "test"):
        df.to_parquet(tmp_path / f"{split}.parquet")
    dm = make(
        FilesDataModule,
        tiny_tokenizer_dir,
        train_file=str(tmp_path / "train.parquet"),
        validation_file=str(tmp_path / "validation.parquet"),
        test_file=str(tmp_path / "test.parquet"),
        label_columns=["joy", "sadness", "fear"],
    )
    dm.setup()
    assert dm.multi_label and dm.label_names == ["joy", "sadness", "fear"]
    assert dm.labeled.splits["test"][2]["labels"] == [0.0, 1.0, 1.0]


def test_tsv_with_label_ids_and_separator(tmp_path, tiny_tokenizer_dir):
    (tmp_path / "train.tsv").write_text(
        "text\tlabels\n" + "".join(f"text {i}\t{i % 3},{(i + 1) % 3}\n" for i in range(12))
    )
    dm = make(
        FilesDataModule,
        tiny_tokenizer_dir,
        train_file=str(tmp_path / "train.tsv"),
        label_column="labels",
        label_separator=",",
    )
    dm.setup()
    assert dm.multi_label and dm.label_names == ["0", "1", "2"]


def test_parquet_class_label_feature_gives_the_names(tmp_path, tiny_tokenizer_dir):
    features = Features({"text": Value("string"), "label": ClassLabel(names=["calm", "upset"])})
    Dataset.from_dict({"text": ["fine", "bad"] * 6, "label": [0, 1] * 6}, features).to_parquet(tmp_path / "t.parquet")
    dm = make(FilesDataModule, tiny_tokenizer_dir, train_file=str(tmp_path / "t.parquet"), label_column="label")
    dm.setup()
    assert dm.label_names == ["calm", "upset"]


@pytest.mark.parametrize(
    ("files", "kwargs", "message"),
    [
        ({"train.csv": "text,label\na,joy\n"}, {"label_column": "emotion"}, "has no column 'emotion'"),
        (
            {"train.csv": "text,label\na,joy\nb,sad\n", "val.csv": "text,label\nc,angry\n"},
            {"label_column": "label", "validation_file": "val.csv"},
            "label 'angry', which the training file never uses",
        ),
        ({"train.csv": "text,label\n,joy\nb,sad\n"}, {"label_column": "label"}, "row 1 has no text"),
        (
            {"train.csv": 'text,label\n"unterminated,joy\nb,sad,extra,cols\n'},
            {"label_column": "label"},
            "could not read",
        ),
        (
            {"train.csv": "text,label\na,joy\n"},
            {"label_column": "label", "validation_file": "missing.csv"},
            "does not exist",
        ),
        ({"train.xlsx": "x"}, {"label_column": "label"}, r"data.train_file has suffix \[.\.xlsx.\]: use one of"),
        ({"train.csv": "text,label\na,joy\n"}, {}, "exactly one of data.label_column or data.label_columns"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path, tiny_tokenizer_dir, files, kwargs, message):
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    if "validation_file" in kwargs:
        kwargs["validation_file"] = str(tmp_path / kwargs["validation_file"])
    with pytest.raises(ConfigError, match=message) as info:
        dm = make(FilesDataModule, tiny_tokenizer_dir, train_file=str(tmp_path / next(iter(files))), **kwargs)
        dm.setup()
    assert "\n" not in str(info.value)


def test_missing_dataset_names_the_mirror_setting(tmp_path, tiny_tokenizer_dir):
    dm = make(EmotionDataModule, tiny_tokenizer_dir, data_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="EMO_DATA_DIR"):
        dm.setup()
