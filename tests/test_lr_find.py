"""`tune=lr_find`: Lightning's learning-rate finder on tiny real runs. tune.apply=false writes the curve and the
suggestion and trains nothing; tune.apply=true trains with the suggestion, as the printed command would; layer-decayed
groups keep their factors under the search; bad values are refused in one line before any work."""

from __future__ import annotations

import csv
import json
import re

import pytest
import torch
from omegaconf import open_dict

from emo_lightning.train import train
from emo_lightning.training.lr_find import group_scales_kept, train_command
from tests.runs import refusal
from tests.test_cli import run, tiny_args

SEARCH = ["tune=lr_find", "tune.num_training=20"]  # the fewest steps the rules allow: a second on the tiny model


def test_a_search_writes_its_curve_and_the_command_that_uses_it_and_trains_nothing(tmp_path, tiny_models, tiny_mirror):
    args = tiny_args(tiny_models, tiny_mirror)
    out = run("train.py", *args, *SEARCH, f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    folder = tmp_path / "run"
    record = json.loads((folder / "lr_find.json").read_text())
    assert (folder / "lr_find.png").read_bytes()[:4] == b"\x89PNG"
    rates, losses, suggestion = record["rates"], record["losses"], record["suggestion"]
    assert len(rates) == len(losses) == record["steps"] <= 20 and rates == sorted(rates)
    assert rates[0] == pytest.approx(1e-7) and 1e-7 < suggestion < 0.1 and suggestion == float(f"{suggestion:.3g}")
    assert record["applied"] is False and record["configured_lr"] == 1e-4 and record["lowest_loss_rate"] in rates
    console = out.stdout + out.stderr
    said = re.search(r"suggests optimizer\.lr=(\S+) \(the config has 0\.0001\)", console)
    assert said and float(said.group(1)) == suggestion
    command = f"python train.py {' '.join(args)} optimizer.lr={said.group(1)}"  # the user's overrides, no tune=
    assert f"train with it: {command}" in console and record["command"] == command
    assert sorted(p.name for p in folder.iterdir()) == [".hydra", "lr_find.json", "lr_find.png", "train.log"]
    assert "Traceback" not in out.stderr  # nothing trained: no checkpoints (nor the finder's own), logs or model


def test_apply_trains_with_the_suggestion_as_the_printed_command_would(tiny_cfg, tmp_path, caplog):
    constant = ["scheduler=constant_warmup", "scheduler.warmup_ratio=0", "logger=csv"]  # the rate, unchanged
    train(tiny_cfg(*SEARCH, "tune.apply=true", *constant))
    written = (tmp_path / "lr_find.json").read_text()
    record = json.loads(written)
    rate = record["suggestion"]
    assert record["applied"] and record["command"] == f"python train.py optimizer.lr={rate}"  # no Hydra job here
    hparams = (next((tmp_path / "csv").rglob("hparams.yaml"))).read_text()
    assert re.search(rf"^optimizer:\n(  .*\n)*?  lr: {re.escape(str(rate))}$", hparams, re.M), hparams
    with next((tmp_path / "csv").rglob("metrics.csv")).open() as f:
        logged = [float(v) for row in csv.DictReader(f) for k, v in row.items() if k.startswith("lr-AdamW") and v]
    assert logged and set(logged) == {rate}  # every group, every step: the optimizer's rate is the suggestion
    tuned = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    # resumed, the run takes the rate its search found, and searches no more
    with caplog.at_level("INFO", logger="emo_lightning"):
        train(tiny_cfg(*SEARCH, "tune.apply=true", *constant, f"resume={tmp_path}"))
    assert f"resume: optimizer.lr={rate}, the rate this run's search found (lr_find.json)" in caplog.text
    assert (tmp_path / "lr_find.json").read_text() == written
    # the model was trained afresh: the same run as the printed command's (optimizer.lr=<rate>, no search)
    again = tiny_cfg(*constant, f"optimizer.lr={rate}")
    with open_dict(again):
        again.paths.output_dir = str(tmp_path / "plain")
    train(again)
    assert json.loads((tmp_path / "plain" / "metrics.json").read_text())["metrics"] == pytest.approx(tuned)


def test_layer_decayed_groups_step_at_their_factor_of_the_searched_rate():
    top, low = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.SGD([{"params": [top], "lr_scale": 1.0}, {"params": [low], "lr_scale": 0.5}], lr=0.1)
    top.grad, low.grad = torch.ones(2), torch.ones(2)
    with group_scales_kept():
        optimizer.step()
    assert top.tolist() == pytest.approx([-0.1, -0.1]) and low.tolist() == pytest.approx([-0.05, -0.05])
    assert [g["lr"] for g in optimizer.param_groups] == [0.1, 0.1]  # what the finder's schedule set, as it was
    optimizer.step()  # outside: as configured
    assert low.tolist() == pytest.approx([-0.15, -0.15])


def test_the_command_leaves_out_the_search_and_an_earlier_rate():
    overrides = ["experiment=emotion_minilm", "tune=lr_find", "tune.apply=false", "+optimizer.lr=1", "seed=1"]
    assert (
        train_command(overrides, 3.02e-05) == "python train.py experiment=emotion_minilm seed=1 optimizer.lr=3.02e-05"
    )
    assert (
        train_command(["data.train_file=my file.csv"], 1e-4)
        == "python train.py 'data.train_file=my file.csv' optimizer.lr=0.0001"
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["tune.num_training=5"], "tune.num_training=5 must be an int ≥ 20: e.g. tune.num_training=100"),
        (["tune.max_lr=2"], "tune.max_lr=2 must be > 0 and ≤ 1: e.g. tune.max_lr=0.1"),
        (
            ["tune.min_lr=0.5", "tune.max_lr=0.1"],
            "tune.min_lr=0.5 must be below tune.max_lr=0.1: e.g. tune.min_lr=1e-7 tune.max_lr=0.1",
        ),
        (["tune.mode=cosine"], "tune.mode=cosine must be one of exponential / linear: e.g. tune.mode=exponential"),
        (["tune.apply=maybe"], "tune.apply=maybe must be true or false"),
        (["debug=fdr"], "tune=lr_find needs training steps, and trainer.fast_dev_run runs one batch: drop debug=fdr"),
    ],
)
def test_a_bad_value_is_refused_in_one_line_before_any_work(overrides, message, tiny_cfg, tmp_path):
    error = refusal(tiny_cfg(*SEARCH, *overrides), tmp_path)
    assert error.startswith(message) and "\n" not in error
    assert not (tmp_path / "lr_find.json").exists()


def test_the_command_line_refuses_a_bad_value_in_one_line(tmp_path, tiny_models, tiny_mirror):
    out = run("train.py", *tiny_args(tiny_models, tiny_mirror), *SEARCH, "tune.num_training=0",
              f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "tune.num_training=0 must be an int ≥ 20: e.g. tune.num_training=100" in out.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "run").exists()
