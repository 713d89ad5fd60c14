"""Writes that cannot leave half a result: write to a temporary name in the same folder, then rename.

A rename within one filesystem is atomic, so a reader (or a run resumed after a kill) sees either the old file or
the whole new one, never a torn one. Temporary names start with "." and hold ".partial", so they are easy to spot
and are never taken for a result.

What they leave has the permissions a plain open()/mkdir() would give (files 0666, folders 0777, less the umask;
a rewritten file keeps its mode), not the 0600/0700 of temporaries (mkstemp's, and the ones safetensors writes
through), so teammates on a shared machine can read a run where the umask lets them.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from emo_lightning.utils.errors import ConfigError

PARTIAL = ".partial"


def current_umask() -> int:
    """The process's umask, read from /proc/self/status (Linux 4.7+) without changing it; elsewhere, see
    `_swapped_umask`."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return _swapped_umask()


@functools.cache
def _swapped_umask() -> int:
    """The umask by setting one and restoring it, once a process (umask is process-wide). Safe with other threads:
    a file or folder one creates in that instant gets owner-only permissions (the 077 set meanwhile), never wider
    ones than its owner asked for."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def plain_mode(folder: bool = False, executable: bool = False) -> int:
    """The permission bits that mkdir() (`folder`) or open() give a new entry under the current umask."""
    return (0o777 if folder or executable else 0o666) & ~current_umask()


def _set_plain_modes(root: Path) -> None:
    """chmod every folder and file under `root` (itself included) to what mkdir()/open() would have given it;
    executable files stay executable; links are left alone."""
    folder_mode, file_mode, exec_mode = plain_mode(folder=True), plain_mode(), plain_mode(executable=True)
    os.chmod(root, folder_mode)
    for parent, folders, files in os.walk(root):
        for name in folders + files:
            path = os.path.join(parent, name)
            info = os.lstat(path)
            if stat.S_ISDIR(info.st_mode):
                os.chmod(path, folder_mode)
            elif stat.S_ISREG(info.st_mode):
                os.chmod(path, exec_mode if info.st_mode & 0o111 else file_mode)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a folder be opened for fsync
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary file path beside `path`; on success it replaces `path`, on error it is removed.

    The result has `path`'s mode where `path` existed, else a new file's (`plain_mode`), whatever mode the writer's
    own temporary had."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=PARTIAL, dir=path.parent)
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb+") as written:
            os.fchmod(written.fileno(), _mode_for(path))
            os.fsync(written.fileno())
        os.replace(temporary, path)
        _fsync_dir(path.parent)
    finally:
        temporary.unlink(missing_ok=True)


def _mode_for(path: Path) -> int:
    """What open(path, "w") leaves: an existing file's own mode, a new file's plain one."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return plain_mode()


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder path beside `path` (not created yet: the writer creates it); on success it becomes
    `path` (an older `path` is replaced only once the new one is complete), on error it is removed.

    Everything in it gets the modes mkdir()/open() give new entries (`plain_mode`), whatever its writers' own
    temporaries had (safetensors' are 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=PARTIAL, dir=path.parent))
    temporary.rmdir()  # a unique name that the writer creates
    try:
        yield temporary
        _set_plain_modes(temporary)
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


def refuse_to_overwrite(output_dir: Path, names: Iterable[str], what: str) -> None:
    """Raise ConfigError, before any work, when `output_dir` already holds one of `names` (from an earlier `what`):
    a new folder is the fix, and nothing there is touched."""
    found = [name for name in names if (Path(output_dir) / name).exists()]
    if found:
        raise ConfigError(
            f"{output_dir} already holds {what} ({', '.join(found)}): give a new hydra.run.dir "
            "(or leave it out for a new time-stamped folder)"
        )
