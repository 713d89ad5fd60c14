"""Tables of texts on disk: CSV / TSV / TXT / JSON / JSONL / parquet, read and written with the datasets library.

The first five may be gzipped (`train.csv.gz`): read as their inner format (the datasets library decompresses them
on the fly), and written gzipped where the output's name ends in `.gz`.

Every problem with a file (missing, unreadable, empty, wrongly encoded, wrongly separated, malformed) is a one-line
ConfigError that names the file and the config key to fix.
"""

from __future__ import annotations

import codecs
import gzip
import json
import zlib
from pathlib import Path

import pandas as pd
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
GZIP = ".gz"
GZIPPABLE = (".csv", ".tsv", ".txt", ".json", ".jsonl")  # parquet compresses its own columns
DEFAULT_DELIMITER = {".csv": ",", ".tsv": "\t"}
SEPARATORS = {";": "`;`", "\t": "tab", ",": "`,`", "|": "`|`"}  # what a one-column header may really be split by


def file_suffix(path: str | Path) -> str:
    """A table file's suffix as written, lower-cased, gzip's included: `.csv` for posts.csv, `.csv.gz` for
    posts.csv.gz, `.gz` for posts.gz."""
    suffixes = [suffix.lower() for suffix in Path(path).suffixes]
    return "".join(suffixes[-2:]) if suffixes[-1:] == [GZIP] else "".join(suffixes[-1:])


def is_gzipped(path: str | Path) -> bool:
    return file_suffix(path).endswith(GZIP)


def table_format(path: str | Path) -> str:
    """The suffix that names a table file's format: `.csv` for posts.csv and posts.csv.gz; the suffix as written
    where it names no format (e.g. `.xlsx`, `.parquet.gz`)."""
    suffix = file_suffix(path)
    inner = suffix.removesuffix(GZIP)
    return inner if suffix.endswith(GZIP) and inner in GZIPPABLE else suffix


def name_and_suffix(path: str | Path) -> tuple[str, str]:
    """A table file's name split before its suffix as written: posts.csv.gz → ("posts", ".csv.gz")."""
    name = Path(path).name
    suffix = file_suffix(path)
    return name[: len(name) - len(suffix)], name[len(name) - len(suffix) :]


def table_suffix(files: dict[str, str]) -> str:
    """The one format (`table_format`) all files (`{config key: path}`) share, if the datasets library can read
    it; gzipped and plain files of one format go together."""
    formats = {table_format(p) for p in files.values()}
    if len(formats) != 1 or next(iter(formats)) not in BUILDERS:
        suffixes = sorted({file_suffix(p) for p in files.values()})
        gzipped = ", ".join(suffix + GZIP for suffix in GZIPPABLE)
        raise ConfigError(
            f"{', '.join(files)} {'have suffixes' if len(files) > 1 else 'has suffix'} {suffixes}: "
            f"use one of {', '.join(BUILDERS)}{' for all of them' if len(files) > 1 else ''} "
            f"(the first five may be gzipped: {gzipped})"
        )
    return formats.pop()


def csv_delimiter(suffix: str, delimiter: str | None, key: str) -> str:
    """The field separator of a CSV-like file: the one given (`\\t` as typed on a command line is a tab), else the
    suffix's own (none for .txt)."""
    delimiter = delimiter or DEFAULT_DELIMITER.get(suffix)
    if delimiter is None:
        raise ConfigError(f"{suffix} files need {key} (e.g. {key}=';')")
    return "\t" if delimiter == r"\t" else delimiter


def check_readable(key: str, path: str) -> None:
    """Refuse a path that is not a plain, readable, non-empty file."""
    file = Path(path)
    if not file.exists():
        raise ConfigError(f"{key}={path} does not exist: give the path of an existing file")
    if not file.is_file():
        kind = "a directory" if file.is_dir() else "not a regular file"
        raise ConfigError(f"{key}={path} is {kind}: give the path of a file")
    try:
        with file.open("rb"):
            pass
    except OSError as err:
        raise ConfigError(f"{key}={path} cannot be read ({err.strerror}): check its permissions") from err
    if file.stat().st_size == 0:
        raise no_rows(key, path)
    if is_gzipped(path):
        with file.open("rb") as handle:
            if handle.read(2) != b"\x1f\x8b":
                raise ConfigError(f"{path} is not gzip-compressed: compress it with gzip or drop .gz from its name")


def read_bytes(path: str) -> bytes:
    """A file's bytes, decompressed where it is gzipped; a damaged gzip file is a one-line ConfigError."""
    data = Path(path).read_bytes()
    if not is_gzipped(path):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as err:
        raise ConfigError(f"{path} is a damaged gzip file ({err}): compress it again") from err


def no_rows(key: str, path: str) -> ConfigError:
    return ConfigError(f"{key}={path} has no rows: add examples to it or give another file")


def read_tables(
    files: dict[str, str],
    delimiter: str | None = None,
    column_names: list[str] | None = None,
    keys: str = "data.",
    encoding: str = "utf-8",
    fresh: bool = False,
) -> DatasetDict:
    """Load each split's file (`{split: path}`) with the builder its suffix names, decoded with `encoding`.

    `keys` prefixes the config keys that messages name (`data.` for training files, nothing for predict.py's).
    `fresh`: parse the files again, never taking the datasets library's arrow copy of an earlier read, which it
    keys on a file's path and modification time alone (a file rewritten within one mtime tick, or given its old
    mtime back, would read as it was).
    """
    suffix = check_files(files, keys)
    if column_names and BUILDERS[suffix] != "csv":
        raise ConfigError(f"{keys}column_names is for header-less CSV / TSV / TXT files, not {suffix}: drop it")
    options = {}
    if BUILDERS[suffix] == "csv":
        sep = csv_delimiter(suffix, delimiter, f"{keys}delimiter")
        # texts and labels such as "None", "NA" or "null" stay strings; only an empty cell is missing
        options = {"sep": sep, "column_names": column_names, "keep_default_na": False}
        if column_names:
            check_unique_column_names(list(column_names), f"{keys}column_names")
        else:
            for path in files.values():
                check_unique_header(path, sep, encoding)
    return load_tables(BUILDERS[suffix], files, options, keys, encoding, fresh)


def check_files(files: dict[str, str], keys: str = "data.") -> str:
    """Refuse a file that is missing, unreadable or empty, or files of no one readable format; return the format."""
    for split, path in files.items():
        check_readable(f"{keys}{split}_file", path)
    return table_suffix({f"{keys}{split}_file": path for split, path in files.items()})


def check_unique_column_names(names: list[str], key: str) -> None:
    twice = next((name for name in names if names.count(name) > 1), None)
    if twice is not None:
        raise ConfigError(f"{key} has {twice!r} twice: give each column its own name")


def check_unique_header(path: str, sep: str, encoding: str) -> None:
    """Refuse a header that names one column twice: pandas would rename the second (`label` → `label.1`) and the
    first would be read without a word. The header is parsed as pandas parses it (quotes, a byte order mark,
    gzip), as a data row, so that no name is renamed."""
    try:
        header = pd.read_csv(
            path,
            sep=sep,
            header=None,
            nrows=1,
            dtype=str,
            keep_default_na=False,
            encoding=encoding,
            engine="c" if len(sep) == 1 else "python",
        )
    except Exception:  # an unreadable file: load_tables names its problem
        return
    names = [str(name) for name in header.iloc[0]] if len(header) else []
    twice = next((name for name in names if name and names.count(name) > 1), None)
    if twice is not None:
        places = [str(i) for i, name in enumerate(names, 1) if name == twice]
        raise ConfigError(
            f"{path} has {len(places)} columns named {twice!r} (columns {', '.join(places[:-1])} and {places[-1]}): "
            "rename or drop all but one of them"
        )


def read_lines(path: str, encoding: str = "utf-8") -> Dataset:
    """predict.py's `input_file` of one text per line, as column `text`."""
    check_readable("input_file", path)
    return load_tables("text", {"input": path}, {}, "", encoding)["input"]


def load_tables(
    builder: str, files: dict[str, str], options: dict, keys: str, encoding: str, fresh: bool = False
) -> DatasetDict:
    """`load_dataset(builder, data_files=files)` (`fresh`: parsed again, not the cached arrow copy); on failure,
    each file is examined for a problem to name."""
    if builder != "parquet":
        try:
            codecs.lookup(encoding)
        except LookupError as err:
            raise ConfigError(f"{keys}encoding={encoding} is not an encoding: use e.g. utf-8 or latin-1") from err
        options = {**options, "encoding": encoding}
    has_header = builder == "csv" and options.get("column_names") is None
    try:
        mode = "force_redownload" if fresh else None
        tables = load_dataset(builder, data_files=files, download_mode=mode, **options)
    except Exception as err:  # the datasets library wraps parser errors in several types
        for split, path in files.items():
            problem = file_problem(path, f"{keys}{split}_file", builder, has_header, options, keys)
            if problem:
                raise ConfigError(problem) from err
        cause = err.__cause__ or err
        first_line = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        raise ConfigError(
            f"could not read {next(iter(files.values()))} as {builder} ({first_line}): "
            f"check the file and {keys}delimiter / {keys}column_names"
        ) from err
    for split, table in tables.items():
        if len(table) == 0:
            raise no_rows(f"{keys}{split}_file", files[split])
        if has_header and len(table.column_names) == 1:
            problem = separator_problem(files[split], table.column_names[0], options["sep"], keys)
            if problem:
                raise ConfigError(problem)
    return tables


def file_problem(path: str, key: str, builder: str, has_header: bool, options: dict, keys: str) -> str | None:
    """What is wrong with a file the datasets library could not read, if it is one of the usual mistakes."""
    if builder == "parquet":
        return None
    data = read_bytes(path)
    try:
        text = data.decode(options["encoding"])
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        return (
            f"{path} is not valid {options['encoding']} (byte {data[err.start]:#04x} on line {line}): "
            f"set {keys}encoding=latin-1, or the encoding the file was saved in"
        )
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) <= has_header or (builder == "json" and text.strip() == "[]"):
        return str(no_rows(key, path))
    if builder == "json":
        return json_problem(path, text)
    return separator_problem(path, lines[0], options["sep"], keys) if has_header else None


def separator_problem(path: str, header: str, delimiter: str, keys: str) -> str | None:
    """A header that the delimiter does not split, but another common separator would."""
    if delimiter in header:
        return None
    found = next((sep for sep in SEPARATORS if sep != delimiter and sep in header), None)
    if found is None:
        return None
    return (
        f"{path}: found 1 column {header!r}; the file looks {SEPARATORS[found]}-separated: "
        f"set {keys}delimiter={found!r}"
    )


def json_problem(path: str, text: str) -> str | None:
    """The first line of a JSON / JSON-lines file that does not parse (or holds no object)."""
    try:
        json.loads(text)
        return None
    except json.JSONDecodeError as err:
        if text.lstrip().startswith("["):  # one JSON array
            return f"{path} line {err.lineno} is not valid JSON ({err.msg}): fix that line"
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            return f"{path} line {number} is not valid JSON ({err.msg}): fix that line"
        if not isinstance(row, dict):
            return f"{path} line {number} is not valid JSON (a {type(row).__name__}, not an object): fix that line"
    return None


def write_table(table: Dataset, path: Path, delimiter: str | None = None, key: str = "output_file") -> None:
    """Write `table` in the format `path`'s suffix names (a JSON array for .json, JSON lines for .jsonl; gzipped
    for a name ending in .gz), without datasets' "Creating CSV from Arrow format" bar (a write takes a blink)."""
    from emo_lightning.utils.console import no_datasets_bars

    suffix = table_suffix({key: str(path)})
    with no_datasets_bars():
        if not is_gzipped(path):
            _write_table(table, path, suffix, delimiter)
            return
        with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw) as compressed:
            _write_table(table, compressed, suffix, delimiter)  # filename "": the header names no temporary


def _write_table(table: Dataset, target, suffix: str, delimiter: str | None) -> None:
    """`target`: a path, or a binary file to write into."""
    if BUILDERS[suffix] == "csv":
        table.to_csv(target, sep=csv_delimiter(suffix, delimiter, "delimiter"), index=False)
    elif suffix == ".json":
        table.to_json(target, lines=False, orient="records", batch_size=max(len(table), 1), force_ascii=False)
    elif suffix == ".jsonl":
        table.to_json(target, lines=True, force_ascii=False)
    else:
        table.to_parquet(target)
