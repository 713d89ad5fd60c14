"""Every option of every config group composes and binds to its target's signature; values are checked for their
annotated types and `VALUE_RULES` ranges; Hydra's and OmegaConf's errors read as one line (`describe`)."""

from __future__ import annotations

import os
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Optional, Union

import pytest
import torch
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict

from emo_lightning.utils.config import (
    accepts,
    iter_target_nodes,
    parameter_annotations,
    type_description,
    validate_config,
)
from emo_lightning.utils.errors import ConfigError, describe
from emo_lightning.utils.rules import TRAIN as VALUE_RULES
from emo_lightning.utils.rules import render, rules_markdown
from tests.conftest import CONF, compose_train

if TYPE_CHECKING:
    from collections.abc import Sequence

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
    "hparams_search",
    "debug",
    "tune",
]
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((CONF / g).glob("*.yaml"))]


def test_every_required_group_has_options():
    for group in GROUPS:
        assert list((CONF / group).glob("*.yaml")), f"conf/{group} is empty"
    for debug in ("fdr", "overfit", "limit"):
        assert (CONF / "debug" / f"{debug}.yaml").exists()


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_binds(group, option):
    required = ["data.train_file=train.csv"] if (group, option) == ("data", "files") else []  # its one `???`
    cfg = compose_train([f"{group}={option}", *required])
    if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="this machine has no CUDA GPU: use trainer=cpu"):
            validate_config(cfg)
        return
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


def refusal(overrides: list[str]) -> str:
    """The message of the ConfigError that validate_config raises for the composed overrides."""
    with pytest.raises(ConfigError) as info:
        validate_config(compose_train(overrides))
    return str(info.value)


def described(overrides: list[str]) -> str | None:
    """describe() of the real exception Hydra raises when composing `overrides`."""
    with pytest.raises(Exception) as info:
        compose_train(overrides)
    return describe(info.value)


# ---- types ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("annotation", "value", "verdict"),
    [
        (int, 3, True),
        (int, 3.0, False),
        (int, True, False),
        (float, 3, True),  # an int is fine for a float
        (float, "abc", False),
        (bool, "maybe", False),
        (Optional[int], None, True),  # noqa: UP045  (Lightning's annotations are written this way)
        (Union[int, float, None], 0.5, True),  # noqa: UP007
        (str | None, 5, False),
        (list[str], OmegaConf.create(["a", "b"]), True),
        (list[str], OmegaConf.create([1]), False),
        (list[str], "a", False),
        (dict, OmegaConf.create({"a": 1}), True),
        (Literal["step", "epoch"], "hour", None),  # not judged
        (float | torch.Tensor, "abc", None),  # a member we cannot judge
        (torch.dtype, "float32", None),
    ],
)
def test_accepts(annotation, value, verdict):
    assert accepts(annotation, value) is verdict


def test_type_descriptions():
    assert type_description(Optional[int]) == "an int or null"  # noqa: UP045
    assert type_description(Union[int, float, None]) == "a number or null"  # noqa: UP007
    assert type_description(list[str] | None) == "a list of strings or null"
    assert type_description(bool) == "true or false"
    assert render(OmegaConf.create(["a", 1, None, True])) == "[a,1,null,true]"


def annotated(count: int, rate: float | None = None, names: Sequence[str] = (), later: Unknown = None):  # noqa: F821
    """String annotations (this module has `from __future__ import annotations`), one that cannot evaluate."""


class Base:
    def __init__(self, batch_size: int = 1, shuffle: bool = True) -> None: ...


class Child(Base):
    def __init__(self, path: str, **kwargs) -> None:
        super().__init__(**kwargs)


def test_parameter_annotations_evaluate_strings_and_follow_kwargs():
    hints = parameter_annotations(annotated)
    assert hints == {"count": int, "rate": float | None}  # the unresolvable ones are left alone
    assert parameter_annotations(Child) == {"path": str, "batch_size": int, "shuffle": bool, "return": type(None)}
    lightning = parameter_annotations(typing.cast(type, __import__("lightning").Trainer))
    assert lightning["max_epochs"] == Optional[int]  # noqa: UP045


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["trainer.max_epochs=abc"], "trainer.max_epochs=abc must be an int or null"),
        (["trainer.max_epochs=2.5"], "trainer.max_epochs=2.5 must be an int or null"),
        (["data.batch_size=8.5"], "data.batch_size=8.5 must be an int"),
        (["head.dropout=abc"], "head.dropout=abc must be a number"),
        (["data.length_grouped=maybe"], "data.length_grouped=maybe must be true or false"),
        (["model.pretrained=1"], "model.pretrained=1 must be true or false"),
        (["seed=abc"], "seed=abc must be an int"),  # data.seed=${seed}: named by the key the user sets
        (["threshold=high"], "threshold=high must be a number"),  # thresholds.default=${threshold}
        (
            ["data=files", "data.train_file=t.csv", "data.label_columns=anger"],
            "data.label_columns=anger must be a list of strings or null, e.g. data.label_columns=[anger]",
        ),
        (["data=files"], "data.train_file is required: add data.train_file=<path>"),
        (
            ["trainer.max_epochs=${sed}"],
            "trainer.max_epochs=${sed} refers to sed, which is not in the config: did you mean ${seed}?",
        ),
        (
            ["trainer.max_epochs=${nothing_like_it}"],
            "trainer.max_epochs=${nothing_like_it} refers to nothing_like_it, which is not in the config: "
            "refer to a key that exists, or give a value",
        ),
    ],
)
def test_values_have_the_types_their_targets_declare(overrides, message):
    assert refusal(overrides) == message


@pytest.mark.parametrize(
    "overrides",
    [
        ["head.dropout=0", "optimizer.lr=1"],  # ints for floats
        ["trainer.limit_train_batches=5", "trainer.limit_val_batches=0.5"],
        ["trainer.precision=bf16-mixed", "trainer.deterministic=warn"],  # Literal annotations: left to Lightning
        ["callbacks.early_stopping.monitor=null", "trainer.max_epochs=null"],  # null: filled in or the default
        ["trainer.max_epochs=${trainer.log_every_n_steps}"],  # interpolations are resolved first
        ["data=files", "data.train_file=t.csv", "data.label_columns=[anger,joy]"],
    ],
)
def test_values_of_the_right_type_pass(overrides):
    validate_config(compose_train(overrides))


# ---- value ranges ---------------------------------------------------------------------------------------------

NEEDS = {  # the options that bring a rule's key into the config
    "data.validation_fraction": ["data=files", "data.train_file=t.csv"],
    "head.inner_dim": ["head=mlp"],
    "loss.gamma": ["loss=focal"],
    "loss.gamma_neg": ["loss=asl"],
    "loss.gamma_pos": ["loss=asl"],
    "loss.clip": ["loss=asl"],
    "loss.label_smoothing": ["loss=ce"],
    "loss.max_pos_weight": ["loss=bce"],
    "param_groups.layer_decay": ["param_groups=layer_decay"],
    "callbacks.ema.decay": ["callbacks=[default,ema]"],
    "tune.min_lr": ["tune=lr_find"],
    "tune.max_lr": ["tune=lr_find"],
    "tune.num_training": ["tune=lr_find"],
    "tune.early_stop_threshold": ["tune=lr_find"],
}
ADDED_BY_USERS = {"data.test_fraction", "trainer.limit_predict_batches", "trainer.num_nodes"}  # not in conf/


def outside(rule):
    """A value just outside `rule`'s range."""
    if rule.above is not None:
        return rule.above
    if rule.at_least is not None:
        return rule.at_least - 1
    return rule.below if rule.below is not None else rule.at_most + 1


@pytest.mark.parametrize("key", sorted(set(VALUE_RULES) - ADDED_BY_USERS))
def test_each_range_rule_refuses_a_value_outside_and_allows_its_example(key):
    rule = VALUE_RULES[key]
    cfg = compose_train(NEEDS.get(key, []))
    assert OmegaConf.select(cfg, key, default="absent") != "absent", f"{key} is in no config: fix the rule's key"
    example = OverridesParser.create().parse_override(f"{key}={rule.example}").value()  # as the CLI reads it
    assert rule.allows(example), f"{key}: the example {rule.example} breaks its own rule"
    value = outside(rule)
    OmegaConf.update(cfg, key, value, force_add=True)
    with pytest.raises(ConfigError) as info:
        validate_config(cfg)
    assert str(info.value) == f"{key}={render(value)} must be {rule.text(value)}: e.g. {key}={rule.example}"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optimizer.lr=-0.0001"], "optimizer.lr=-0.0001 must be > 0 and ≤ 1: e.g. optimizer.lr=1e-4"),
        (["optimizer.lr=abc"], "optimizer.lr=abc must be a number > 0 and ≤ 1: e.g. optimizer.lr=1e-4"),
        (
            ["trainer.max_epochs=0"],
            "trainer.max_epochs=0 must be an int ≥ 1, or -1 / null for no limit: e.g. trainer.max_epochs=3",
        ),  # noqa: E501
        (
            ["trainer.max_steps=-2"],
            "trainer.max_steps=-2 must be an int ≥ 1, or -1 for no limit: e.g. trainer.max_steps=1000",
        ),  # noqa: E501
        (["+trainer.num_nodes=0"], "trainer.num_nodes=0 must be an int ≥ 1: e.g. trainer.num_nodes=1"),
        (["thresholds=none", "threshold=0"], "threshold=0 must be > 0 and < 1: e.g. threshold=0.5"),
        (["threshold=nan"], "threshold=nan must be > 0 and < 1: e.g. threshold=0.5"),  # NaN passed every bound
    ],
)
def test_values_outside_their_range_are_refused(overrides, message):
    assert refusal(overrides) == message


@pytest.mark.parametrize(
    "overrides",
    [
        ["trainer.max_epochs=-1", "trainer.max_steps=10", "trainer.gradient_clip_val=null"],
        ["trainer.val_check_interval=00:00:30:00"],  # a time: left to Lightning
        ["thresholds.floor=0.95", "param_groups=layer_decay", "param_groups.layer_decay=1"],
        ["seed=0", "scheduler.warmup_ratio=0", "head.dropout=0", "data.num_workers=0"],
        ["debug=overfit"],  # scheduler: null, and no param_groups: their rules are skipped
    ],
)
def test_values_at_the_edges_of_their_range_pass(overrides):
    validate_config(compose_train(overrides))


def test_rules_render_as_a_markdown_table():
    table = rules_markdown()
    lines = table.splitlines()
    assert lines[0] == "| setting | allowed values | example |" and len(lines) == len(VALUE_RULES) + 2
    assert "| `optimizer.lr` | a number > 0 and ≤ 1 | `optimizer.lr=1e-4` |" in lines
    assert "| `trainer.max_epochs` | an int ≥ 1, or -1 / null for no limit | `trainer.max_epochs=3` |" in lines
    errors_page = (Path(__file__).parents[1] / "docs" / "ERRORS.md").read_text()
    assert table in errors_page, "docs/ERRORS.md's value-range table is not the rules': paste rules_markdown() there"


# ---- devices --------------------------------------------------------------------------------------------------


def test_more_cpu_devices_than_cores_are_refused():
    cores = os.cpu_count()
    units = "core" if cores == 1 else "cores"
    assert refusal(["trainer.accelerator=cpu", f"trainer.devices={cores + 1}"]) == (
        f"trainer.devices={cores + 1} but this machine has {cores} CPU {units}: use trainer.devices={cores} or fewer"
    )
    assert (
        refusal(["trainer=cpu", "trainer.devices=0"]) == "trainer.devices=0 must be ≥ 1 or auto: e.g. trainer.devices=1"
    )
    validate_config(compose_train(["trainer=cpu", f"trainer.devices={cores}"]))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_gpu_accelerator_without_a_gpu_is_refused():
    message = "trainer.accelerator=gpu but this machine has no CUDA GPU: use trainer=cpu (or trainer.accelerator=auto)"
    assert refusal(["trainer=gpu"]) == message
    assert refusal(["trainer=ddp"]) == message
    assert refusal(["trainer.accelerator=cuda"]).startswith("trainer.accelerator=cuda but this machine has no CUDA GPU")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_more_gpus_than_the_machine_has_are_refused():
    gpus = torch.cuda.device_count()
    message = refusal(["trainer=gpu", f"trainer.devices={gpus + 1}"])
    assert message.startswith(f"trainer.devices={gpus + 1} but this machine has {gpus} CUDA GPU")
    validate_config(compose_train(["trainer=gpu", f"trainer.devices={gpus}"]))


# ---- describe: Hydra's and OmegaConf's own exceptions ----------------------------------------------------------

MODELS = "bert_base, distilbert, minilm, roberta_base, squeezebert"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["trainer.max_epoch=1"], "trainer.max_epoch is not a key of trainer: did you mean trainer.max_epochs?"),
        (
            ["trainer.num_nodes=2"],
            "trainer.num_nodes is not a key of trainer: add it with +trainer.num_nodes=2 "
            "(a parameter of lightning.Trainer)",
        ),
        (["trainer.num_node=2"], "trainer.num_node is not a key of trainer: did you mean +trainer.num_nodes=2?"),
        (["head.xyz=2"], "head.xyz is not a key of head: valid keys: pooling, dropout"),
        (["paths.data_dri=x"], "paths.data_dri is not a key of paths: did you mean paths.data_dir?"),
        (["modle=minilm"], "modle is not a config group or key: did you mean model?"),
        (["debgu=fdr"], "debgu is not a config group or key: did you mean debug?"),  # a group that defaults to null
        (["trainr.max_epochs=1"], "trainr is not a config group or key: did you mean trainer?"),
        (["model=minlm"], f"model=minlm is not an option of model: did you mean minilm? (options: {MODELS})"),
        (["model=xlnet"], f"model=xlnet is not an option of model: use one of {MODELS}"),
        (
            ["experiment=nope"],
            "experiment=nope is not an option of experiment: use one of "
            + ", ".join(sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))),
        ),
        (
            ["trainer.max_epochs=[1"],
            "trainer.max_epochs=[1 is not a valid override (no viable alternative at input '[1'): quote a value with "
            "special characters, e.g. 'trainer.max_epochs=\"[1\"', or fix its brackets",
        ),
        (
            ["data.label_columns=anger,joy"],
            "data.label_columns=anger,joy is ambiguous: write a list as data.label_columns=[anger,joy] "
            "(or add -m to sweep over the values)",
        ),
        (["seed=1,2"], "seed=1,2 is ambiguous: write a list as seed=[1,2] (or add -m to sweep over the values)"),
        (["+seed=1"], "seed is already in the config: set it without the +, as seed=1"),
        (["~trainer.nope"], "trainer.nope is not in the config, so it cannot be deleted: drop ~trainer.nope"),
    ],
)
def test_describe_hydra_composition_errors(overrides, message):
    assert described(overrides) == message


def test_describe_omegaconf_errors_on_reading_values():
    overrides = ["trainer.max_epochs=${oc.envv:HOME}", "head.dropout=${head.dropuot}", "model.model_dir=${oc.env:NO_X}"]
    cfg = compose_train(["data=files", *overrides])
    for key, message in [
        (
            "model.model_dir",
            "model.model_dir=${oc.env:NO_X} needs the environment variable NO_X: set it, or give a default as "
            "${oc.env:NO_X,…}",
        ),
        ("data.train_file", "data.train_file is required: add data.train_file=<path>"),
        (
            "trainer.max_epochs",
            "trainer.max_epochs=${oc.envv:HOME} uses the unknown resolver oc.envv: did you mean oc.env?",
        ),
        (
            "head.dropout",
            "head.dropout=${head.dropuot} refers to head.dropuot, which is not in the config: "
            "did you mean ${head.dropout}?",
        ),
    ]:
        with pytest.raises(Exception) as info:
            OmegaConf.select(cfg, key, throw_on_missing=True)
        assert describe(info.value) == message


def test_describe_finds_a_config_error_inside_instantiate_and_knows_nothing_else():
    cfg = compose_train(["thresholds.floor=0.0"])
    with pytest.raises(InstantiationException) as info:
        instantiate(cfg.thresholds)
    assert describe(info.value) == "thresholds.floor=0.0 must lie in (0, 1): e.g. 0.05"
    assert describe(RuntimeError("CUDA out of memory")) is None
    assert describe(KeyError("x")) is None
