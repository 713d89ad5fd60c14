"""Training throughput of three batching modes, real data, real MiniLM, our real training loop.

    make bench-speed                      # emotion + go_emotions, 3 modes each, plus one full emotion epoch
    python benchmarks/bench_speed.py --steps 20 --no-epoch

Modes: `global` pads every text to the longest in the training set (the seed recipe's
`map(tokenize, batched=True, batch_size=None)`); `dynamic` pads each shuffled batch to its longest text;
`grouped` (our default) draws batches of near-equal length. Figures are printed and saved as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback
from omegaconf import open_dict

sys.path.insert(0, str(Path(__file__).parent))
from machine import cpu_capabilities, gemm_peak_gflops, peak_memory_mib, processor_name, reset_peak_memory  # noqa: E402

from emo_lightning.train import build_classifier  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODES = {
    "global": {"data.length_grouped": False},
    "dynamic": {"data.length_grouped": False},
    "grouped": {"data.length_grouped": True},
}


class ThroughputMeter(Callback):
    """Times training steps after `warmup` and counts real and padded tokens and training FLOPs."""

    def __init__(self, warmup: int, flops_per_text) -> None:
        self.warmup, self.flops_per_text = warmup, flops_per_text
        self.samples = self.real = self.padded = self.steps = 0
        self.flops = 0.0
        self.start = self.end = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup and self.start is None:
            reset_peak_memory()
            self.start = time.perf_counter()
        if self.start is not None:
            lengths = batch["attention_mask"].sum(dim=1)
            self.samples += len(lengths)
            self.real += int(lengths.sum())
            self.padded += batch["attention_mask"].numel()
            self.flops += sum(self.flops_per_text(int(n)) for n in lengths)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.start is not None:
            self.steps += 1
            self.end = time.perf_counter()

    def result(self, peak_gflops: float) -> dict:
        seconds = self.end - self.start
        return {
            "steps": self.steps,
            "seconds": round(seconds, 2),
            "samples_per_s": round(self.samples / seconds, 1),
            "real_tokens_per_s": round(self.real / seconds, 1),
            "padded_fraction": round(1 - self.real / self.padded, 3),
            "mfu": round(self.flops / seconds / 1e9 / peak_gflops, 3),
            "peak_memory_mib": round(peak_memory_mib(), 1),
        }


def training_flops(backbone) -> callable:
    """FLOPs to train on one text of n real tokens: 6·(non-embedding params)·n + attention 12·layers·n²·d."""
    embedding = sum(p.numel() for p in backbone.get_input_embeddings().parameters())
    embedding += sum(p.numel() for n, p in backbone.named_parameters() if "position_embeddings" in n)
    params = sum(p.numel() for p in backbone.parameters()) - embedding
    layers, hidden = backbone.config.num_hidden_layers, backbone.config.hidden_size
    return lambda n: 6 * params * n + 12 * layers * n * n * hidden


def compose_cfg(dataset: str, overrides: dict, max_steps: int, output_dir: Path):
    args = [
        f"data={dataset}",
        "logger=none",
        "callbacks=none",
        f"trainer.max_steps={max_steps}",
        "trainer.limit_val_batches=0",
        "+trainer.enable_checkpointing=false",
        "+trainer.enable_progress_bar=false",
        "+trainer.num_sanity_val_steps=0",
        "+trainer.enable_model_summary=false",
    ]
    args += [f"{k}={v}" for k, v in overrides.items()]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=args)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


def run_mode(
    dataset: str, mode: str, steps: int, warmup: int, peak: float, output_dir: Path, extra: list[str], epoch=False
):
    overrides = dict(MODES[mode]) | dict(item.split("=", 1) for item in extra)
    cfg = compose_cfg(dataset, overrides, -1 if epoch else warmup + steps, output_dir)
    if epoch:
        with open_dict(cfg):
            cfg.trainer.max_epochs = 1
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    if mode == "global":  # pad every batch to the longest text of the training set
        datamodule.pad_to_multiple_of = max(datamodule.lengths("train"))
    L.seed_everything(cfg.seed)
    module, _ = build_classifier(cfg, datamodule)
    meter = ThroughputMeter(0 if epoch else warmup, training_flops(module.network.backbone))
    trainer = instantiate(cfg.trainer, callbacks=[meter], logger=False)
    trainer.fit(module, datamodule=datamodule)
    row = {
        "dataset": dataset,
        "mode": mode,
        "precision": cfg.trainer.precision,
        "batch_size": datamodule.batch_size,
        **meter.result(peak),
    }
    if mode == "global":
        row["padded_to"] = datamodule.pad_to_multiple_of
    return row


def run_in_child(row: str, args, peak: float) -> dict:
    """Each row in a fresh process, so no row inherits another's allocator state or threads."""
    cmd = [
        sys.executable,
        __file__,
        "--row",
        row,
        "--peak",
        str(peak),
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--out",
        str(args.out),
        "--set",
        *args.set,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("ROW ")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark row {row} failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][4:])


def print_table(rows: list[dict]) -> None:
    cols = [
        "dataset",
        "mode",
        "precision",
        "samples_per_s",
        "real_tokens_per_s",
        "padded_fraction",
        "mfu",
        "peak_memory_mib",
        "seconds",
        "speedup",
    ]
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for r in rows:
        print("  ".join(str(r.get(c, "")).ljust(w) for c, w in zip(cols, widths)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["emotion", "go_emotions"])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--no-epoch", action="store_true", help="skip the full emotion epoch")
    parser.add_argument("--set", nargs="*", default=[], help="extra config overrides for every row, key=value")
    parser.add_argument("--row", help=argparse.SUPPRESS)  # dataset:mode[:epoch], run in a child process
    parser.add_argument("--peak", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    if args.row:
        dataset, mode, *epoch = args.row.split(":")
        row = run_mode(dataset, mode, args.steps, args.warmup, args.peak, args.out / "scratch", args.set, bool(epoch))
        print("ROW " + json.dumps(row))
        return

    peak = gemm_peak_gflops(torch.float32)
    machine = {
        "processor": processor_name(),
        **cpu_capabilities(),
        "fp32_gemm_peak_gflops": round(peak, 1),
        "torch": torch.__version__,
    }
    print(f"processor: {machine['processor']}  caps: {cpu_capabilities()}  fp32 GEMM peak: {peak:.0f} GFLOP/s")
    rows = []
    for dataset in args.datasets:
        for mode in args.modes:
            rows.append(run_in_child(f"{dataset}:{mode}", args, peak))
            base = next((r for r in rows if r["dataset"] == dataset and r["mode"] == "global"), None)
            if base:
                rows[-1]["speedup"] = round(rows[-1]["samples_per_s"] / base["samples_per_s"], 2)
            print_table(rows[-1:])
    epoch = None
    if not args.no_epoch:
        epoch = run_in_child("emotion:grouped:epoch", args, peak)
        print(f"one full emotion epoch (grouped, {epoch['steps']} steps): {epoch['seconds']:.0f} s")
    print()
    print_table(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"speed_{datetime.now():%Y-%m-%d_%H-%M-%S}.json"
    path.write_text(json.dumps({"machine": machine, "rows": rows, "emotion_epoch": epoch}, indent=2))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
