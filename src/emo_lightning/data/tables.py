"""Tables of texts on disk: CSV / TSV / TXT / JSON / JSONL / parquet, read and written with the datasets library."""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset, DatasetDict, load_dataset

from emo_lightning.utils.errors import ConfigError

BUILDERS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
}
DEFAULT_DELIMITER = {".csv": ",", ".tsv": "\t"}


def table_suffix(files: dict[str, str]) -> str:
    """The one suffix all files (`{config key: path}`) share, if the datasets library can read it."""
    suffixes = {Path(p).suffix.lower() for p in files.values()}
    if len(suffixes) != 1 or next(iter(suffixes)) not in BUILDERS:
        raise ConfigError(
            f"{', '.join(files)} {'have suffixes' if len(files) > 1 else 'has suffix'} {sorted(suffixes)}: "
            f"use one of {', '.join(BUILDERS)}{' for all of them' if len(files) > 1 else ''}"
        )
    return suffixes.pop()


def csv_delimiter(suffix: str, delimiter: str | None, key: str) -> str:
    """The field separator of a CSV-like file: the one given, else the suffix's own (none for .txt)."""
    delimiter = delimiter or DEFAULT_DELIMITER.get(suffix)
    if delimiter is None:
        raise ConfigError(f"{suffix} files need {key} (e.g. {key}=';')")
    return delimiter


def read_tables(
    files: dict[str, str], delimiter: str | None = None, column_names: list[str] | None = None, keys: str = "data."
) -> DatasetDict:
    """Load each split's file (`{split: path}`) with the builder its suffix names.

    Every problem (a missing file, an unknown suffix, a parser error) is a one-line ConfigError naming the config
    keys to fix; `keys` prefixes them (`data.` for training files, nothing for predict.py's `input_file`).
    """
    for split, path in files.items():
        if not Path(path).is_file():
            raise ConfigError(f"{keys}{split}_file={path} does not exist: give the path of an existing file")
    suffix = table_suffix({f"{keys}{split}_file": path for split, path in files.items()})
    options = {}
    if BUILDERS[suffix] == "csv":
        options = {"sep": csv_delimiter(suffix, delimiter, f"{keys}delimiter"), "column_names": column_names}
    try:
        return load_dataset(BUILDERS[suffix], data_files=files, **options)
    except Exception as err:  # the datasets library wraps parser errors in several types
        cause = err.__cause__ or err
        first_line = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        raise ConfigError(
            f"could not read {next(iter(files.values()))} as {BUILDERS[suffix]} ({first_line}): "
            f"check the file and {keys}delimiter / {keys}column_names"
        ) from err


def write_table(table: Dataset, path: Path, delimiter: str | None = None, key: str = "output_file") -> None:
    """Write `table` in the format `path`'s suffix names (a JSON array for .json, JSON lines for .jsonl)."""
    suffix = table_suffix({key: str(path)})
    if BUILDERS[suffix] == "csv":
        table.to_csv(path, sep=csv_delimiter(suffix, delimiter, "delimiter"), index=False)
    elif suffix == ".json":
        table.to_json(path, lines=False, orient="records", batch_size=max(len(table), 1), force_ascii=False)
    elif suffix == ".jsonl":
        table.to_json(path, lines=True, force_ascii=False)
    else:
        table.to_parquet(path)
