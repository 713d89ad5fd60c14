"""Check a composed config before anything runs: every key of every `_target_` node binds to its target and has the
type its parameter declares, the values in `VALUE_RULES` lie in their ranges, and the devices asked for exist."""

from __future__ import annotations

import difflib
import inspect
import os
import re
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig
from omegaconf.errors import OmegaConfBaseException

from emo_lightning.utils.errors import ConfigError, describe, missing_value_message
from emo_lightning.utils.signatures import accepted_parameters, parameter_annotations

HYDRA_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}
REFERENCE = re.compile(r"^\$\{([A-Za-z_][\w.]*)\}$")  # `${seed}`: the value is that of another key


def iter_target_nodes(node, path: str = "") -> Iterator[tuple[str, DictConfig]]:
    """Yield (dotted path, node) for every node with a `_target_`, depth first."""
    if isinstance(node, DictConfig):
        if "_target_" in node:
            yield path, node
        for key in node:
            if key == "hydra":
                continue
            child = node._get_node(key)
            if isinstance(child, DictConfig | ListConfig):
                yield from iter_target_nodes(child, f"{path}.{key}" if path else str(key))
    elif isinstance(node, ListConfig):
        for i, child in enumerate(node):
            yield from iter_target_nodes(child, f"{path}[{i}]")


def check_node_binds(path: str, node: DictConfig) -> None:
    """Raise ConfigError when a key of `node` is not a parameter of its `_target_`."""
    try:
        target = get_object(node._target_)
    except Exception as err:
        raise ConfigError(f"{path}._target_={node._target_} cannot be imported ({err}): fix the class path") from err
    params = accepted_parameters(target)
    if params is None:
        return
    for key in node:
        if key in HYDRA_KEYS or key in params:
            continue
        close = difflib.get_close_matches(str(key), list(params), n=1)
        hint = f"did you mean {path}.{close[0]}?" if close else f"valid keys: {', '.join(params)}"
        raise ConfigError(f"{path}.{key} is not a parameter of {node._target_}: {hint}")


# ---- types ----------------------------------------------------------------------------------------------------

SIMPLE_NAMES = {int: "an int", float: "a number", bool: "true or false", str: "a string", type(None): "null"}
PLURALS = {int: "ints", float: "numbers", bool: "booleans", str: "strings"}


def accepts(annotation, value) -> bool | None:
    """Whether `value` (as composed) fits `annotation`; None where the annotation is not one we judge."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union or origin is types.UnionType:
        verdicts = [accepts(a, value) for a in args]
        if True in verdicts:
            return True
        return None if None in verdicts else False
    if isinstance(value, DictConfig) and "_target_" in value:
        return None  # built by instantiate
    if annotation in (int, float):
        return (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and (annotation is float or type(value) is int)
        )
    if annotation in (bool, str, type(None)):
        return isinstance(value, annotation)
    if isinstance(annotation, type) and issubclass(annotation, PurePath):
        return isinstance(value, str)
    if annotation is list or origin is list:
        if not isinstance(value, ListConfig | list):
            return False
        verdicts = [accepts(args[0], item) for item in value] if args else []
        return False not in verdicts
    if annotation is dict or origin is dict:
        return isinstance(value, DictConfig | dict)
    return None


def type_description(annotation) -> str:
    """How a message names the values `annotation` takes: "an int or null", "a list of strings"."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = typing.get_args(annotation)
        if int in members and float in members:
            members = tuple(m for m in members if m is not int)
        names = [type_description(m) for m in members]
        names = [n for n in names if n and n != "null"] + (["null"] if type(None) in members else [])
        return " or ".join(dict.fromkeys(names))
    if annotation in SIMPLE_NAMES:
        return SIMPLE_NAMES[annotation]
    if isinstance(annotation, type) and issubclass(annotation, PurePath):
        return "a path"
    if annotation is list or typing.get_origin(annotation) is list:
        args = typing.get_args(annotation)
        return f"a list of {PLURALS[args[0]]}" if args and args[0] in PLURALS else "a list"
    if annotation is dict or typing.get_origin(annotation) is dict:
        return "a mapping"
    return ""


def render(value) -> str:
    """`value` as one writes it on the command line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, ListConfig | list):
        return "[" + ",".join(render(v) for v in value) + "]"
    if isinstance(value, DictConfig | dict):
        return "{" + ",".join(f"{k}:{render(v)}" for k, v in value.items()) + "}"
    return str(value)


def read_value(node: DictConfig, key: str, path: str) -> tuple[str, Any]:
    """(the key a message should name, the resolved value) of `node[key]`, whose dotted path is `path`.

    A value that is a plain `${other}` reference is named by `other`, the key the user sets.
    """
    child = node._get_node(key)
    raw = child._value()
    if child._is_missing():
        raise ConfigError(missing_value_message(path))
    try:
        value = node[key]
    except OmegaConfBaseException as err:
        message = describe(err)
        if message is None:
            raise
        raise ConfigError(message) from err
    reference = REFERENCE.match(raw) if isinstance(raw, str) else None
    return (reference.group(1) if reference else path), value


def check_node_types(path: str, node: DictConfig) -> None:
    """Raise ConfigError when a value of `node` does not have the type its target's parameter declares (null is
    always let through)."""
    annotations = parameter_annotations(get_object(node._target_))
    for key in node:
        if key in HYDRA_KEYS:
            continue
        name, value = read_value(node, key, f"{path}.{key}")
        if value is None:  # null: the target's default, or filled in at run time (a callback's monitor)
            continue
        annotation = annotations.get(key, inspect.Parameter.empty)
        if accepts(annotation, value) is False and (wanted := type_description(annotation)):
            example = (
                f", e.g. {name}=[{render(value)}]"
                if wanted.startswith("a list") and not isinstance(value, ListConfig)
                else ""
            )
            raise ConfigError(f"{name}={render(value)} must be {wanted}{example}")


# ---- value ranges ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """The values one setting takes: a number within bounds, or one of `others` (meaning `others_mean`)."""

    example: str
    above: float | None = None  # value > above
    at_least: float | None = None  # value ≥ at_least
    below: float | None = None  # value < below
    at_most: float | None = None  # value ≤ at_most
    integer: bool = False
    others: tuple = ()
    others_mean: str = ""
    numbers_only: bool = True  # False: values that are not numbers are left to the target (e.g. a time "00:30:00")

    def allows(self, value) -> bool:
        if any(value is other or (type(value) is type(other) and value == other) for other in self.others):
            return True
        if isinstance(value, bool) or not isinstance(value, int | float):
            return not self.numbers_only
        if (self.integer and not isinstance(value, int)) or value != value:  # NaN lies in no range
            return False
        return not (
            (self.above is not None and value <= self.above)
            or (self.at_least is not None and value < self.at_least)
            or (self.below is not None and value >= self.below)
            or (self.at_most is not None and value > self.at_most)
        )

    def bounds(self) -> str:
        low = f"> {number(self.above)}" if self.above is not None else ""
        low = f"≥ {number(self.at_least)}" if self.at_least is not None else low
        high = f"< {number(self.below)}" if self.below is not None else ""
        high = f"≤ {number(self.at_most)}" if self.at_most is not None else high
        text = " and ".join(part for part in (low, high) if part)
        if self.others:
            text += f", or {' / '.join(render(v) for v in self.others)} for {self.others_mean}"
        return text

    def text(self, value=None) -> str:
        """What the value must be, e.g. "> 0 and ≤ 1", "an int ≥ 1, or -1 / null for no limit"."""
        if self.integer:
            return f"an int {self.bounds()}"
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        return self.bounds() if is_number else f"a number {self.bounds()}"


def number(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


def limit(example: str) -> Rule:
    return Rule(example, above=0, others=(None,), others_mean="all batches")


# Dotted key → the values it takes. Keys absent from a config (a group not chosen) are skipped.
VALUE_RULES: dict[str, Rule] = {
    "seed": Rule("42", at_least=0, at_most=2**32 - 1, integer=True),
    "threshold": Rule("0.5", above=0, below=1),
    "data.batch_size": Rule("32", at_least=1, integer=True),
    "data.eval_batch_size": Rule("128", at_least=1, integer=True),
    "data.max_length": Rule("128", at_least=2, integer=True),
    "data.num_workers": Rule("2", at_least=0, integer=True, others=(None,), others_mean="automatic"),
    "data.validation_fraction": Rule("0.1", above=0, below=1),
    "data.test_fraction": Rule("0.1", at_least=0, below=1),
    "head.dropout": Rule("0.1", at_least=0, below=1),
    "head.inner_dim": Rule("256", at_least=1, integer=True, others=(None,), others_mean="the hidden size"),
    "loss.gamma": Rule("2", at_least=0),
    "loss.gamma_neg": Rule("4", at_least=0),
    "loss.gamma_pos": Rule("1", at_least=0),
    "loss.clip": Rule("0.05", at_least=0, below=1),
    "loss.label_smoothing": Rule("0.1", at_least=0, below=1),
    "loss.max_pos_weight": Rule("30", above=0),
    "optimizer.lr": Rule("1e-4", above=0, at_most=1),
    "optimizer.weight_decay": Rule("0.01", at_least=0),
    "scheduler.warmup_ratio": Rule("0.1", at_least=0, below=1),
    "param_groups.layer_decay": Rule("0.9", above=0, at_most=1),
    "thresholds.floor": Rule("0.05", above=0, at_most=0.95),
    "thresholds.min_positives": Rule("5", at_least=0, integer=True),
    "thresholds.default": Rule("0.5", above=0, below=1),
    "callbacks.early_stopping.patience": Rule("3", at_least=0, integer=True),
    "callbacks.ema.decay": Rule("0.998", above=0, below=1),
    "callbacks.progress_bar.refresh_rate": Rule("10", at_least=0, integer=True),
    "trainer.max_epochs": Rule("3", at_least=1, integer=True, others=(-1, None), others_mean="no limit"),
    "trainer.max_steps": Rule("1000", at_least=1, integer=True, others=(-1,), others_mean="no limit"),
    "trainer.accumulate_grad_batches": Rule("2", at_least=1, integer=True),
    "trainer.gradient_clip_val": Rule("1.0", at_least=0, others=(None,), others_mean="no clipping"),
    "trainer.val_check_interval": Rule(
        "0.5", above=0, others=(None,), others_mean="once per epoch", numbers_only=False
    ),
    "trainer.limit_train_batches": limit("0.25"),
    "trainer.limit_val_batches": limit("0.25"),
    "trainer.limit_test_batches": limit("0.25"),
    "trainer.limit_predict_batches": limit("0.25"),
    "trainer.overfit_batches": Rule("2", at_least=0),
    "trainer.log_every_n_steps": Rule("50", at_least=1, integer=True),
    "trainer.num_nodes": Rule("1", at_least=1, integer=True),
}


def check_values(cfg: DictConfig, rules: dict[str, Rule] = VALUE_RULES) -> None:
    """Raise ConfigError for the first value of `cfg` outside its rule; keys `cfg` lacks are skipped."""
    for key, rule in rules.items():
        parent_key, _, leaf = key.rpartition(".")
        parent = cfg
        for part in parent_key.split(".") if parent_key else []:
            parent = parent._get_node(part) if isinstance(parent, DictConfig) and part in parent else None
        if not isinstance(parent, DictConfig) or leaf not in parent:
            continue
        name, value = read_value(parent, leaf, key)
        if not rule.allows(value):
            raise ConfigError(f"{name}={render(value)} must be {rule.text(value)}: e.g. {name}={rule.example}")


def rules_markdown(rules: dict[str, Rule] = VALUE_RULES) -> str:
    """`VALUE_RULES` as a Markdown table (setting, allowed values, example) for the docs."""
    rows = ["| setting | allowed values | example |", "|---|---|---|"]
    rows += [f"| `{key}` | {rule.text()} | `{key}={rule.example}` |" for key, rule in rules.items()]
    return "\n".join(rows) + "\n"


# ---- devices --------------------------------------------------------------------------------------------------


def check_devices(trainer: DictConfig | None) -> None:
    """Raise ConfigError when `trainer` asks for a GPU this machine lacks, or for more devices than it has."""
    if not isinstance(trainer, DictConfig):
        return
    accelerator = str(trainer.get("accelerator", "auto")).lower()
    devices = trainer.get("devices", "auto")
    if accelerator in ("gpu", "cuda"):
        import torch

        available, unit = torch.cuda.device_count(), "CUDA GPU"
        if available == 0:
            raise ConfigError(
                f"trainer.accelerator={accelerator} but this machine has no CUDA GPU: "
                "use trainer=cpu (or trainer.accelerator=auto)"
            )
    elif accelerator == "cpu":
        available, unit = os.cpu_count() or 1, "CPU core"
    else:
        return
    count = int(devices) if isinstance(devices, int | str) and str(devices).lstrip("-").isdigit() else None
    lowest = -1 if unit == "CUDA GPU" else 1
    if count is not None and (count == 0 or count < lowest):
        allowed = "≥ 1, -1 (all of them) or auto" if lowest == -1 else "≥ 1 or auto"
        raise ConfigError(f"trainer.devices={devices} must be {allowed}: e.g. trainer.devices=1")
    if count is not None and count > available:
        units = unit if available == 1 else f"{unit}s"
        raise ConfigError(
            f"trainer.devices={devices} but this machine has {available} {units}: use trainer.devices={available} "
            "or fewer"
        )


def validate_config(cfg: DictConfig) -> None:
    """Check `cfg` before any data or model loads; raise ConfigError on the first problem.

    Every `_target_` node's keys bind to its target's signature and have the declared types; the values of
    `VALUE_RULES` lie in their ranges; the trainer's accelerator and devices exist on this machine.
    """
    nodes = list(iter_target_nodes(cfg))
    for path, node in nodes:
        check_node_binds(path, node)
    for path, node in nodes:
        check_node_types(path, node)
    check_values(cfg)
    check_devices(cfg.get("trainer"))
