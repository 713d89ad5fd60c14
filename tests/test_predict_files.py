"""predict.py over whole files: every row kept, predictions and probabilities added, nothing overwritten."""

from __future__ import annotations

import gzip
import json

import pytest
import torch
from datasets import load_dataset

from emo_lightning.data.loading import load_tokenizer
from emo_lightning.inference.files import predict_file
from emo_lightning.inference.predictor import EmotionPredictor
from emo_lightning.models.backbone import load_backbone
from emo_lightning.models.folder import ClassifierSpec, save_model_dir
from emo_lightning.models.heads import LinearHead
from emo_lightning.models.network import EmotionNetwork
from emo_lightning.utils.errors import ConfigError

LABELS = ["anger", "joy", "sadness"]
TEXTS = ["i am so furious, really", "what a lovely day", "i miss you", "ok"]


def model_dir(path, tiny_models, multi_label: bool):
    """A tiny random-init network exported like a trained run, with confident (non-uniform) outputs."""
    torch.manual_seed(0)
    backbone = load_backbone(str(tiny_models["bert"]))
    hidden = backbone.config.hidden_size
    network = EmotionNetwork(backbone, LinearHead(hidden, len(LABELS)))
    torch.nn.init.normal_(network.head.classifier.weight, std=2.0)
    head = {"_target_": "emo_lightning.models.heads.LinearHead", "hidden_size": hidden, "num_labels": len(LABELS)}
    spec = ClassifierSpec(LABELS, multi_label=multi_label, threshold=0.5, max_length=32, head=head)
    save_model_dir(path, network, load_tokenizer(str(tiny_models["bert"]), None), spec)
    return path


@pytest.fixture
def single(tmp_path, tiny_models) -> EmotionPredictor:
    return EmotionPredictor(model_dir(tmp_path / "model", tiny_models, multi_label=False), precision="fp32")


@pytest.fixture
def multi(tmp_path, tiny_models) -> EmotionPredictor:
    return EmotionPredictor(model_dir(tmp_path / "model", tiny_models, multi_label=True), precision="fp32")


def test_csv_rows_keep_their_columns_and_get_the_same_answers_as_texts(tmp_path, single):
    source = tmp_path / "posts.csv"
    source.write_text('id,text\n7,"i am so furious, really"\n8,what a lovely day\n9,i miss you\n10,ok\n')
    result = predict_file(single, source)
    assert result.output_file == tmp_path / "posts.predictions.csv" and result.rows == 4
    out = load_dataset("csv", data_files=str(result.output_file), split="train")
    assert out["id"] == [7, 8, 9, 10] and out["text"] == TEXTS
    probs = torch.tensor([[row[f"prob_{name}"] for name in LABELS] for row in out])
    expected = single.predict_proba(TEXTS)
    assert torch.allclose(probs, expected, atol=1e-5)
    assert torch.allclose(probs.sum(1), torch.ones(4), atol=1e-5)
    assert out["predicted"] == [LABELS[i] for i in expected.argmax(1)]
    assert sum(result.label_counts.values()) == 4


def test_multi_label_file_uses_the_saved_thresholds(tmp_path, multi):
    source = tmp_path / "posts.jsonl"
    source.write_text("".join(json.dumps({"body": t, "n": i}) + "\n" for i, t in enumerate(TEXTS)))
    probs = multi.predict_proba(TEXTS)
    multi.thresholds = [float(probs[:, 0].min()), 1.01, 1.01]  # anger passes for every text, nothing else can
    result = predict_file(multi, source, tmp_path / "out" / "labels.json", text_column="body")
    rows = json.loads(result.output_file.read_text())  # .json: one JSON array
    assert [r["n"] for r in rows] == [0, 1, 2, 3] and [r["predicted"] for r in rows] == ["anger"] * 4
    assert result.label_counts == {"anger": 4}


def test_plain_txt_is_one_text_per_line_and_goes_to_csv(tmp_path, single):
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(TEXTS) + "\n")
    result = predict_file(single, source)
    assert result.output_file == tmp_path / "texts.predictions.csv"
    assert load_dataset("csv", data_files=str(result.output_file), split="train")["text"] == TEXTS


@pytest.mark.parametrize(
    ("content", "kwargs", "message"),
    [
        ("sentence\nhello\n", {}, "has no column 'text' (columns: sentence): set text_column"),
        ('text\nhello\n""\n', {}, "row 2 has no text in column 'text'"),
        ("text,predicted\nhello,x\n", {}, "already has a column 'predicted'"),
        ("text\nhello\n", {"output_file": "out.xlsx"}, "output_file has suffix ['.xlsx']"),
        # the output format is checked before the input is read (its empty row 2 is never reached)
        (
            'text\nhello\n""\n',
            {"output_file": "out.txt"},
            "out.txt needs a delimiter (.txt files have none by default)",
        ),
        ("text;label\nhello;joy\n", {}, "found 1 column 'text;label'; the file looks `;`-separated: set delimiter=';'"),
    ],
)
def test_bad_files_fail_in_one_line_and_write_nothing(tmp_path, single, content, kwargs, message):
    source = tmp_path / "in.csv"
    source.write_text(content)
    if "output_file" in kwargs:
        kwargs["output_file"] = tmp_path / kwargs["output_file"]
    with pytest.raises(ConfigError) as info:
        predict_file(single, source, **kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "model"]


def test_an_existing_output_is_overwritten_only_when_asked(tmp_path, single):
    source = tmp_path / "in.csv"
    source.write_text("text\nhello\n")
    (tmp_path / "in.predictions.csv").write_text("keep me")
    with pytest.raises(ConfigError, match="exists: give another output_file, or overwrite=true to replace it"):
        predict_file(single, source)
    assert (tmp_path / "in.predictions.csv").read_text() == "keep me"
    predict_file(single, source, overwrite=True)
    rows = load_dataset("csv", data_files=str(tmp_path / "in.predictions.csv"), split="train")
    assert rows["text"] == ["hello"] and "predicted" in rows.column_names
    with pytest.raises(ConfigError, match="is the input_file: give another output_file"):
        predict_file(single, source, output_file=source, overwrite=True)
    assert source.read_text() == "text\nhello\n"


TXT_OUTPUT = (
    "output_file={tmp}/out.txt needs a delimiter (.txt files have none by default): use output_file={tmp}/out.csv"
)


@pytest.mark.parametrize(
    ("source", "message"),
    [("in.csv", TXT_OUTPUT), ("in.txt", TXT_OUTPUT), ("in.jsonl", TXT_OUTPUT + " or set delimiter=';'")],
)
def test_a_txt_output_without_delimiter_fails_before_predicting(tmp_path, single, source, message):
    (tmp_path / source).write_text(json.dumps({"text": "hello"}) + "\n" if source.endswith(".jsonl") else "text\nhi\n")
    with pytest.raises(ConfigError) as info:
        predict_file(single, tmp_path / source, tmp_path / "out.txt")
    assert str(info.value) == message.format(tmp=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([source, "model"])


def test_a_txt_output_takes_the_delimiter_of_a_json_input(tmp_path, single):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    result = predict_file(single, source, tmp_path / "out.txt", delimiter=";")
    out = load_dataset("csv", data_files=str(result.output_file), sep=";", split="train")
    assert out["text"] == TEXTS and out["predicted"] == [p.labels[0] for p in single.predict(TEXTS)]


def test_encoding_reads_a_latin_1_file_and_utf_8_refuses_it_in_one_line(tmp_path, single):
    source = tmp_path / "in.txt"
    source.write_bytes("caf\xe9 au lait\nok\n".encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        predict_file(single, source)
    assert str(info.value) == (
        f"{source} is not valid utf-8 (byte 0xe9 on line 1): "
        "set encoding=latin-1, or the encoding the file was saved in"
    )
    result = predict_file(single, source, encoding="latin-1")
    assert load_dataset("csv", data_files=str(result.output_file), split="train")["text"] == ["café au lait", "ok"]


@pytest.mark.parametrize(
    ("name", "content", "output"),
    [
        ("posts.csv.gz", 'id,text\n7,"i am so furious, really"\n8,what a lovely day\n9,i miss you\n10,ok\n', None),
        ("posts.jsonl.gz", "".join(json.dumps({"text": t}) + "\n" for t in TEXTS), None),
        ("texts.txt.gz", "\n".join(TEXTS) + "\n", None),  # one text per line, like a plain .txt
        ("posts.csv.gz", "text\n" + "\n".join(TEXTS[1:]) + "\n", "out.tsv"),
    ],
    ids=["csv", "jsonl", "txt-lines", "to-plain-tsv"],
)
def test_a_gzipped_input_is_read_as_its_inner_format_and_answered_in_kind(tmp_path, single, name, content, output):
    """posts.csv.gz → posts.predictions.csv.gz (gzipped too; .txt.gz → .csv.gz), with the answers of texts."""
    source = tmp_path / name
    with gzip.open(source, "wt", encoding="utf-8") as handle:
        handle.write(content)
    result = predict_file(single, source, tmp_path / output if output else None)
    stem, inner = name.split(".")[:2]
    expected = output or f"{stem}.predictions.{'csv' if inner == 'txt' else inner}.gz"
    assert result.output_file == tmp_path / expected
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, expected, "model"])  # no partial left
    if expected.endswith(".gz"):
        gzip.decompress(result.output_file.read_bytes())  # really gzip
    builder = "json" if inner == "jsonl" else "csv"
    options = {"sep": "\t"} if expected.endswith(".tsv") else {}
    out = load_dataset(builder, data_files=str(result.output_file), split="train", **options)
    texts = TEXTS[1:] if output else TEXTS
    assert out["text"] == texts and out["predicted"] == [p.labels[0] for p in single.predict(texts)]


def test_an_input_with_two_columns_of_one_name_is_refused_before_predicting(tmp_path, single):
    source = tmp_path / "in.csv"
    source.write_text("text,id,text\nhello,1,other text\n")
    with pytest.raises(ConfigError) as info:
        predict_file(single, source)
    assert str(info.value) == (
        f"{source} has 2 columns named 'text' (columns 1 and 3): rename or drop all but one of them"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "model"]
