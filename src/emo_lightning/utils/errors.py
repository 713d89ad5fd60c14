"""The one error type for bad user input, and `describe`: Hydra's and OmegaConf's errors as one line with the fix."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Hydra and OmegaConf are imported where an error is described, so that prediction stays light
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError


class ConfigError(ValueError):
    """A bad input the user can fix; the message names the problem and the fix in one line."""


def config_error_in(err: BaseException) -> ConfigError | None:
    """The ConfigError behind `err`, if any (Hydra's instantiate wraps what constructors raise)."""
    for exc in chain_of(err):
        if isinstance(exc, ConfigError):
            return exc
    return None


def chain_of(err: BaseException | None) -> Iterator[BaseException]:
    """`err`, then what caused it (`__cause__`, else `__context__`), and so on; each exception once."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def describe(err: BaseException) -> str | None:
    """One line naming the bad input and its fix, for a ConfigError or a known Hydra / OmegaConf error; else None."""
    for exc in chain_of(err):
        if isinstance(exc, ConfigError):
            return str(exc)
        message = describe_hydra(exc) or describe_omegaconf(exc) or describe_missing_extra(exc)
        if message:
            return message
    return None


# The top-level module of each optional dependency → the extra that installs it (pyproject.toml).
EXTRAS = {
    "onnx": "export",
    "onnxscript": "export",
    "onnxruntime": "export",
    "openvino": "export",
    "fastapi": "serve",
    "fastapi_offline": "serve",
    "starlette": "serve",
    "uvicorn": "serve",
    "sklearn": "analysis",
    "umap": "analysis",
    "optuna": "search",
    "submitit": "search",
    "hydra_plugins.hydra_submitit_launcher": "search",
}


def missing_extra_message(module: str) -> str | None:
    """One line for a missing optional dependency, naming the extra that installs it; None for any other module."""
    extra = EXTRAS.get(module) or EXTRAS.get(module.split(".")[0])
    if extra is None:
        return None
    return f'{module} is not installed (it comes with the [{extra}] extra): pip install "emo-lightning[{extra}]"'


def describe_missing_extra(exc: BaseException) -> str | None:
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return missing_extra_message(exc.name)
    return None


def missing_value_message(key: str) -> str:
    """The message for a required value (`???`) that was not given."""
    placeholder = "<path>" if key.rsplit(".", 1)[-1].endswith(("_file", "_dir", "_path")) else "<value>"
    return f"{key} is required: add {key}={placeholder}"


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1)
    return close[0] if close else None


def describe_hydra(exc: BaseException) -> str | None:
    """Hydra's override and composition errors (what the command line asked for)."""
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    if isinstance(exc, OverrideParseException):
        return bad_syntax(exc.override, str(exc).splitlines()[0])
    if isinstance(exc, MissingConfigException) and exc.missing_cfg_file and "/" in exc.missing_cfg_file:
        group, option = exc.missing_cfg_file.rsplit("/", 1)
        return unknown_option(group, option, exc.options or group_options(exc, group))
    if not isinstance(exc, ConfigCompositionException):
        return None
    text = str(exc)
    if isinstance(exc.__cause__, ConfigAttributeError | ConfigKeyError) and text.startswith("Could not override"):
        line = re.search(r"To append to your config use \+(.*)$", text, re.S)
        return unknown_key(exc.__cause__, line.group(1) if line else None, exc)
    if found := re.match(r"Ambiguous value for argument '(.*)'\n", text):
        key, value = found.group(1).split("=", 1)
        return f"{key}={value} is ambiguous: write a list as {key}=[{value}] (or add -m to sweep over the values)"
    if found := re.match(r"Sweep parameters '(.*)' requires --multirun", text):
        return f"{found.group(1)} is a sweep: add -m to run one job per value"
    if found := re.match(
        r"Could not append to config. An item is already at '(.*)'.\nEither remove \+ prefix: '(.*)'", text
    ):
        return f"{found.group(1)} is already in the config: set it without the +, as {found.group(2)}"
    if found := re.match(r"Could not delete from config. '(.*)' does not exist.", text):
        return f"{found.group(1)} is not in the config, so it cannot be deleted: drop ~{found.group(1)}"
    return None


def bad_syntax(override: str, reason: str) -> str:
    key, sep, value = override.partition("=")
    if not sep or not key:
        return f"{override} is not an override ({reason}): write key=value"
    return (
        f"{override} is not a valid override ({reason}): quote a value with special characters, "
        f"e.g. '{key}=\"{value}\"', or fix its brackets"
    )


def unknown_option(group: str, option: str, options: list[str]) -> str:
    listed = ", ".join(options)
    close = did_you_mean(option, options)
    if close:
        return f"{group}={option} is not an option of {group}: did you mean {close}? (options: {listed})"
    return f"{group}={option} is not an option of {group}: use one of {listed}"


def unknown_key(cause: ConfigAttributeError | ConfigKeyError, line: str | None, exc: BaseException) -> str:
    """`a.b.c=1` where `a.b` has no key `c`: the closest key, the target's parameter (`+a.b.c=1`), or the keys."""
    from omegaconf import DictConfig

    full_key, key, node = str(cause.full_key), str(cause.key), cause.parent_node
    value = line.split("=", 1)[1] if line and "=" in line else "…"
    parent = full_key.rpartition(".")[0]
    keys = [str(k) for k in node if k != "hydra"] if isinstance(node, DictConfig) else []
    if not parent:  # a top-level name: a config group or a root key
        groups = [g for g in group_options(exc, "") if g != "hydra"]
        close = did_you_mean(key, keys + groups)
        if close:
            return f"{key} is not a config group or key: did you mean {close}?"
        return f"{key} is not a config group or key: use one of {', '.join(sorted(set(keys + groups)))}"
    params = target_parameters(node)
    problem = f"{full_key} is not a key of {parent}"
    if key in params:
        return f"{problem}: add it with +{full_key}={value} (a parameter of {node._target_})"
    close = did_you_mean(key, [k for k in keys if not k.startswith("_")])
    if close:
        return f"{problem}: did you mean {parent}.{close}?"
    close = did_you_mean(key, params)
    if close:
        return f"{problem}: did you mean +{parent}.{close}={value}?"
    return f"{problem}: valid keys: {', '.join(k for k in keys if not k.startswith('_'))}"


def target_parameters(node) -> list[str]:
    """The parameters of `node`'s `_target_` (empty when it has none or it cannot be imported)."""
    from omegaconf import DictConfig

    if not isinstance(node, DictConfig) or "_target_" not in node:
        return []
    from hydra.utils import get_object

    from emo_lightning.utils.signatures import accepted_parameters

    try:
        return accepted_parameters(get_object(node._target_)) or []
    except Exception:
        return []


def group_options(exc: BaseException, group: str) -> list[str]:
    """Options of a config group ("" for the top-level groups), from the config repository Hydra was composing
    with when it raised `exc` (found in the traceback's frames: Hydra has cleared its global state by now)."""
    from hydra._internal.config_repository import IConfigRepository
    from hydra.core.object_type import ObjectType

    kind = ObjectType.GROUP if group == "" else ObjectType.CONFIG
    tb = exc.__traceback__
    while tb is not None:
        for value in tb.tb_frame.f_locals.values():
            for repo in (value, getattr(value, "__dict__", {}).get("repository")):  # a repository, or a loader's
                if isinstance(repo, IConfigRepository):
                    return list(repo.get_group_options(group, kind))
        tb = tb.tb_next
    return []


def describe_omegaconf(exc: BaseException) -> str | None:
    """OmegaConf's errors on reading a value: a missing `???`, or an interpolation that does not resolve."""
    from omegaconf.errors import (
        GrammarParseError,
        InterpolationKeyError,
        InterpolationResolutionError,
        MissingMandatoryValue,
        UnsupportedInterpolationType,
    )

    if isinstance(exc, MissingMandatoryValue) and exc.full_key:
        return missing_value_message(str(exc.full_key))
    if not isinstance(exc, InterpolationResolutionError | GrammarParseError) or not exc.full_key:
        return None
    setting = f"{exc.full_key}={raw_value(exc)}"
    reason = str(exc.msg if exc.msg is not None else exc).splitlines()[0]
    if isinstance(exc, InterpolationKeyError) and (found := re.match(r"Interpolation key '(.*)' not found", reason)):
        missing = found.group(1)
        close = did_you_mean(missing, dotted_keys(exc.parent_node))
        fix = f"did you mean ${{{close}}}?" if close else "refer to a key that exists, or give a value"
        return f"{setting} refers to {missing}, which is not in the config: {fix}"
    if isinstance(exc, UnsupportedInterpolationType) and (
        found := re.match(r"Unsupported interpolation type (.*)", reason)
    ):
        from omegaconf.basecontainer import BaseContainer

        close = did_you_mean(found.group(1), getattr(BaseContainer, "_resolvers", {}))
        fix = f"did you mean {close}?" if close else "use a registered resolver such as oc.env"
        return f"{setting} uses the unknown resolver {found.group(1)}: {fix}"
    if found := re.search(r"Environment variable '(.*)' not found", reason):
        name = found.group(1)
        return f"{setting} needs the environment variable {name}: set it, or give a default as ${{oc.env:{name},…}}"
    missing = next(
        (e for e in chain_of(exc.__cause__ or exc.__context__) if isinstance(e, MissingMandatoryValue)), None
    )
    if missing is not None and missing.full_key:
        return missing_value_message(str(missing.full_key))
    return f"{setting} cannot be resolved ({reason}): fix the ${{...}} reference"


def raw_value(exc) -> str:
    """The value of `exc.full_key` as written (e.g. `${foo}`), before resolution."""
    try:
        node = exc.parent_node._get_root()
        for part in str(exc.full_key).split("."):
            node = node._get_node(part)
        return str(node._value())
    except Exception:
        return "…"


def dotted_keys(node) -> list[str]:
    """Every dotted key of the config that `node` belongs to, `hydra` excepted."""
    from omegaconf import DictConfig

    if not isinstance(node, DictConfig):
        return []
    root, keys, stack = node._get_root(), [], []
    stack.append(("", root))
    while stack:
        prefix, current = stack.pop()
        for key in current:
            if prefix == "" and key == "hydra":
                continue
            keys.append(f"{prefix}{key}")
            child = current._get_node(key)
            if isinstance(child, DictConfig):
                stack.append((f"{prefix}{key}.", child))
    return keys
