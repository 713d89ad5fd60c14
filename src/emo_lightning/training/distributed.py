"""DDP that works under a Hydra multirun: the extra ranks re-run this one job, in this job's folder.

Lightning's DDP starts ranks 1…N-1 by re-running `sys.argv` with `hydra.run.dir=…` added. Under `-m` that command
line is the whole sweep, so every rank would run every job into folders of its own (pytorch-lightning #11300, hydra
#2070). `JobDDPStrategy` starts them with this job's own overrides instead (`hydra.overrides.task`), as a single run
into this job's output folder: the ranks meet in one process group, and only rank 0 writes the run's files. This
keeps Lightning's own launcher (and its process watchdog), unlike `ddp_spawn`, which would pickle the whole run
and lose our one-line errors inside a child's traceback. Under SLURM or torchrun, which start every rank
themselves, Lightning starts none and this changes nothing.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.strategies.launchers import subprocess_script
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

# What Lightning's launcher sets in this process for the ranks it starts; a job must not leave them to the next.
LAUNCH_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


def job_command(local_rank: int) -> tuple[Sequence[str], str]:
    """The command line of rank `local_rank`: this job alone (not the sweep), into this job's folder."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import get_original_cwd

    hydra = HydraConfig.get()
    script = Path(sys.argv[0]).resolve()
    command = [sys.executable, str(script), *hydra.overrides.task]
    command += [
        f"hydra.run.dir={hydra.runtime.output_dir}",
        f"hydra.job.name={hydra.job.name}_rank{local_rank}",
        "hydra.output_subdir=null",  # the job's .hydra/ is rank 0's
    ]
    return command, get_original_cwd()


class JobLauncher(_SubprocessScriptLauncher):
    """Lightning's script launcher, starting the other ranks with `job_command`."""

    def _call_children_scripts(self) -> None:
        original = subprocess_script._hydra_subprocess_cmd
        subprocess_script._hydra_subprocess_cmd = job_command
        try:
            super()._call_children_scripts()
        finally:
            subprocess_script._hydra_subprocess_cmd = original


class JobDDPStrategy(DDPStrategy):
    """`DDPStrategy` whose ranks run the current Hydra job, not the whole command line (see the module doc)."""

    def _configure_launcher(self) -> None:
        super()._configure_launcher()
        if type(self._launcher) is _SubprocessScriptLauncher:
            self._launcher = JobLauncher(self.cluster_environment, self.num_processes, self.num_nodes)


def is_extra_rank() -> bool:
    """Whether this process is a rank > 0 that a launcher started for a job (rank 0 owns the run's folder)."""
    return int(os.environ.get("LOCAL_RANK", "0")) > 0 or int(os.environ.get("NODE_RANK", "0")) > 0


@contextlib.contextmanager
def one_job_of_ranks() -> Iterator[None]:
    """Leave the process as the job found it: the launcher's environment and the process group go with the job,
    so the next job of a multirun starts its own ranks."""
    before = {name: os.environ.get(name) for name in LAUNCH_ENV}
    try:
        yield
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
