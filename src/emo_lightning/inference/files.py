"""Predict a whole file of texts: its rows, each with the predicted labels and every label's probability."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from datasets import Dataset

from emo_lightning.data.tables import (
    BUILDERS,
    DEFAULT_DELIMITER,
    GZIP,
    is_gzipped,
    name_and_suffix,
    read_lines,
    read_tables,
    table_format,
    table_suffix,
    write_table,
)
from emo_lightning.inference.predictor import EmotionPredictor
from emo_lightning.utils.errors import ConfigError

PREDICTED = "predicted"  # the predicted labels, best first, joined by ","
PROBABILITY = "prob_"  # prefix of the one probability column per label


@dataclass
class FilePredictions:
    output_file: Path
    rows: int
    label_counts: Counter  # how many rows got each label


def default_output_file(input_file: Path) -> Path:
    """`texts.csv` → `texts.predictions.csv` beside it (a plain .txt list of texts → .csv; gzipped stays gzipped:
    `texts.csv.gz` → `texts.predictions.csv.gz`)."""
    name, suffix = name_and_suffix(input_file)
    if table_format(input_file) == ".txt":
        suffix = ".csv" + (GZIP if is_gzipped(input_file) else "")
    return input_file.with_name(f"{name}.predictions{suffix}")


def with_csv_suffix(path: Path) -> Path:
    """`out.txt` → `out.csv`, `out.txt.gz` → `out.csv.gz`."""
    return path.with_name(name_and_suffix(path)[0] + ".csv" + (GZIP if is_gzipped(path) else ""))


def is_line_file(input_file: Path, delimiter: str | None) -> bool:
    """A .txt file (or .txt.gz) without a delimiter holds one text per line (read as column `text`)."""
    return table_format(input_file) == ".txt" and delimiter is None


def output_delimiter(input_file: Path, output_file: Path, delimiter: str | None) -> str | None:
    """The delimiter `output_file` is written with, checked before any prediction.

    `delimiter` is the input's; it is the output's too for an output of the same suffix, or for an input that
    has none (JSON, parquet). A .txt output has no default, so it needs one.
    """
    suffix = table_suffix({"output_file": str(output_file)})
    input_is_csv = BUILDERS.get(table_format(input_file)) == "csv"
    chosen = delimiter if suffix == table_format(input_file) or not input_is_csv else None
    if BUILDERS[suffix] == "csv" and not (chosen or suffix in DEFAULT_DELIMITER):
        alternative = "" if input_is_csv else " or set delimiter=';'"
        raise ConfigError(
            f"output_file={output_file} needs a delimiter (.txt files have none by default): "
            f"use output_file={with_csv_suffix(output_file)}{alternative}"
        )
    return chosen


def read_texts(input_file: Path, text_column: str, delimiter: str | None, encoding: str = "utf-8") -> Dataset:
    """The input rows (a line file: one row per line, column `text`)."""
    if is_line_file(input_file, delimiter):
        return read_lines(str(input_file), encoding)
    table = read_tables({"input": str(input_file)}, delimiter, keys="", encoding=encoding)["input"]
    if text_column not in table.column_names:
        raise ConfigError(
            f"{input_file} has no column {text_column!r} (columns: {', '.join(table.column_names)}): set text_column"
        )
    return table


def planned_output_file(input_file: str | Path, output_file: str | Path | None, overwrite: bool = False) -> Path:
    """Where `predict_file` will write; refused before any work when the input is missing or the output exists
    (unless `overwrite`)."""
    input_file = Path(input_file).expanduser()
    if not input_file.is_file():
        raise ConfigError(f"input_file={input_file} does not exist: give a file of texts (CSV, TSV, JSON, .txt, …)")
    output_file = Path(output_file).expanduser() if output_file else default_output_file(input_file)
    if output_file.exists() and not overwrite:
        raise ConfigError(
            f"output_file={output_file} exists: give another output_file, or overwrite=true to replace it"
        )
    if output_file.resolve() == input_file.resolve():
        raise ConfigError(f"output_file={output_file} is the input_file: give another output_file")
    return output_file


def predict_file(
    predictor: EmotionPredictor,
    input_file: str | Path,
    output_file: str | Path | None = None,
    text_column: str = "text",
    delimiter: str | None = None,
    encoding: str = "utf-8",
    overwrite: bool = False,
) -> FilePredictions:
    """Write `input_file`'s rows plus `predicted` and `prob_<label>` columns to `output_file` (an existing one only
    with `overwrite`, and then replaced whole: the old file stays until the new one is written)."""
    output_file = planned_output_file(input_file, output_file, overwrite)
    input_file = Path(input_file).expanduser()
    write_delimiter = output_delimiter(input_file, output_file, delimiter)  # a bad output fails before predicting
    text_column = "text" if is_line_file(input_file, delimiter) else text_column
    table = read_texts(input_file, text_column, delimiter, encoding)
    names = predictor.spec.label_names
    added = [PREDICTED] + [PROBABILITY + name for name in names]
    clash = next((column for column in added if column in table.column_names), None)
    if clash:
        raise ConfigError(f"{input_file} already has a column {clash!r}, which predict.py adds: rename that column")
    texts = table[text_column]
    for row, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"{input_file} row {row + 1} has no text in column {text_column!r}: fill or drop it")

    predictions = predictor.predict(texts, progress=True)
    table = table.add_column(PREDICTED, [",".join(p.labels) for p in predictions])
    scores = [dict(p.scores) for p in predictions]
    for name in names:
        table = table.add_column(PROBABILITY + name, [row[name] for row in scores])
    output_file.parent.mkdir(parents=True, exist_ok=True)
    name, suffix = name_and_suffix(output_file)
    partial = output_file.with_name(f".{name}.partial{suffix}")
    write_table(table, partial, write_delimiter)
    os.replace(partial, output_file)  # a failed write leaves no half-written output behind
    counts = Counter(label for p in predictions for label in p.labels)
    return FilePredictions(output_file, len(predictions), counts)
