"""Check a composed config before anything runs: every key of every `_target_` node binds to its target."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterator

from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig

from emo_lightning.utils.errors import ConfigError

HYDRA_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}


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


def accepted_parameters(target) -> list[str] | None:
    """Keyword names `target` accepts; None when it takes any (`**kwargs` that go nowhere we can see).

    A class whose `__init__` forwards `**kwargs` to its base gets the base's parameters too.
    """
    owners = [c for c in target.__mro__ if "__init__" in vars(c)] if inspect.isclass(target) else [target]
    names: list[str] = []
    for owner in owners:
        params = inspect.signature(owner.__init__ if inspect.isclass(owner) else owner).parameters
        names += [n for n, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and n != "self"]
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return names
    return None


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


def validate_config(cfg: DictConfig) -> None:
    """Bind every `_target_` node of `cfg` to its target's signature; raise on the first mismatch."""
    for path, node in iter_target_nodes(cfg):
        check_node_binds(path, node)
