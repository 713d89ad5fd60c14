"""`python train.py resume=<run dir>`: the same experiment, continued in its own folder from its newest checkpoint.

The command line is rewritten before Hydra composes it: the run's saved overrides, then the new ones (only those
that extend a run, like `trainer.max_epochs`), then `hydra.run.dir=<run dir>` so every file lands where it was.
Each resume keeps the overrides it ran with in `.hydra/resume-<k>/`; the first run's `.hydra/` stays as it was.
A requeued SLURM job (`SLURM_RESTART_COUNT` ≥ 1) resumes its own run dir by itself.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from omegaconf import OmegaConf

from emo_lightning.utils.errors import ConfigError

RESUME = "resume"
RUNS_DIR = Path("outputs/runs")  # conf/hydra/default.yaml's hydra.run.dir folder
# Overrides a resumed run may take: they extend or observe the run, they do not change what it computes.
EXTENDING = (
    "trainer.max_epochs",
    "trainer.max_steps",
    "trainer.max_time",
    "trainer.enable_progress_bar",
    "trainer.log_every_n_steps",
    "callbacks.early_stopping.patience",
    "callbacks.last_checkpoint",
    "callbacks.progress_bar",
    "data.num_workers",
    "data.eval_batch_size",
    "paths.data_dir",
    "paths.model_dir",
    "logger",
    "plots",
)


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def is_extending(key: str) -> bool:
    return key.startswith("hydra.") or any(key == k or key.startswith(k + ".") for k in EXTENDING)


def saved_overrides_file(run_dir: Path) -> Path:
    """The overrides.yaml of the run's newest resume, else of its first run."""
    candidates = [run_dir / ".hydra" / "overrides.yaml"]
    candidates += sorted((run_dir / ".hydra").glob("resume-*/overrides.yaml"), key=_resume_number)
    existing = [p for p in candidates if p.is_file()]
    if not existing:
        raise ConfigError(
            f"resume={run_dir} is not a run dir (no .hydra/overrides.yaml): give a training run's folder, "
            "outputs/runs/<time> or outputs/multirun/<time>/<job>"
        )
    return existing[-1]


def saved_overrides(run_dir: Path) -> list[str]:
    """The overrides the run last ran with (its newest resume's, else its first run's), without resume=."""
    file = saved_overrides_file(run_dir)
    overrides = OmegaConf.to_container(OmegaConf.load(file)) or []
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise ConfigError(f"{file} is not a list of overrides: resume a run that train.py wrote")
    return [o for o in overrides if override_key(o) != RESUME]


def _resume_number(path: Path) -> int:
    return int(path.parent.name.split("-", 1)[1])


def check_replayable(saved: list[str], new: list[str], file: Path, conf_dir: Path) -> None:
    """Refuse, in one line naming `file`, a saved override that our config could not have produced: a `hydra.` key
    (Hydra keeps those out of overrides.yaml), a sweep, an option that conf/ lacks, or one that imports a callable
    (`_target_`) or runs remote code, unless the command line gives that same override again."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides([o for o in saved if o not in new])
    except HydraException as err:
        raise ConfigError(
            f"{file} holds an override Hydra cannot parse ({err}): resume a run that train.py wrote"
        ) from err
    for override in parsed:
        key, line = override.key_or_group, override.input_line
        value = None if override.is_delete() else override.value()
        problem = replay_problem(key, value, override.is_sweep_override(), conf_dir)
        if problem:
            raise ConfigError(
                f"resume: {file} replays {line}, {problem}: a run folder never decides what runs; give {line} again "
                "on the command line if you wrote it, or start a new run"
            )


def replay_problem(key: str, value, sweep: bool, conf_dir: Path) -> str | None:
    """Why a saved override is not one our config could have produced (None when it is)."""
    from emo_lightning.utils.trust import runs_code, walk

    if key.split(".")[0].split("/")[0] == "hydra":
        return "a hydra setting that overrides.yaml never holds"
    if sweep:
        return "a sweep, which a single run's overrides never hold"
    group = conf_dir / key
    if "." not in key and group.is_dir() and value is not None:
        options = value if isinstance(value, list) else [value]
        missing = [o for o in options if not isinstance(o, str) or not (group / f"{o}.yaml").is_file()]
        if missing or any("/" in o or o.startswith(".") for o in options):
            return f"an option that conf/{key}/ does not have"
    for path, leaf in [(key, value), *walk(value, key)]:
        problem = runs_code(path, leaf, set())
        if problem:
            return problem
    return None


def resume_argv(argv: list[str], conf_dir: Path) -> list[str]:
    """argv with `resume=<dir>` expanded into the run's own overrides and folder; unchanged without `resume=`.
    `conf_dir`: the script's conf/, whose options the replayed overrides must name."""
    args = argv[1:]
    given = [a for a in args if override_key(a) == RESUME and "=" in a]
    if not given:
        slurm_dir = requeued_slurm_run()
        if slurm_dir is None:
            return argv
        given = [f"{RESUME}={slurm_dir}"]
        args = args + given
    if any(a in ("-m", "--multirun") for a in args):
        raise ConfigError("resume= continues one run: drop -m (resume each job of a sweep by its own folder)")
    run_dir = Path(given[-1].split("=", 1)[1]).expanduser().resolve()
    if not run_dir.is_dir():
        raise ConfigError(f"resume={run_dir} does not exist: give a training run's folder (outputs/runs/<time>)")
    new = [a for a in args if override_key(a) != RESUME]
    saved = saved_overrides(run_dir)
    check_replayable(saved, new, saved_overrides_file(run_dir), conf_dir)
    changing = [a for a in new if not a.startswith("-") and a not in saved and not is_extending(override_key(a))]
    if changing:
        raise ConfigError(
            f"resume= continues the run as it was, and {changing[0]} would change it: start a new run for that "
            f"(resume= takes only {', '.join(EXTENDING[:3])} and other overrides that extend or observe a run)"
        )
    new_keys = {override_key(a) for a in new}
    kept = [o for o in saved if override_key(o) not in new_keys]
    number = 1 + max((_resume_number(p) for p in (run_dir / ".hydra").glob("resume-*/overrides.yaml")), default=0)
    hydra = [f"hydra.run.dir={run_dir}", f"hydra.output_subdir=.hydra/resume-{number}"]
    return [argv[0], *kept, *new, f"{RESUME}={run_dir}", *hydra]


def slurm_job_id() -> str | None:
    array_job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array_job and task:
        return f"{array_job}_{task}"
    return os.environ.get("SLURM_JOB_ID")


def slurm_job_suffix() -> str:
    """`_slurm-<job id>` in a SLURM job, else nothing: the run folder's name ends with it, so a requeue finds it
    (the `slurm_job_suffix` resolver of conf/hydra/default.yaml)."""
    job = slurm_job_id()
    return f"_slurm-{job}" if job and re.fullmatch(r"[0-9_]+", job) else ""


def requeued_slurm_job() -> bool:
    """Whether this is a SLURM job that SLURM has requeued (after a preemption or a timeout)."""
    return bool(slurm_job_id()) and int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) >= 1


def requeued_slurm_run() -> Path | None:
    """The run dir of this SLURM job when SLURM has requeued it (it then resumes by itself), else None."""
    job = slurm_job_id()
    if not requeued_slurm_job():
        return None
    runs = sorted(RUNS_DIR.glob(f"*_slurm-{job}"), key=lambda p: p.stat().st_mtime_ns)
    return runs[-1] if runs else None
