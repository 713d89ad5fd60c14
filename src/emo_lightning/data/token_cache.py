"""A user's files tokenized once: a later run of the same file(s), tokenizer and max_length loads the first run's
tokenized rows (memory-mapped arrow files) instead of reading, checking and tokenizing them again.

An entry is keyed by content, never by path or time: each file's size and blake2b digest (read in 1 MiB blocks),
the tokenizer's fingerprint (datasets' `Hasher` over the loaded tokenizer: its vocabulary, settings and class), the
`max_length`, the data options that change rows (`key_parts` is given them), the tokenizers / transformers versions
and `FORMAT` (raised when the way rows are encoded changes). Held-out splits are drawn after loading, so seeds and
fractions share one entry.

An entry is a folder `<root>/<key>/`: one arrow file per file split (`text`, `labels` and the tokenizer's columns)
and `entry.json` (label names, task type, rows per split, what the key was made of). It is written into a
`.partial` folder and renamed whole (utils.atomic.atomic_dir), so a killed run never leaves half an entry (its
`.partial` folder is removed by a later write, a day on); loading opens arrow files only, no code runs. Entries
are never needed: deleting the root (or one entry) at any time only means the next run tokenizes again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from datasets import Dataset, DatasetDict
from transformers import PreTrainedTokenizerBase

from emo_lightning.data.encoding import LabeledSplits, tokenize_splits
from emo_lightning.utils.atomic import PARTIAL, atomic_dir

log = logging.getLogger(__name__)

FORMAT = 1
ENV = "EMO_TOKENIZED_CACHE"  # the root, where data.cache_dir is null
ENTRY = "entry.json"
BLOCK = 1 << 20
STALE_PARTIAL_S = 24 * 3600  # a `.partial` folder this old was left by a killed run, not by one still writing


@dataclass(frozen=True)
class CacheUse:
    """What `setup` did with the cache: reused an entry, or tokenized and wrote one (`seconds`: of tokenization, or
    of loading the entry)."""

    folder: Path
    reused: bool
    rows: int
    seconds: float


def cache_root(configured: str | None) -> Path:
    """`configured` (data.cache_dir), else $EMO_TOKENIZED_CACHE, else $XDG_CACHE_HOME/emo_lightning/tokenized
    ($XDG_CACHE_HOME: ~/.cache where unset)."""
    if configured:
        return Path(configured).expanduser()
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return base / "emo_lightning" / "tokenized"


def file_digest(path: str) -> dict:
    """A file's size and blake2b digest, read in 1 MiB blocks (~0.2 s for 100 MB)."""
    digest = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as handle:
        while block := handle.read(BLOCK):
            digest.update(block)
    return {"bytes": os.path.getsize(path), "blake2b": digest.hexdigest()}


def tokenizer_fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    """datasets' fingerprint of a loaded tokenizer (what its own `map` cache keys on); ~0.1 s."""
    from datasets.fingerprint import Hasher

    return Hasher.hash(tokenizer)


def key_parts(files: dict[str, str], tokenizer: PreTrainedTokenizerBase, max_length: int, options: dict) -> dict:
    """What an entry is keyed on (`options`: the data options that change rows, JSON-serializable)."""
    import tokenizers
    import transformers

    return {
        "format": FORMAT,
        "files": {split: file_digest(path) for split, path in files.items()},
        "tokenizer": {"class": type(tokenizer).__name__, "fingerprint": tokenizer_fingerprint(tokenizer)},
        "max_length": max_length,
        "options": options,
        "versions": {"tokenizers": tokenizers.__version__, "transformers": transformers.__version__},
    }


def entry_folder(root: Path, parts: dict) -> Path:
    text = json.dumps(parts, sort_keys=True, default=str)
    return root / hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def load_entry(folder: Path) -> LabeledSplits | None:
    """An entry's splits (memory-mapped), label names and task type; None where there is none or it is unreadable."""
    try:
        about = json.loads((folder / ENTRY).read_text())
        splits = DatasetDict({split: Dataset.from_file(str(folder / f"{split}.arrow")) for split in about["rows"]})
        if {split: len(ds) for split, ds in splits.items()} != about["rows"]:
            raise ValueError(f"rows {about['rows']} expected")
        return LabeledSplits(splits, list(about["label_names"]), bool(about["multi_label"]))
    except FileNotFoundError:
        return None
    except Exception as err:  # a damaged entry (a disk that filled up, a hand edit): tokenized anew, replaced
        log.warning("tokenized cache entry %s is unreadable (%s): tokenizing again", folder, err)
        return None


def write_entry(
    folder: Path, labeled: LabeledSplits, tokenizer: PreTrainedTokenizerBase, max_length: int, parts: dict
) -> float:
    """Tokenize `labeled`'s splits straight into a new entry at `folder` (text kept); return the seconds taken."""
    remove_stale_partials(folder.parent)
    with atomic_dir(folder) as partial:
        partial.mkdir()
        start = time.perf_counter()
        files = {split: str(partial / f"{split}.arrow") for split in labeled.splits}
        written = tokenize_splits(labeled.splits, tokenizer, max_length, keep_text=True, cache_files=files)
        seconds = time.perf_counter() - start
        about = {
            "label_names": labeled.label_names,
            "multi_label": labeled.multi_label,
            "rows": {split: len(ds) for split, ds in written.items()},
            "tokenize_seconds": round(seconds, 2),
            "key": parts,
        }
        (partial / ENTRY).write_text(json.dumps(about, indent=1))
        del written  # its files are renamed with the folder; the entry is opened again from there
    return seconds


def remove_stale_partials(root: Path) -> None:
    """Delete `.partial` entries that killed runs left in `root` a day or more ago (younger ones may be writing)."""
    if not root.is_dir():
        return
    now = time.time()
    for leftover in root.glob(f".*{PARTIAL}"):
        try:
            if now - leftover.stat().st_mtime > STALE_PARTIAL_S:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            continue


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file())
