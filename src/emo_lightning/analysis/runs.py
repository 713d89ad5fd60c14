"""A finished training run as the analysis tasks read it: its folder, its saved config, its dataset's splits."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from emo_lightning.utils.console import command_for
from emo_lightning.utils.errors import ConfigError
from emo_lightning.utils.run_folder import METRICS_FILE, MODEL_DIR
from emo_lightning.utils.trust import check_folder_node, check_no_remote_code

RUN_FILES = (METRICS_FILE, MODEL_DIR, ".hydra/config.yaml")


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
            f"ended (resume an unfinished one with `{command_for('train.py')} resume=<run>` first)"
        )
    return path


def run_config(run_dir: Path) -> DictConfig:
    """The config the run trained with (its .hydra/config.yaml, interpolations unresolved), checked to name no
    callable outside our datamodules and no remote code: a run folder never decides what is imported."""
    from emo_lightning.data.registry import DATAMODULE_TARGETS

    file = run_dir / ".hydra" / "config.yaml"
    config = OmegaConf.load(file)
    if not isinstance(config, DictConfig) or not isinstance(config.get("data"), DictConfig):
        raise ConfigError(f"{file} holds no data: section: give a run that train.py wrote (outputs/runs/<time>)")
    if "_target_" not in config.data:
        raise ConfigError(f"{file} names no data._target_: give a run that train.py wrote (outputs/runs/<time>)")
    check_folder_node(config.data, DATAMODULE_TARGETS, file, "data")
    check_no_remote_code(config, file)
    return config


def run_choice(run_dir: Path, group: str) -> str | None:
    """The option the run chose for a config group (`data` → "go_emotions"), from its .hydra/hydra.yaml."""
    saved = run_dir / ".hydra" / "hydra.yaml"
    if not saved.is_file():
        return None
    return OmegaConf.select(OmegaConf.load(saved), f"hydra.runtime.choices.{group}")


def run_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / METRICS_FILE).read_text())


def run_data(run_cfg: DictConfig):
    """The run's dataset, loaded (texts and labels of every split, not tokenized): `LabeledSplits`. The class
    comes from our registry by the checked `data._target_` (see `run_config`), never from an import of it."""
    from emo_lightning.data.registry import DATAMODULES

    classes = {f"{cls.__module__}.{cls.__qualname__}": cls for cls in DATAMODULES.values()}
    arguments = OmegaConf.to_container(run_cfg.data, resolve=True)
    datamodule = classes[arguments.pop("_target_")](**arguments)
    return datamodule.load_splits()
