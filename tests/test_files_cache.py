"""data=files' tokenized cache (data/token_cache.py): a second setup of the same file, tokenizer and max_length
reuses the first one's entry, anything that changes rows does not, a write cut short leaves no entry, and the
splits drawn from an entry are those of an uncached run, views of one table."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys

import pandas as pd

from emo_lightning.data.files import FilesDataModule
from emo_lightning.data.token_cache import ENTRY
from tests.conftest import ROOT

CUES = [("i am so happy", "joy"), ("i feel sad", "sadness"), ("so angry now", "anger"), ("what a fright", "fear")]


def write_rows(path, count: int = 40) -> None:
    rows = [(f"{text} number {i}", label) for i in range(count // len(CUES)) for text, label in CUES]
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)


def module(tokenizer, train_file, cache_dir, **kwargs) -> FilesDataModule:
    options = {"max_length": 32, "batch_size": 4, "label_column": "label", "cache_dir": str(cache_dir)} | kwargs
    return FilesDataModule(train_file=str(train_file), tokenizer=str(tokenizer), **options)


def set_up(dm: FilesDataModule, caplog) -> str:
    """setup(), and the cache's log line."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="emo_lightning.data.files"):
        dm.setup("fit")
    (line,) = [r.getMessage() for r in caplog.records if r.name == "emo_lightning.data.files" and r.levelname == "INFO"]
    return line


def entries(cache_dir) -> list:
    return sorted(p for p in cache_dir.iterdir() if (p / ENTRY).is_file()) if cache_dir.is_dir() else []


def test_a_second_setup_of_the_same_file_reuses_the_first_ones_tokenization(tmp_path, tiny_tokenizer_dir, caplog):
    write_rows(tmp_path / "train.csv")
    cache = tmp_path / "cache"
    first = module(tiny_tokenizer_dir, tmp_path / "train.csv", cache)
    line = set_up(first, caplog)
    assert line.startswith("tokenized 40 rows in ") and f"and cached at {cache}" in line
    assert not first.cache_use.reused and first.cache_use.rows == 40
    (entry,) = entries(cache)

    second = module(tiny_tokenizer_dir, tmp_path / "train.csv", cache)
    assert set_up(second, caplog) == f"tokenized splits reused from {entry} (40 rows)"
    assert second.cache_use.reused and entries(cache) == [entry]
    for split in ("train", "validation", "test"):
        assert second.tokenized[split][:] == first.tokenized[split][:]
        assert second.labeled.splits[split][:] == first.labeled.splits[split][:]
    assert second.label_names == first.label_names == ["anger", "fear", "joy", "sadness"]
    # another seed or fraction draws other held-out rows from the same entry: they are not in the key
    seeded = module(tiny_tokenizer_dir, tmp_path / "train.csv", cache, seed=7)
    assert set_up(seeded, caplog).startswith("tokenized splits reused from")
    assert seeded.labeled.splits["validation"]["text"] != first.labeled.splits["validation"]["text"]
    larger = module(tiny_tokenizer_dir, tmp_path / "train.csv", cache, validation_fraction=0.25)
    assert set_up(larger, caplog).startswith("tokenized splits reused from")
    assert len(larger.tokenized["validation"]) == 10 and entries(cache) == [entry]


def test_an_edited_row_or_another_max_length_tokenizes_again(tmp_path, tiny_tokenizer_dir, caplog):
    path = tmp_path / "train.csv"
    write_rows(path)
    cache = tmp_path / "cache"
    set_up(module(tiny_tokenizer_dir, path, cache), caplog)
    # one row edited, the file's size and modification time kept: the key is its content
    stat = path.stat()
    text = path.read_text()
    path.write_text(text.replace("i feel sad number 1,", "i feel bad number 1,", 1))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.read_text() != text
    edited = module(tiny_tokenizer_dir, path, cache)
    assert "and cached at" in set_up(edited, caplog) and len(entries(cache)) == 2
    assert "i feel bad number 1" in [text for split in edited.labeled.splits.values() for text in split["text"]]

    longer = module(tiny_tokenizer_dir, path, cache, max_length=16)
    assert "and cached at" in set_up(longer, caplog) and len(entries(cache)) == 3
    # the same file again, as first written: its entry is still there
    path.write_text(text)
    assert set_up(module(tiny_tokenizer_dir, path, cache), caplog).startswith("tokenized splits reused from")


def test_splits_from_the_cache_are_the_uncached_ones_as_views_of_one_table(tmp_path, tiny_tokenizer_dir, caplog):
    write_rows(tmp_path / "train.csv", count=80)
    cached = module(tiny_tokenizer_dir, tmp_path / "train.csv", tmp_path / "cache")
    set_up(cached, caplog)
    plain = module(tiny_tokenizer_dir, tmp_path / "train.csv", tmp_path / "unused", cache_tokenized=False)
    plain.setup()
    assert not (tmp_path / "unused").exists() and plain.cache_use is None
    (entry,) = entries(tmp_path / "cache")
    for split in ("train", "validation", "test"):
        assert cached.labeled.splits[split][:] == plain.labeled.splits[split][:]
        assert cached.tokenized[split][:] == plain.tokenized[split][:]
        lengths = [len(ids) for ids in plain.tokenized[split]["input_ids"]]
        assert cached.lengths(split) == plain.lengths(split) == lengths
        # every split reads the one memory-mapped file of the entry: no copy of the table per split
        assert cached.tokenized[split].cache_files == [{"filename": str(entry / "train.arrow")}]
        assert cached.labeled.splits[split].cache_files == [{"filename": str(entry / "train.arrow")}]
    assert cached.train_label_counts().tolist() == plain.train_label_counts().tolist()
    assert next(iter(cached.train_dataloader()))["input_ids"].shape[0] == 4


def test_a_damaged_entry_is_tokenized_again_and_an_unwritable_cache_tokenizes_in_memory(
    tmp_path, tiny_tokenizer_dir, caplog
):
    write_rows(tmp_path / "train.csv")
    cache = tmp_path / "cache"
    set_up(module(tiny_tokenizer_dir, tmp_path / "train.csv", cache), caplog)
    (entry,) = entries(cache)
    (entry / "train.arrow").write_bytes(b"not arrow")
    again = module(tiny_tokenizer_dir, tmp_path / "train.csv", cache)
    assert "and cached at" in set_up(again, caplog)
    assert any("is unreadable" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)
    assert entries(cache) == [entry] and len(again.tokenized["train"]) == 32

    (tmp_path / "a_file").write_text("")
    nowhere = module(tiny_tokenizer_dir, tmp_path / "train.csv", tmp_path / "a_file" / "cache")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="emo_lightning.data.files"):
        nowhere.setup()
    assert any("could not cache the tokenized splits" in r.getMessage() for r in caplog.records)
    assert not nowhere.cache_use.reused and len(nowhere.tokenized["train"]) == 32


# The setup of a train.py run killed (SIGKILL, nothing cleaned up) at its second batch of rows to tokenize.
KILLED_SETUP = """
import os, signal, sys
from transformers import PreTrainedTokenizerBase
from emo_lightning.data.files import FilesDataModule

calls = []
tokenize = PreTrainedTokenizerBase.__call__

def killed_at_the_second_batch(self, *args, **kwargs):
    calls.append(1)
    if len(calls) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return tokenize(self, *args, **kwargs)

PreTrainedTokenizerBase.__call__ = killed_at_the_second_batch
dm = FilesDataModule(train_file=sys.argv[1], tokenizer=sys.argv[2], max_length=32, label_column="label",
                     cache_dir=sys.argv[3])
dm.setup()
"""


def test_a_run_killed_while_tokenizing_leaves_no_entry(tmp_path, tiny_tokenizer_dir, caplog):
    write_rows(tmp_path / "train.csv", count=4000)  # 4 batches of rows to tokenize
    cache = tmp_path / "cache"
    args = [sys.executable, "-c", KILLED_SETUP, str(tmp_path / "train.csv"), str(tiny_tokenizer_dir), str(cache)]
    killed = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert entries(cache) == [] and list(cache.glob(".*.partial"))  # what it left is a partial, never an entry
    dm = module(tiny_tokenizer_dir, tmp_path / "train.csv", cache)
    assert "and cached at" in set_up(dm, caplog) and len(entries(cache)) == 1
    assert len(dm.labeled.splits["train"]) == 3200
