"""A user's own CSV / TSV / JSON / JSONL / parquet files, described by config alone."""

from __future__ import annotations

from pathlib import Path

from datasets import ClassLabel, DatasetDict, Features, List, Value

from emo_lightning.data.datamodule import TextClassificationDataModule
from emo_lightning.data.encoding import LABELS, TEXT, LabeledSplits, multi_hot
from emo_lightning.data.tables import read_tables
from emo_lightning.utils.errors import ConfigError


class FilesDataModule(TextClassificationDataModule):
    """Train on your own files.

    Labels come in one of three forms:
      - `label_column` of class names or ids (single-label), or of lists of them (multi-label),
        or of strings joined by `label_separator` (multi-label, e.g. "joy,love");
      - `label_columns`: several 0/1 columns, one per label (multi-label; the column names are the labels).
    Label names are read from the data: the ClassLabel feature if the file has one, else the sorted set of
    values seen in the training file.

    Args:
        train_file / validation_file / test_file: paths; without a validation file, `validation_fraction`
            of train is held out with `seed` (stratified for single-label data); `seed` also orders training.
        text_column: the column holding the text.
        delimiter: field separator for CSV/TSV/TXT (the seeds' emotion files use ";").
        column_names: names for the columns of a header-less CSV/TXT file.
    """

    def __init__(
        self,
        train_file: str,
        validation_file: str | None = None,
        test_file: str | None = None,
        text_column: str = "text",
        label_column: str | None = None,
        label_columns: list[str] | None = None,
        label_separator: str | None = None,
        delimiter: str | None = None,
        column_names: list[str] | None = None,
        validation_fraction: float = 0.1,
        seed: int = 42,
        **kwargs,
    ) -> None:
        super().__init__(seed=seed, **kwargs)
        if (label_column is None) == (label_columns is None):
            raise ConfigError("data=files needs exactly one of data.label_column or data.label_columns")
        if not 0 < validation_fraction < 1:
            raise ConfigError(f"data.validation_fraction={validation_fraction} must be between 0 and 1")
        self.files = {"train": train_file, "validation": validation_file, "test": test_file}
        self.files = {split: str(Path(f).expanduser()) for split, f in self.files.items() if f}
        self.text_column = text_column
        self.label_column = label_column
        self.label_columns = list(label_columns) if label_columns else None
        self.label_separator = label_separator
        self.delimiter = delimiter
        self.column_names = list(column_names) if column_names else None
        self.validation_fraction = validation_fraction

    @property
    def name(self) -> str:
        return Path(self.files["train"]).name

    def load_splits(self) -> LabeledSplits:
        raw = self._read_files()
        self._check_columns(raw)
        names, multi_label = self._label_names(raw["train"])
        splits = DatasetDict({s: self._encode(d, s, names, multi_label) for s, d in raw.items()})
        if "validation" not in splits:
            splits = self._hold_out_validation(splits, multi_label)
        return LabeledSplits(splits, names, multi_label)

    def _read_files(self) -> DatasetDict:
        return read_tables(self.files, self.delimiter, self.column_names)

    def _check_columns(self, raw: DatasetDict) -> None:
        wanted = [self.text_column] + (self.label_columns or [self.label_column])
        for split, ds in raw.items():
            missing = [c for c in wanted if c not in ds.column_names]
            if missing:
                raise ConfigError(
                    f"{self.files[split]} has no column {missing[0]!r} (columns: {', '.join(ds.column_names)}): "
                    "set data.text_column / data.label_column(s)"
                )

    def _label_names(self, train) -> tuple[list[str], bool]:
        if self.label_columns:
            return list(self.label_columns), True
        feature = train.features[self.label_column]
        inner = feature.feature if isinstance(feature, List) else feature
        if isinstance(inner, ClassLabel):
            return list(inner.names), isinstance(feature, List)
        values = self._values_of(train[self.label_column], isinstance(feature, List))
        seen = {str(v) for row in values for v in row}
        numeric_first = sorted(seen, key=lambda v: (not v.isdigit(), int(v) if v.isdigit() else 0, v))
        return numeric_first, isinstance(feature, List) or bool(self.label_separator)

    def _values_of(self, column, is_list: bool) -> list[list]:
        """Each row's labels as a list, whatever form the column has."""
        if is_list:
            return [list(row) for row in column]
        if self.label_separator:
            return [[v.strip() for v in str(row).split(self.label_separator) if v.strip()] for row in column]
        return [[row] for row in column]

    def _encode(self, ds, split: str, names: list[str], multi_label: bool):
        """Map a raw split to `text` + `labels` (class id, or multi-hot floats)."""
        index = {name: i for i, name in enumerate(names)}
        texts = list(ds[self.text_column])
        for row, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise ConfigError(f"{self.files[split]} row {row + 1} has no text in column {self.text_column!r}")
        if self.label_columns:
            rows = [[index[c] for c in self.label_columns if r[c] not in (0, False, None, "0")] for r in ds]
        else:
            feature = ds.features[self.label_column]
            column = ds[self.label_column]
            inner = feature.feature if isinstance(feature, List) else feature
            values = self._values_of(column, isinstance(feature, List))
            if isinstance(inner, ClassLabel):
                values = [[inner.int2str(v) for v in row] for row in values]
            rows = []
            for row_number, row in enumerate(values):
                unknown = [str(v) for v in row if str(v) not in index]
                if unknown:
                    raise ConfigError(
                        f"{self.files[split]} row {row_number + 1} has label {unknown[0]!r}, which the training file "
                        f"never uses (labels: {', '.join(names)}): fix the label or add training examples of it"
                    )
                rows.append([index[str(v)] for v in row])
        if multi_label:
            labels, label_feature = [multi_hot(r, len(names)) for r in rows], List(Value("float32"))
        else:
            if any(len(r) != 1 for r in rows):
                raise ConfigError(f"{self.files[split]}: single-label data needs exactly one label per row")
            labels, label_feature = [r[0] for r in rows], ClassLabel(names=names)
        features = Features({TEXT: Value("string"), LABELS: label_feature})
        return type(ds).from_dict({TEXT: texts, LABELS: labels}, features=features)

    def _hold_out_validation(self, splits: DatasetDict, multi_label: bool) -> DatasetDict:
        train = splits["train"]
        try:
            parts = train.train_test_split(
                test_size=self.validation_fraction,
                seed=self.seed,
                stratify_by_column=None if multi_label else LABELS,
            )
        except ValueError:  # a class too rare to stratify
            parts = train.train_test_split(test_size=self.validation_fraction, seed=self.seed)
        splits["train"], splits["validation"] = parts["train"], parts["test"]
        return splits
