"""Experiment loggers that need more than their Lightning class: W&B that goes offline by itself."""

from __future__ import annotations

import functools
import logging
import netrc
import os
import sys
from urllib.parse import urlparse

from lightning.pytorch.loggers import WandbLogger

from emo_lightning.utils.hub import reachable

log = logging.getLogger(__name__)


def wandb_logger(project: str, save_dir: str, mode: str = "auto", name: str | None = None, **kwargs) -> WandbLogger:
    """A `WandbLogger` writing inside the run dir.

    Args:
        mode: "online", "offline", or "auto" — online only with an API key and a reachable server.
        kwargs: passed on to `wandb.init` (group, tags, entity, …).
    """
    offline = mode == "offline" or (mode == "auto" and not wandb_online_possible())
    return WandbLogger(project=project, save_dir=save_dir, name=name, offline=offline, **kwargs)


@functools.cache
def wandb_online_possible(timeout: float = 2.0) -> bool:
    """True when W&B has an API key and its server (`WANDB_BASE_URL`, via any proxy) answers; says once why not."""
    if os.environ.get("WANDB_MODE") in {"offline", "dryrun", "disabled"}:
        log.info("W&B offline: WANDB_MODE=%s", os.environ["WANDB_MODE"])
        return False
    url = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").rstrip("/")
    host = urlparse(url).hostname or url
    if not (os.environ.get("WANDB_API_KEY") or _netrc_has(host)):
        log.warning("W&B offline: no API key (set WANDB_API_KEY or run `wandb login`); sync later with `wandb sync`")
        return False
    ok, what = reachable(url, timeout)
    if not ok:
        log.warning("W&B offline: server unreachable (%s); sync later with `wandb sync`", what)
        return False
    return True


def _netrc_has(host: str) -> bool:
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def finish_wandb_run() -> None:
    """Close the active W&B run, so the next job of a multirun gets its own."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()
