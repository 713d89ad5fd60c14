"""`python <script> --help`: a page for people, rendered from conf/ — every group of the script's own config with
its options and the default marked, its settings, examples; predict.py lists no training group."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from emo_lightning.cli.help import config_defaults, group_options, settings
from tests.conftest import CONF, ROOT

SCRIPTS = {"train.py": "train", "predict.py": "predict", "analyze.py": "analyze", "export.py": "export",
           "serve.py": "serve"}  # fmt: skip


def page(script: str, *flags: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / script), *(flags or ("--help",))], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize("script", SCRIPTS)
def test_each_page_names_every_group_marks_its_default_and_shows_examples(script):
    text = page(script)
    assert text.startswith(f"{script}: ")
    groups = config_defaults(CONF, SCRIPTS[script])
    for group, default in groups.items():
        line = next((ln for ln in text.splitlines() if re.match(rf"  {re.escape(group)}\s{{2,}}", ln)), None)
        assert line is not None, f"{script}: group {group} missing"
        marked = "(none)*" if default is None else f"{default}*"
        assert marked in line.split(None, 1)[1].split(", "), line
        assert all(option in line for option in group_options(CONF, group)), line
    for key, value, _ in settings(CONF / f"{SCRIPTS[script]}.yaml"):
        assert re.search(rf"^  {re.escape(key)}\s+{re.escape(value)}", text, re.M), f"{script}: setting {key}"
    examples = [ln for ln in text.splitlines() if ln.startswith(f"  python {script}")]
    assert examples and all("  # " in ln for ln in examples)
    assert page(script, "-h") == text


def test_predict_page_shows_no_training_group_and_train_page_shows_how_to_train_on_a_file():
    predict = page("predict.py")
    assert "Config groups" not in predict and "usage: python predict.py [key=value ...]" in predict
    for training_group in ("optimizer", "head", "loss", "trainer", "callbacks"):
        assert not re.search(rf"^  {training_group}\b", predict, re.M), training_group
    train = page("train.py")
    assert "Train on your own file (data=files" in train
    assert re.search(r"^  data\.train_file\s+\?\?\?", train, re.M)
    assert re.search(r"^  data\.label_column\s+null", train, re.M)
    assert "  param_groups    layer_decay, (none)*" in train  # null default: none, marked


def test_hydra_keeps_its_own_page():
    assert "Hydra (1.3" in page("train.py", "--hydra-help")
