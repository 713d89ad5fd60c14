"""Compare the jobs of a multirun: mean ± std over seeds per configuration, as a table, a CSV and a plot.

Written by itself at the end of `python train.py -m ...` (the `SweepSummary` Hydra callback) into the sweep folder:
`summary.md`, `summary.csv` (one row per job) and `summary.png`. For a sweep that was interrupted or spread over
several folders: `python -m emo_lightning.sweeps outputs/multirun/<time> [more folders] [--metrics val/accuracy ...]`.
A configuration is a job's command-line overrides without `seed=`, so `seed=0,1,2` gives each one its mean and spread.
A job is finished (metrics.json), failed (failure.json, listed with its reason) or unfinished (neither: still running
or killed); the table and the plot use finished jobs only, and a sweep with a failed job exits 1. With several seeds
per configuration, summary.md says whether the best one's lead over each other is beyond seed noise (see
`emo_lightning.sweeps.significance`); each job's W&B run id (from `<job>/wandb/`) is in summary.csv and summary.md.
"""

from __future__ import annotations

import argparse
import logging
import math
import re
import sys
from pathlib import Path

import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from emo_lightning.sweeps.jobs import collect, failed_jobs
from emo_lightning.sweeps.significance import METHOD, compare
from emo_lightning.utils.run_folder import BEST_FILE

log = logging.getLogger(__name__)


# Headline validation metrics per task, after the monitored one; the first present in every job ranks the table.
SINGLE_LABEL_METRICS = ["val/accuracy", "val/f1_macro"]
MULTI_LABEL_METRICS = ["val/jaccard_tuned", "val/f1_micro_tuned", "val/f1_macro_tuned", "val/auroc_micro"]


def trials_section(runs: pd.DataFrame, sweep_dir: Path) -> str:
    """An Optuna search's trials, in order, each with its state and value, the best one marked; empty otherwise."""
    if "trial" not in runs or runs["trial"].isna().all():
        return ""
    best_file = Path(sweep_dir) / BEST_FILE
    best = OmegaConf.to_container(OmegaConf.load(best_file)) if best_file.exists() else {}
    metric = best.get("optimized_metric")
    lines = ["", "## Optuna trials", ""]
    if best:
        counts = ", ".join(f"{n} {state}" for state, n in best.get("trials", {}).items())
        lines.append(
            f"Study `{best['study_name']}`, {best['direction']} {metric}: {counts}. Best: trial {best['best_trial']} "
            f"({metric} {best['best_value']:.4f}), `{' '.join(best['best_overrides'])}` (★)."
        )
    else:
        lines.append("No trial completed yet.")
    lines += ["", f"| trial | state | {metric or 'value'} | config |", "| --- | --- | --- | --- |"]
    for _, row in runs.dropna(subset=["trial"]).sort_values("trial").iterrows():
        number = int(row["trial"])
        mark = " ★" if best and number == best["best_trial"] else ""
        value = row.get(metric) if metric else None
        shown = f"{value:.4f}" if isinstance(value, float) and not math.isnan(value) else ""
        lines.append(f"| {number}{mark} | {str(row['trial_state']).lower()} | {shown} | `{row['config']}` |")
    return "\n".join(lines) + "\n"


def default_metrics(runs: pd.DataFrame) -> list[str]:
    """The monitored metric's tuned form (else itself), then the task's headline validation metrics present."""
    monitors = runs["monitor"].dropna().unique() if "monitor" in runs else []
    chosen = []
    for monitor in monitors:
        chosen.append(f"{monitor}_tuned" if f"{monitor}_tuned" in runs else monitor)
    multi_label = any(name.endswith("_tuned") for name in runs.columns)
    chosen += MULTI_LABEL_METRICS if multi_label else SINGLE_LABEL_METRICS
    return [m for m in dict.fromkeys(chosen) if m in runs]


def summarize(runs: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Per configuration: finished jobs, their seeds, mean and std (over seeds) of each metric, failed and unfinished
    jobs; best first by `metrics[0]`. Configurations without a finished job are left out."""
    missing = [m for m in metrics if m not in runs]
    if missing:
        known = sorted(c for c in runs.columns if "/" in c)
        raise KeyError(f"metric(s) {', '.join(missing)} not logged by these jobs; known: {', '.join(known)}")
    finished = runs[runs["status"] == "finished"].dropna(subset=metrics, how="all")
    failed = runs[runs["status"] == "failed"]
    grouped = finished.groupby("config", sort=False)[metrics]
    summary = pd.concat(
        {"mean": grouped.mean(), "std": grouped.std(ddof=1)},
        axis=1,
    )
    summary.columns = [f"{metric} {stat}" for stat, metric in summary.columns]
    summary.insert(0, "seeds", finished.groupby("config", sort=False)["seed"].apply(_seed_list))
    summary.insert(0, "jobs", finished.groupby("config", sort=False).size())
    summary["failed"] = failed.groupby("config", sort=False).size().reindex(summary.index, fill_value=0)
    total = runs.groupby("config", sort=False).size().reindex(summary.index)
    summary["unfinished"] = total - summary["jobs"] - summary["failed"]
    summary = summary.sort_values(f"{metrics[0]} mean", ascending=False)
    # over every configuration, including those without a finished job
    summary.attrs["failed"] = len(failed)
    summary.attrs["unfinished"] = int((runs["status"] == "unfinished").sum())
    return summary


def _seed_list(seeds: pd.Series) -> str:
    return ",".join(str(int(s)) for s in sorted(seeds.dropna()))


def _mean_std(mean: float, std: float) -> str:
    return f"{mean:.4f}" if math.isnan(std) else f"{mean:.4f} ± {std:.4f}"


def to_markdown(summary: pd.DataFrame, metrics: list[str]) -> str:
    """A markdown table: configuration, seeds, mean ± std of each metric (std over seeds, blank for one seed)."""
    header = ["config", "seeds", *metrics]
    lines = ["", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for config, row in summary.iterrows():
        cells = [f"`{config}`", row["seeds"]]
        cells += [_mean_std(row[f"{m} mean"], row[f"{m} std"]) for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n" + _left_out(summary.attrs.get("failed", 0), summary.attrs.get("unfinished", 0))


def _job_label(job: pd.Series) -> str:
    return f"job `{job['name']}`" if pd.isna(job["seed"]) else f"seed {int(job['seed'])}"


def _wandb_label(job: pd.Series) -> str:
    """A job's seed and W&B run id, marked (offline) when the run exists only offline."""
    return f"{_job_label(job)} `{job['wandb_run']}`" + (" (offline)" if job["wandb_offline"] else "")


def wandb_lines(runs: pd.DataFrame, summary: pd.DataFrame) -> str:
    """One line per configuration of the table: the W&B run id of each finished job; empty if none has one."""
    finished = runs[(runs["status"] == "finished") & runs["wandb_run"].notna()]
    if finished.empty:
        return ""
    lines = ["", "W&B runs (offline: upload with `wandb sync <job>/wandb/offline-run-*`):"]
    for config in summary.index:
        jobs = finished[finished["config"] == config].sort_values("seed")
        if not jobs.empty:
            lines.append(f"- `{config}`: " + ", ".join(_wandb_label(job) for _, job in jobs.iterrows()))
    return "\n".join(lines) + "\n"


def lead_significance(runs: pd.DataFrame, summary: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The best configuration of `summary` against each other one on `metric`: one row per other configuration
    (seeds of best and other, difference of means, low and high ends of its 95% interval, verdict), in the table's
    order; configurations without a value of `metric` are left out."""
    finished = runs[runs["status"] == "finished"].dropna(subset=[metric])
    values = finished.groupby("config", sort=False)[metric].apply(list)
    configs = [config for config in summary.index if config in values.index]
    rows = {}
    for other in configs[1:]:
        result = compare(values[configs[0]], values[other])
        rows[other] = {
            "best": configs[0],
            "n_best": result.n_best,
            "n_other": result.n_other,
            "difference": result.difference,
            "low": result.low,
            "high": result.high,
            "verdict": result.verdict,
        }
    columns = ["best", "n_best", "n_other", "difference", "low", "high", "verdict"]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns)


def significance_section(runs: pd.DataFrame, summary: pd.DataFrame, metric: str) -> str:
    """`## Is the lead beyond seed noise?`: the verdicts of `lead_significance` as a table; one line if every
    configuration has a single seed; empty with fewer than two configurations."""
    verdicts = lead_significance(runs, summary, metric)
    if verdicts.empty:
        return ""
    lines = ["", "## Is the lead beyond seed noise?", ""]
    best = verdicts["best"].iloc[0]
    if verdicts["n_best"].iloc[0] < 2 and verdicts["n_other"].max() < 2:
        lines.append("Cannot tell: every configuration has one seed; add `seed=0,1,2` to the sweep to compare them.")
        return "\n".join(lines) + "\n"
    lines += [
        f"`{best}` leads on {metric}. {METHOD}, as each seed is an independent training of a configuration: the lead "
        "is beyond seed noise when the 95% interval for the difference of means excludes 0.",
        "",
        f"| `{best}` vs | seeds | difference | 95% interval | verdict |",
        "| --- | --- | --- | --- | --- |",
    ]
    for other, row in verdicts.iterrows():
        interval = "" if math.isnan(row["low"]) else f"[{row['low']:+.4f}, {row['high']:+.4f}]"
        seeds = f"{row['n_best']} vs {row['n_other']}"
        lines.append(f"| `{other}` | {seeds} | {row['difference']:+.4f} | {interval} | {row['verdict']} |")
    return "\n".join(lines) + "\n"


def _left_out(failed: int, unfinished: int) -> str:
    """The note on the jobs the table leaves out, failed apart from unfinished."""
    notes = []
    if failed:
        notes.append(f"{failed} failed job(s) are left out: see Failed jobs below.")
    if unfinished:
        notes.append(f"{unfinished} job(s) without metrics.json (still running, or killed) are left out.")
    return "".join(f"\n{note}\n" for note in notes)


def _natural(name: str) -> list:
    """Sort key: job 2 before job 10."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)]


def failed_section(runs: pd.DataFrame) -> str:
    """`## Failed jobs`: one line per failed job (folder, config, seed, reason); empty without any."""
    failed = runs[runs["status"] == "failed"]
    if failed.empty:
        return ""
    lines = ["", "## Failed jobs", ""]
    for _, job in sorted(failed.iterrows(), key=lambda item: _natural(item[1]["name"])):
        seed = "" if pd.isna(job["seed"]) else f", seed {int(job['seed'])}"
        if not pd.isna(job["wandb_run"]):
            seed += f", W&B `{job['wandb_run']}`" + (" offline" if job["wandb_offline"] else "")
        kind = "error" if pd.isna(job["error_type"]) else str(job["error_type"])
        if not pd.isna(job["error_step"]):
            kind += f" at step {int(job['error_step'])}"
        lines.append(f"- `{job['name']}` (`{job['config']}`{seed}): {kind}: {job['error']}")
    return "\n".join(lines) + "\n"


def plot(runs: pd.DataFrame, summary: pd.DataFrame, metrics: list[str], path: Path) -> None:
    """One panel per metric: each seed a dot, the mean ± std a bar, configurations in the table's order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = list(summary.index)
    positions = {config: i for i, config in enumerate(reversed(configs))}
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(3.2 * len(metrics) + 3, 0.45 * len(configs) + 1.4), sharey=True, squeeze=False
    )
    for ax, metric in zip(axes[0], metrics):
        finished = runs.dropna(subset=[metric])
        ax.scatter(finished[metric], finished["config"].map(positions), s=14, color="0.55", zorder=2, label="seed")
        ax.errorbar(
            summary[f"{metric} mean"],
            [positions[c] for c in configs],
            xerr=summary[f"{metric} std"].fillna(0),
            fmt="D",
            color="C0",
            capsize=3,
            zorder=3,
            label="mean ± std",
        )
        ax.set_title(metric, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(range(len(configs)), [_short(c) for c in reversed(configs)], fontsize=8)
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _short(config: str, width: int = 48) -> str:
    return config if len(config) <= width else config[: width - 1] + "…"


def write_report(sweep_dirs: list[Path], metrics: list[str] | None = None, out_dir: Path | None = None) -> Path:
    """Write summary.md, summary.csv and summary.png into `out_dir` (default: the first sweep folder). With no job
    finished but some failed: summary.md (saying so, and listing the failures) and summary.csv, no plot."""
    runs, common = collect(sweep_dirs)
    n_failed = int((runs["status"] == "failed").sum())
    any_finished = bool((runs["status"] == "finished").any())
    metrics = list(metrics) if metrics else default_metrics(runs)
    if not (metrics or (n_failed and not any_finished)):
        raise ValueError("no validation metrics found in the jobs' metrics.json: did any job finish?")
    out_dir = Path(out_dir or sweep_dirs[0])
    title = f"# Sweep summary: {', '.join(map(str, sweep_dirs))}\n\n"
    common_line = f"Common to every job: `{' '.join(common)}`.\n" if common else ""
    if any_finished:
        summary = summarize(runs, metrics)
        body = f"Mean ± std over seeds; ranked by {metrics[0]}.\n{common_line}" + to_markdown(summary, metrics)
        body += wandb_lines(runs, summary) + significance_section(runs, summary, metrics[0])
    else:
        n_unfinished = int((runs["status"] == "unfinished").sum())
        body = f"No job finished: {len(runs)} job(s), nothing to compare.\n{common_line}"
        body += _left_out(0, n_unfinished)  # the failed ones are listed below
    runs.drop(columns="name").sort_values(["config", "seed"]).to_csv(out_dir / "summary.csv", index=False)
    (out_dir / "summary.md").write_text(title + body + trials_section(runs, sweep_dirs[0]) + failed_section(runs))
    if any_finished:
        plot(runs[runs["status"] == "finished"], summary, metrics, out_dir / "summary.png")
    return out_dir / "summary.md"


class SweepSummary(Callback):
    """Hydra callback: at the end of a multirun, the sweep folder gets summary.md / .csv / .png; the multirun exits 1
    if a job failed (a SystemExit passes through Hydra's callback and error handling as the exit code)."""

    def __init__(self, metrics: list[str] | None = None) -> None:
        self.metrics = list(metrics) if metrics else None

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            report = write_report([sweep_dir], self.metrics)
        except (FileNotFoundError, KeyError, ValueError) as err:
            log.warning("no sweep summary: %s", err.args[0] if isinstance(err, KeyError) else err)
            report = None
        if report is not None:
            log.info("sweep summary: %s (and summary.csv, summary.png)", report)
            log.info("\n%s", report.read_text())
        failed, total = failed_jobs([sweep_dir])
        if failed:
            where = report or f"failure.json in the job folders of {sweep_dir}"
            log.error("%d of %d jobs failed (see %s)", failed, total, where)
            sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m emo_lightning.sweeps", description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dirs", nargs="+", type=Path, help="multirun folders (outputs/multirun/<time>)")
    parser.add_argument("--metrics", nargs="+", help="columns; the first ranks (default: the validation headline)")
    parser.add_argument("--out", type=Path, help="where the summary files go (default: the first folder)")
    args = parser.parse_args(argv)
    try:
        report = write_report(args.sweep_dirs, args.metrics, args.out)
    except (FileNotFoundError, KeyError, ValueError) as err:
        parser.exit(2, f"error: {err.args[0] if isinstance(err, KeyError) else err}\n")
    print(report.read_text())  # noqa: T201
    failed, total = failed_jobs(args.sweep_dirs)
    if failed:
        parser.exit(1, f"{failed} of {total} jobs failed (see {report})\n")
