"""Writes that cannot leave half a result: a failure midway keeps the old file or folder whole and leaves no partial."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from emo_lightning.utils.atomic import (
    _swapped_umask,
    atomic_dir,
    atomic_path,
    atomic_write_text,
    current_umask,
    remove_partials,
)
from tests.conftest import ROOT


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "metrics.json"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_text("half of the new")
        raise RuntimeError("killed midway")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
    atomic_write_text(target, "new")
    assert target.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_a_folder_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(RuntimeError), atomic_dir(target) as partial:
        partial.mkdir()
        (partial / "config.json").write_text("{}")
        raise RuntimeError("killed midway")
    assert not target.exists() and not list(tmp_path.iterdir())
    for version in ("first", "second"):  # the second replaces the first only once it is complete
        with atomic_dir(target) as partial:
            partial.mkdir()
            (partial / "config.json").write_text(version)
            assert (target / "config.json").read_text() == "first" if version == "second" else not target.exists()
    assert (target / "config.json").read_text() == "second" and [p.name for p in tmp_path.iterdir()] == ["model"]


def test_leftovers_of_killed_writes_are_found_and_removed(tmp_path):
    (tmp_path / ".last.ckpt.x1.partial").write_text("torn")
    (tmp_path / ".model.x2.partial").mkdir()
    (tmp_path / "last.ckpt").write_text("whole")
    removed = remove_partials(tmp_path)
    assert [p.name for p in removed] == [".last.ckpt.x1.partial", ".model.x2.partial"]
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def run_script(script: str, *args: str, umask: int, cwd: Path) -> None:
    """`script` in a child process whose umask is `umask` (set by subprocess in the child, not in this process)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "offline"}
    out = subprocess.run(
        [sys.executable, str(ROOT / script), *args], cwd=cwd, env=env, umask=umask, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-3000:]


def modes(folder: Path) -> dict[str, set[str]]:
    """Every folder and file under `folder` (itself included), grouped by their permission bits in octal."""
    found: dict[str, set[str]] = {}
    for path in [folder, *folder.rglob("*")]:
        found.setdefault(oct(stat.S_IMODE(path.lstat().st_mode)), set()).add(str(path.relative_to(folder)))
    return found


@pytest.mark.parametrize(
    "umask, folder_mode, file_mode",
    [
        (0o022, "0o755", "0o644"),
        pytest.param(0o077, "0o700", "0o600", marks=pytest.mark.slow),  # the fast test below checks 077 too
    ],
    ids=["umask022", "umask077"],
)
def test_a_run_and_its_export_have_the_permissions_of_plain_writes(
    tmp_path, tiny_models, tiny_mirror, umask, folder_mode, file_mode
):
    """Checkpoints, metrics, predictions, figures, model/ (safetensors write 0600 temporaries) and onnx/: what
    open() and mkdir() give under the umask, so a teammate can read a run on a shared machine (022) and nobody can
    read a private one (077). Nothing in the run dir is skipped: Hydra's and the CSV logger's files too."""
    run_dir = tmp_path / "run"
    run_script(
        "train.py",
        f"model.pretrained_model_name_or_path={tiny_models['bert']}",
        f"paths.data_dir={tiny_mirror}",
        "trainer.accelerator=cpu",
        "data.batch_size=8",
        "trainer.max_epochs=1",
        "callbacks.progress_bar.refresh_rate=0",
        f"hydra.run.dir={run_dir}",
        umask=umask,
        cwd=tmp_path,
    )
    run_script("export.py", f"run_dir={run_dir}", "format=onnx", "measure_speed=false", umask=umask, cwd=tmp_path)
    folders = {str(p.relative_to(run_dir)) for p in [run_dir, *run_dir.rglob("*")] if p.is_dir()}
    assert {"checkpoints", "model", "model/encoder", "plots", "predictions", "onnx"} <= folders
    files = {str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file()}
    assert {
        "metrics.json",
        "errors.csv",
        "checkpoints/last.ckpt",
        "model/head.safetensors",
        "plots/curves.png",
        "model/encoder/model.safetensors",
        "predictions/val.csv",
        "onnx/model.onnx",
    } <= files
    assert modes(run_dir) == {folder_mode: folders, file_mode: files}


@pytest.mark.parametrize("umask, folder_mode, file_mode", [(0o022, "0o755", "0o644"), (0o077, "0o700", "0o600")])
def test_atomic_writes_follow_the_umask_and_keep_an_existing_files_mode(tmp_path, umask, folder_mode, file_mode):
    """A third-party writer's own 0600 temporary (safetensors) inside atomic_path and atomic_dir gets the plain
    mode too; rewriting an existing file keeps the mode its owner gave it, as open(path, "w") does."""
    root = tmp_path / "out"  # pytest's own folders are 0700
    mask = os.umask(umask)  # this process's: restored below
    try:
        assert current_umask() == _swapped_umask.__wrapped__() == umask  # /proc's reading and the fallback's
        root.mkdir()
        with atomic_path(root / "features.safetensors") as temporary:
            save_file({"x": torch.zeros(2)}, str(temporary))
        with atomic_dir(root / "model") as partial:
            partial.mkdir()
            save_file({"x": torch.zeros(2)}, str(partial / "head.safetensors"))
        (root / "metrics.json").write_text("old")
        (root / "metrics.json").chmod(0o640)
        atomic_write_text(root / "metrics.json", "new")
    finally:
        os.umask(mask)
    assert modes(root) == {
        folder_mode: {".", "model"},
        file_mode: {"features.safetensors", "model/head.safetensors"},
        "0o640": {"metrics.json"},
    }
