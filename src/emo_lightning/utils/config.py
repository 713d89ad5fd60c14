"""Check a composed config before anything runs: every key of every `_target_` node binds to its target and has the
type its parameter declares, the values in train.py's rules (`utils.rules.TRAIN`) lie in their ranges, and the
devices asked for exist."""

from __future__ import annotations

import difflib
import inspect
import os
import re
import types
import typing
from collections.abc import Iterator
from pathlib import PurePath
from typing import Any

from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig
from omegaconf.errors import OmegaConfBaseException

from emo_lightning.utils.errors import ConfigError, describe, missing_value_message
from emo_lightning.utils.rules import TRAIN, check_values, render
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


def check_run_length(trainer: DictConfig | None) -> None:
    """Raise ConfigError for a run without end: every learning-rate schedule is sized by the run's step count."""
    if not isinstance(trainer, DictConfig) or trainer.get("max_epochs") != -1:
        return
    if trainer.get("max_steps", -1) in (None, -1):
        raise ConfigError(
            "trainer.max_epochs=-1 with no trainer.max_steps never ends, and the learning-rate schedule is sized by "
            "the run's steps: give trainer.max_steps=N (or trainer.max_epochs=N)"
        )


def validate_config(cfg: DictConfig) -> None:
    """Check `cfg` before any data or model loads; raise ConfigError on the first problem.

    Every `_target_` node's keys bind to its target's signature and have the declared types; the values of
    `utils.rules.TRAIN` lie in their ranges; the run has an end; the trainer's accelerator and devices exist on
    this machine.
    """
    nodes = list(iter_target_nodes(cfg))
    for path, node in nodes:
        check_node_binds(path, node)
    for path, node in nodes:
        check_node_types(path, node)
    check_values(cfg, TRAIN, read=read_value)
    check_run_length(cfg.get("trainer"))
    check_devices(cfg.get("trainer"))
