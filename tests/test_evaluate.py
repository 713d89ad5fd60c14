"""`evaluate.py`: a finished tiny run scored on labelled data through its model folder — its own dataset gives its
own metrics.json figures, a file with fewer (or other) labels is refused in one line unless labels.* says how."""

from __future__ import annotations

import csv
import json

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

from emo_lightning.analysis.evaluate_data import run_evaluate
from emo_lightning.analysis.tasks import output_subject
from emo_lightning.evaluation.label_match import match_labels
from emo_lightning.utils.errors import ConfigError
from tests.conftest import CONF
from tests.test_cli import run
from tests.test_run_analysis import finished_run  # noqa: F401  (the fixture)

OmegaConf.register_new_resolver("analysis_subject", output_subject, replace=True)


def compose_evaluate(overrides: list[str], output_dir) -> OmegaConf:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("evaluate", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


def read_csv(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_file(path, rows: list[tuple[str, str]]):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["tweet", "label"])
        writer.writerows(rows)
    return path


def run_figures(run_dir) -> dict[str, float]:
    return json.loads((run_dir / "metrics.json").read_text())["metrics"]


@pytest.mark.parametrize("data", ["emotion", "go_emotions"])
def test_its_own_dataset_gives_the_runs_own_test_figures(finished_run, tiny_mirror, tmp_path, data):  # noqa: F811
    run_dir = finished_run(data, "plots=none")
    before = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*"))
    out = tmp_path / "evaluation"
    cfg = compose_evaluate([f"run_dir={run_dir}", f"data={data}", f"paths.data_dir={tiny_mirror}"], out)
    summary = run_evaluate(cfg, out, data)
    record = json.loads((out / "metrics.json").read_text())
    own = run_figures(run_dir)
    shared = [key for key in own if key.startswith("test/") and key != "test/loss"]
    assert shared and set(shared) <= set(record["metrics"])  # the run's names, every one but the training loss
    for key in shared:
        assert record["metrics"][key] == pytest.approx(own[key], abs=2e-4), key
    rows = read_csv(out / "predictions" / "test.csv")
    assert len(rows) == record["examples"]["test"] == 24
    own_rows = read_csv(run_dir / "predictions" / "test.csv")
    assert [r["predicted"] for r in rows] == [r["predicted"] for r in own_rows]
    assert "## Test figures beside the published anchors" in summary.read_text()
    assert sorted(p.relative_to(run_dir) for p in run_dir.rglob("*")) == before  # nothing written into the run
    with pytest.raises(ConfigError, match="already holds an evaluation"):
        run_evaluate(cfg, out, data)


def test_a_file_with_a_subset_of_the_labels_is_refused_then_scored_among_its_labels(finished_run, tmp_path):  # noqa: F811
    run_dir = finished_run("emotion", "plots=none")
    texts = ["i feel so sad and alone", "what a joy this is", "i am furious", "so angry right now", "happy day"]
    file = write_file(tmp_path / "theirs.csv", list(zip(texts, ["sadness", "joy", "anger", "anger", "joy"])))
    args = [f"run_dir={run_dir}", "data=files", f"data.test_file={file}", "data.text_column=tweet"]
    args.append("data.label_column=label")
    refused = run("evaluate.py", *args, cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert refused.stderr.strip().splitlines() == [
        "error: the data lacks labels the model predicts: love, fear, surprise: decide among the data's labels only "
        "with labels.missing=restrict, or labels.missing=keep to count a prediction of them as an error"
    ]
    assert not list((tmp_path / "outputs" / "evaluate").iterdir())  # refused before anything: not even Hydra's folder

    scored = run("evaluate.py", *args, "labels.missing=restrict", cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr[-3000:]
    (folder,) = [f.parent for f in (tmp_path / "outputs" / "evaluate").glob("*/summary.md")]
    assert folder.name.startswith(f"{run_dir.name}_files_")
    assert scored.stdout.strip().splitlines()[-1] == f"wrote {folder / 'summary.md'}"
    record = json.loads((folder / "metrics.json").read_text())
    assert record["labels"] == ["sadness", "joy", "anger"]  # the model's order, the data's labels
    rows = read_csv(folder / "predictions" / "test.csv")
    assert [r["text"] for r in rows] == texts and {r["predicted"] for r in rows} <= {"sadness", "joy", "anger"}
    accuracy = sum(r["gold"] == r["predicted"] for r in rows) / len(rows)
    assert record["metrics"]["test/accuracy"] == pytest.approx(accuracy)
    assert "decided among the data's labels only: left out love, fear, surprise" in record["notes"]


def test_labels_the_model_lacks_are_refused_mapped_or_dropped():
    model = ["sadness", "joy", "anger"]
    with pytest.raises(ConfigError) as info:
        match_labels(["anger", "happiness", "sadness"], model)
    assert str(info.value).startswith(
        "the data has labels the model lacks: happiness: map them to the model's labels with "
        "labels.map='{happiness: <label>}' or drop them with labels.unknown=drop"
    )
    mapped = match_labels(["anger", "happiness", "sadness"], model, {"happiness": "joy"})
    assert mapped.to_model == [2, 1, 0] and mapped.scored == [0, 1, 2]
    dropped = match_labels(["anger", "happiness", "sadness"], model, unknown="drop", missing="keep")
    assert dropped.to_model == [2, None, 0] and dropped.scored == [0, 1, 2]
    with pytest.raises(ConfigError, match=r"^labels.map renames love, which the data does not have"):
        match_labels(["anger", "joy", "sadness"], model, {"love": "joy"})
    with pytest.raises(ConfigError, match=r"^labels.missing=drop is not one of refuse, keep, restrict"):
        match_labels(["anger", "joy", "sadness"], model, missing="drop")


def test_dropped_labels_drop_their_rows_and_a_multi_label_file_needs_a_multi_label_model(finished_run, tmp_path):  # noqa: F811
    run_dir = finished_run("emotion", "plots=none")
    rows = [("so sad", "sadness"), ("so happy", "joy"), ("hopeful", "optimism"), ("angry", "anger")]
    file = write_file(tmp_path / "other.csv", rows)
    base = [f"run_dir={run_dir}", "data=files", f"data.test_file={file}", "data.text_column=tweet"]
    base.append("data.label_column=label")
    out = tmp_path / "dropped"
    cfg = compose_evaluate([*base, "labels.unknown=drop", "labels.missing=keep"], out)
    run_evaluate(cfg, out, "files")
    record = json.loads((out / "metrics.json").read_text())
    assert record["examples"] == {"test": 3} and "test: 1 rows dropped (their label was dropped)" in record["notes"]
    assert [r["text"] for r in read_csv(out / "predictions" / "test.csv")] == ["so sad", "so happy", "angry"]

    multi = tmp_path / "multi.csv"
    multi.write_text('tweet,label\nso sad,"sadness,anger"\nso happy,joy\n')
    cfg = compose_evaluate(
        [*base[:2], f"data.test_file={multi}", *base[3:], "data.label_separator=','"], tmp_path / "m"
    )
    with pytest.raises(ConfigError, match=r"^the data is multi-label and the model single-label"):
        run_evaluate(cfg, tmp_path / "m", "files")
    assert not (tmp_path / "m").exists()
