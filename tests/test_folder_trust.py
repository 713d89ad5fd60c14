"""No folder runs code: a run folder whose files name a callable (`_target_`) or remote code is refused in one line
by every script that opens it, and the callable never runs (its marker file never appears)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from emo_lightning.analysis.runs import run_config, run_data
from emo_lightning.cli.resume import check_replayable
from emo_lightning.utils.errors import ConfigError
from tests.conftest import CONF, ROOT
from tests.test_cli import run, tiny_args

TOUCH = "pathlib.Path.touch"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_models, tiny_mirror) -> Path:
    """A tiny finished run that train.py wrote (its .hydra/ included)."""
    root = tmp_path_factory.mktemp("trusted")
    out = run(
        "train.py",
        *tiny_args(tiny_models, tiny_mirror),
        "trainer.max_epochs=1",
        "logger=none",
        f"hydra.run.dir={root}/run",
        cwd=root,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return root / "run"


@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    """A copy of the finished run, free to tamper with."""
    return Path(shutil.copytree(trained_run, tmp_path / "shared-run"))


def tamper_config(run_dir: Path, marker: Path) -> None:
    """`.hydra/config.yaml`'s data node becomes `pathlib.Path.touch(marker)`."""
    file = run_dir / ".hydra" / "config.yaml"
    config = yaml.safe_load(file.read_text())
    config["data"] = {"_target_": TOUCH, "self": str(marker)}
    file.write_text(yaml.safe_dump(config))


def tamper_overrides(run_dir: Path, *extra: str) -> None:
    file = run_dir / ".hydra" / "overrides.yaml"
    file.write_text(yaml.safe_dump([*yaml.safe_load(file.read_text()), *extra]))


def tamper_head(run_dir: Path, marker: Path) -> None:
    """model/classifier.json's head becomes `pathlib.Path.touch(marker)`."""
    file = run_dir / "model" / "classifier.json"
    record = json.loads(file.read_text())
    record["head"] = {"_target_": TOUCH, "self": str(marker)}
    file.write_text(json.dumps(record))


def assert_refused(out: subprocess.CompletedProcess, marker: Path, names: str) -> None:
    """Exit 2, one line on stderr naming the tampered file, and the callable never ran."""
    assert not marker.exists(), "the folder's callable ran"
    assert out.returncode == 2, (out.stdout + out.stderr)[-3000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and names in lines[0], out.stderr[-3000:]
    assert "Traceback" not in out.stdout + out.stderr


@pytest.mark.parametrize("task", ["errors", "report"])
def test_analyze_refuses_a_run_whose_config_names_a_callable(task, run_copy, tmp_path):
    marker = tmp_path / "marker"
    tamper_config(run_copy, marker)
    out = run("analyze.py", f"task={task}", f"run_dir={run_copy}", f"hydra.run.dir={tmp_path}/out", cwd=tmp_path)
    assert_refused(out, marker, "config.yaml: data._target_=pathlib.Path.touch")


def test_resume_refuses_saved_overrides_that_name_a_callable(run_copy, tmp_path):
    marker = tmp_path / "marker"
    before = (run_copy / "checkpoints" / "last.ckpt").read_bytes()
    copy = ["+callbacks.evil._target_=shutil.copyfile", f"+callbacks.evil.src={run_copy}/metrics.json"]
    tamper_overrides(run_copy, *copy, f"+callbacks.evil.dst={marker}")  # on 3c3c55c it copied the file
    out = run("train.py", f"resume={run_copy}", "trainer.max_epochs=2", cwd=tmp_path)
    assert_refused(out, marker, "overrides.yaml replays +callbacks.evil._target_=shutil.copyfile")
    assert (run_copy / "checkpoints" / "last.ckpt").read_bytes() == before  # nothing the user had is touched
    assert not (run_copy / ".hydra" / "resume-1").exists()


def test_resume_takes_remote_code_only_when_the_command_line_gives_it_again(run_copy, tmp_path):
    tamper_overrides(run_copy, "model.trust_remote_code=true")
    out = run("train.py", f"resume={run_copy}", "trainer.max_epochs=2", cwd=tmp_path)
    assert out.returncode == 2 and "replays model.trust_remote_code=true" in out.stderr, out.stderr[-3000:]
    again = run("train.py", f"resume={run_copy}", "trainer.max_epochs=2", "model.trust_remote_code=true", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]  # the tiny model has no code of its own: it trains on


@pytest.mark.parametrize("script", ["predict.py", "export.py", "serve.py"])
def test_model_folder_scripts_refuse_a_head_that_names_a_callable(script, run_copy, tmp_path):
    marker = tmp_path / "marker"
    tamper_head(run_copy, marker)
    extra = {"predict.py": ["text=hello"], "export.py": ["format=onnx"], "serve.py": ["port=0"]}[script]
    out = run(script, f"run_dir={run_copy}", *extra, cwd=tmp_path)
    assert_refused(out, marker, "classifier.json names head 'pathlib.Path.touch'")


def test_bench_infer_refuses_a_tampered_run_before_any_row(run_copy, tmp_path):
    marker = tmp_path / "marker"
    tamper_head(run_copy, marker)
    command = [sys.executable, str(ROOT / "benchmarks" / "bench_infer.py"), "--run", str(run_copy), "--requests", "0"]
    out = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert not marker.exists()
    assert out.returncode == 2 and "classifier.json names head 'pathlib.Path.touch'" in out.stderr, out.stderr
    assert not (run_copy / "onnx").exists()  # refused before the export it would otherwise start


def test_bench_infer_smallest_mode_runs_every_row_and_the_service_on_a_sound_run(run_copy, tiny_mirror, tmp_path):
    """bench_infer end to end on the tiny run: the export it makes first, every row (one process in --tiny), the
    verdict lines and the service's load test — so `make bench-infer` cannot break unseen."""
    command = [sys.executable, str(ROOT / "benchmarks" / "bench_infer.py"), "--run", str(run_copy), "--tiny"]
    env = os.environ | {"EMO_DATA_DIR": str(tiny_mirror)}
    done = subprocess.run(
        [*command, "--out", str(tmp_path / "bench")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "machine:" in done.stdout and "auto / pipeline at batch 64" in done.stdout
    (saved,) = (tmp_path / "bench").glob("infer_*.json")
    report = json.loads(saved.read_text())
    rows = {r["row"]: r for r in report["rows"]}
    assert {"pipeline", "torch-fp32", "onnx", "auto"} <= set(rows)
    assert all(r["batch1_texts_per_s"] > 0 and r["batch64_texts_per_s"] > 0 for r in rows.values())
    assert report["texts"] == 16 and rows["auto"]["accuracy"] is not None
    service = report["service"]
    assert service["server_errors"] == 0 and service["problems"] == 0, service["problem_examples"]
    assert sum(service["status_counts"].values()) == 24 and "no answer" not in service["status_counts"]


@pytest.mark.parametrize(
    ("node", "problem"),
    [
        ({"_target_": TOUCH}, "data._target_=pathlib.Path.touch imports a callable"),
        ({"_target_": "emo_lightning.data.files.FilesDataModule", "x": {"_target_": TOUCH}}, "data.x._target_="),
        ({"_target_": "${oc.env:EVIL}"}, "data._target_=${oc.env:EVIL}"),
        ({"path": "dair-ai/emotion"}, "names no data._target_"),
    ],
)
def test_run_config_refuses_any_data_target_outside_the_datamodules(node, problem, run_copy, tmp_path):
    file = run_copy / ".hydra" / "config.yaml"
    config = OmegaConf.load(file)
    config.data = node
    OmegaConf.save(config, file)
    with pytest.raises(ConfigError, match=re.escape(problem)):
        run_config(run_copy)


def test_run_config_refuses_remote_code_anywhere(run_copy):
    file = run_copy / ".hydra" / "config.yaml"
    config = OmegaConf.load(file)
    config.model.trust_remote_code = True
    OmegaConf.save(config, file)
    with pytest.raises(ConfigError, match="model.trust_remote_code=True runs Python code"):
        run_config(run_copy)


def test_an_untampered_run_loads_its_data_from_the_registry(trained_run):
    labeled = run_data(run_config(trained_run))
    assert set(labeled.splits) == {"train", "validation", "test"}


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ("data._target_=os.system", "imports a callable"),
        ("+callbacks.x={_target_:os.system,command:ls}", "+callbacks.x={_target_:os.system,command:ls}"),
        ("model.trust_remote_code=true", "runs Python code"),
        ("hydra.searchpath=[file:///tmp/evil]", "a hydra setting"),
        ("data=../../evil", "an option that conf/data/ does not have"),
        ("data=nowhere", "an option that conf/data/ does not have"),
        ("callbacks=[default,evil]", "an option that conf/callbacks/ does not have"),
        ("head=linear,mlp", "a sweep"),
        ("data.batch_size=[", "cannot parse"),
    ],
)
def test_replayed_overrides_outside_our_config_are_refused(override, problem, tmp_path):
    file = tmp_path / "overrides.yaml"
    with pytest.raises(ConfigError, match=re.escape(problem)) as info:
        check_replayable(["data=emotion", override], [], file, CONF)
    assert str(file) in str(info.value)


def test_replayed_overrides_our_config_writes_pass_and_given_again_is_yours(tmp_path):
    ours = ["data=go_emotions", "callbacks=[default,ema]", "+experiment=emotion_minilm", "~callbacks.ema"]
    check_replayable([*ours, "optimizer.lr=1e-3", "model.trust_remote_code=false"], [], tmp_path / "o.yaml", CONF)
    check_replayable(["model.trust_remote_code=true"], ["model.trust_remote_code=true"], tmp_path / "o.yaml", CONF)
