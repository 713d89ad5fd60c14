"""Resolve Hub ids against local mirrors, and fall back to offline mode fast when the Hub is unreachable."""

from __future__ import annotations

import functools
import logging
import os
import socket
import sys
from pathlib import Path

log = logging.getLogger(__name__)

HUB_HOST = "huggingface.co"


def resolve_hub_path(name_or_path: str, mirror_dir: str | None) -> str:
    """Return a local folder for `name_or_path` if there is one, else the Hub id unchanged.

    A local path wins; then `<mirror_dir>/<hub id>`; otherwise the id goes to the Hub as given.
    """
    local = Path(name_or_path).expanduser()
    if local.is_dir():
        return str(local)
    if mirror_dir:
        mirrored = Path(mirror_dir).expanduser() / name_or_path
        if mirrored.is_dir():
            log.info("%s → %s (local mirror)", name_or_path, mirrored)
            return str(mirrored)
    go_offline_if_hub_unreachable()
    return name_or_path


def hub_is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").upper() in {"1", "ON", "YES", "TRUE"}


@functools.cache
def go_offline_if_hub_unreachable(timeout: float = 2.0) -> bool:
    """Switch huggingface_hub, transformers and datasets to offline mode when the Hub can't be reached.

    Without this, every `from_pretrained` / `load_dataset` on an air-gapped machine waits for network
    timeouts. Checked once per process; returns True when offline.
    """
    if hub_is_offline():
        return True
    try:
        socket.create_connection((HUB_HOST, 443), timeout=timeout).close()
        return False
    except OSError as err:
        log.warning("Hugging Face Hub unreachable (%s): working offline", err)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    # Libraries read these flags at import time; patch the ones already imported.
    if "huggingface_hub" in sys.modules:
        sys.modules["huggingface_hub"].constants.HF_HUB_OFFLINE = True
    if "datasets" in sys.modules:
        sys.modules["datasets"].config.HF_HUB_OFFLINE = True
    return True


def not_found_hint(name: str, mirror_dir: str | None, key: str, env: str) -> str:
    """The fix to print when `name` is neither a local folder, in the mirror, nor reachable on the Hub."""
    where = f"{mirror_dir}/{name}" if mirror_dir else f"a mirror folder holding {name}/"
    state = "the Hub is offline" if hub_is_offline() else "the Hub did not have it"
    return f"'{name}' is not a local folder, not in the mirror and {state}: set {key} (env {env}) so {where} exists"
