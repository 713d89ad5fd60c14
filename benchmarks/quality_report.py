"""docs/RESULTS.md from the benchmark's per-run records: mean ± std per dataset, bars, per-label F1, anchors.

Written after every finished run, so an interrupted benchmark still leaves an accurate (partial) page: a dataset
with fewer records than seeds asked for says which seeds are pending, and its bars are judged only when complete.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from emo_lightning.analysis.anchors import anchor_markdown

METRICS = {
    "emotion": ["accuracy", "f1_macro", "f1_weighted"],
    "sem_eval_2018": [
        "jaccard",
        "jaccard_tuned",
        "f1_micro",
        "f1_micro_tuned",
        "f1_macro",
        "f1_macro_tuned",
        "auroc_micro",
        "auroc_macro",
        "exact_match",
    ],
    "go_emotions": [
        "f1_macro",
        "f1_macro_tuned",
        "f1_micro",
        "f1_micro_tuned",
        "jaccard",
        "jaccard_tuned",
        "auroc_micro",
        "auroc_macro",
        "exact_match",
    ],
}
TITLES = {
    "emotion": "dair-ai/emotion (6 classes)",
    "sem_eval_2018": "SemEval-2018 E-c (11 labels)",
    "go_emotions": "GoEmotions (28 labels)",
}
# The bars of issue 11: (metric, minimum of the mean over seeds).
BARS = {
    "emotion": [("accuracy", 0.935), ("f1_macro", 0.895)],
    "go_emotions": [("f1_macro_tuned", 0.53), ("auroc_micro", 0.955)],
    "sem_eval_2018": [("jaccard_tuned", 0.59), ("f1_micro_tuned", 0.71)],
}


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def test_values(runs: list[dict], metric: str) -> list[float]:
    return [r["metrics"][f"test/{metric}"] for r in runs if f"test/{metric}" in r["metrics"]]


def dataset_section(dataset: str, runs: list[dict], seeds: list[int], extra: tuple[str, ...] = ()) -> list[str]:
    """One dataset: summary over the recorded seeds, one row per run, bars, per-label F1, anchors."""
    lines = [f"## {TITLES[dataset]}", ""]
    done = sorted(r["seed"] for r in runs)
    pending = [s for s in seeds if s not in done]
    command = " ".join(["python train.py", f"experiment={dataset}_minilm", *extra, "seed=<s>"])
    lines.append(f"Ours: `{command}`, test split, seeds {done or '–'}.")
    if pending:
        lines.append(f"**Incomplete: seeds {pending} not run yet** — rerun the benchmark to add them.")
    if not runs:
        return [*lines, ""]
    lines += ["", "| metric | mean ± std |", "| --- | --- |"]
    lines += [f"| {m} | {mean_std(v)} |" for m in METRICS[dataset] if (v := test_values(runs, m))]
    lines += [
        "",
        "| seed | " + " | ".join(m for m, _ in BARS[dataset]) + " | minutes | processor | precision | commit |",
    ]
    lines.append("|" + " --- |" * (len(BARS[dataset]) + 5))
    for run in sorted(runs, key=lambda r: r["seed"]):
        shown = " | ".join(f"{run['metrics'][f'test/{m}']:.4f}" for m, _ in BARS[dataset])
        machine = f"{run['processor']} | {run['precision']} | {run['commit']}"
        lines.append(f"| {run['seed']} | {shown} | {run['wall_seconds'] / 60:.1f} | {machine} |")
    lines += ["", "Bars (mean over seeds):"]
    for metric, bar in BARS[dataset]:
        mean = statistics.mean(test_values(runs, metric))
        verdict = ("met" if mean >= bar else "missed") if not pending else "pending"
        lines.append(f"- test {metric} ≥ {bar}: {mean:.4f} — {verdict}")
    labels = list(runs[0]["per_label_f1"]["test"])
    per_label = {name: statistics.mean(r["per_label_f1"]["test"][name] for r in runs) for name in labels}
    tuned = " (at the validation-tuned thresholds)" if runs[0].get("thresholds") else ""
    lines += ["", f"Per-label test F1{tuned}, mean over seeds:", ""]
    lines += ["| " + " | ".join(labels) + " |", "|" + " --- |" * len(labels)]
    lines += ["| " + " | ".join(f"{per_label[n]:.3f}" for n in labels) + " |", ""]
    lines += [
        "Published anchors and the baseline a user gets without us (test split):",
        "",
        anchor_markdown(dataset),
        "",
    ]
    return lines


def write_results(
    path: Path,
    runs: dict[str, list[dict]],
    seeds: dict[str, list[int]],
    command: str,
    records: str = "docs/results/",
    extra: tuple[str, ...] = (),
) -> None:
    """Rewrite `path` from the records in `runs` (per dataset, read from `records`) for the `seeds` asked for;
    `extra`: the overrides every run was given beside its preset."""
    every = [r for rs in runs.values() for r in rs]
    machines = sorted({f"{r['processor']} ({r['capabilities']}), training precision {r['precision']}" for r in every})
    dates = sorted({r["date"] for r in every})
    lines = [
        "# Results: MiniLM-L6 presets on the three datasets",
        "",
        f"Written by `{command}` from the per-run records in `{records}` ({', '.join(dates) or 'no runs yet'}).",
        *(f"Processor: {m}." for m in machines),
        "Thresholds are tuned on validation only; `_tuned` metrics use them, the others use 0.5.",
        "",
    ]
    for dataset, asked in seeds.items():
        lines += dataset_section(dataset, runs.get(dataset, []), asked, extra)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
