"""What a folder's files may name: nothing a run folder says is imported, unless our own registry holds it.

A run folder can come from a teammate or a download. Its `.hydra/config.yaml` and `.hydra/overrides.yaml` could
name any importable callable as a `_target_` (`pathlib.Path.touch`, `os.system`) or switch `trust_remote_code` on.
The tools read such a node only after `check_folder_node`, which refuses in one line, naming the file and the key,
every `_target_` outside the registry the caller gives and every `trust_remote_code` that is not false.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from emo_lightning.utils.errors import ConfigError

TARGET = "_target_"
REMOTE_CODE = "trust_remote_code"


def walk(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every leaf and every key below `node` (a dict, list or OmegaConf container),
    interpolations left unresolved."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(node, DictConfig | ListConfig):
        node = OmegaConf.to_container(node, resolve=False)
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path, value
            yield from walk(value, path)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{prefix}[{index}]")


def runs_code(key: str, value: Any, allowed_targets: set[str]) -> str | None:
    """Why `key: value` would run code that is not ours (None when it would not)."""
    name = key.rsplit(".", 1)[-1]
    if name == TARGET and value not in allowed_targets:
        return f"{key}={value} imports a callable that is not one of emo-lightning's"
    if name == REMOTE_CODE and value is not False and value not in ("false", "False", None):
        return f"{key}={value} runs Python code shipped with a checkpoint"
    return None


def check_folder_node(node: Any, allowed_targets: set[str], file: str | Path, key: str) -> None:
    """Refuse, in one line naming `file` and the key, a node (the config at `key` of `file`) that would import a
    callable outside `allowed_targets` or run remote code."""
    for path, value in walk(node, key):
        problem = runs_code(path, value, allowed_targets)
        if problem:
            raise folder_error(file, problem, f"{path} there (it may name {', '.join(sorted(allowed_targets))})")


def check_no_remote_code(node: Any, file: str | Path) -> None:
    """Refuse, in one line naming `file` and the key, a `trust_remote_code` anywhere in `node` that is not false."""
    for path, value in walk(node):
        if path.rsplit(".", 1)[-1] == REMOTE_CODE and runs_code(path, value, set()):
            raise folder_error(file, runs_code(path, value, set()), f"{path} there")


def folder_error(file: str | Path, problem: str, fix: str) -> ConfigError:
    return ConfigError(
        f"{file}: {problem}, and a folder's files never decide what runs: use a folder that emo-lightning wrote, "
        f"or fix {fix}"
    )
