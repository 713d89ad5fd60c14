"""`make train` end to end beside an HF Trainer script doing the same work, alternated, each in its own process.

    make bench-train                           # MiniLM on dair-ai/emotion, 3 epochs, ours then the Trainer's, twice
    python benchmarks/bench_train.py --repeats 1 --set trainer.max_epochs=1
    python benchmarks/bench_train.py --tiny    # a random-init tiny BERT, one epoch of 2 steps (the suite's)
    python benchmarks/bench_train.py --baseline 3c3c55c --runners ours baseline --repeats 1   # today vs that commit

The same work on both sides: train on the training split, validate after every epoch, test at the end, at this
machine's precision (bf16 where native), batch 32, eval batch 128, lr 1e-4 with linear warm-up and decay, clipping
to norm 1, length-grouped batches. Ours is `python train.py` with the defaults (figures, checkpoints, the model
folder included); the Trainer's is the script a user would write (`hf_trainer_script`: tokenize, group_by_length,
fused AdamW, eval each epoch, evaluate on test). Timed from the process start to ours' `done:` line and to the
script's own last line; the figures are printed side by side with test accuracy and saved as JSON.

`--baseline REF` adds the same `python train.py` of another commit (its tracked files, extracted with `git archive`
under --out, run on its own code through PYTHONPATH), so a speed-up against an older main is measured in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import processor_name  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}


RUNNERS = ("ours", "baseline", "hf-trainer")


def ours_command(out_dir: Path, args, checkout: Path = ROOT) -> list[str]:
    cmd = [sys.executable, str(checkout / "train.py"), f"hydra.run.dir={out_dir}", "logger=csv"]
    if args.tiny:
        sizes = ",".join(f"{k}:{v}" for k, v in TINY.items())
        cmd += ["model.pretrained=false", f"model.config_overrides={{{sizes}}}", "trainer.max_epochs=1"]
        cmd += ["trainer.limit_train_batches=2", "plots=none"]
    return cmd + args.set


def hf_command(out_dir: Path, args) -> list[str]:
    cmd = [sys.executable, str(Path(__file__).parent / "hf_trainer_script.py"), "--out", str(out_dir)]
    epochs = next((s.split("=", 1)[1] for s in args.set if s.startswith("trainer.max_epochs=")), None)
    cmd += ["--epochs", "1" if args.tiny else (epochs or "3")]
    return cmd + (["--tiny", json.dumps(TINY), "--max-steps", "2"] if args.tiny else [])


def baseline_checkout(ref: str, out: Path) -> tuple[Path, str]:
    """The tracked files of commit `ref`, extracted once under `out` (a folder per commit), and the full sha."""
    sha = subprocess.run(
        ["git", "rev-parse", "--verify", f"{ref}^{{commit}}"], cwd=ROOT, capture_output=True, text=True
    )
    if sha.returncode != 0:
        raise SystemExit(f"error: --baseline {ref} is not a commit of {ROOT}: give a commit or tag (git log)")
    sha = sha.stdout.strip()
    folder = out / f"baseline-{sha[:12]}"
    if not (folder / "train.py").is_file():
        partial = out / f".baseline-{sha[:12]}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", sha], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(partial)], input=archive, check=True)
        partial.rename(folder)
    return folder, sha


def timed(cmd: list[str], marker: str, cwd: Path = ROOT, env: dict | None = None) -> tuple[float, str]:
    """Seconds from the start of `cmd` to the first output line starting with `marker`, and that line."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    found, tail = None, []
    for line in proc.stdout:
        tail = (tail + [line])[-40:]
        text = line.split("] - ", 1)[-1].strip()
        if found is None and text.startswith(marker):
            found = (time.perf_counter() - start, text)
    if proc.wait() != 0 or found is None:
        raise RuntimeError(f"{' '.join(cmd[:3])} … failed or printed no '{marker}' line:\n{''.join(tail)}")
    return found


def test_accuracy(line: str) -> float:
    """test/accuracy from ours' done: line or the script's result line."""
    return float(line.split("test/accuracy", 1)[1].split()[0].strip(":=,"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2, help="ours, the Trainer's, ours, the Trainer's …")
    parser.add_argument("--runners", nargs="+", choices=RUNNERS, default=["ours", "hf-trainer"], help="in this order")
    parser.add_argument("--baseline", metavar="REF", help="a commit whose train.py runs too (runner 'baseline')")
    parser.add_argument("--tiny", action="store_true", help="a random-init tiny BERT, one epoch of 2 steps, once")
    parser.add_argument("--set", nargs="*", default=[], help="extra train.py overrides (trainer.max_epochs too)")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench")
    args = parser.parse_args()
    if args.tiny:
        args.repeats = 1
    os.environ.setdefault("EMO_DATA_DIR", str(ROOT.parent / "shared" / "data"))
    os.environ.setdefault("EMO_MODEL_DIR", str(ROOT.parent / "shared" / "models"))
    if ("baseline" in args.runners) != bool(args.baseline):
        parser.error("--baseline REF and the runner 'baseline' go together: give both, or neither")
    if "ours" not in args.runners:
        parser.error("--runners must include ours: the others are timed beside it")
    stamp = f"{datetime.now():%Y-%m-%d_%H-%M-%S}"
    print(f"processor: {processor_name()}")
    record: dict = {"processor": processor_name(), "overrides": args.set, "tiny": args.tiny}
    if args.baseline:
        checkout, record["baseline"] = baseline_checkout(args.baseline, args.out)
        baseline_env = os.environ | {"PYTHONPATH": str(checkout / "src")}
        print(f"baseline: {args.baseline} ({record['baseline'][:12]}), its tracked files in {checkout}")
    runs: dict[str, list[dict]] = {runner: [] for runner in args.runners}
    for repeat in range(args.repeats):
        for runner in runs:
            out_dir = args.out / f"train_{stamp}" / f"{runner}-{repeat}"
            if runner == "ours":
                seconds, line = timed(ours_command(out_dir, args), "done:")
            elif runner == "baseline":
                seconds, line = timed(ours_command(out_dir, args, checkout), "done:", checkout, baseline_env)
            else:
                seconds, line = timed(hf_command(out_dir, args), "done:")
            runs[runner].append({"seconds": round(seconds, 1), "test_accuracy": test_accuracy(line), "line": line})
            print(
                f"  [{repeat + 1}/{args.repeats}] {runner:<10} {seconds:7.1f} s  test/accuracy "
                f"{runs[runner][-1]['test_accuracy']:.4f}",
                flush=True,
            )
    medians = {runner: statistics.median(r["seconds"] for r in runs[runner]) for runner in runs}
    names = {"baseline": f"baseline {args.baseline}", "hf-trainer": "HF Trainer script"}
    print(f"\nend to end (median): ours {medians['ours']:.1f} s")
    for runner in (r for r in runs if r != "ours"):
        accuracy = statistics.median(r["test_accuracy"] for r in runs["ours"]) - statistics.median(
            r["test_accuracy"] for r in runs[runner]
        )
        print(
            f"  {names[runner]} {medians[runner]:.1f} s: ours is {medians[runner] / medians['ours']:.2f}× as fast, "
            f"test accuracy {100 * accuracy:+.2f} pt"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"train_{stamp}.json"
    medians_s = {f"{runner.replace('-trainer', '')}_median_s": seconds for runner, seconds in medians.items()}
    path.write_text(json.dumps(record | {"runs": runs} | medians_s, indent=2))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
