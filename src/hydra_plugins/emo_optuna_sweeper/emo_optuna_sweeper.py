"""`hydra/sweeper=emo_optuna`: ask Optuna for trials, run them through Hydra's launcher, tell Optuna how they ended.

Trial n runs in `<sweep dir>/<n>` (the launcher's job number is the trial number), gets `optuna_trial.json` there,
and the sweep dir gets `optuna_best.yaml` at the end. A job that fails (a raised exception, or train.py's None)
is a failed trial and the search goes on. With `pruning: true` each trial also gets the callback
emo_lightning.sweeps.pruning.OptunaPruning, and a job it stopped (failure.json of type TrialPruned) is a pruned trial.
The grammar of `params` and the study's bookkeeping: emo_lightning.sweeps.study.
This module is imported by Hydra's plugin scan on every start, so Optuna is imported only when a sweep runs; the scan
runs it outside sys.modules, so no `from __future__ import annotations` (dataclasses need the module registered).
"""

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


@dataclass
class EmoOptunaSweeperConf:
    _target_: str = "hydra_plugins.emo_optuna_sweeper.emo_optuna_sweeper.EmoOptunaSweeper"
    direction: str = "maximize"  # of the task's return value, train.py's metrics[optimized_metric]
    n_trials: int = 20  # finished trials (complete, failed, pruned) the study should have; a re-run adds the rest
    n_jobs: int = 1  # trials per launcher batch: >1 runs them in parallel with a parallel launcher (submitit)
    sampler: str = "tpe"  # tpe | random
    seed: int | None = 42  # the sampler's; offset by the study's trial count when a study continues
    study_name: str = "search"
    storage: str | None = "${hydra.sweep.dir}/optuna.journal"  # a journal file, an RDB URL, or null (in memory)
    params: dict[str, Any] = field(
        default_factory=dict
    )  # override key -> spec, e.g. optimizer.lr: log_float(1e-5, 1e-3)
    pruning: bool = False  # report each validation to the trial and stop the trials the pruner judges bad
    pruner: str = "median"  # median | threshold | none (report only): used with pruning
    pruner_startup_trials: int = 2  # median: no pruning before this many trials are complete
    pruner_warmup_steps: int = 0  # no pruning at validations before this optimizer step
    pruner_threshold: float | None = None  # threshold: prune a trial whose value is worse than this


ConfigStore.instance().store(
    group="hydra/sweeper", name="emo_optuna", node=EmoOptunaSweeperConf, provider="emo_lightning"
)


class EmoOptunaSweeper(Sweeper):
    def __init__(
        self,
        direction: str,
        n_trials: int,
        n_jobs: int,
        sampler: str,
        seed: int | None,
        study_name: str,
        storage: str | None,
        params: dict[str, Any] | None,
        pruning: bool,
        pruner: str | None = "median",
        pruner_startup_trials: int = 2,
        pruner_warmup_steps: int = 0,
        pruner_threshold: float | None = None,
    ) -> None:
        super().__init__()
        self.direction, self.n_trials, self.n_jobs = direction, n_trials, n_jobs
        self.sampler, self.seed, self.study_name, self.storage = sampler, seed, study_name, storage
        self.params = OmegaConf.to_container(params) if isinstance(params, DictConfig) else dict(params or {})
        self.pruning = pruning
        self.pruner = (pruner, pruner_startup_trials, pruner_warmup_steps, pruner_threshold)
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> list[list[JobReturn]]:
        from emo_lightning.sweeps import study as search

        assert self.config is not None and self.launcher is not None
        space, metric, pruner = self._check(arguments)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        study = search.open_study(
            self.study_name, self.storage, self.direction, self.sampler, self.seed, metric, pruner
        )
        recovered = search.recover_interrupted(study)
        if recovered:
            log.warning("trials %s were left running by a stopped sweep: marked failed, asked again", recovered)
        done = search.trials_done(study)
        log.info(
            "study %s (%s): %d of %d trials done, %s %s over %s",
            self.study_name, self.storage or "in memory", done, self.n_trials, self.direction, metric, list(space),
        )  # fmt: skip
        returns = []
        while done < self.n_trials:
            trials = [study.ask(space) for _ in range(min(self.n_jobs, self.n_trials - done))]
            returns.append(self._run_batch(study, trials, list(arguments), sweep_dir, metric))
            done += len(trials)
        self._report_best(study, sweep_dir, metric)
        return returns

    def _check(self, arguments: list[str]) -> tuple[dict, str, dict | None]:
        """The search space without the keys the command line fixes, the metric, and the pruner's settings (None
        without pruning); bad settings raise first."""
        from hydra.core.override_parser.overrides_parser import OverridesParser

        from emo_lightning.sweeps import study as search
        from emo_lightning.utils.errors import ConfigError
        from emo_lightning.utils.rules import SWEEP, check_value

        check_value("hydra.sweeper.n_trials", self.n_trials, SWEEP)
        check_value("hydra.sweeper.n_jobs", self.n_jobs, SWEEP)
        pruner = search.pruner_settings(*self.pruner) if self.pruning else None
        if self.pruning and not self.storage:
            raise ConfigError(
                "hydra.sweeper.pruning=true needs a storage the trials' processes can reach: set hydra.sweeper.storage "
                "to a journal file, e.g. hydra.sweeper.storage=${hydra.sweep.dir}/optuna.journal"
            )
        metric = self.config.get("optimized_metric")
        if not metric:
            raise ConfigError(
                "optimized_metric is not set, so the search has nothing to optimize: add optimized_metric=val/accuracy "
                "(or use an hparams_search config, which sets it)"
            )
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        fixed = set()
        for override in parser.parse_overrides(arguments):
            if override.is_sweep_override():
                raise ConfigError(
                    f"{override.input_line} is a sweep, which hydra/sweeper=emo_optuna does not take: give one value, "
                    f"or search it with hydra.sweeper.params={{{override.key_or_group}:'choice(...)'}}"
                )
            fixed.add(override.key_or_group)
        space = search.parse_space(self.params)
        kept = {key: dist for key, dist in space.items() if key.lstrip("+~") not in fixed}
        if len(kept) < len(space):
            log.info("fixed on the command line, not searched: %s", sorted(set(space) - set(kept)))
        if not kept:
            raise ConfigError(
                "the search space is empty (hydra.sweeper.params, less the keys the command line fixes): add params "
                "such as hydra.sweeper.params={optimizer.lr:'log_float(1e-5,1e-3)'}"
            )
        return kept, metric, pruner

    def _run_batch(self, study, trials: list, arguments: list[str], sweep_dir: Path, metric: str) -> list[JobReturn]:
        from emo_lightning.sweeps import study as search
        from emo_lightning.utils.errors import ConfigError

        numbers = [trial.number for trial in trials]
        if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
            for trial in trials:
                study.tell(trial, state=search.TrialState.FAIL)
            raise ConfigError(
                f"study {self.study_name} got trial numbers {numbers} in one batch: another sweep is adding trials to "
                "it; run one sweep per study at a time"
            )
        batch = [arguments + search.trial_overrides(trial.params) + self._pruning(trial, metric) for trial in trials]
        try:
            self.validate_batch_is_legal(batch)  # a space that does not compose (a bad key) stops the search here
        except Exception:
            for trial in trials:
                search.tell(study, trial, None, error="its overrides do not compose")
            raise
        results = self.launcher.launch(batch, initial_job_idx=numbers[0])
        outcomes = []
        for trial, result in zip(trials, results):
            job_dir = self._job_dir(result, sweep_dir / str(trial.number))
            value, error = self._outcome(result, job_dir)
            pruned = self._pruned(job_dir) if value is None else None
            frozen = search.tell(study, trial, value, error=error, pruned=pruned)
            search.write_trial(job_dir, frozen)
            if frozen.state == search.TrialState.COMPLETE:
                log.info("trial %d: %s=%.6g with %s", frozen.number, metric, frozen.value, frozen.params)
            elif frozen.state == search.TrialState.PRUNED:
                log.info("trial %d %s with %s", frozen.number, pruned, frozen.params)
            else:
                log.warning("trial %d failed (%s) with %s", frozen.number, error, frozen.params)
            outcomes.append((job_dir, value))
        for job_dir, value in outcomes:  # after every trial of the batch is told
            self._stop_if_metric_missing(job_dir, metric, value)
        return list(results)

    def _pruning(self, trial, metric: str) -> list[str]:
        """The override that adds the pruning callback to `trial` (none without pruning); it watches the untuned
        form of `metric`, the one each validation logs."""
        from emo_lightning.sweeps import study as search

        if not self.pruning:
            return []
        monitor = search.pruning_monitor(metric)
        return [search.pruning_override(str(self.storage), self.study_name, trial._trial_id, monitor)]

    @staticmethod
    def _pruned(job_dir: Path) -> str | None:
        """Why the job's pruning callback stopped it (its failure.json of type TrialPruned), else None."""
        from emo_lightning.utils.run_folder import read_failure, was_pruned

        return str(read_failure(job_dir).get("error") or "pruned") if was_pruned(job_dir) else None

    @staticmethod
    def _job_dir(result: JobReturn, default: Path) -> Path:
        """Where the job ran (its hydra.runtime.output_dir), else `default`."""
        output_dir = OmegaConf.select(result.hydra_cfg, "hydra.runtime.output_dir") if result.hydra_cfg else None
        return Path(output_dir) if output_dir else default

    @staticmethod
    def _outcome(result: JobReturn, job_dir: Path) -> tuple[Any, str | None]:
        """The job's value, and why it has none: its exception, its failure.json, or that it returned nothing."""
        if result.status != JobStatus.COMPLETED:
            lines = str(result._return_value).strip().splitlines()
            return None, lines[0] if lines else type(result._return_value).__name__
        value = result._return_value
        from emo_lightning.sweeps.study import objective_value

        if objective_value(value) is not None:
            return value, None
        from emo_lightning.utils.run_folder import FAILURE_FILE, read_failure

        if (job_dir / FAILURE_FILE).is_file():
            return None, str((read_failure(job_dir) or {}).get("error") or f"see {FAILURE_FILE}")
        return None, f"the job returned {value!r}, not a number"

    @staticmethod
    def _stop_if_metric_missing(job_dir: Path, metric: str, value: Any) -> None:
        """A job that finished (metrics.json) without the optimized metric: every trial would fail the same way."""
        from emo_lightning.utils.errors import ConfigError
        from emo_lightning.utils.run_folder import FAILURE_FILE, METRICS_FILE

        metrics_file = job_dir / METRICS_FILE
        if value is not None or (job_dir / FAILURE_FILE).exists() or not metrics_file.is_file():
            return
        try:
            logged = sorted(json.loads(metrics_file.read_text()).get("metrics", {}))
        except (OSError, ValueError, AttributeError):
            return
        if metric not in logged:
            raise ConfigError(
                f"optimized_metric={metric} is not a metric the jobs log: set it to one of {', '.join(logged)}"
            )

    def _report_best(self, study, sweep_dir: Path, metric: str) -> None:
        from emo_lightning.sweeps import study as search
        from emo_lightning.utils.run_folder import BEST_FILE

        best = search.best_record(study, metric)
        if best is None:
            log.warning("study %s has no complete trial: no %s", self.study_name, BEST_FILE)
            return
        search.write_best(sweep_dir / BEST_FILE, best)
        overrides = " ".join(best["best_overrides"])
        log.info("best trial %d: %s=%.6g with %s (%s)", best["best_trial"], metric, best["best_value"], overrides,
                 sweep_dir / BEST_FILE)  # fmt: skip
