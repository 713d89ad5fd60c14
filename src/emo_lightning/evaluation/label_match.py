"""A model's labels against another dataset's, matched by name: which gold labels it can score, and how.

`evaluate.py` scores a trained model on any labelled data. The data's names are first renamed by `labels.map`;
then a gold label the model lacks is refused (`labels.unknown=refuse`) or dropped (`drop`: the rows of a
single-label dataset that carry it, or the label from a multi-label row's set); a model label the data lacks is
refused (`labels.missing=refuse`), kept (`keep`: the model may still predict it, which counts as an error), or left
out of the decision (`restrict`: the model decides among the data's labels only, the usual way to score a model on
a dataset with fewer classes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from emo_lightning.utils.errors import ConfigError

UNKNOWN = ("refuse", "drop")
MISSING = ("refuse", "keep", "restrict")


@dataclass
class LabelMatch:
    """How the data's labels sit in the model's label space."""

    model_names: list[str]
    to_model: list[int | None]  # data label id → model label id (None: dropped)
    scored: list[int]  # the model label ids decided and scored (all but the missing ones under `restrict`)
    notes: list[str] = field(default_factory=list)

    @property
    def scored_names(self) -> list[str]:
        return [self.model_names[i] for i in self.scored]


def check_choice(key: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ConfigError(f"{key}={value} is not one of {', '.join(choices)}: e.g. {key}={choices[0]}")


def match_labels(
    data_names: Sequence[str],
    model_names: Sequence[str],
    mapping: Mapping[str, str] | None = None,
    unknown: str = "refuse",
    missing: str = "refuse",
) -> LabelMatch:
    """Match `data_names` to `model_names` by name (after `mapping`, data name → model name); one line for a
    mismatch the options do not allow, naming the labels and the option that would take them."""
    check_choice("labels.unknown", unknown, UNKNOWN)
    check_choice("labels.missing", missing, MISSING)
    mapping = dict(mapping or {})
    stray = sorted(set(mapping) - set(data_names))
    if stray:
        raise ConfigError(
            f"labels.map renames {', '.join(stray)}, which the data does not have (its labels: "
            f"{', '.join(data_names)}): map only the data's labels"
        )
    wrong = sorted({target for target in mapping.values() if target not in model_names})
    if wrong:
        raise ConfigError(
            f"labels.map maps to {', '.join(map(str, wrong))}, which the model does not have (its labels: "
            f"{', '.join(model_names)}): map to one of the model's labels"
        )
    renamed = [mapping.get(name, name) for name in data_names]
    index = {name: i for i, name in enumerate(model_names)}
    notes = [f"the data's {old} scored as the model's {new}" for old, new in mapping.items() if old != new]
    lacking = [name for name in renamed if name not in index]
    if lacking and unknown == "refuse":
        raise ConfigError(
            f"the data has labels the model lacks: {', '.join(lacking)}: map them to the model's labels with "
            f"labels.map='{{{lacking[0]}: <label>}}' or drop them with labels.unknown=drop (the model knows "
            f"{', '.join(model_names)})"
        )
    if lacking:
        notes.append(f"dropped the data's labels the model lacks: {', '.join(lacking)}")
    to_model = [index.get(name) for name in renamed]
    present = {i for i in to_model if i is not None}
    absent = [name for i, name in enumerate(model_names) if i not in present]
    if absent and missing == "refuse":
        raise ConfigError(
            f"the data lacks labels the model predicts: {', '.join(absent)}: decide among the data's labels only "
            "with labels.missing=restrict, or labels.missing=keep to count a prediction of them as an error"
        )
    scored = list(range(len(model_names)))
    if absent and missing == "restrict":
        scored = sorted(present)
        notes.append(f"decided among the data's labels only: left out {', '.join(absent)}")
    elif absent:
        notes.append(f"the model may predict labels the data lacks (scored as errors): {', '.join(absent)}")
    return LabelMatch(list(model_names), to_model, scored, notes)


def check_kinds(data_multi_label: bool, model_multi_label: bool) -> None:
    """A single-label model cannot score label sets; a multi-label one scores single labels as sets of one."""
    if data_multi_label and not model_multi_label:
        raise ConfigError(
            "the data is multi-label and the model single-label: score a multi-label model on it (a run of a "
            "multi-label dataset)"
        )


def gold_in_model_space(
    targets: Sequence, data_multi_label: bool, model_multi_label: bool, match: LabelMatch
) -> tuple[torch.Tensor, torch.Tensor]:
    """(kept row mask, targets of the kept rows over `match.scored`): class ids for a single-label model, multi-hot
    rows for a multi-label one. A single-label row whose label is dropped is dropped with it."""
    check_kinds(data_multi_label, model_multi_label)
    position = {model_id: j for j, model_id in enumerate(match.scored)}
    columns = [position.get(m) if m is not None else None for m in match.to_model]  # data id → scored column
    rows = torch.as_tensor(list(targets))
    if not data_multi_label:
        ids = [columns[int(i)] for i in rows.tolist()]
        keep = torch.tensor([i is not None for i in ids], dtype=torch.bool)
        picked = torch.tensor([i for i in ids if i is not None], dtype=torch.long)
        if model_multi_label:
            return keep, torch.nn.functional.one_hot(picked, len(match.scored)).float()
        return keep, picked
    gold = torch.zeros(len(rows), len(match.scored))
    for data_id, column in enumerate(columns):
        if column is not None:
            gold[:, column] = torch.maximum(gold[:, column], rows[:, data_id].float())
    return torch.ones(len(rows), dtype=torch.bool), gold


def restricted(probs: torch.Tensor, match: LabelMatch, multi_label: bool) -> torch.Tensor:
    """The model's probabilities over the scored labels only (single-label: renormalized to sum to 1)."""
    if len(match.scored) == len(match.model_names):
        return probs
    kept = probs[:, match.scored]
    return kept if multi_label else kept / kept.sum(dim=1, keepdim=True).clamp_min(1e-12)
