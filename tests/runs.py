"""Shared steps of the tests that train: a model with its data ready to fit, a quiet trainer, a refused config."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate
from lightning import LightningDataModule, Trainer
from omegaconf import DictConfig

from emo_lightning.models.classifier import EmotionClassifier
from emo_lightning.train import train
from emo_lightning.training.setup import build_classifier, build_trainer
from emo_lightning.utils.errors import ConfigError, config_error_in


def classifier_and_data(cfg: DictConfig) -> tuple[EmotionClassifier, LightningDataModule]:
    """The config's datamodule, set up for fitting, and the classifier built for its labels."""
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    module, _ = build_classifier(cfg, datamodule)
    return module, datamodule


def quiet_trainer(cfg: DictConfig) -> Trainer:
    """The config's trainer with no logger, checkpoints or progress bar."""
    return build_trainer(cfg, logger=False, enable_checkpointing=False, enable_progress_bar=False)


def refusal(cfg: DictConfig, run_dir: Path) -> str:
    """The message of the ConfigError that `train(cfg)` must raise before it writes any checkpoint."""
    with pytest.raises(Exception) as info:
        train(cfg)
    error = config_error_in(info.value)
    assert isinstance(error, ConfigError), f"expected a ConfigError, got {info.value!r}"
    assert not (run_dir / "checkpoints").exists()
    return str(error)
