"""The one table of settings' allowed values: `RULES[script]` maps a dotted key to its `Rule`, and train.py,
predict.py, serve.py, analyze.py, export.py, the sweeper and the Python API (`EmotionPredictor`'s threshold) all
check their values against it, so a range is written once and every refusal reads the same:
`<key>=<value> must be <range>: e.g. <key>=<example>`. A rule that relates two keys stays with the code that reads
them. Adding a rule is one line here."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from emo_lightning.utils.errors import ConfigError


@dataclass(frozen=True)
class Rule:
    """The values one setting takes: a number within bounds, or one of `others` (meaning `others_mean`)."""

    example: str
    above: float | None = None  # value > above
    at_least: float | None = None  # value ≥ at_least
    below: float | None = None  # value < below
    at_most: float | None = None  # value ≤ at_most
    integer: bool = False
    others: tuple = ()
    others_mean: str = ""
    numbers_only: bool = True  # False: values that are not numbers are left to the target (e.g. a time "00:30:00")

    def allows(self, value) -> bool:
        if any(value is other or (type(value) is type(other) and value == other) for other in self.others):
            return True
        if isinstance(value, bool) or not isinstance(value, int | float):
            return not self.numbers_only
        if (self.integer and not isinstance(value, int)) or value != value:  # NaN lies in no range
            return False
        return not (
            (self.above is not None and value <= self.above)
            or (self.at_least is not None and value < self.at_least)
            or (self.below is not None and value >= self.below)
            or (self.at_most is not None and value > self.at_most)
        )

    def bounds(self) -> str:
        low = f"> {number(self.above)}" if self.above is not None else ""
        low = f"≥ {number(self.at_least)}" if self.at_least is not None else low
        high = f"< {number(self.below)}" if self.below is not None else ""
        high = f"≤ {number(self.at_most)}" if self.at_most is not None else high
        text = " and ".join(part for part in (low, high) if part)
        if self.others:
            text += f", or {' / '.join(render(v) for v in self.others)} for {self.others_mean}"
        return text

    def text(self, value=None) -> str:
        """What the value must be, e.g. "> 0 and ≤ 1", "an int ≥ 1, or -1 / null for no limit"."""
        if self.integer:
            return f"an int {self.bounds()}"
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        return self.bounds() if is_number else f"a number {self.bounds()}"


def number(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


def render(value) -> str:
    """`value` as one writes it on the command line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "[" + ",".join(render(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{render(v)}" for k, v in value.items()) + "}"
    return str(value)


def count(example: str, at_least: int = 1) -> Rule:
    return Rule(example, at_least=at_least, integer=True)


def limit(example: str) -> Rule:
    return Rule(example, above=0, others=(None,), others_mean="all batches")


PROBABILITY = Rule("0.5", above=0, below=1)
SAVED_OR_PROBABILITY = Rule("0.5", above=0, below=1, others=(None,), others_mean="the thresholds saved with the model")

TRAIN: dict[str, Rule] = {
    "seed": Rule("42", at_least=0, at_most=2**32 - 1, integer=True),
    "threshold": PROBABILITY,
    "data.batch_size": count("32"),
    "data.eval_batch_size": count("128"),
    "data.max_length": count("128", at_least=2),
    "data.num_workers": Rule("2", at_least=0, integer=True, others=(None,), others_mean="automatic"),
    "data.validation_fraction": Rule("0.1", above=0, below=1),
    "data.test_fraction": Rule("0.1", at_least=0, below=1),
    "head.dropout": Rule("0.1", at_least=0, below=1),
    "head.inner_dim": Rule("256", at_least=1, integer=True, others=(None,), others_mean="the hidden size"),
    "loss.gamma": Rule("2", at_least=0),
    "loss.gamma_neg": Rule("4", at_least=0),
    "loss.gamma_pos": Rule("1", at_least=0),
    "loss.clip": Rule("0.05", at_least=0, below=1),
    "loss.label_smoothing": Rule("0.1", at_least=0, below=1),
    "loss.max_pos_weight": Rule("30", above=0),
    "optimizer.lr": Rule("1e-4", above=0, at_most=1),
    "optimizer.weight_decay": Rule("0.01", at_least=0),
    "scheduler.warmup_ratio": Rule("0.1", at_least=0, below=1),
    "param_groups.layer_decay": Rule("0.9", above=0, at_most=1),
    "thresholds.floor": Rule("0.05", above=0, at_most=0.95),
    "thresholds.min_positives": count("5", at_least=0),
    "thresholds.default": PROBABILITY,
    "callbacks.early_stopping.patience": count("3", at_least=0),
    "callbacks.ema.decay": Rule("0.998", above=0, below=1),
    "callbacks.progress_bar.refresh_rate": count("10", at_least=0),
    "trainer.max_epochs": Rule("3", at_least=1, integer=True, others=(-1, None), others_mean="no limit"),
    "trainer.max_steps": Rule("1000", at_least=1, integer=True, others=(-1,), others_mean="no limit"),
    "trainer.accumulate_grad_batches": count("2"),
    "trainer.gradient_clip_val": Rule("1.0", at_least=0, others=(None,), others_mean="no clipping"),
    "trainer.val_check_interval": Rule(
        "0.5", above=0, others=(None,), others_mean="once per epoch", numbers_only=False
    ),
    "trainer.limit_train_batches": limit("0.25"),
    "trainer.limit_val_batches": limit("0.25"),
    "trainer.limit_test_batches": limit("0.25"),
    "trainer.limit_predict_batches": limit("0.25"),
    "trainer.overfit_batches": Rule("2", at_least=0),
    "trainer.log_every_n_steps": count("50"),
    "trainer.num_nodes": count("1"),
    # tune=lr_find (conf/tune/lr_find.yaml); tune.min_lr below tune.max_lr is checked by the search itself
    "tune.min_lr": Rule("1e-7", above=0, below=1),
    "tune.max_lr": Rule("0.1", above=0, at_most=1),  # the suggestion becomes optimizer.lr, which is ≤ 1
    "tune.num_training": count("100", at_least=20),  # the suggestion skips the first 10 rates and the last one
    "tune.early_stop_threshold": Rule("4.0", above=1, others=(None,), others_mean="never stopping early"),
}
PREDICT: dict[str, Rule] = {
    "threshold": SAVED_OR_PROBABILITY,
    "top_k": Rule("3", at_least=1, integer=True, others=(None,), others_mean="every label"),
    "batch_size": count("64"),
}
SERVE: dict[str, Rule] = {
    "port": Rule("8000", at_least=0, at_most=65535, integer=True),  # 0: any free port
    "threshold": SAVED_OR_PROBABILITY,
    "batch_size": count("64"),
    "max_batch_size": count("64"),
    "batch_timeout": Rule("0.01", at_least=0),  # seconds
    "shutdown_timeout": Rule("30", above=0),  # seconds
    "limits.max_body_bytes": count("1048576"),
    "limits.max_texts": count("256"),
    "limits.max_text_chars": count("10000"),
}
ANALYZE: dict[str, Rule] = {
    "baseline.batch_size": count("128"),
    "baseline.C": Rule("1.0", above=0),  # smaller regularizes more
    "baseline.max_iter": count("1000"),
    "umap.n_neighbors": count("15", at_least=2),
    "umap.min_dist": Rule("0.1", at_least=0, at_most=1),
    "umap.gridsize": count("30"),
    "errors.batch_size": count("64"),
    "errors.top": count("20"),
    "report.top_errors": count("10", at_least=0),
}
EVALUATE: dict[str, Rule] = {"batch_size": count("64")}
EXPORT: dict[str, Rule] = {
    "max_int8_drop": Rule("0.005", at_least=0),
    "batch_size": count("64"),
}
SWEEP: dict[str, Rule] = {
    "hydra.sweeper.n_trials": count("4"),
    "hydra.sweeper.n_jobs": count("2"),
    "hydra.sweeper.pruner_startup_trials": count("2", at_least=0),
    "hydra.sweeper.pruner_warmup_steps": count("2", at_least=0),
}
RULES: dict[str, dict[str, Rule]] = {
    "train.py": TRAIN,
    "predict.py": PREDICT,
    "serve.py": SERVE,
    "analyze.py": ANALYZE,
    "evaluate.py": EVALUATE,
    "export.py": EXPORT,
    "sweeper": SWEEP,
}


def refusal(name: str, value: Any, rule: Rule) -> str:
    return f"{name}={render(value)} must be {rule.text(value)}: e.g. {name}={rule.example}"


def check_value(key: str, value: Any, rules: Mapping[str, Rule], name: str | None = None) -> None:
    """Raise ConfigError when `value` lies outside `rules[key]`; the message names `name` (default: the key)."""
    rule = rules[key]
    if not rule.allows(value):
        raise ConfigError(refusal(name or key, value, rule))


def plain_read(parent: Mapping, leaf: str, key: str) -> tuple[str, Any]:
    return key, parent[leaf]


def check_values(
    values: Mapping,
    rules: Mapping[str, Rule],
    under: str = "",
    read: Callable[[Mapping, str, str], tuple[str, Any]] = plain_read,
) -> None:
    """Raise ConfigError for the first value of `values` outside its rule; keys `values` lacks are skipped.

    `under`: `values` is the group at that dotted key (e.g. `errors`), so only its rules apply. `read(parent, leaf,
    key)` gives the name a message shows and the value (the config reader names a `${other}` by `other`)."""
    prefix = f"{under}." if under else ""
    for key, rule in rules.items():
        if not key.startswith(prefix):
            continue
        parent_key, _, leaf = key[len(prefix) :].rpartition(".")
        parent = values
        for part in parent_key.split(".") if parent_key else []:
            parent = parent[part] if isinstance(parent, Mapping) and part in parent else None
        if not isinstance(parent, Mapping) or leaf not in parent:
            continue
        name, value = read(parent, leaf, key)
        if not rule.allows(value):
            raise ConfigError(refusal(name, value, rule))


def rules_markdown(rules: Mapping[str, Rule] = TRAIN) -> str:
    """A table of rules as Markdown (setting, allowed values, example) for the docs."""
    rows = ["| setting | allowed values | example |", "|---|---|---|"]
    rows += [f"| `{key}` | {rule.text()} | `{key}={rule.example}` |" for key, rule in rules.items()]
    return "\n".join(rows) + "\n"
