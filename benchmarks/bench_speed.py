"""Training throughput: our batching modes and precisions beside the HF Trainer, real data, real MiniLM.

    make bench-speed                      # emotion + go_emotions, plus one full emotion epoch
    python benchmarks/bench_speed.py --steps 20 --no-epoch --datasets emotion

Rows per dataset, each in its own process:
  ours  global   fp32  pads every text to the longest of the training set (the seed recipe's
                       `map(tokenize, batched=True, batch_size=None)`)
  ours  dynamic  fp32  pads each shuffled batch to its longest text
  ours  grouped  fp32  our length-grouped batches
  ours  grouped  auto  our default (`trainer.precision=auto`), where auto is not fp32 on this machine
  hf-trainer grouped   transformers' Trainer, `train_sampling_strategy="group_by_length"`, fp32, and with
                       bf16/fp16 where this machine has it natively — the tool people would otherwise use
MFU is against the measured GEMM peak of the precision the row ran in. Figures are printed and saved as JSON.
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
from machine import gemm_peak_gflops, peak_memory_mib, processor_name, reset_peak_memory  # noqa: E402

from emo_lightning.train import build_classifier, build_trainer  # noqa: E402
from emo_lightning.utils.hardware import Hardware, bf16_native, choose_precision, uses_gpu  # noqa: E402
from emo_lightning.utils.hub import resolve_hub_path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODES = {
    "global": {"data.length_grouped": False},
    "dynamic": {"data.length_grouped": False},
    "grouped": {"data.length_grouped": True},
}
FP32 = "32-true"


class ThroughputMeter:
    """Times training steps after `warmup` and counts real and padded tokens and training FLOPs."""

    def __init__(self, warmup: int, flops_per_text) -> None:
        self.warmup, self.flops_per_text = warmup, flops_per_text
        self.samples = self.real = self.padded = self.steps = 0
        self.flops = 0.0
        self.start = self.end = None

    def step_begins(self, step: int) -> None:
        if step == self.warmup and self.start is None:
            reset_peak_memory()
            self.start = time.perf_counter()

    def count(self, attention_mask: torch.Tensor) -> None:
        if self.start is not None:
            lengths = attention_mask.sum(dim=1)
            self.samples += len(lengths)
            self.real += int(lengths.sum())
            self.padded += attention_mask.numel()
            self.flops += sum(self.flops_per_text(int(n)) for n in lengths)

    def step_ends(self) -> None:
        if self.start is not None:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
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


class LightningMeter(Callback):
    def __init__(self, meter: ThroughputMeter) -> None:
        self.meter = meter

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.meter.step_begins(trainer.global_step)
        self.meter.count(batch["attention_mask"])

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.meter.step_ends()


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


def run_ours(dataset, mode, precision, steps, warmup, peaks, output_dir, extra, epoch=False) -> dict:
    overrides = dict(MODES[mode]) | {"trainer.precision": precision} | dict(item.split("=", 1) for item in extra)
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
    trainer = build_trainer(cfg, callbacks=[LightningMeter(meter)], logger=False)
    trainer.fit(module, datamodule=datamodule)
    row = {"runner": "ours", "dataset": dataset, "mode": mode, "precision": str(trainer.precision)}
    row |= {"batch_size": datamodule.batch_size, **meter.result(peaks[row["precision"]])}
    if mode == "global":
        row["padded_to"] = datamodule.pad_to_multiple_of
    return row


def run_hf_trainer(dataset, precision, steps, warmup, peaks, output_dir, extra, epoch=False) -> dict:
    """transformers' Trainer on the same tokenized data, model, batch size, lr and steps, length-grouped."""
    from transformers import AutoModelForSequenceClassification, Trainer, TrainerCallback, TrainingArguments

    cfg = compose_cfg(dataset, dict(item.split("=", 1) for item in extra), warmup + steps, output_dir)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    train = datamodule.tokenized["train"]
    train = train.add_column("length", datamodule.lengths("train"))
    model = AutoModelForSequenceClassification.from_pretrained(
        resolve_hub_path(cfg.model.pretrained_model_name_or_path, cfg.model.model_dir),
        num_labels=datamodule.num_labels,
        problem_type="multi_label_classification" if datamodule.multi_label else "single_label_classification",
    )
    meter = ThroughputMeter(0 if epoch else warmup, training_flops(model.base_model))
    model.register_forward_pre_hook(
        lambda m, a, kw: meter.count(kw["attention_mask"]) if m.training else None, with_kwargs=True
    )

    class Meter(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            meter.step_begins(state.global_step)

        def on_step_end(self, args, state, control, **kwargs):
            meter.step_ends()

    on_gpu = torch.cuda.is_available()
    args = TrainingArguments(
        output_dir=str(output_dir / "hf"),
        per_device_train_batch_size=datamodule.batch_size,
        learning_rate=cfg.optimizer.lr,
        weight_decay=cfg.optimizer.weight_decay,
        max_steps=-1 if epoch else warmup + steps,
        num_train_epochs=1,
        train_sampling_strategy="group_by_length",
        bf16=precision == "bf16-mixed",
        fp16=precision == "16-mixed",
        use_cpu=not on_gpu,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        seed=cfg.seed,
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=train, data_collator=datamodule.collate(), callbacks=[Meter()]
    )
    trainer.train()
    row = {"runner": "hf-trainer", "dataset": dataset, "mode": "grouped", "precision": precision}
    return row | {"batch_size": datamodule.batch_size, "optim": args.optim.value, **meter.result(peaks[precision])}


def run_in_child(row: str, args, peaks: dict) -> dict:
    """Each row in a fresh process, so no row inherits another's allocator state or threads."""
    cmd = [sys.executable, __file__, "--row", row, "--peaks", json.dumps(peaks), "--out", str(args.out)]
    cmd += ["--steps", str(args.steps), "--warmup", str(args.warmup), "--set", *args.set]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("ROW ")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark row {row} failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][4:])


def run_row(spec: str, args, peaks: dict) -> dict:
    runner, dataset, mode, precision, *epoch = spec.split(":")
    scratch = args.out / "scratch"
    if runner == "hf-trainer":
        return run_hf_trainer(dataset, precision, args.steps, args.warmup, peaks, scratch, args.set, bool(epoch))
    return run_ours(dataset, mode, precision, args.steps, args.warmup, peaks, scratch, args.set, bool(epoch))


COLUMNS = ["runner", "dataset", "mode", "precision", "samples_per_s", "real_tokens_per_s", "padded_fraction", "mfu"]
COLUMNS += ["peak_memory_mib", "seconds", "vs_global", "vs_hf_best"]


def print_table(rows: list[dict], header: bool = True) -> None:
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) + 1 for c in COLUMNS]
    if header:
        print("  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths)))
    for r in rows:
        print("  ".join(str(r.get(c, "")).ljust(w) for c, w in zip(COLUMNS, widths)), flush=True)


def measure_peaks(hw: Hardware, on_gpu: bool) -> dict[str, float]:
    """GEMM peaks (GFLOP/s) per Lightning precision; bf16 on an emulating CPU is measured small, to show it."""
    peaks = {FP32: gemm_peak_gflops(torch.float32)}
    if bf16_native(hw, on_gpu):
        peaks["bf16-mixed"] = gemm_peak_gflops(torch.bfloat16)
    else:
        peaks["bf16-mixed"] = gemm_peak_gflops(torch.bfloat16, sizes=(256,), repeats=2)
    if on_gpu:
        peaks["16-mixed"] = gemm_peak_gflops(torch.float16)
    return {k: round(v, 1) for k, v in peaks.items()}


def plan_rows(datasets: list[str], modes: list[str], default: str, native_half: bool) -> list[str]:
    rows = []
    for dataset in datasets:
        rows += [f"ours:{dataset}:{mode}:{FP32}" for mode in modes]
        if default != FP32:
            rows.append(f"ours:{dataset}:grouped:{default}")
        rows.append(f"hf-trainer:{dataset}:grouped:{FP32}")
        if native_half:
            rows.append(f"hf-trainer:{dataset}:grouped:{default}")
    return rows


def compare(rows: list[dict], row: dict) -> None:
    same = [r for r in rows if r["dataset"] == row["dataset"]]
    base = next((r for r in same if r["runner"] == "ours" and r["mode"] == "global"), None)
    if base and row is not base:
        row["vs_global"] = round(row["samples_per_s"] / base["samples_per_s"], 2)
    hf = [r for r in same if r["runner"] == "hf-trainer"]
    if hf and row["runner"] == "ours":
        row["vs_hf_best"] = round(row["samples_per_s"] / max(r["samples_per_s"] for r in hf), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["emotion", "go_emotions"])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--no-epoch", action="store_true", help="skip the full emotion epoch")
    parser.add_argument("--no-hf", action="store_true", help="skip the HF Trainer reference rows")
    parser.add_argument("--set", nargs="*", default=[], help="extra config overrides for every row, key=value")
    parser.add_argument("--row", help=argparse.SUPPRESS)  # runner:dataset:mode:precision[:epoch], in a child
    parser.add_argument("--peaks", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    if args.row:
        print("ROW " + json.dumps(run_row(args.row, args, json.loads(args.peaks))))
        return

    hw, on_gpu = Hardware.detect(), uses_gpu("auto")
    default, reason = choose_precision(hw, on_gpu)
    peaks = measure_peaks(hw, on_gpu)
    machine = {"processor": processor_name(), "capabilities": hw.summary(), "threads": torch.get_num_threads()}
    machine |= {"gemm_peak_gflops": peaks, "default_precision": default, "reason": reason, "torch": torch.__version__}
    print(
        f"processor: {machine['processor']}  ({hw.summary()}, {machine['threads']} threads, torch {torch.__version__})"
    )
    print(
        "GEMM peak GFLOP/s: "
        + ", ".join(f"{k} {v:,.0f}" for k, v in peaks.items())
        + ("" if bf16_native(hw, on_gpu) else " (bf16 emulated)")
    )
    print(f"default precision (auto): {default} — {reason}\n")
    specs = plan_rows(args.datasets, args.modes, default, default != FP32)
    if args.no_hf:
        specs = [s for s in specs if not s.startswith("hf-trainer")]
    rows = []
    for i, spec in enumerate(specs):
        rows.append(run_in_child(spec, args, peaks))
        print_table(rows[-1:], header=i == 0)
    for row in rows:
        compare(rows, row)
    epochs = []
    if not args.no_epoch:  # the same data for both: no luck of the draw in which lengths were sampled
        runners = ["ours"] + ([] if args.no_hf else ["hf-trainer"])
        print(f"\none full emotion epoch, grouped, {default}:")
        for runner in runners:
            epochs.append(run_in_child(f"{runner}:emotion:grouped:{default}:epoch", args, peaks))
            last = epochs[-1]
            print(f"  {runner:<10} {last['steps']} steps  {last['seconds']:.0f} s  {last['samples_per_s']} samples/s")
        if len(epochs) == 2:
            print(f"  ours / hf-trainer: {epochs[1]['seconds'] / epochs[0]['seconds']:.2f}×")
    print()
    print_table(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"speed_{datetime.now():%Y-%m-%d_%H-%M-%S}.json"
    path.write_text(json.dumps({"machine": machine, "rows": rows, "emotion_epoch": epochs}, indent=2))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
