"""A finished training run as the analysis tasks read it: its folder, its saved config, its dataset's splits."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from emo_lightning.utils.errors import ConfigError

RUN_FILES = ("metrics.json", "model", ".hydra/config.yaml")


def finished_run(run_dir: str | Path | None) -> Path:
    """`run_dir` as a Path, checked to hold a finished run (metrics.json, model/, .hydra/config.yaml)."""
    if run_dir is None:
        raise ConfigError("this task needs run_dir=<a finished training run> (a folder under outputs/runs/)")
    path = Path(str(run_dir)).expanduser()
    if not path.is_dir():
        raise ConfigError(f"run_dir={run_dir} does not exist: give a finished training run (outputs/runs/…)")
    missing = [name for name in RUN_FILES if not (path / name).exists()]
    if missing:
        raise ConfigError(
            f"run_dir={run_dir} is not a finished training run (no {', '.join(missing)}): give a run whose training "
            "ended (resume an unfinished one with `python train.py resume=<run>` first)"
        )
    return path


def run_config(run_dir: Path) -> DictConfig:
    """The config the run trained with (its .hydra/config.yaml, interpolations unresolved)."""
    return OmegaConf.load(run_dir / ".hydra" / "config.yaml")


def run_choice(run_dir: Path, group: str) -> str | None:
    """The option the run chose for a config group (`data` → "go_emotions"), from its .hydra/hydra.yaml."""
    saved = run_dir / ".hydra" / "hydra.yaml"
    if not saved.is_file():
        return None
    return OmegaConf.select(OmegaConf.load(saved), f"hydra.runtime.choices.{group}")


def run_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def run_data(run_cfg: DictConfig):
    """The run's dataset, loaded (texts and labels of every split, not tokenized): `LabeledSplits`."""
    import hydra

    datamodule = hydra.utils.instantiate(run_cfg.data)
    return datamodule.load_splits()
