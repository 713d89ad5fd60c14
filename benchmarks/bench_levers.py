"""What each lever of the training step gives: ms/step of variants alternated in one process, on the same batches.

    make bench-levers                          # real MiniLM, emotion's length-grouped batches, this machine's precision
    python benchmarks/bench_levers.py --profile today --profile all   # torch.profiler's top ops of two variants
    python benchmarks/bench_levers.py --tiny   # a random-init tiny BERT, a few steps (the suite's)

Each variant is the default step (forward, loss, backward, clipping to norm 1, fused AdamW, zero_grad) with one
lever changed; every variant gets its own module and optimizer, built from the same seed. Rounds run the variants
in turn (A B C … A B C …) over the same batches, so a slow minute of a shared host hits them alike; the first round
is warm-up. Printed: median ms/step, the spread over rounds, and the speed-up against `today` (the step before the
levers). Saved as JSON beside bench-speed's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path

import torch
from hydra.utils import instantiate

sys.path.insert(0, str(Path(__file__).parent))
from bench_speed import compose_cfg, measure_peaks  # noqa: E402
from machine import processor_name  # noqa: E402

from emo_lightning.models.clipping import clip_grad_norm  # noqa: E402
from emo_lightning.training.setup import build_classifier  # noqa: E402
from emo_lightning.utils.hardware import Hardware, choose_precision, configure_kernels, uses_gpu  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def torch_clipping(optimizer, max_norm: float) -> None:
    """`torch.nn.utils.clip_grad_norm_` over the optimizer's gradients: the step before `clip_grad_norm`."""
    params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    torch.nn.utils.clip_grad_norm_(params, max_norm)


# name → (config overrides, clipping function). `today` is the step as it was before the levers.
TODAY = ["model.freeze_word_embeddings=false", "model.fast_dropout=false"]
LEVERS = {
    "today": (TODAY, torch_clipping),
    "clip-in-adamw": (TODAY, clip_grad_norm),
    "fast-dropout": (["model.freeze_word_embeddings=false", "model.fast_dropout=true"], torch_clipping),
    "frozen-embeddings": (["model.freeze_word_embeddings=true", "model.fast_dropout=false"], torch_clipping),
    "all": (["model.freeze_word_embeddings=true", "model.fast_dropout=true"], clip_grad_norm),
}


class Variant:
    """One module + optimizer built from the config with its overrides, and its step."""

    def __init__(self, name: str, cfg_for, datamodule, precision: str) -> None:
        overrides, self.clip = LEVERS[name]
        self.name, self.times = name, []
        cfg = cfg_for(overrides)
        torch.manual_seed(cfg.seed)
        self.module, _ = build_classifier(cfg, datamodule)
        self.module.train()
        groups = self.module.param_groups(self.module.network)
        self.optimizer = self.module.optimizer_factory(groups)
        self.max_norm = cfg.trainer.gradient_clip_val
        self.autocast = torch.autocast("cpu", torch.bfloat16) if precision == "bf16-mixed" else nullcontext()

    def step(self, batch: dict) -> None:
        with self.autocast:
            loss, _ = self.module.model_step(batch)
        loss.backward()
        self.clip(self.optimizer, self.max_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


def training_batches(datamodule, count: int) -> list[dict]:
    batches = []
    for batch in datamodule.train_dataloader():
        batches.append(batch)
        if len(batches) == count:
            return batches
    return batches


def run_rounds(variants: list[Variant], batches: list[dict], rounds: int) -> None:
    for round_index in range(rounds + 1):  # round 0 warms up every variant
        for variant in variants:
            started = time.perf_counter()
            for batch in batches:
                variant.step(batch)
            if round_index:
                variant.times.append((time.perf_counter() - started) * 1000 / len(batches))


def summary(variants: list[Variant]) -> list[dict]:
    base = statistics.median(variants[0].times)
    rows = []
    for v in variants:
        median = statistics.median(v.times)
        spread = (max(v.times) - min(v.times)) / 2 / median if len(v.times) > 1 else 0.0
        rows.append({"variant": v.name, "ms_per_step": round(median, 1), "spread": f"±{spread:.1%}"})
        rows[-1] |= {"rounds_ms": [round(t, 1) for t in v.times], "speedup": round(base / median, 3)}
    return rows


def profile(variant: Variant, batches: list[dict], top: int) -> str:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for batch in batches:
            variant.step(batch)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top)
    return f"profile of {variant.name} over {len(batches)} steps:\n{table}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="emotion")
    parser.add_argument("--levers", nargs="+", default=list(LEVERS), choices=list(LEVERS))
    parser.add_argument("--steps", type=int, default=10, help="steps per variant per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--precision", default="auto", help="auto (this machine's training default) or 32-true …")
    parser.add_argument("--profile", action="append", default=[], choices=list(LEVERS), help="profile a variant")
    parser.add_argument("--tiny", action="store_true", help="a random-init tiny BERT, 2 steps, 2 rounds")
    parser.add_argument("--set", nargs="*", default=[], help="extra config overrides, key=value")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench")
    args = parser.parse_args()
    if args.tiny:
        args.steps, args.rounds = 2, 2
    hw, on_gpu = Hardware.detect(), uses_gpu("auto")
    precision = choose_precision(hw, on_gpu)[0] if args.precision == "auto" else args.precision
    configure_kernels(on_gpu)
    peaks = measure_peaks(hw, on_gpu, quick=args.tiny)
    print(
        f"processor: {processor_name()}  ({hw.summary()}, {torch.get_num_threads()} threads, torch {torch.__version__})"
    )
    print("GEMM peak GFLOP/s: " + ", ".join(f"{k} {v:,.0f}" for k, v in peaks.items()) + f"; the step in {precision}")

    def cfg_for(overrides: list[str]):
        extra = dict(item.split("=", 1) for item in [*overrides, *args.set])
        return compose_cfg(args.dataset, extra, args.steps, args.out / "scratch", args.tiny)

    datamodule = instantiate(cfg_for([]).data)
    datamodule.setup("fit")
    batches = training_batches(datamodule, args.steps)
    tokens = sum(int(b["attention_mask"].sum()) for b in batches) / len(batches)
    print(f"{len(batches)} {args.dataset} batches of {datamodule.batch_size}, {tokens:.0f} real tokens each\n")
    variants = [Variant(name, cfg_for, datamodule, precision) for name in args.levers]
    run_rounds(variants, batches, args.rounds)
    rows = summary(variants)
    for row in rows:
        print(f"  {row['variant']:<18} {row['ms_per_step']:>8.1f} ms/step  {row['spread']:>7}  {row['speedup']:.2f}×")
    profiles = [profile(v, batches, 25) for v in variants if v.name in args.profile]
    for text in profiles:
        print("\n" + text)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"levers_{datetime.now():%Y-%m-%d_%H-%M-%S}.json"
    record = {"processor": processor_name(), "capabilities": hw.summary(), "precision": precision, "peaks": peaks}
    record |= {"dataset": args.dataset, "steps": len(batches), "rounds": args.rounds, "rows": rows}
    path.write_text(json.dumps(record | {"profiles": profiles}, indent=2))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
