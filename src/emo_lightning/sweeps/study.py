"""Hyper-parameter search on Optuna: the grammar of a search space, and the bookkeeping of a study that continues.

A search space maps an override key to a spec (`hydra.sweeper.params` of the `emo_optuna` sweeper):

    choice(a, b, ...)            one of the values (numbers, true/false, null or words: `head: choice(linear, mlp)`)
    int(low, high[, step=k])     an integer in [low, high]
    log_int(low, high)           an integer in [low, high], sampled on a log scale
    float(low, high[, step=s])   a float in [low, high]
    log_float(low, high)         a float in [low, high], sampled on a log scale

A study lives in a storage (a journal file by default) and continues: trials finished (complete, failed or pruned)
count towards `n_trials`; a trial left running by a killed sweep is marked failed and interrupted, does not count,
and its parameters are asked again first. With pruning, the study keeps its pruner's settings (user attribute
`pruner`), so a trial's process (emo_lightning.sweeps.pruning) judges its validation curve as the sweeper would.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
from omegaconf import OmegaConf
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, Trial, TrialState

from emo_lightning.utils.atomic import atomic_write_text
from emo_lightning.utils.errors import ConfigError
from emo_lightning.utils.rules import SWEEP, check_value
from emo_lightning.utils.run_folder import TRIAL_FILE

FORMS = (
    "choice(a, b, ...), int(low, high[, step=k]), log_int(low, high), "
    "float(low, high[, step=s]) or log_float(low, high)"
)
NUMERIC_FORMS = {"int": (int, False), "log_int": (int, True), "float": (float, False), "log_float": (float, True)}
SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "threshold", "none")
PRUNER_ATTR = "pruner"  # study user attribute: the pruner's settings, for the trials' processes
DIRECTIONS = ("maximize", "minimize")
INTERRUPTED = "interrupted"  # user attribute of a trial that a killed sweep left running
_SPEC = re.compile(r"^\s*([A-Za-z_]\w*)\s*\((.*)\)\s*$", re.S)
_PLAIN = re.compile(r"^[\w./:+-]+$")


def parse_space(params: Mapping[str, Any] | None) -> dict[str, BaseDistribution]:
    """Each override key's Optuna distribution, in the order given."""
    return {str(key): parse_spec(str(key), spec) for key, spec in (params or {}).items()}


def parse_spec(key: str, spec: Any) -> BaseDistribution:
    """The distribution that `spec` (one of FORMS) describes; a ConfigError naming the fix for anything else."""
    if not isinstance(spec, str):
        raise ConfigError(
            f"search space {key}: {spec!r} is not a spec string: write {FORMS} (a list [a, b] as choice(a, b))"
        )
    found = _SPEC.match(spec)
    if not found or (found.group(1) != "choice" and found.group(1) not in NUMERIC_FORMS):
        raise ConfigError(f'search space {key}: "{spec}" is not a search space: write {FORMS}')
    name, body = found.group(1), found.group(2)
    args = [arg.strip() for arg in body.split(",")] if body.strip() else []
    if name == "choice":
        return _choice(key, spec, args)
    return _numeric(key, spec, name, args)


def _choice(key: str, spec: str, args: list[str]) -> CategoricalDistribution:
    if not args or any(arg == "" for arg in args):
        raise ConfigError(f'search space {key}: "{spec}" has an empty value: write choice(a, b, ...) with values')
    values = [parse_value(arg) for arg in args]
    if len(set(map(repr, values))) < len(values):
        raise ConfigError(f'search space {key}: "{spec}" lists a value twice: write each value once')
    return CategoricalDistribution(values)


def _numeric(key: str, spec: str, name: str, args: list[str]) -> IntDistribution | FloatDistribution:
    kind, log = NUMERIC_FORMS[name]
    positional = [arg for arg in args if "=" not in arg]
    keywords = dict(arg.split("=", 1) for arg in args if "=" in arg)
    keywords = {k.strip(): v.strip() for k, v in keywords.items()}
    usage = f"{name}(low, high)" if log else f"{name}(low, high[, step=...])"
    if len(positional) != 2:
        raise ConfigError(f'search space {key}: "{spec}" needs two bounds: write {usage}')
    allowed = set() if log else {"step"}
    unknown = sorted(set(keywords) - allowed)
    if unknown:
        hint = "a log scale takes no step" if log else "the only keyword is step="
        raise ConfigError(f'search space {key}: "{spec}" has an unknown argument {unknown[0]}: {hint}, write {usage}')
    low, high = (_number(key, spec, arg, kind, usage) for arg in positional)
    if low >= high:
        raise ConfigError(
            f'search space {key}: "{spec}" needs low < high: swap the bounds, or fix the value on the command line '
            f"as {key}=<value>"
        )
    if log and low <= 0:
        raise ConfigError(
            f'search space {key}: "{spec}" is on a log scale, so low must be > 0: raise low or use {name[4:]}(...)'
        )
    step = _number(key, spec, keywords["step"], kind, usage) if "step" in keywords else None
    if step is not None and (step <= 0 or abs((high - low) / step - round((high - low) / step)) > 1e-9):
        raise ConfigError(
            f'search space {key}: "{spec}" needs a step > 0 that divides high - low: change the step or bounds'
        )
    if kind is int:
        return IntDistribution(low, high, log=log, step=step or 1)
    return FloatDistribution(low, high, log=log, step=step)


def _number(key: str, spec: str, text: str, kind: type, usage: str) -> int | float:
    value = parse_value(text)
    if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and not isinstance(value, int)):
        what = "an integer" if kind is int else "a number"
        raise ConfigError(f'search space {key}: "{spec}" has {text!r} where {what} belongs: write {usage} with numbers')
    return kind(value)


def parse_value(text: str) -> Any:
    """A spec's value as Hydra would read it: an int, a float, true/false, null, else a string (quotes dropped)."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def override_value(value: Any) -> str:
    """`value` written as the right-hand side of a Hydra override (`key=<this>`)."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, numbers.Real):
        return repr(value)
    text = str(value)
    if _PLAIN.match(text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def trial_overrides(params: Mapping[str, Any]) -> list[str]:
    return [f"{key}={override_value(value)}" for key, value in params.items()]


def quoted(text: str) -> str:
    """`text` as a single-quoted Hydra override string: its quotes escaped, and the backslashes before them (or at
    its end) doubled, as Hydra's grammar reads them back."""
    return "'" + re.sub(r"(\\*)('|$)", lambda m: m.group(1) * 2 + ("\\'" if m.group(2) else ""), text) + "'"


def pruning_override(storage: str, study_name: str, trial_id: int, monitor: str) -> str:
    """The override that adds emo_lightning.sweeps.pruning.OptunaPruning to a trial's callbacks."""
    fields = (
        f"storage:{quoted(storage)},study_name:{quoted(study_name)},trial_id:{int(trial_id)},monitor:{quoted(monitor)}"
    )
    return f"+callbacks.optuna_pruning={{_target_:emo_lightning.sweeps.pruning.OptunaPruning,{fields}}}"


def pruning_monitor(metric: str) -> str:
    """The metric validation logs for `metric`: a `_tuned` one exists only after training, so its untuned form."""
    return metric.removesuffix("_tuned")


def open_storage(storage: str | None) -> str | optuna.storages.BaseStorage | None:
    """A journal file for a path (its folder is created), the URL itself for `<dialect>://...`, in-memory for none."""
    if not storage:
        return None
    if "://" in storage:
        return storage
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = Path(storage)
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def make_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ConfigError(f"hydra.sweeper.sampler={name} is not a sampler: use one of {', '.join(SAMPLERS)}")


def pruner_settings(name: str | None, startup_trials: int, warmup_steps: int, threshold: float | None) -> dict:
    """The sweeper's pruner settings as the study keeps them; a ConfigError naming the fix for a bad one."""
    name = "none" if name is None else str(name)
    if name not in PRUNERS:
        raise ConfigError(f"hydra.sweeper.pruner={name} is not a pruner: use one of {', '.join(PRUNERS)}")
    check_value("hydra.sweeper.pruner_startup_trials", startup_trials, SWEEP)
    check_value("hydra.sweeper.pruner_warmup_steps", warmup_steps, SWEEP)
    if name == "threshold" and (isinstance(threshold, bool) or not isinstance(threshold, numbers.Real)):
        raise ConfigError(
            f"hydra.sweeper.pruner=threshold needs a number, not hydra.sweeper.pruner_threshold={threshold}: "
            "e.g. hydra.sweeper.pruner_threshold=0.5 (trials worse than it are pruned)"
        )
    settings = {"name": name, "startup_trials": startup_trials, "warmup_steps": warmup_steps}
    return settings | ({"threshold": float(threshold)} if name == "threshold" else {})


def make_pruner(settings: Mapping[str, Any] | None, direction: str) -> optuna.pruners.BasePruner:
    """The pruner that `pruner_settings` describe (none without settings). A threshold prunes a value below it when
    maximizing, above it when minimizing."""
    settings = settings or {"name": "none"}
    if settings["name"] == "median":
        return optuna.pruners.MedianPruner(settings["startup_trials"], settings["warmup_steps"])
    if settings["name"] == "threshold":
        bound = "lower" if direction == "maximize" else "upper"
        return optuna.pruners.ThresholdPruner(**{bound: settings["threshold"]}, n_warmup_steps=settings["warmup_steps"])
    return optuna.pruners.NopPruner()


def open_study(
    study_name: str,
    storage: str | None,
    direction: str,
    sampler: str,
    seed: int | None,
    metric: str | None = None,
    pruner: Mapping[str, Any] | None = None,
) -> optuna.Study:
    """The study `study_name` in `storage`, created or loaded; one that optimizes another direction or metric is
    refused. The sampler's seed is offset by the trials the study already has, so a continued search does not draw
    its first trials again. `pruner` (`pruner_settings`) becomes the study's pruner and is kept in the study for
    the trials' processes."""
    if direction not in DIRECTIONS:
        raise ConfigError(f"hydra.sweeper.direction={direction} is not a direction: use one of {', '.join(DIRECTIONS)}")
    make_sampler(sampler, seed)  # a bad name fails before the storage is touched
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=open_storage(storage), study_name=study_name, direction=direction, load_if_exists=True
    )
    if study.direction.name.lower() != direction:
        raise ConfigError(
            f"study {study_name} in {storage} is set to {study.direction.name.lower()}, not {direction}: set "
            f"hydra.sweeper.direction={study.direction.name.lower()}, or use another study_name or sweep dir"
        )
    known = study.user_attrs.get("optimized_metric")
    if metric and known and known != metric:
        raise ConfigError(
            f"study {study_name} in {storage} optimizes {known}, not {metric}: set optimized_metric={known}, or use "
            "another hydra.sweep.dir (or hydra.sweeper.study_name) for a new study"
        )
    if metric and not known:
        study.set_user_attr("optimized_metric", metric)
    if pruner is not None:
        study.set_user_attr(PRUNER_ATTR, dict(pruner))
        study.pruner = make_pruner(pruner, direction)
    offset = len(study.get_trials(deepcopy=False))
    study.sampler = make_sampler(sampler, None if seed is None else seed + offset)
    return study


def load_trial(storage: str, study_name: str, trial_id: int) -> Trial:
    """Trial `trial_id` of a study that a sweeper runs, from another process: it can report values and ask the
    study's pruner (the one the sweeper kept in the study). The random sampler: loading draws nothing."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(
        study_name=study_name, storage=open_storage(storage), sampler=optuna.samplers.RandomSampler()
    )
    study.pruner = make_pruner(study.user_attrs.get(PRUNER_ATTR), study.direction.name.lower())
    return Trial(study, trial_id)


def recover_interrupted(study: optuna.Study) -> list[int]:
    """Mark the trials a killed sweep left running as failed and interrupted, and ask their parameters again
    (enqueued: the next `ask` takes them). The numbers of the trials recovered."""
    storage = study._storage
    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        storage.set_trial_user_attr(trial._trial_id, INTERRUPTED, True)
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        study.enqueue_trial(trial.params)
        recovered.append(trial.number)
    return recovered


def trials_done(study: optuna.Study) -> int:
    """Trials that count towards n_trials: complete, pruned or failed, not interrupted."""
    finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))
    return sum(not trial.user_attrs.get(INTERRUPTED) for trial in finished)


def objective_value(value: Any) -> float | None:
    """A job's return value as an objective: a finite real number, else None (a failed trial)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def tell(
    study: optuna.Study, trial: Trial, value: Any, error: str | None = None, pruned: str | None = None
) -> FrozenTrial:
    """Finish `trial`: PRUNED when `pruned` (its reason) is given, else COMPLETE with a finite number, else FAIL
    (with `error` as its reason, when given). A pruned trial's value is its last reported one."""
    if pruned:
        study._storage.set_trial_user_attr(trial._trial_id, "pruned", pruned)
        return study.tell(trial, state=TrialState.PRUNED)
    objective = objective_value(value)
    if objective is None:
        if error:
            study._storage.set_trial_user_attr(trial._trial_id, "error", error)
        return study.tell(trial, state=TrialState.FAIL)
    return study.tell(trial, objective)


def trial_record(trial: FrozenTrial) -> dict[str, Any]:
    """What optuna_trial.json holds: number, params, state, value (null unless complete or pruned), and a failure's
    or a pruning's reason."""
    record = {"number": trial.number, "params": dict(trial.params), "state": trial.state.name, "value": trial.value}
    for reason in ("error", "pruned"):
        if reason in trial.user_attrs:
            record[reason] = trial.user_attrs[reason]
    return record


def write_trial(job_dir: str | Path, trial: FrozenTrial) -> None:
    atomic_write_text(Path(job_dir) / TRIAL_FILE, json.dumps(trial_record(trial), indent=2) + "\n")


def best_record(study: optuna.Study, metric: str | None) -> dict[str, Any] | None:
    """The best trial (number, value, params, the overrides that reproduce it) and the study's counts; None without
    a complete trial."""
    trials = study.get_trials(deepcopy=False)
    counts = {state.name: sum(t.state == state for t in trials) for state in TrialState if state != TrialState.WAITING}
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        return None
    best = study.best_trial
    return {
        "study_name": study.study_name,
        "direction": study.direction.name.lower(),
        "optimized_metric": metric,
        "best_trial": best.number,
        "best_value": best.value,
        "best_params": dict(best.params),
        "best_overrides": trial_overrides(best.params),
        "trials": {state.lower(): n for state, n in counts.items() if n},
    }


def write_best(path: str | Path, record: Mapping[str, Any]) -> None:
    atomic_write_text(Path(path), OmegaConf.to_yaml(OmegaConf.create(dict(record))))
