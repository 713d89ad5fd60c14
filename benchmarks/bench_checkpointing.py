"""Peak memory and step time of a training step with and without `model.gradient_checkpointing`, real MiniLM.

    make bench-checkpointing                   # batch 16 × 128 and × 512 tokens, each variant in its own process
    python benchmarks/bench_checkpointing.py --lengths 512 --batch-size 16 --steps 3 --set model=bert_base
    python benchmarks/bench_checkpointing.py --tiny   # a random-init tiny BERT, short batches, one process (the suite)

Each variant (length × checkpointing off/on) runs in a fresh process, so that no allocator state or high-water mark
carries over: it builds the default module (emotion's labels, this machine's precision), then runs the default step
(forward, loss, backward, clipping to norm 1, fused AdamW, `zero_grad`) on batches of exactly `length` real tokens
(random token ids: every text as long as the batch, the case checkpointing is for). Memory: on a GPU
`torch.cuda.max_memory_allocated`, on a CPU the process's resident high-water mark (VmHWM); `above model` is the
peak less what the process held once the model and its data were loaded (activations, gradients, AdamW's state).
Time: the median ms/step after `--warmup` steps. Printed and saved as JSON beside bench-speed's.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path

import torch
from hydra.utils import instantiate

sys.path.insert(0, str(Path(__file__).parent))
from bench_speed import compose_cfg  # noqa: E402
from machine import peak_memory_mib, processor_name, reset_peak_memory, run_rows  # noqa: E402

from emo_lightning.models.clipping import clip_grad_norm  # noqa: E402
from emo_lightning.training.setup import build_classifier  # noqa: E402
from emo_lightning.utils.hardware import Hardware, choose_precision, configure_kernels, uses_gpu  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def resident_mib() -> float:
    """Memory held now: allocated CUDA memory on a GPU, the process's resident set (VmRSS) on a CPU."""
    if torch.cuda.is_available():
        return torch.cuda.memory_allocated() / 2**20
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return float("nan")


def full_batch(real: dict, length: int, vocab_size: int, device: torch.device) -> dict:
    """`real`'s labels with texts of exactly `length` tokens (random ids above the special tokens, no padding)."""
    generator = torch.Generator().manual_seed(0)
    shape = (len(real["labels"]), length)
    ids = torch.randint(min(1000, vocab_size // 2), vocab_size, shape, generator=generator)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": real["labels"]}
    return {k: v.to(device) for k, v in batch.items()}


def run_variant(length: int, checkpointing: bool, args, precision: str) -> dict:
    """One variant's figures, measured in this process."""
    extra = dict(item.split("=", 1) for item in args.set)
    extra |= {"data.batch_size": args.batch_size, "data.max_length": length}
    extra |= {"model.gradient_checkpointing": str(checkpointing).lower()}
    cfg = compose_cfg(args.dataset, extra, args.warmup + args.steps, args.out / "scratch", args.tiny)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    torch.manual_seed(cfg.seed)
    module, _ = build_classifier(cfg, datamodule)
    device = torch.device("cuda" if uses_gpu("auto") else "cpu")
    module.to(device).train()
    optimizer = module.optimizer_factory(module.param_groups(module.network))
    real = next(iter(datamodule.train_dataloader()))
    batch = full_batch(real, length, module.network.backbone.config.vocab_size, device)
    half = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)  # 16-mixed: no loss scaling
    autocast = torch.autocast(device.type, half) if half else nullcontext()
    if device.type == "cuda":
        torch.cuda.synchronize()
    loaded = resident_mib()
    reset_peak_memory()
    times = []
    for step in range(args.warmup + args.steps):
        started = time.perf_counter()
        with autocast:
            loss, _ = module.model_step(batch)
        loss.backward()
        clip_grad_norm(optimizer, cfg.trainer.gradient_clip_val)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step >= args.warmup:
            times.append((time.perf_counter() - started) * 1000)
    peak = peak_memory_mib()
    assert module.network.backbone.is_activation_checkpointing == checkpointing
    return {
        "length": length,
        "batch_size": len(batch["labels"]),
        "checkpointing": checkpointing,
        "precision": precision,
        "loaded_mib": round(loaded, 1),
        "peak_mib": round(peak, 1),
        "above_model_mib": round(peak - loaded, 1),
        "ms_per_step": round(statistics.median(times), 1),
        "steps_ms": [round(t, 1) for t in times],
        "loss": round(float(loss), 4),
    }


def child_command(rows: list[str], args, precision: str) -> list[str]:
    cmd = [sys.executable, __file__, "--row", *rows, "--precision", precision, "--out", str(args.out)]
    cmd += ["--dataset", args.dataset, "--batch-size", str(args.batch_size)]
    cmd += ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    return cmd + (["--tiny"] if args.tiny else []) + ["--set", *args.set]


def run_in_child(rows: list[str], args, precision: str) -> list[dict]:
    """`rows` (`<length>:<0|1>`) in a fresh process: its high-water mark is theirs alone."""
    return run_rows(child_command(rows, args, precision), rows)


def compare(rows: list[dict]) -> None:
    """Each checkpointed row beside the plain row of its length: memory saved and time added."""
    plain = {r["length"]: r for r in rows if not r["checkpointing"]}
    for row in rows:
        base = plain.get(row["length"])
        if row["checkpointing"] and base:
            row["above_model_vs_off"] = round(row["above_model_mib"] / base["above_model_mib"], 3)
            row["time_vs_off"] = round(row["ms_per_step"] / base["ms_per_step"], 3)


def print_table(rows: list[dict]) -> None:
    print("| batch × tokens | checkpointing | peak MiB | above model MiB | ms / step | memory / time vs off |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        versus = f"{r['above_model_vs_off']:.2f}× / {r['time_vs_off']:.2f}×" if "time_vs_off" in r else ""
        print(
            f"| {r['batch_size']} × {r['length']} | {'on' if r['checkpointing'] else 'off'} | {r['peak_mib']:,.0f} "
            f"| {r['above_model_mib']:,.0f} | {r['ms_per_step']:,.0f} | {versus} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="emotion", help="whose labels and tokenizer the module is built for")
    parser.add_argument("--lengths", nargs="+", type=int, default=[128, 512])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--precision", default="auto", help="auto (this machine's training default) or 32-true …")
    parser.add_argument("--tiny", action="store_true", help="a random-init tiny BERT, 16 and 32 tokens, one process")
    parser.add_argument("--set", nargs="*", default=[], help="extra config overrides, key=value")
    parser.add_argument("--row", nargs="+", help=argparse.SUPPRESS)  # <length>:<0|1> …
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    hw, on_gpu = Hardware.detect(), uses_gpu("auto")
    precision = choose_precision(hw, on_gpu)[0] if args.precision == "auto" else args.precision
    configure_kernels(on_gpu)
    if args.row:  # in a child
        for row in args.row:
            length, on = row.split(":")
            print("ROW " + json.dumps(run_variant(int(length), on == "1", args, precision)), flush=True)
        return
    if args.tiny:
        args.lengths, args.batch_size, args.steps, args.warmup = [16, 32], 4, 2, 1
    print(
        f"processor: {processor_name()}  ({hw.summary()}, {torch.get_num_threads()} threads, torch {torch.__version__})"
    )
    print(f"the step in {precision}, batch {args.batch_size}, {args.warmup} warm-up + {args.steps} timed steps\n")
    specs = [f"{length}:{int(on)}" for length in args.lengths for on in (False, True)]
    # a process per variant for its high-water mark; the tiny mode runs them all in one (a start costs ~10 s)
    rows = run_in_child(specs, args, precision) if args.tiny else [run_in_child([s], args, precision)[0] for s in specs]
    compare(rows)
    print_table(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"checkpointing_{datetime.now():%Y-%m-%d_%H-%M-%S}.json"
    record = {"processor": processor_name(), "capabilities": hw.summary(), "threads": torch.get_num_threads()}
    record |= {"torch": torch.__version__, "precision": precision, "dataset": args.dataset, "rows": rows}
    path.write_text(json.dumps(record, indent=2))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
