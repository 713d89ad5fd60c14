"""Experiment loggers that need more than their Lightning class: W&B that goes offline by itself and names,
groups and tags its run after the Hydra job (one W&B group per multirun)."""

from __future__ import annotations

import functools
import logging
import netrc
import os
import sys
from pathlib import Path
from urllib.parse import urlparse

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from lightning.pytorch.loggers import WandbLogger
from omegaconf import OmegaConf

from emo_lightning.utils.hub import reachable

log = logging.getLogger(__name__)


TAGGED_GROUPS = ("data", "model", "head", "loss")  # config groups whose choice tags a run, e.g. "data:go_emotions"


def wandb_logger(
    project: str,
    save_dir: str,
    mode: str = "auto",
    name: str | None = None,
    group: str | None = None,
    tags: list[str] | None = None,
    **kwargs,
) -> WandbLogger:
    """A `WandbLogger` writing inside the run dir; a new run's null fields follow its Hydra job (`hydra_run_fields`).

    Args:
        mode: "online", "offline", or "auto" — online only with an API key and a reachable server.
        tags: added to the job's config-choice tags.
        kwargs: passed on to `wandb.init` (entity, job_type, id, resume, …).
    """
    if kwargs.get("id"):  # a resumed run keeps the name, group, tags and job type W&B has for it
        job = {}
    else:
        job = hydra_run_fields() if HydraConfig.initialized() else {"job_type": "train"}
        kwargs.setdefault("job_type", job["job_type"])
    tags = list(dict.fromkeys([*(tags or []), *job.get("tags", [])]))
    offline = mode == "offline" or (mode == "auto" and not wandb_online_possible())
    return WandbLogger(
        project=project,
        save_dir=save_dir,
        name=name or job.get("name"),
        group=group or job.get("group"),
        tags=tags,
        offline=offline,
        **kwargs,
    )


def hydra_run_fields() -> dict:
    """The W&B name, group, tags and job type of the running Hydra job.

    A multirun is one group, its sweep folder's name (`<experiment>/<folder>` with an experiment); a job is named
    by the overrides the sweep varies (`loss=bce head=mlp`) and has job type "sweep-job". A single run is named by
    its run folder, has no group and job type "train". Tags: the data, model, head and loss choices.
    """
    hydra = HydraConfig.get()
    choices = hydra.runtime.choices
    tags = [f"{group}:{choices[group]}" for group in TAGGED_GROUPS if choices.get(group)]
    if hydra.mode != RunMode.MULTIRUN:
        return {"name": Path(hydra.runtime.output_dir).name, "tags": tags, "job_type": "train"}
    sweep_dir = Path(hydra.runtime.cwd, hydra.sweep.dir)
    experiment = choices.get("experiment")
    return {
        "name": job_name(list(hydra.overrides.task), swept_keys(sweep_dir) | set(hydra.sweeper.get("params") or {})),
        "group": f"{experiment}/{sweep_dir.name}" if experiment else sweep_dir.name,
        "tags": tags,
        "job_type": "sweep-job",
    }


def swept_keys(sweep_dir: Path) -> set[str]:
    """The keys a multirun's command line sweeps (`loss=bce,focal` → "loss"), read from its `multirun.yaml`."""
    saved = sweep_dir / "multirun.yaml"
    if not saved.is_file():
        return set()
    overrides = OmegaConf.select(OmegaConf.load(saved), "hydra.overrides.task") or []
    return {o.key_or_group for o in OverridesParser.create().parse_overrides(list(overrides)) if o.is_sweep_override()}


def job_name(overrides: list[str], swept: set[str]) -> str:
    """A job's overrides without hydra.* — only the swept ones when known — with paths cut to their last part."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    kept = [o for o in parsed if o.key_or_group.partition(".")[0].partition("/")[0] != "hydra"]
    if swept & {o.key_or_group for o in kept}:
        kept = [o for o in kept if o.key_or_group in swept]
    return " ".join(_short_path(o.input_line) for o in kept)


def _short_path(override: str) -> str:
    key, _, value = override.partition("=")
    return f"{key}={value.rstrip('/').rsplit('/', 1)[-1]}" if "/" in value else override


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
