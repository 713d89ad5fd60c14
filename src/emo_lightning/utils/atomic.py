"""Writes that cannot leave half a result: write to a temporary name in the same folder, then rename.

A rename within one filesystem is atomic, so a reader (or a run resumed after a kill) sees either the old file or
the whole new one, never a torn one. Temporary names start with "." and hold ".partial", so they are easy to spot
and are never taken for a result.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

PARTIAL = ".partial"


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a folder be opened for fsync
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary file path beside `path`; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=PARTIAL, dir=path.parent)
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
        _fsync_dir(path.parent)
    finally:
        temporary.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder path beside `path` (not created yet: the writer creates it); on success it becomes
    `path` (an older `path` is replaced only once the new one is complete), on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=PARTIAL, dir=path.parent))
    temporary.rmdir()  # a unique name that the writer creates
    try:
        yield temporary
        if path.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", suffix=PARTIAL, dir=path.parent))
            os.replace(path, retired / path.name)
            os.replace(temporary, path)
            shutil.rmtree(retired)
        else:
            os.replace(temporary, path)
        _fsync_dir(path.parent)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary)


def remove_partials(folder: str | Path) -> list[Path]:
    """Delete what writes killed midway left in `folder` (its `.*.partial` files and folders); return them."""
    folder = Path(folder)
    leftovers = sorted(folder.glob(f".*{PARTIAL}")) if folder.is_dir() else []
    for leftover in leftovers:
        if leftover.is_dir():
            shutil.rmtree(leftover)
        else:
            leftover.unlink()
    return leftovers
