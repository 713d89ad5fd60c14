"""Datamodules on tiny files written here, and on the real mirror beside the checkout."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Value

from emo_lightning.data.files import FilesDataModule, held_out_rows
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


def test_csv_with_label_names_and_held_out_validation_and_test(tmp_path, tiny_tokenizer_dir):
    cues = [("i am so happy", "joy"), ("i feel sad", "sadness"), ("so angry now", "anger")]
    rows = [(f"{text} {i}", label) for i in range(10) for text, label in cues]
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
    splits = dm.labeled.splits
    assert {s: len(splits[s]) for s in splits} == {"train": 21, "validation": 6, "test": 3} and dm.has_test
    texts = {s: set(splits[s]["text"]) for s in splits}
    assert not texts["validation"] & texts["test"] and not (texts["validation"] | texts["test"]) & texts["train"]
    # stratified: every class is in each held-out split
    assert set(splits["validation"]["labels"]) == set(splits["test"]["labels"]) == {0, 1, 2}
    # seeded: the same seed holds out the same rows; test_fraction=0 holds out no test split
    again = make(
        FilesDataModule,
        tiny_tokenizer_dir,
        train_file=str(tmp_path / "train.csv"),
        text_column="sentence",
        label_column="emotion",
        validation_fraction=0.2,
    )
    assert again.load_splits().splits["test"]["text"] == splits["test"]["text"]
    no_test = make(
        FilesDataModule,
        tiny_tokenizer_dir,
        train_file=str(tmp_path / "train.csv"),
        text_column="sentence",
        label_column="emotion",
        test_fraction=0,
    )
    assert set(no_test.load_splits().splits) == {"train", "validation"}


def test_held_out_rows_keep_class_shares_and_fall_back_for_rare_classes():
    rng = np.random.default_rng(0)
    picked = held_out_rows(10, 5, rng, [0] * 8 + [1] * 2)
    assert len(set(picked)) == 5 and sum(i >= 8 for i in picked) == 1  # 4 of class 0, 1 of class 1
    rare = held_out_rows(10, 3, rng, [0] * 9 + [1])  # class 1 has one row: plain random draw
    assert len(set(rare)) == 3 and all(0 <= i < 10 for i in rare)


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
    named = make(
        FilesDataModule,
        tiny_tokenizer_dir,
        train_file=str(tmp_path / "t.parquet"),
        label_column="label",
        label_names=["a", "b"],
    )
    with pytest.raises(ConfigError) as info:
        named.setup()
    assert str(info.value) == (
        f"{tmp_path / 't.parquet'} column 'label' names its labels already (calm, upset): drop data.label_names"
    )


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


def case(files: dict, kwargs: dict, message: str, id: str):
    return pytest.param(files, kwargs, message, id=id)


TRAIN = "text,label\na,joy\nb,sad\n"
SEEDS = {"label_column": "label", "delimiter": ";", "column_names": ["text", "label"]}
JSON_ROWS = '{"text": "a", "label": "joy"}\n{"text": "b", "label": "sad"}\n'
NEW_CASES = [
    case(
        {"train.csv": "text,label\na,joy\nb,\nc,sad\n"},
        {"label_column": "label"},
        "<tmp>/train.csv row 2 has no label in column 'label': fill it in or drop the row",
        id="empty-label",
    ),
    case(
        {"train.jsonl": '{"text": "a", "label": "joy"}\n{"text": "b", "label": null}\n'},
        {"label_column": "label"},
        "<tmp>/train.jsonl row 2 has no label in column 'label': fill it in or drop the row",
        id="null-label",
    ),
    case(
        {"train.csv": "text,joy,sad\na,1,0\nb,0.0,1\nc,,1\n"},
        {"label_columns": ["joy", "sad"]},
        "<tmp>/train.csv row 3 has an empty value in label column 'joy': use 1/0, true/false or yes/no",
        id="empty-flag",
    ),
    case(
        {"train.csv": "text,joy,sad\na,1,0\nb,maybe,1\n"},
        {"label_columns": ["joy", "sad"]},
        "<tmp>/train.csv row 2 has 'maybe' in label column 'joy': use 1/0, true/false or yes/no",
        id="bad-flag",
    ),
    case(
        {"train.txt": "Text;Label\na;joy\nb;sad\n"},
        SEEDS,
        "<tmp>/train.txt row 1 looks like a header (Text;Label): drop data.column_names, the file names its columns",
        id="header-row-names-the-columns",
    ),
    case(
        {"train.txt": "a;joy\nb;sad\n", "val.txt": "sentence;emotion\nc;joy\nd;sad\ne;joy\n"},
        SEEDS | {"validation_file": "val.txt"},
        "<tmp>/val.txt row 1 looks like a header (sentence;emotion): "
        "drop data.column_names, the file names its columns",
        id="header-row-with-a-lone-label",
    ),
    case(
        {"train.csv": 'text,label\na,joy\nb,anger\nc,"anger,joy"\n'},
        {"label_column": "label"},
        "<tmp>/train.csv row 3 has label 'anger,joy', several labels joined by ',': "
        "set data.label_separator=',' (multi-label)",
        id="joined-labels",
    ),
    case(
        {"train.csv": TRAIN},
        {"label_column": "label", "test_fraction": 1.0},
        "data.test_fraction=1.0 must be in [0, 1): 0 holds out no test split",
        id="test-fraction-range",
    ),
    case(
        {"train.csv": TRAIN},
        {"label_column": "label", "validation_fraction": 0.5, "test_fraction": 0.5},
        "data.validation_fraction=0.5 + data.test_fraction=0.5 must stay below 1: "
        "lower them, so that training keeps some rows",
        id="fractions-sum",
    ),
    case(
        {"train.csv": TRAIN},
        {"label_column": "label"},
        "<tmp>/train.csv has 2 rows, too few to hold out test and validation rows: "
        "add rows or give data.test_file and data.validation_file",
        id="too-few-rows-to-hold-out",
    ),
    case(
        {"train.csv/": None},
        {"label_column": "label"},
        "data.train_file=<tmp>/train.csv is a directory: give the path of a file",
        id="directory",
    ),
    case(
        {"train.csv|": None},
        {"label_column": "label"},
        "data.train_file=<tmp>/train.csv is not a regular file: give the path of a file",
        id="fifo",
    ),
    case(
        {"train.csv": "text,label\na,joy\ncaf\xe9,sad\n".encode("latin-1")},
        {"label_column": "label"},
        "<tmp>/train.csv is not valid utf-8 (byte 0xe9 on line 3): "
        "set data.encoding=latin-1, or the encoding the file was saved in",
        id="latin-1",
    ),
    case(
        {"train.csv": TRAIN},
        {"label_column": "label", "encoding": "utf-9"},
        "data.encoding=utf-9 is not an encoding: use e.g. utf-8 or latin-1",
        id="unknown-encoding",
    ),
    case(
        {"train.csv": "text;label\na;joy\nb;sad\n"},
        {"label_column": "label"},
        "<tmp>/train.csv: found 1 column 'text;label'; the file looks `;`-separated: set data.delimiter=';'",
        id="semicolon-file-as-csv",
    ),
    case(
        {"train.csv": "text;label\na;joy\nb, c;sad\n"},
        {"label_column": "label"},
        "<tmp>/train.csv: found 1 column 'text;label'; the file looks `;`-separated: set data.delimiter=';'",
        id="semicolon-file-as-csv-that-pandas-cannot-parse",
    ),
    case(
        {"train.csv": "text\tlabel\na\tjoy\nb\tsad\n"},
        {"label_column": "label"},
        r"<tmp>/train.csv: found 1 column 'text\tlabel'; the file looks tab-separated: set data.delimiter='\t'",
        id="tab-file-as-csv",
    ),
    case(
        {"train.jsonl": JSON_ROWS + '{"text": "c", label: "joy"}\n'},
        {"label_column": "label"},
        "<tmp>/train.jsonl line 3 is not valid JSON (Expecting property name enclosed in double quotes): fix that line",
        id="bad-jsonl-line",
    ),
    case(
        {"train.json": '[{"text": "a", "label": "joy"},\n{"text": "b" "label": "sad"}]'},
        {"label_column": "label"},
        "<tmp>/train.json line 2 is not valid JSON (Expecting ',' delimiter): fix that line",
        id="bad-json-array",
    ),
    case(
        {"train.csv": " text,label\na,joy\nb,sad\n"},
        {"label_column": "label"},
        "<tmp>/train.csv has no column 'text'; column ' text' has spaces: rename it or set data.text_column=' text'",
        id="column-with-spaces",
    ),
    case(
        {"train.csv": "text,joy,Sad\na,1,0\n"},
        {"label_columns": ["joy", "sad"]},
        "<tmp>/train.csv has no column 'sad'; column 'Sad' differs in case: "
        "rename it or use 'Sad' in data.label_columns",
        id="column-in-another-case",
    ),
    case(
        {"train.jsonl": '{"text": "a", "label": "joy"}\n{"text": 5, "label": "sad"}\n'},
        {"label_column": "label"},
        "<tmp>/train.jsonl row 2 has the int 5 in column 'text', not a string: make every text a string",
        id="number-as-text",
    ),
    case(
        {"train.csv": "text,label\na,joy\nb,sadness\nc,3\n"},
        {"label_column": "label"},
        "<tmp>/train.csv mixes label names and ids ('joy' in row 1, '3' in row 3): write every label as a name, "
        "or every label as an id and name the ids with data.label_names",
        id="names-and-ids",
    ),
    case(
        {"train.csv": "text,label\na,0\nb,1\nc,5\n"},
        {"label_column": "label", "label_names": ["anger", "joy", "sad"]},
        "<tmp>/train.csv row 3 has label id 5, but data.label_names has 3 names (ids 0..2): "
        "fix the id or add its name to data.label_names",
        id="id-out-of-range",
    ),
    case(
        {"train.csv": TRAIN},
        {"label_column": "label", "label_names": ["anger", "joy"]},
        "data.label_names names label ids, but <tmp>/train.csv row 1 has label 'joy': "
        "drop data.label_names (the file names its labels) or write ids 0..1",
        id="label-names-without-ids",
    ),
    case(
        {"train.csv": "text,joy,sad\na,1,0\n"},
        {"label_columns": ["joy", "sad"], "label_names": ["joy", "sad"]},
        "data.label_names names the ids in data.label_column: drop it (data.label_columns are names)",
        id="label-names-with-label-columns",
    ),
    case(
        {"train.csv": "text,label\na,0\nb,1\n"},
        {"label_column": "label", "label_names": ["joy"]},
        "data.label_names=['joy'] has fewer than two names: give one name per label id 0..k-1",
        id="one-label-name",
    ),
    case(
        {"train.csv": "text,label\na,0\nb,1\n"},
        {"label_column": "label", "label_names": ["joy", "joy"]},
        "data.label_names has 'joy' twice: give each label id its own name",
        id="label-names-twice",
    ),
    case(
        {"train.csv": "text,label\na,joy\nb,joy\n"},
        {"label_column": "label"},
        "<tmp>/train.csv has examples of only one label ('joy'): a classifier needs examples of at least two labels",
        id="one-class",
    ),
    case(
        {"train.csv": "text,joy,sad\na,1,0\nb,yes,no\n"},
        {"label_columns": ["joy", "sad"]},
        "<tmp>/train.csv has examples of only one label ('joy'): a classifier needs examples of at least two labels",
        id="one-class-multi-label",
    ),
    case(
        {"train.csv": ""},
        {"label_column": "label"},
        "data.train_file=<tmp>/train.csv has no rows: add examples to it or give another file",
        id="empty-file",
    ),
    case(
        {"train.csv": TRAIN, "val.csv": "text,label\n"},
        {"label_column": "label", "validation_file": "val.csv"},
        "data.validation_file=<tmp>/val.csv has no rows: add examples to it or give another file",
        id="header-only-file",
    ),
    case(
        {"train.jsonl": JSON_ROWS},
        {"label_column": "label", "column_names": ["text", "label"]},
        "data.column_names is for header-less CSV / TSV / TXT files, not .jsonl: drop it",
        id="column-names-for-json",
    ),
    case(  # pandas would read the second as 'label.1', and training would use the first without a word
        {"train.csv": "text,label,label\na,joy,sad\nb,sad,joy\n"},
        {"label_column": "label"},
        "<tmp>/train.csv has 2 columns named 'label' (columns 2 and 3): rename or drop all but one of them",
        id="duplicate-label-column",
    ),
    case(
        {"train.tsv.gz": gzip.compress(b"text\tlabel\tlabel\na\tjoy\tsad\nb\tsad\tjoy\n")},
        {"label_column": "label"},
        "<tmp>/train.tsv.gz has 2 columns named 'label' (columns 2 and 3): rename or drop all but one of them",
        id="duplicate-in-a-gzipped-file",
    ),
    case(
        {"train.txt": "text;label\na;joy\nb;sad\n", "val.txt": '"text";label;"text";text\nc;joy;x;y\n'},
        {"label_column": "label", "validation_file": "val.txt", "delimiter": ";"},
        "<tmp>/val.txt has 3 columns named 'text' (columns 1, 3 and 4): rename or drop all but one of them",
        id="duplicate-quoted-columns",
    ),
    case(
        {"train.csv": "\ufefflabel,text,label\njoy,a,sad\nsad,b,joy\n"},
        {"label_column": "label"},
        "<tmp>/train.csv has 2 columns named 'label' (columns 1 and 3): rename or drop all but one of them",
        id="duplicate-after-a-byte-order-mark",
    ),
    case(
        {"train.txt": "a;joy\nb;sad\n"},
        {"label_column": "label", "delimiter": ";", "column_names": ["text", "label", "label"]},
        "data.column_names has 'label' twice: give each column its own name",
        id="duplicate-column-names",
    ),
]


@pytest.mark.parametrize(("files", "kwargs", "message"), NEW_CASES)
def test_bad_user_files_name_the_problem_and_the_fix(tmp_path, tiny_tokenizer_dir, files, kwargs, message):
    for name, content in files.items():
        if name.endswith("/"):
            (tmp_path / name).mkdir()
        elif name.endswith("|"):
            os.mkfifo(tmp_path / name.rstrip("|"))
        else:
            (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    kwargs = {key: str(tmp_path / value) if key.endswith("_file") else value for key, value in kwargs.items()}
    expected = message.replace("<tmp>", str(tmp_path))
    with pytest.raises(ConfigError, match=re.escape(expected)) as info:
        train_file = str(tmp_path / next(iter(files)).rstrip("/|"))
        make(FilesDataModule, tiny_tokenizer_dir, train_file=train_file, **kwargs).setup()
    assert str(info.value) == expected and "\n" not in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_one_line(tmp_path, tiny_tokenizer_dir):
    train = tmp_path / "train.csv"
    train.write_text(TRAIN)
    train.chmod(0)
    with pytest.raises(ConfigError) as info:
        make(FilesDataModule, tiny_tokenizer_dir, train_file=str(train), label_column="label").setup()
    assert str(info.value) == f"data.train_file={train} cannot be read (Permission denied): check its permissions"


def test_flags_ids_and_encodings_are_read_as_written(tmp_path, tiny_tokenizer_dir):
    flags = tmp_path / "flags.csv"
    flags.write_text("text,joy,sad\nNone,1,0.0\nNA,false,yes\nc,TRUE,No\nd,1.0,0\ne,no,True\n")
    dm = make(
        FilesDataModule,
        tiny_tokenizer_dir,
        train_file=str(flags),
        validation_file=str(flags),
        label_columns=["joy", "sad"],
        test_fraction=0,
    )
    dm.setup()
    assert dm.labeled.splits["train"]["labels"] == [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
    assert dm.labeled.splits["train"]["text"][:2] == ["None", "NA"]  # texts, not missing values
    ids = tmp_path / "ids.txt"  # row 1's id occurs nowhere else, but a multi-word text is no header
    ids.write_bytes("caf\xe9 au lait\t0\nb\t2\nc\t1\nd\t2\n".encode("latin-1"))
    dm = make(
        FilesDataModule,
        tiny_tokenizer_dir,
        train_file=str(ids),
        validation_file=str(ids),
        label_column="label",
        label_names=["anger", "joy", "sadness"],
        column_names=["text", "label"],
        delimiter=r"\t",
        encoding="latin-1",
        test_fraction=0,
    )
    dm.setup()
    train = dm.labeled.splits["train"]
    assert dm.label_names == ["anger", "joy", "sadness"] and train["labels"] == [0, 2, 1, 2]
    assert train["text"][0] == "café au lait"


def test_missing_dataset_names_the_mirror_setting(tmp_path, tiny_tokenizer_dir):
    dm = make(EmotionDataModule, tiny_tokenizer_dir, data_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="EMO_DATA_DIR"):
        dm.setup()


GZ_ROWS = [("i am so happy", "joy"), ("i feel sad", "sadness"), ("so angry now", "anger")] * 4


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("train.csv.gz", {}),
        ("train.tsv.gz", {}),
        ("train.TXT.GZ", {"delimiter": ";", "column_names": ["text", "label"]}),
        ("train.jsonl.gz", {}),
        ("train.json.gz", {}),
    ],
)
def test_gzipped_files_read_as_their_inner_format(tmp_path, tiny_tokenizer_dir, name, kwargs):
    """A file.<format>.gz gives the same splits as the plain file.<format>: gzip is read by the same reader."""
    plain = tmp_path / name[: -len(".gz")]
    frame = pd.DataFrame(GZ_ROWS, columns=["text", "label"])
    inner = plain.suffix.lower()
    if inner == ".jsonl":
        frame.to_json(plain, orient="records", lines=True)
    elif inner == ".json":
        frame.to_json(plain, orient="records")
    else:
        sep = {".csv": ",", ".tsv": "\t", ".txt": ";"}[inner]
        frame.to_csv(plain, sep=sep, index=False, header=inner != ".txt")
    with open(plain, "rb") as source, gzip.open(tmp_path / name, "wb") as target:
        shutil.copyfileobj(source, target)
    loaded = {}
    for path in (plain, tmp_path / name):
        dm = make(FilesDataModule, tiny_tokenizer_dir, train_file=str(path), label_column="label", **kwargs)
        dm.setup()
        loaded[path.name] = {split: dm.labeled.splits[split]["text"] for split in dm.labeled.splits}
        assert dm.label_names == ["anger", "joy", "sadness"]
    assert loaded[name] == loaded[plain.name] and sum(map(len, loaded[name].values())) == len(GZ_ROWS)


def test_a_gzipped_validation_file_goes_with_a_plain_train_file(tmp_path, tiny_tokenizer_dir):
    (tmp_path / "train.csv").write_text("text,label\n" + "".join(f"{t},{label}\n" for t, label in GZ_ROWS))
    with gzip.open(tmp_path / "val.csv.gz", "wt") as handle:
        handle.write("text,label\nhappy again,joy\nsad again,sadness\n")
    dm = make(
        FilesDataModule,
        tiny_tokenizer_dir,
        train_file=str(tmp_path / "train.csv"),
        validation_file=str(tmp_path / "val.csv.gz"),
        label_column="label",
    )
    dm.setup()
    assert dm.labeled.splits["validation"]["text"] == ["happy again", "sad again"]


SUPPORTED = (
    "use one of .csv, .tsv, .txt, .json, .jsonl, .parquet "
    "(the first five may be gzipped: .csv.gz, .tsv.gz, .txt.gz, .json.gz, .jsonl.gz)"
)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("train.xlsx.gz", gzip.compress(b"x"), "data.train_file has suffix ['.xlsx.gz']: " + SUPPORTED),
        ("train.gz", gzip.compress(b"text,label\n"), "data.train_file has suffix ['.gz']: " + SUPPORTED),
        ("train.parquet.gz", gzip.compress(b"x"), "data.train_file has suffix ['.parquet.gz']: " + SUPPORTED),
        (
            "train.csv.gz",
            b"text,label\na,joy\nb,sad\n",
            "<tmp>/train.csv.gz is not gzip-compressed: compress it with gzip or drop .gz from its name",
        ),
        ("train.csv.gz", gzip.compress(b""), "data.train_file=<tmp>/train.csv.gz has no rows: add examples to it"),
        (
            "train.csv.gz",
            gzip.compress(b"text,label\n" + b"a,joy\nb,sad\n" * 100)[:-12],
            "<tmp>/train.csv.gz is a damaged gzip file (Compressed file ended before the end-of-stream marker was "
            "reached): compress it again",
        ),
        (
            "train.csv.gz",
            gzip.compress("text,label\na,joy\nb,caf\xe9\n".encode("latin-1")),
            "<tmp>/train.csv.gz is not valid utf-8 (byte 0xe9 on line 3): set data.encoding=latin-1",
        ),
    ],
    ids=["unknown-inner", "no-inner", "parquet", "not-gzip", "empty", "truncated", "latin-1"],
)
def test_bad_gzipped_files_give_one_line_errors(tmp_path, tiny_tokenizer_dir, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ConfigError) as info:
        make(FilesDataModule, tiny_tokenizer_dir, train_file=str(tmp_path / name), label_column="label").setup()
    assert str(info.value).startswith(message.replace("<tmp>", str(tmp_path))) and "\n" not in str(info.value)
