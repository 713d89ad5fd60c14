"""Every option of every config group composes, and every key binds to its target's signature."""

from __future__ import annotations

import pytest
from omegaconf import open_dict

from emo_lightning.utils.config import iter_target_nodes, validate_config
from emo_lightning.utils.errors import ConfigError
from tests.conftest import CONF, compose_train

GROUPS = [
    "data",
    "model",
    "head",
    "loss",
    "optimizer",
    "scheduler",
    "trainer",
    "logger",
    "callbacks",
    "paths",
    "experiment",
    "debug",
]
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((CONF / g).glob("*.yaml"))]


def test_every_required_group_has_options():
    for group in GROUPS:
        assert list((CONF / group).glob("*.yaml")), f"conf/{group} is empty"
    for debug in ("fdr", "overfit", "limit"):
        assert (CONF / "debug" / f"{debug}.yaml").exists()


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_binds(group, option):
    cfg = compose_train([f"{group}={option}"])
    validate_config(cfg)
    if group in {"data", "model", "head", "loss", "optimizer", "scheduler", "trainer"}:
        assert "_target_" in cfg[group]


def test_defaults_are_emotion_with_minilm():
    cfg = compose_train([])
    assert cfg.data._target_.endswith("EmotionDataModule")
    assert cfg.model.pretrained_model_name_or_path == "sentence-transformers/all-MiniLM-L6-v2"
    assert cfg.trainer.precision == "auto"


def test_unknown_key_is_refused_with_a_suggestion():
    cfg = compose_train([])
    with open_dict(cfg):
        cfg.head.dropuot = 0.2
    with pytest.raises(ConfigError, match=r"head.dropuot is not a parameter .* did you mean head.dropout"):
        validate_config(cfg)


def test_unknown_key_of_a_subclass_is_refused():
    cfg = compose_train(["data=go_emotions"])
    with open_dict(cfg):
        cfg.data.batchsize = 4
    with pytest.raises(ConfigError, match="data.batchsize .* did you mean data.batch_size"):
        validate_config(cfg)


def test_target_nodes_cover_every_group():
    cfg = compose_train(["logger=many"])
    paths = {p for p, _ in iter_target_nodes(cfg)}
    assert {"data", "model", "head", "loss", "optimizer", "scheduler", "trainer"} <= paths
    assert {"logger.csv", "logger.tensorboard", "logger.wandb", "callbacks.model_checkpoint"} <= paths


def test_unknown_option_lists_valid_choices():
    from hydra.errors import MissingConfigException

    with pytest.raises(MissingConfigException) as info:
        compose_train(["model=minilmm"])
    assert "minilm" in str(info.value) and "roberta_base" in str(info.value)
