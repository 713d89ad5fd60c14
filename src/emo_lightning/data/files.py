"""A user's own CSV / TSV / TXT / JSON / JSONL / parquet files (the first five may be gzipped: train.csv.gz),
described by config alone."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, List, Value

from emo_lightning.data import labels, token_cache
from emo_lightning.data.datamodule import TextClassificationDataModule
from emo_lightning.data.encoding import LABELS, TEXT, LabeledSplits, column_array, multi_hot, tokenize_splits
from emo_lightning.data.tables import check_files, csv_delimiter, read_tables, table_format
from emo_lightning.utils.errors import ConfigError

log = logging.getLogger(__name__)
TEXT_BLOCK = 100_000  # rows of texts checked at once


class FilesDataModule(TextClassificationDataModule):
    """Train on your own files.

    Labels come in one of three forms:
      - `label_column` of class names or ids (single-label), or of lists of them (multi-label),
        or of strings joined by `label_separator` (multi-label, e.g. "joy,love"; an empty cell is a row
        without labels);
      - `label_columns`: several 0/1 columns, one per label (multi-label; the column names are the labels).
        A cell is 1/0, 1.0/0.0, true/false or yes/no; anything else is an error.
    Label names are read from the data: `label_names` for ids 0..k-1, else the ClassLabel feature if the file
    has one, else the sorted set of values seen in the training file. Every bad row is a one-line ConfigError
    raised before tokenization.

    Args:
        train_file / validation_file / test_file: paths; CSV / TSV / TXT / JSON / JSONL also gzipped (`.csv.gz`, read
            as their inner format). Without a test file, `test_fraction` of train is held
            out as the test split (0: no test split); without a validation file, `validation_fraction` of train
            is held out as the validation split. Both fractions are of the train file's rows, the held-out splits
            never overlap, and both are drawn with `seed` (stratified for single-label data where every class
            has enough rows); `seed` also orders training.
        text_column: the column holding the text.
        label_names: names of the label ids 0..k-1 when the label column holds ids.
        delimiter: field separator for CSV/TSV/TXT (the seeds' emotion files use ";"; `\\t` is a tab).
        column_names: names for the columns of a header-less CSV/TXT file.
        encoding: text encoding of CSV/TSV/TXT/JSON/JSONL files (e.g. latin-1).
        cache_tokenized: keep the checked, tokenized rows of the files on disk and reuse them in later runs of
            the same file contents, tokenizer, max_length and options above (data/token_cache.py): a second run of
            a million rows starts in seconds. False: read and tokenize every run, in memory.
        cache_dir: where (null: $EMO_TOKENIZED_CACHE, else ~/.cache/emo_lightning/tokenized).
    """

    def __init__(
        self,
        train_file: str | None,
        validation_file: str | None = None,
        test_file: str | None = None,
        text_column: str = "text",
        label_column: str | None = None,
        label_columns: list[str] | None = None,
        label_separator: str | None = None,
        label_names: list[str] | None = None,
        delimiter: str | None = None,
        column_names: list[str] | None = None,
        encoding: str = "utf-8",
        validation_fraction: float = 0.1,
        test_fraction: float = 0.1,
        seed: int = 42,
        cache_tokenized: bool = True,
        cache_dir: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(seed=seed, **kwargs)
        if (label_column is None) == (label_columns is None):
            raise ConfigError("data=files needs exactly one of data.label_column or data.label_columns")
        check_fractions(validation_fraction, test_fraction)
        if label_names is not None:
            check_label_names(list(label_names), bool(label_columns))
        self.files = {"train": train_file, "validation": validation_file, "test": test_file}
        self.files = {split: str(Path(f).expanduser()) for split, f in self.files.items() if f}
        if not self.files:
            raise ConfigError("data=files needs data.train_file=<file> (evaluate.py: data.test_file=<file> is enough)")
        self.source = next(iter(self.files))  # the file the label names come from: train, else the first given
        self.text_column = text_column
        self.label_column = label_column
        self.label_columns = list(label_columns) if label_columns else None
        self.label_separator = label_separator
        self.id_names = list(label_names) if label_names is not None else None
        self.delimiter = delimiter
        self.column_names = list(column_names) if column_names else None
        self.encoding = encoding
        self.validation_fraction = validation_fraction
        self.test_fraction = test_fraction
        self.cache_tokenized = cache_tokenized
        self.cache_dir = cache_dir
        self.cache_use: token_cache.CacheUse | None = None  # what the last setup did with the cache

    @property
    def name(self) -> str:
        return Path(self.files[self.source]).name

    def load_splits(self) -> LabeledSplits:
        files = self.file_splits()
        if self.source != "train":
            return files
        return LabeledSplits(self._hold_out(files.splits, files.multi_label), files.label_names, files.multi_label)

    def file_splits(self) -> LabeledSplits:
        """Each file's rows as `text` + `labels`, checked, before any split is held out of train. The files are
        parsed anew (a few seconds a million rows): what is cached is keyed on their contents, here and in
        data/token_cache.py, never on their modification times."""
        raw = read_tables(self.files, self.delimiter, self.column_names, encoding=self.encoding, fresh=True)
        self._check_columns(raw)
        if self.column_names:
            self._check_header_rows(raw)
        for split, ds in raw.items():
            self._check_texts(ds, split)
        rows = {split: self._row_labels(ds, split) for split, ds in raw.items()}
        names, rows = self._names(raw[self.source], rows)
        if self.source == "train":
            labels.check_two_labels(rows["train"], self.files["train"])
        for split in [s for s in rows if s != self.source]:
            labels.check_known(rows[split], names, self.files[split])
        multi_label = self._multi_label(raw[self.source])
        texts = {split: ds.select_columns([self.text_column]) for split, ds in raw.items()}
        splits = DatasetDict({s: encode(texts[s], rows.pop(s), names, multi_label) for s in raw})
        return LabeledSplits(splits, names, multi_label)

    def load_tokenized(self) -> tuple[LabeledSplits, DatasetDict]:
        """The held-out splits and their tokenization; with `cache_tokenized`, the files' checked and tokenized rows
        come from the cache where an earlier run of the same contents and settings left them (else they are
        tokenized into it), and only the held-out draw is made here. Every split is a view of its file's table
        (the held-out ones an index mapping), never a copy."""
        if not self.cache_tokenized:
            return super().load_tokenized()
        self.check_fit_splits(set(self.files) | ({"validation"} if "train" in self.files else set()))
        check_files(self.files)  # the refusals of a first run (a missing file, a wrong suffix) on every run
        parts = token_cache.key_parts(self.files, self.tokenizer, self.max_length, self._row_options())
        folder = token_cache.entry_folder(token_cache.cache_root(self.cache_dir), parts)
        start = time.perf_counter()
        files = token_cache.load_entry(folder)
        if files is not None:
            rows = sum(len(ds) for ds in files.splits.values())
            self.cache_use = token_cache.CacheUse(folder, True, rows, time.perf_counter() - start)
            log.info("tokenized splits reused from %s (%d rows)", folder, rows)
        else:
            files = self._tokenize_into(folder, parts)
        held = self._hold_out(files.splits, files.multi_label) if self.source == "train" else files.splits
        labeled = LabeledSplits(held.select_columns([TEXT, LABELS]), files.label_names, files.multi_label)
        return labeled, held.remove_columns([TEXT])

    def _tokenize_into(self, folder: Path, parts: dict) -> LabeledSplits:
        """The files read, checked and tokenized into a new cache entry at `folder`, opened from there; where the
        entry cannot be written (a read-only or full disk), tokenized in memory."""
        files = self.file_splits()
        rows = sum(len(ds) for ds in files.splits.values())
        try:
            seconds = token_cache.write_entry(folder, files, self.tokenizer, self.max_length, parts)
            entry = token_cache.load_entry(folder)
            if entry is None:  # replaced by a run writing the same entry at this instant
                raise FileNotFoundError(f"{folder} is gone")
        except OSError as err:
            log.warning("could not cache the tokenized splits at %s (%s): tokenizing in memory", folder, err)
            start = time.perf_counter()
            splits = tokenize_splits(files.splits, self.tokenizer, self.max_length, keep_text=True)
            self.cache_use = token_cache.CacheUse(folder, False, rows, time.perf_counter() - start)
            return LabeledSplits(splits, files.label_names, files.multi_label)
        self.cache_use = token_cache.CacheUse(folder, False, rows, seconds)
        speed = rows / max(seconds, 1e-9)
        log.info("tokenized %d rows in %.1f s (%.0f rows/s) and cached at %s", rows, seconds, speed, folder)
        return entry

    def _row_options(self) -> dict:
        """The options that decide what rows the files give (the cache's key, beside the files' contents)."""
        return {
            "text_column": self.text_column,
            "label_column": self.label_column,
            "label_columns": self.label_columns,
            "label_separator": self.label_separator,
            "label_names": self.id_names,
            "delimiter": self.delimiter,
            "column_names": self.column_names,
            "encoding": self.encoding,
        }

    def _multi_label(self, train: Dataset) -> bool:
        is_list = not self.label_columns and isinstance(train.features[self.label_column], List)
        return bool(self.label_columns or self.label_separator or is_list)

    def _check_columns(self, raw: DatasetDict) -> None:
        wanted = {self.text_column: "set data.text_column={!r}"}
        if self.label_columns:
            wanted |= {column: "use {!r} in data.label_columns" for column in self.label_columns}
        else:
            wanted[self.label_column] = "set data.label_column={!r}"
        for split, ds in raw.items():
            missing = next((c for c in wanted if c not in ds.column_names), None)
            if missing is None:
                continue
            near = next((c for c in ds.column_names if c.strip().lower() == missing.strip().lower()), None)
            if near is not None:
                why = "has spaces" if near.strip() != near else "differs in case"
                raise ConfigError(
                    f"{self.files[split]} has no column {missing!r}; column {near!r} {why}: "
                    f"rename it or {wanted[missing].format(near)}"
                )
            raise ConfigError(
                f"{self.files[split]} has no column {missing!r} (columns: {', '.join(ds.column_names)}): "
                "set data.text_column / data.label_column(s)"
            )

    def _check_header_rows(self, raw: DatasetDict) -> None:
        """Refuse a file given `column_names` whose row 1 looks like its own header: its values are the column
        names (in any case), or (single-label) they are single words and its label occurs in no other row of any
        file while the file has ≥ 3 rows."""
        single = self.label_column and not self.label_separator
        label_cells = {split: column_values(ds, self.label_column) for split, ds in raw.items()} if single else {}
        later = {labels.label_text(v) for cells in label_cells.values() for v in cells[1:] if not labels.is_missing(v)}
        delimiter = csv_delimiter(table_format(self.files[self.source]), self.delimiter, "data.delimiter")
        for split, ds in raw.items():
            first = [ds[0][c] for c in self.column_names]
            words = [v.strip().lower() if isinstance(v, str) else None for v in first]
            names_it = words == [c.strip().lower() for c in self.column_names]
            cells = label_cells.get(split, [])
            lone = len(cells) >= 3 and all(w and len(w.split()) == 1 for w in words)
            if names_it or (lone and labels.label_text(cells[0]) not in later):
                shown = delimiter.join("" if v is None else str(v) for v in first)
                raise ConfigError(
                    f"{self.files[split]} row 1 looks like a header ({shown}): "
                    "drop data.column_names, the file names its columns"
                )

    def _check_texts(self, ds: Dataset, split: str) -> None:
        """Refuse a missing or non-string text, naming its row; read in blocks (no list of a million texts)."""
        column = ds.select_columns([self.text_column])
        for first, block in enumerate(column.iter(batch_size=TEXT_BLOCK)):
            for row, text in enumerate(block[self.text_column], first * TEXT_BLOCK + 1):
                if labels.is_missing(text):
                    raise ConfigError(
                        f"{self.files[split]} row {row} has no text in column {self.text_column!r}: "
                        "fill it in or drop it"
                    )
                if not isinstance(text, str):
                    raise ConfigError(
                        f"{self.files[split]} row {row} has the {type(text).__name__} {text!r} in column "
                        f"{self.text_column!r}, not a string: make every text a string"
                    )

    def _row_labels(self, ds: Dataset, split: str) -> list[list[str]]:
        if self.label_columns:
            return labels.flag_rows({c: column_values(ds, c) for c in self.label_columns}, self.files[split])
        feature = ds.features[self.label_column]
        values = column_values(ds, self.label_column)
        return labels.column_rows(values, feature, self.label_separator, self.files[split], self.label_column)

    def _names(self, train: Dataset, rows: dict[str, list[list[str]]]) -> tuple[list[str], dict]:
        """The label names, and `rows` in terms of them (ids replaced by `label_names`)."""
        if self.label_columns:
            return list(self.label_columns), rows
        feature = train.features[self.label_column]
        inner = feature.feature if isinstance(feature, List) else feature
        if isinstance(inner, ClassLabel):
            if self.id_names is not None:
                raise ConfigError(
                    f"{self.files[self.source]} column {self.label_column!r} names its labels already "
                    f"({', '.join(inner.names)}): drop data.label_names"
                )
            return list(inner.names), rows
        if self.id_names is not None:
            named = {split: labels.name_ids(r, self.id_names, self.files[split]) for split, r in rows.items()}
            return list(self.id_names), named
        for split, split_rows in rows.items():
            labels.check_one_kind(split_rows, self.files[split])
        if not self._multi_label(train):
            labels.check_not_joined({self.files[split]: r for split, r in rows.items()})
        return labels.sorted_names(rows[self.source]), rows

    def _hold_out(self, splits: DatasetDict, multi_label: bool) -> DatasetDict:
        """Carve the missing test, then validation split out of train: disjoint, seeded, stratified if it can be."""
        fractions = {"test": self.test_fraction, "validation": self.validation_fraction}
        count = len(splits["train"])
        sizes = {s: max(1, round(f * count)) for s, f in fractions.items() if s not in splits and f > 0}
        if sizes and sum(sizes.values()) >= count:
            raise ConfigError(
                f"{self.files['train']} has {count} rows, too few to hold out {' and '.join(sizes)} rows: "
                f"add rows or give {' and '.join(f'data.{split}_file' for split in sizes)}"
            )
        rng = np.random.default_rng(self.seed)
        train = splits["train"]
        class_ids = None if multi_label or not sizes else np.asarray(column_values(train, LABELS))
        remaining = np.arange(count)  # rows of the train file not held out yet
        for split, size in sizes.items():  # each split's indices into the file's table: one mapping, never a copy
            ids = None if class_ids is None else class_ids[remaining]
            picked = held_out_rows(len(remaining), size, rng, ids)
            splits[split] = train.select(remaining[picked])
            remaining = np.delete(remaining, picked)
        if sizes:
            splits["train"] = train.select(remaining)
        return splits


def column_values(ds: Dataset, column: str) -> list:
    """A column's values as a list (at arrow speed: iterating a `datasets` column goes row by row)."""
    return column_array(ds, column).to_pylist()


def held_out_rows(count: int, size: int, rng: np.random.Generator, class_ids: list[int] | None = None) -> np.ndarray:
    """`size` of `count` row indices drawn at random, sorted. With `class_ids`, stratified: each class gives its
    share (largest remainders rounded up), unless a class is too rare (one row, or fewer rows than classes on
    either side), where the draw is plain random as without."""
    if class_ids is not None:
        y = np.asarray(class_ids)
        classes, counts = np.unique(y, return_counts=True)
        if counts.min() >= 2 and len(classes) <= size <= count - len(classes):
            share = size * counts / count
            take = np.floor(share).astype(int)
            take[np.argsort(take - share, kind="stable")[: size - take.sum()]] += 1
            picked = [rng.permutation(np.flatnonzero(y == c))[:k] for c, k in zip(classes, take)]
            return np.sort(np.concatenate(picked))
    return np.sort(rng.permutation(count)[:size])


def check_label_names(names: list[str], with_label_columns: bool) -> None:
    if with_label_columns:
        raise ConfigError("data.label_names names the ids in data.label_column: drop it (data.label_columns are names)")
    if len(names) < 2:
        raise ConfigError(f"data.label_names={names} has fewer than two names: give one name per label id 0..k-1")
    twice = next((name for name in names if names.count(name) > 1), None)
    if twice is not None:
        raise ConfigError(f"data.label_names has {twice!r} twice: give each label id its own name")


def check_fractions(validation_fraction: float, test_fraction: float) -> None:
    if not 0 < validation_fraction < 1:
        raise ConfigError(f"data.validation_fraction={validation_fraction} must be between 0 and 1")
    if not 0 <= test_fraction < 1:
        raise ConfigError(f"data.test_fraction={test_fraction} must be in [0, 1): 0 holds out no test split")
    if validation_fraction + test_fraction >= 1:
        raise ConfigError(
            f"data.validation_fraction={validation_fraction} + data.test_fraction={test_fraction} must stay below 1: "
            "lower them, so that training keeps some rows"
        )


def encode(texts: Dataset, rows: list[list[str]], names: list[str], multi_label: bool) -> Dataset:
    """A split as `text` (the file's own column, not copied) + `labels` (class id, or multi-hot floats)."""
    index = {name: i for i, name in enumerate(names)}
    if multi_label:
        values = [multi_hot([index[label] for label in row], len(names)) for row in rows]
        feature = List(Value("float32"))
    else:
        values, feature = [index[row[0]] for row in rows], ClassLabel(names=names)
    (column,) = texts.column_names  # a string column (checked), kept as read: large_string from pandas 3 and JSON
    texts = texts.rename_column(column, TEXT) if column != TEXT else texts
    return texts.add_column(LABELS, values, feature=feature)
