"""`make train` end to end beside an HF Trainer script doing the same work, alternated, each in its own process.

    make bench-train                           # MiniLM on dair-ai/emotion, 3 epochs, ours then the Trainer's, twice
    python benchmarks/bench_train.py --repeats 1 --set trainer.max_epochs=1
    python benchmarks/bench_train.py --tiny    # a random-init tiny BERT, one epoch of 2 steps (the suite's)

The same work on both sides: train on the training split, validate after every epoch, test at the end, at this
machine's precision (bf16 where native), batch 32, eval batch 128, lr 1e-4 with linear warm-up and decay, clipping
to norm 1, length-grouped batches. Ours is `python train.py` with the defaults (figures, checkpoints, the model
folder included); the Trainer's is the script a user would write (`hf_trainer_script`: tokenize, group_by_length,
fused AdamW, eval each epoch, evaluate on test). Timed from the process start to ours' `done:` line and to the
script's own last line; the figures are printed side by side with test accuracy and saved as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
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


def ours_command(out_dir: Path, args) -> list[str]:
    cmd = [sys.executable, str(ROOT / "train.py"), f"hydra.run.dir={out_dir}", "logger=csv"]
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


def timed(cmd: list[str], marker: str) -> tuple[float, str]:
    """Seconds from the start of `cmd` to the first output line starting with `marker`, and that line."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
    parser.add_argument("--tiny", action="store_true", help="a random-init tiny BERT, one epoch of 2 steps, once")
    parser.add_argument("--set", nargs="*", default=[], help="extra train.py overrides (trainer.max_epochs too)")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench")
    args = parser.parse_args()
    if args.tiny:
        args.repeats = 1
    os.environ.setdefault("EMO_DATA_DIR", str(ROOT.parent / "shared" / "data"))
    os.environ.setdefault("EMO_MODEL_DIR", str(ROOT.parent / "shared" / "models"))
    stamp = f"{datetime.now():%Y-%m-%d_%H-%M-%S}"
    print(f"processor: {processor_name()}")
    runs: dict[str, list[dict]] = {"ours": [], "hf-trainer": []}
    for repeat in range(args.repeats):
        for runner in runs:
            out_dir = args.out / f"train_{stamp}" / f"{runner}-{repeat}"
            cmd = ours_command(out_dir, args) if runner == "ours" else hf_command(out_dir, args)
            seconds, line = timed(cmd, "done:")
            runs[runner].append({"seconds": round(seconds, 1), "test_accuracy": test_accuracy(line), "line": line})
            print(
                f"  [{repeat + 1}/{args.repeats}] {runner:<10} {seconds:7.1f} s  test/accuracy "
                f"{runs[runner][-1]['test_accuracy']:.4f}",
                flush=True,
            )
    ours, hf = (statistics.median(r["seconds"] for r in runs[k]) for k in runs)
    print(f"\nend to end (median): ours {ours:.1f} s, HF Trainer script {hf:.1f} s: ours is {hf / ours:.2f}× as fast")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"train_{stamp}.json"
    record = {"processor": processor_name(), "overrides": args.set, "tiny": args.tiny, "runs": runs}
    path.write_text(json.dumps(record | {"ours_median_s": ours, "hf_median_s": hf}, indent=2))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
