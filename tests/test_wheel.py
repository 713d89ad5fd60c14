"""The package as a user installs it: the wheel, with the core only, in a fresh venv, run from an empty folder —
`emo-train` trains the tiny model, `emo-predict` and `emo-evaluate` read the run, and each extra's command says in
one line which extra it needs. Slow (a venv with torch, minutes): `make test-wheel`, which .ci/run runs.

The same missing-extra lines in the full dev venv, with the optional distributions hidden from the import system
(as if not installed), run in the default suite."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

CORE_ONLY = (
    "onnx,onnxscript,onnxruntime,openvino,fastapi,fastapi_offline,uvicorn,starlette,sklearn,umap,optuna,submitit"
)
HIDE = '''
import os, sys

HIDDEN = set(os.environ["EMO_HIDE_IMPORTS"].split(","))


class Hiding:
    """Finds nothing of the hidden distributions, exactly as if they were not installed."""

    def __init__(self, inner):
        self.inner = inner

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            return None
        return self.inner.find_spec(name, path, target)

    def __getattr__(self, attr):
        return getattr(self.inner, attr)


sys.meta_path[:] = [Hiding(finder) for finder in sys.meta_path]
'''


def command_env(extra: dict | None = None) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "offline"}
    env.pop("HYDRA_FULL_ERROR", None)
    return env | (extra or {})


def run(command: list[str], cwd: Path, env: dict, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def tiny_overrides(tiny_models, tiny_mirror) -> list[str]:
    return [
        "debug=fdr",
        f"model.pretrained_model_name_or_path={tiny_models['bert']}",
        f"paths.data_dir={tiny_mirror}",
        "model.freeze_word_embeddings=false",
    ]


def check_the_commands(bin_dir: Path, work: Path, env: dict, tiny_models, tiny_mirror) -> None:
    """Train, predict and evaluate from an empty folder; each extra's command refuses in one line."""
    trained = run([str(bin_dir / "emo-train"), *tiny_overrides(tiny_models, tiny_mirror)], work, env)
    assert trained.returncode == 0, trained.stderr[-3000:]
    (run_dir,) = (work / "outputs" / "runs").iterdir()  # under the current folder
    assert (run_dir / "model" / "classifier.json").is_file() and (run_dir / "metrics.json").is_file()
    predicted = run([str(bin_dir / "emo-predict"), f"run_dir={run_dir}", "text=so happy"], work, env)
    assert predicted.returncode == 0 and predicted.stdout.startswith("so happy\n"), predicted.stderr[-3000:]
    evaluate = [str(bin_dir / "emo-evaluate"), f"run_dir={run_dir}", "data=emotion", f"paths.data_dir={tiny_mirror}"]
    evaluated = run(evaluate, work, env)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert list((work / "outputs" / "evaluate").glob("*/metrics.json"))
    helped = run([str(bin_dir / "emo-train"), "--help"], work, env)
    assert helped.returncode == 0 and "usage: emo-train [group=option ...]" in helped.stdout
    for command, extra in [
        ([str(bin_dir / "emo-serve"), f"run_dir={run_dir}", "port=0"], "serve"),
        ([str(bin_dir / "emo-export"), f"run_dir={run_dir}"], "export"),
        ([str(bin_dir / "emo-analyze"), "task=baseline", f"paths.data_dir={tiny_mirror}"], "analysis"),
        ([str(bin_dir / "emo-train"), "-m", "hparams_search=emotion_optuna", "debug=fdr"], "search"),
    ]:
        refused = run(command, work, env, timeout=300)
        assert refused.returncode == 2, (command, refused.stderr[-3000:])
        last = refused.stderr.strip().splitlines()[-1]
        assert last.startswith("error: ") and last.endswith(
            f'(it comes with the [{extra}] extra): pip install "emo-lightning[{extra}]"'
        ), last
        assert len([line for line in refused.stderr.splitlines() if line.startswith(("error", "Error"))]) == 1


@pytest.mark.slow  # slow: `make test-wheel` runs it, beside the same commands from a real core-only install
def test_each_extra_is_one_line_and_the_core_trains_without_them(tmp_path, tiny_models, tiny_mirror):
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(HIDE)
    env = command_env({"PYTHONPATH": str(hide), "EMO_HIDE_IMPORTS": CORE_ONLY})
    probe = run([sys.executable, "-c", "import fastapi"], tmp_path, env)
    assert "No module named 'fastapi'" in probe.stderr  # hidden, as if not installed
    work = tmp_path / "empty"
    work.mkdir()
    check_the_commands(Path(sys.executable).parent, work, env, tiny_models, tiny_mirror)


@pytest.mark.slow
def test_the_wheel_installs_the_core_in_a_fresh_venv_and_its_commands_run_anywhere(tmp_path, tiny_models, tiny_mirror):
    wheels = tmp_path / "wheels"
    built = run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)],
        tmp_path,
        command_env(),
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = wheels.glob("emo_lightning-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    started = time.perf_counter()
    torch = run([*pip, "torch==2.13.0"], tmp_path, command_env(), timeout=1200)  # first: else a CUDA build
    assert torch.returncode == 0, torch.stderr[-3000:]
    core = run([*pip, "-c", str(ROOT / "constraints.txt"), str(wheel)], tmp_path, command_env(), timeout=1200)
    assert core.returncode == 0, core.stderr[-3000:]
    size = sum(f.stat().st_size for f in venv.rglob("*") if f.is_file() and not f.is_symlink()) / 2**20
    print(f"core install (torch first, then the wheel): {time.perf_counter() - started:.0f} s, venv {size:.0f} MiB")
    listed = run([str(venv / "bin" / "python"), "-m", "pip", "list"], tmp_path, command_env()).stdout.lower()
    assert "fastapi" not in listed and "onnxruntime" not in listed and "optuna" not in listed  # the core only
    work = tmp_path / "empty"
    work.mkdir()
    env = command_env({"PATH": f"{venv / 'bin'}:{os.environ['PATH']}"})
    check_the_commands(venv / "bin", work, env, tiny_models, tiny_mirror)
