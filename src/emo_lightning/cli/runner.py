"""Run a Hydra entry point so that bad input ends in one line on stderr, `error: <problem>: <fix>`, and exit code 2.

Hydra prints its own multi-line reports (and exits 1) unless HYDRA_FULL_ERROR=1, when it re-raises the exception;
`run_cli` sets it so it gets the exception, and turns what `describe` knows into one line. A user who set
HYDRA_FULL_ERROR=1 gets the full traceback as before.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from emo_lightning.utils.errors import describe

FULL_ERROR = "HYDRA_FULL_ERROR"
USER_FULL_ERROR = "EMO_USER_HYDRA_FULL_ERROR"  # what the user had set, for `exit_on_bad_input` inside the task


def user_wants_traceback() -> bool:
    """Whether the user asked for full tracebacks (HYDRA_FULL_ERROR=1 before `run_cli` set it)."""
    return os.environ.get(USER_FULL_ERROR, os.environ.get(FULL_ERROR)) == "1"


def exit_if_bad_input(err: Exception) -> None:
    """Print `err` as one line and exit 2 when `describe` knows it (and no traceback was asked for); else return."""
    message = None if user_wants_traceback() else describe(err)
    if message is not None:
        sys.stderr.write(f"error: {message}\n")
        sys.stderr.flush()
        sys.exit(2)


def run_cli(main: Callable[[], Any]) -> None:
    """Run a @hydra.main function; turn bad input into one line on stderr and exit code 2.

    Other exceptions are re-raised with their full traceback; SystemExit (`--help`, argparse, a task's own exit)
    passes through untouched.
    """
    saved = {name: os.environ.get(name) for name in (FULL_ERROR, USER_FULL_ERROR)}
    os.environ[USER_FULL_ERROR] = "1" if user_wants_traceback() else "0"
    os.environ[FULL_ERROR] = "1"
    try:
        main()
    except Exception as err:
        exit_if_bad_input(err)
        raise
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def exit_on_bad_input(output_dir: Path | None = None) -> Iterator[None]:
    """Inside a task function: bad input exits 2 with one line here, before Hydra adds its
    "Error executing job with overrides: …" line (it does so for every exception that leaves the task). The job's
    `output_dir`, given, goes when it holds nothing but what Hydra made for it."""
    try:
        yield
    except Exception as err:
        if output_dir is not None and describe(err) is not None:
            remove_unstarted_folder(output_dir)
        exit_if_bad_input(err)
        raise


def remove_unstarted_folder(output_dir: Path) -> None:
    """A job refused before it started: remove the folder Hydra made for it (`.hydra/` and `<job>.log`), so that
    nothing under outputs/ looks like a result. A folder holding anything else is kept as it is."""
    from hydra.core.hydra_config import HydraConfig

    job_log = f"{HydraConfig.get().job.name}.log" if HydraConfig.initialized() else None
    output_dir = Path(output_dir)
    if not output_dir.is_dir() or not {p.name for p in output_dir.iterdir()} <= {".hydra", job_log}:
        return
    close_file_logs_in(output_dir)
    shutil.rmtree(output_dir / ".hydra", ignore_errors=True)
    if job_log is not None:
        (output_dir / job_log).unlink(missing_ok=True)
    output_dir.rmdir()


def close_file_logs_in(folder: Path) -> None:
    """Close and detach the logging handlers that write into `folder` (Hydra's job log): once the folder is gone a
    later record would try to reopen the file there (in the same process: the next job, a notebook, a test)."""
    folder = folder.resolve()
    named = (v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger))
    for logger in (logging.getLogger(), *named):
        for handler in list(logger.handlers):
            filename = getattr(handler, "baseFilename", None)
            if filename is not None and Path(filename).resolve().is_relative_to(folder):
                logger.removeHandler(handler)
                handler.close()
