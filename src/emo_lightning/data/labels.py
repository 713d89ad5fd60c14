"""Labels as users write them, read strictly: each row's labels as strings, or a one-line error naming the row.

A row's labels are a list of strings: one for single-label data, any number for multi-label data. Ids are
written as digits ("3"), whether the file holds 3, 3.0 or "3".
"""

from __future__ import annotations

import math

from datasets import ClassLabel, List

from emo_lightning.utils.errors import ConfigError

POSITIVE = {"1", "1.0", "true", "yes"}
NEGATIVE = {"0", "0.0", "false", "no"}
JOINERS = (",", ";", "|")  # what "anger,joy" style combinations are joined by


def is_missing(value) -> bool:
    """None, NaN or a blank string."""
    if isinstance(value, float):
        return math.isnan(value)
    return value is None or (isinstance(value, str) and not value.strip())


def label_text(value) -> str:
    """A label as a string: ids 3 / 3.0 / " 3" → "3", names stripped."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def is_id(label: str) -> bool:
    return label.isascii() and label.isdigit()


def flag(value) -> bool | None:
    """A 0/1 cell as True/False (1, 1.0, True, "1", "1.0", "true", "yes" and their negatives); None otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return value == 1
    if isinstance(value, str) and value.strip().lower() in POSITIVE | NEGATIVE:
        return value.strip().lower() in POSITIVE
    return None


def flag_rows(columns: dict[str, list], file: str) -> list[list[str]]:
    """Each row's labels from 0/1 columns (`{label: cells}`): the labels whose cell is positive."""
    rows = [[] for _ in next(iter(columns.values()))]
    for name, cells in columns.items():
        for number, cell in enumerate(cells, 1):
            positive = flag(cell)
            if positive is None:
                shown = "an empty value" if is_missing(cell) else repr(cell)
                raise ConfigError(
                    f"{file} row {number} has {shown} in label column {name!r}: use 1/0, true/false or yes/no"
                )
            if positive:
                rows[number - 1].append(name)
    return rows


def column_rows(cells: list, feature, separator: str | None, file: str, column: str) -> list[list[str]]:
    """Each row's labels from one column of names or ids, lists of them, or strings joined by `separator`.

    An empty cell is an error, except with `separator`, where it is a row without labels (multi-label).
    """
    inner = feature.feature if isinstance(feature, List) else feature
    rows = []
    for number, cell in enumerate(cells, 1):
        if separator and not isinstance(feature, List):
            values = [] if is_missing(cell) else [v for v in str(cell).split(separator) if v.strip()]
        else:
            values = list(cell) if isinstance(feature, List) and cell is not None else [cell]
        if any(is_missing(v) or (isinstance(inner, ClassLabel) and v < 0) for v in values):
            raise ConfigError(f"{file} row {number} has no label in column {column!r}: fill it in or drop the row")
        if isinstance(inner, ClassLabel):
            values = [inner.int2str(v) for v in values]
        rows.append([label_text(v) for v in values])
    return rows


def check_one_kind(rows: list[list[str]], file: str) -> None:
    """Refuse labels mixing names and ids ("joy", "sadness", "3")."""
    first: dict[bool, tuple[int, str]] = {}
    for number, row in enumerate(rows, 1):
        for label in row:
            first.setdefault(is_id(label), (number, label))
        if len(first) == 2:
            (name_row, name), (id_row, label_id) = first[False], first[True]
            raise ConfigError(
                f"{file} mixes label names and ids ({name!r} in row {name_row}, {label_id!r} in row {id_row}): "
                "write every label as a name, or every label as an id and name the ids with data.label_names"
            )


def check_not_joined(rows_by_file: dict[str, list[list[str]]]) -> None:
    """Refuse single labels like "anger,joy" whose parts are labels of their own elsewhere (a missing separator)."""
    alone = {label for rows in rows_by_file.values() for row in rows for label in row}
    for file, rows in rows_by_file.items():
        checked = set()
        for number, row in enumerate(rows, 1):
            label = row[0]
            if label in checked:
                continue
            checked.add(label)
            for joiner in JOINERS:
                parts = [part.strip() for part in label.split(joiner)]
                if len(parts) >= 2 and all(part in alone for part in parts):
                    raise ConfigError(
                        f"{file} row {number} has label {label!r}, several labels joined by {joiner!r}: "
                        f"set data.label_separator={joiner!r} (multi-label)"
                    )


def name_ids(rows: list[list[str]], names: list[str], file: str) -> list[list[str]]:
    """Label ids 0..k-1 replaced by `names` (data.label_names)."""
    for number, row in enumerate(rows, 1):
        for label in row:
            if not is_id(label):
                raise ConfigError(
                    f"data.label_names names label ids, but {file} row {number} has label {label!r}: "
                    f"drop data.label_names (the file names its labels) or write ids 0..{len(names) - 1}"
                )
            if int(label) >= len(names):
                raise ConfigError(
                    f"{file} row {number} has label id {label}, but data.label_names has {len(names)} names "
                    f"(ids 0..{len(names) - 1}): fix the id or add its name to data.label_names"
                )
    return [[names[int(label)] for label in row] for row in rows]


def sorted_names(rows: list[list[str]]) -> list[str]:
    """The labels seen, ids in numeric order, names in alphabetical order."""
    seen = {label for row in rows for label in row}
    return sorted(seen, key=lambda v: (not is_id(v), int(v) if is_id(v) else 0, v))


def check_two_labels(rows: list[list[str]], file: str) -> None:
    """Refuse training data with examples of fewer than two labels."""
    seen = sorted({label for row in rows for label in row})
    if len(seen) < 2:
        what = f"examples of only one label ({seen[0]!r})" if seen else "no labeled examples"
        raise ConfigError(f"{file} has {what}: a classifier needs examples of at least two labels")


def check_known(rows: list[list[str]], names: list[str], file: str) -> None:
    """Refuse validation / test labels that training never uses."""
    known = set(names)
    for number, row in enumerate(rows, 1):
        unknown = [label for label in row if label not in known]
        if unknown:
            raise ConfigError(
                f"{file} row {number} has label {unknown[0]!r}, which the training file never uses "
                f"(labels: {', '.join(names)}): fix the label or add training examples of it"
            )
