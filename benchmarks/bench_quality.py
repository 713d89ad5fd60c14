"""Test-set quality of the MiniLM presets over seeds, written to docs/RESULTS.md beside published anchors.

    make bench-quality                          # SEEDS=3 for emotion and SemEval, GO_SEEDS=3 for GoEmotions
    python benchmarks/bench_quality.py --datasets sem_eval_2018 --seeds 1 --set trainer.max_epochs=6
    python benchmarks/bench_quality.py --report-only   # rewrite docs/RESULTS.md from the records, train nothing
    python benchmarks/bench_quality.py --datasets emotion --seeds 1 --set trainer.max_steps=4 \
        --results /tmp/RESULTS.md --records /tmp/records --out /tmp/quality   # the smallest mode (the suite's)

Each run is `python train.py experiment=<dataset>_minilm seed=<s>` in its own process, under
outputs/quality/<name>/<dataset>/<fingerprint>/seed<s>/. When it finishes, a small record (test and validation
metrics, per-label F1, thresholds, wall time, processor, precision, commit) is written to
docs/results/<dataset>/seed<s>.json and docs/RESULTS.md is rewritten. Records are committed with the page, so the
benchmark, which takes longer than a working session on a 2-core CPU, continues where it stopped — on this machine
or the next. A record is reused only while its preset composes to the same config (its fingerprint); change a
preset and its runs are redone. Thresholds are tuned on validation by the presets, never on test.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).parent))
from machine import processor_name  # noqa: E402
from quality_report import BARS, METRICS, write_results  # noqa: E402

from emo_lightning.utils.hardware import Hardware, choose_precision, uses_gpu  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# Dotted keys left out of the fingerprint: none of them changes what is learned. seed, paths, logger and plots name
# where a run writes or logs; model.gradient_checkpointing changes how a step's gradients are computed, not their
# values (tests/test_gradient_checkpointing.py), so turning it on keeps the records.
NOT_FINGERPRINTED = ("seed", "paths", "logger", "plots", "model.gradient_checkpointing")


def relative_to_root(path: Path) -> str:
    """`path` as the page names it: from the checkout's root where it lies inside it."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def preset_fingerprint(dataset: str, extra: list[str], conf_dir: Path = ROOT / "conf") -> str:
    """Short hash of the config `experiment=<dataset>_minilm` + `extra` composes to, `NOT_FINGERPRINTED` left out."""
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={dataset}_minilm", *extra])
    tree = by_class_name(OmegaConf.to_container(cfg, resolve=False))
    for key in NOT_FINGERPRINTED:
        *parents, leaf = key.split(".")
        node = tree
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    return hashlib.sha256(json.dumps(tree, sort_keys=True).encode()).hexdigest()[:12]


def by_class_name(node):
    """`node` with each `_target_` cut to its class name: moving a module to another package changes no result,
    so it does not redo the runs; renaming a class or changing any value does."""
    if isinstance(node, dict):
        return {
            k: v.rsplit(".", 1)[-1] if k == "_target_" and isinstance(v, str) else by_class_name(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [by_class_name(v) for v in node]
    return node


def load_record(path: Path, fingerprint: str) -> dict | None:
    """The record at `path` if it was made from the same config, else None (to be rerun)."""
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    return record if record.get("fingerprint") == fingerprint else None


def commit_id() -> str:
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "src", "conf"], cwd=ROOT, capture_output=True, text=True)
    return (sha.stdout.strip() or "unknown") + ("+dirty" if dirty.stdout.strip() else "")


def train_one(dataset: str, seed: int, run_dir: Path, extra: list[str]) -> dict:
    """Train one preset/seed in its own process (or reuse its finished run dir, or continue its interrupted one from
    its last checkpoint): metrics.json plus wall time."""
    metrics_file = run_dir / "metrics.json"
    if not metrics_file.exists():
        cmd = [sys.executable, str(ROOT / "train.py"), f"experiment={dataset}_minilm", f"seed={seed}", "logger=csv"]
        cmd += [f"hydra.run.dir={run_dir}", *extra]
        if (run_dir / ".hydra" / "overrides.yaml").exists():  # started before and stopped: continue it
            cmd = [sys.executable, str(ROOT / "train.py"), f"resume={run_dir}"]
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True)
        (run_dir / "wall_seconds.txt").write_text(f"{time.perf_counter() - start:.1f}")
    run = json.loads(metrics_file.read_text())
    wall = run_dir / "wall_seconds.txt"
    run["wall_seconds"] = float(wall.read_text()) if wall.exists() else float("nan")
    return run


def make_record(run: dict, dataset: str, seed: int, fingerprint: str, machine: dict, extra: list[str]) -> dict:
    """What RESULTS.md needs of one run, and what it ran on; checkpoints and weights stay in outputs/."""
    metrics = {k: v for k, v in run["metrics"].items() if k.startswith(("test/", "val/"))}
    return {
        "dataset": dataset,
        "seed": seed,
        "fingerprint": fingerprint,
        "overrides": extra,
        **machine,
        "wall_seconds": round(run["wall_seconds"], 1),
        "metrics": metrics,
        "per_label_f1": run["per_label_f1"],
        "thresholds": run["thresholds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(METRICS), choices=list(METRICS))
    parser.add_argument("--seeds", type=int, default=3, help="seeds for emotion and SemEval")
    parser.add_argument("--go-seeds", type=int, default=3, help="seeds for GoEmotions (the longest)")
    parser.add_argument("--name", default="bench", help="<out>/<name>/: the runs' checkpoints and logs")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "quality", help="where the runs are written")
    parser.add_argument("--set", nargs="*", default=[], help="extra overrides for every run, key=value")
    parser.add_argument("--results", type=Path, default=ROOT / "docs" / "RESULTS.md")
    parser.add_argument("--records", type=Path, default=ROOT / "docs" / "results", help="per-run records")
    parser.add_argument("--report-only", action="store_true", help="rewrite the page from the records; train nothing")
    args = parser.parse_args()
    os.environ.setdefault("EMO_DATA_DIR", str(ROOT.parent / "shared" / "data"))
    os.environ.setdefault("EMO_MODEL_DIR", str(ROOT.parent / "shared" / "models"))
    hw = Hardware.detect()
    machine = {
        "processor": processor_name(),
        "capabilities": hw.summary(),
        "precision": choose_precision(hw, uses_gpu("auto"))[0],
    }
    asked_precision = [s.split("=", 1)[1] for s in args.set if s.startswith("trainer.precision=")]
    if asked_precision and asked_precision[-1] != "auto":  # the runs' own precision, not auto's choice
        machine["precision"] = asked_precision[-1]
    default = not args.set and set(args.datasets) == set(METRICS) and args.records == ROOT / "docs" / "results"
    command = "make bench-quality" if default else " ".join(sys.argv)
    shown_records = relative_to_root(args.records) + "/"
    seeds = {d: list(range(args.go_seeds if d == "go_emotions" else args.seeds)) for d in args.datasets}
    results: dict[str, list[dict]] = {d: [] for d in args.datasets}
    for dataset, asked in seeds.items():
        fingerprint = preset_fingerprint(dataset, args.set)
        for seed in asked:
            record_file = args.records / dataset / f"seed{seed}.json"
            record = load_record(record_file, fingerprint)
            if record is None and args.report_only:
                continue
            if record is None:
                print(f"[{dataset} seed {seed}] training (config {fingerprint}) …", flush=True)
                run_dir = args.out / args.name / dataset / fingerprint / f"seed{seed}"
                # The code a run trains with is the tree at its start: a long benchmark can outlive several commits.
                started = {"commit": commit_id(), "date": f"{datetime.now():%Y-%m-%d}"}
                run = train_one(dataset, seed, run_dir, args.set)
                record = make_record(run, dataset, seed, fingerprint, {**machine, **started}, args.set)
                record_file.parent.mkdir(parents=True, exist_ok=True)
                record_file.write_text(json.dumps(record, indent=2))
            results[dataset].append(record)
            shown = {m: round(record["metrics"][f"test/{m}"], 4) for m, _ in BARS[dataset]}
            print(f"[{dataset} seed {seed}] {shown}  ({record['wall_seconds'] / 60:.1f} min)", flush=True)
            write_results(args.results, results, seeds, command, shown_records, tuple(args.set))
    write_results(args.results, results, seeds, command, shown_records, tuple(args.set))
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
