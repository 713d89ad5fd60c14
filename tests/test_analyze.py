"""`python analyze.py`: the explore figures from tiny inputs, `run_explore` on tiny real datasets, the command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from emo_lightning.analysis import explore_figures as figures
from emo_lightning.analysis.explore import run_explore
from emo_lightning.utils.errors import ConfigError
from tests.conftest import CONF
from tests.test_cli import run

PNG = b"\x89PNG\r\n\x1a\n"


def compose_analyze(overrides: list[str], output_dir: Path) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("analyze", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


def is_png(path: Path) -> bool:
    return path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG


def test_each_figure_writes_a_png(tmp_path):
    names = ["joy", "sadness", "anger"]
    figures.plot_label_frequency(
        {"train": [5, 3, 1], "validation": [2, 1, 0]}, {"train": 9, "validation": 3}, names, tmp_path / "freq.png"
    )
    words, tokens = {"joy": [3, 5, 8], "sadness": [4], "anger": []}, {"joy": [5, 7, 12], "sadness": [6], "anger": []}
    figures.plot_text_lengths(words, tokens, tmp_path / "lengths.png", "train")
    figures.plot_cooccurrence(np.array([[5, 2, 0], [2, 3, 1], [0, 1, 1]]), names, tmp_path / "cooc.png", "train")
    figures.plot_labels_per_text({"train": {1: 6, 2: 3}, "test": {0: 1, 1: 2}}, tmp_path / "per_text.png")
    for name in ("freq", "lengths", "cooc", "per_text"):
        assert is_png(tmp_path / f"{name}.png"), name


def write_csv(path: Path, rows: list[tuple[str, str]]) -> str:
    path.write_text("text,label\n" + "".join(f'"{text}",{label}\n' for text, label in rows), encoding="utf-8")
    return str(path)


def test_explore_single_label_files_counts_splits_and_duplicates(tmp_path, tiny_tokenizer_dir):
    train = [
        ("i am so happy today", "joy"),
        ("i am so happy today", "sadness"),  # a duplicate within train, with another label
        ("i feel sad and alone", "sadness"),  # also in validation
        ("what a lovely day", "joy"),
        ("i miss my friends", "sadness"),
        ("so glad you came", "joy"),
        ("we won the game", "joy"),
    ]
    validation = [("i feel sad and alone", "sadness"), ("this is great", "joy"), ("i cried all night", "sadness")]
    test = [("such a good time", "joy"), ("i am lonely", "sadness")]
    cfg = compose_analyze(
        [
            "data=files",
            f"data.train_file={write_csv(tmp_path / 'train.csv', train)}",
            f"data.validation_file={write_csv(tmp_path / 'validation.csv', validation)}",
            f"data.test_file={write_csv(tmp_path / 'test.csv', test)}",
            "data.label_column=label",
            f"model.pretrained_model_name_or_path={tiny_tokenizer_dir}",
        ],
        tmp_path / "out",
    )
    summary = run_explore(cfg, tmp_path / "out").read_text(encoding="utf-8")
    assert is_png(tmp_path / "out" / "label_frequency.png") and is_png(tmp_path / "out" / "text_length.png")
    assert not (tmp_path / "out" / "label_cooccurrence.png").exists()  # single-label: no co-occurrence
    assert "| train | 7 |" in summary and "| validation | 3 |" in summary and "| test | 2 |" in summary
    assert "imbalance ratio (train, most / least frequent label): **1.3** (joy 4 / sadness 3)" in summary
    assert "within train: 1 texts occur more than once (2 rows, 1 of these texts with different labels)" in summary
    assert "  - 'i am so happy today'" in summary
    assert "train and validation: 1 texts occur in both (2 rows)" in summary
    assert "within validation: none" in summary and "train and test: none" in summary
    assert "multi-label share: 0%" in summary


def test_explore_multi_label_hub_dataset(tmp_path, tiny_tokenizer_dir, tiny_mirror):
    overrides = ["data=sem_eval_2018", f"paths.data_dir={tiny_mirror}"]
    cfg = compose_analyze([*overrides, f"model.pretrained_model_name_or_path={tiny_tokenizer_dir}"], tmp_path)
    summary = run_explore(cfg, tmp_path).read_text(encoding="utf-8")
    for name in ("label_frequency", "text_length", "label_cooccurrence", "labels_per_text"):
        assert is_png(tmp_path / f"{name}.png"), name
    assert "| train | 48 | 50.0% |" in summary and "| validation | 24 | 25.0% |" in summary
    assert "11 labels, multi-label" in summary and "| train | 100.0% | 0.0% |" in summary  # each tweet: 3-4 labels
    assert "suggested max_length: **" in summary


def test_explore_refuses_a_folder_that_holds_an_exploration(tmp_path, tiny_tokenizer_dir, tiny_mirror):
    (tmp_path / "summary.md").write_text("mine", encoding="utf-8")
    cfg = compose_analyze(
        [f"paths.data_dir={tiny_mirror}", f"model.pretrained_model_name_or_path={tiny_tokenizer_dir}"], tmp_path
    )
    with pytest.raises(ConfigError, match=r"already holds an exploration \(summary.md\): give a new hydra.run.dir"):
        run_explore(cfg, tmp_path)
    assert (tmp_path / "summary.md").read_text(encoding="utf-8") == "mine"


def test_unknown_task_is_one_line_and_exit_2(tmp_path):
    done = run("analyze.py", "task=explor", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "error: task=explor is not an analysis task: did you mean task=explore? "
        "use one of explore, baseline, umap, errors, report"
    )
    assert not list(tmp_path.glob("*.png"))


def test_analyze_explore_command_line(tmp_path, tiny_tokenizer_dir, tiny_mirror):
    out = tmp_path / "out"
    args = ["task=explore", "data=emotion", f"paths.data_dir={tiny_mirror}", f"hydra.run.dir={out}"]
    done = run("analyze.py", *args, f"model.pretrained_model_name_or_path={tiny_tokenizer_dir}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"wrote {out / 'summary.md'}" in done.stdout
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "# explore: dair-ai/emotion" in summary and "6 labels, single-label" in summary
    assert "| train | 48 | 50.0% |" in summary
