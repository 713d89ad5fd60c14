"""Training throughput: our batching modes and precisions beside the HF Trainer, real data, real MiniLM.

    make bench-speed                      # emotion + go_emotions, plus one full emotion epoch
    python benchmarks/bench_speed.py --steps 20 --no-epoch --datasets emotion
    python benchmarks/bench_speed.py --tiny   # every row kind on a random-init tiny BERT, a few steps (the suite's)

Rows per dataset, each in its own process:
  ours  global   fp32  pads every text to the longest of the training set (the seed recipe's
                       `map(tokenize, batched=True, batch_size=None)`)
  ours  dynamic  fp32  pads each shuffled batch to its longest text
  ours  grouped  fp32  our length-grouped batches
  ours  grouped  auto  our default (`trainer.precision=auto`), where auto is not fp32 on this machine
  hf-trainer grouped   transformers' Trainer at its fastest settings (HF_TRAINER_SPEED: group_by_length, fused
                       AdamW), fp32, and with bf16/fp16 where this machine has it natively — the tool people
                       would otherwise use; `--hf-compile` adds its `torch_compile=True` rows
The step-count rows run `--repeats` times in alternation (A B C A B C …): each row shows the median and the spread
(max − min over median) of its repeats. MFU is against the measured GEMM peak of the precision the row ran in.
Figures are printed and saved as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
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
from machine import gemm_peak_gflops, peak_memory_mib, processor_name, reset_peak_memory, run_rows  # noqa: E402

from emo_lightning.training.setup import build_classifier, build_trainer  # noqa: E402
from emo_lightning.utils.hardware import Hardware, bf16_native, choose_precision, uses_gpu  # noqa: E402
from emo_lightning.utils.hub import resolve_hub_path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODES = {
    "global": {"data.length_grouped": False},
    "dynamic": {"data.length_grouped": False},
    "grouped": {"data.length_grouped": True},
}
FP32 = "32-true"
# A random-init BERT of MiniLM's vocabulary, small enough that a row takes seconds: the suite's `--tiny` mode.
TINY_MODEL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
# The Trainer's documented speed options on a CPU/GPU step, every one on (its default optimizer is already
# adamw_torch_fused on torch >= 2.8; named here so the printed settings say it).
HF_TRAINER_SPEED = {"train_sampling_strategy": "group_by_length", "optim": "adamw_torch_fused"}


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


def compose_cfg(dataset: str, overrides: dict, max_steps: int, output_dir: Path, tiny: bool = False):
    args = [
        f"data={dataset}",
        "logger=none",
        "callbacks=none",
        f"trainer.max_steps={max_steps}",
        "trainer.limit_val_batches=0",
        "+trainer.enable_checkpointing=false",
        "+trainer.enable_progress_bar=false",
        "+trainer.num_sanity_val_steps=0",
        "trainer.enable_model_summary=false",
    ]
    if tiny:
        sizes = ",".join(f"{k}:{v}" for k, v in TINY_MODEL.items())
        args += ["model.pretrained=false", f"model.config_overrides={{{sizes}}}"]
    args += [f"{k}={v}" for k, v in overrides.items()]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=args)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


def step_budget(args, epoch: bool) -> int:
    """max_steps of a row: warm-up + timed steps, or a full epoch (-1), or `--epoch-steps` of it in tiny mode."""
    if epoch:
        return args.epoch_steps or -1
    return args.warmup + args.steps


def run_ours(dataset: str, mode: str, precision: str, epoch: bool, peaks: dict, args) -> dict:
    overrides = dict(MODES[mode]) | {"trainer.precision": precision} | dict(item.split("=", 1) for item in args.set)
    cfg = compose_cfg(dataset, overrides, step_budget(args, epoch), args.out / "scratch", args.tiny)
    if epoch:
        with open_dict(cfg):
            cfg.trainer.max_epochs = 1
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    if mode == "global":  # pad every batch to the longest text of the training set
        datamodule.pad_to_multiple_of = max(datamodule.lengths("train"))
    L.seed_everything(cfg.seed)
    module, _ = build_classifier(cfg, datamodule)
    meter = ThroughputMeter(0 if epoch else args.warmup, training_flops(module.network.backbone))
    trainer = build_trainer(cfg, callbacks=[LightningMeter(meter)], logger=False)
    trainer.fit(module, datamodule=datamodule)
    row = {"runner": "ours", "dataset": dataset, "mode": mode, "precision": str(trainer.precision)}
    row |= {"batch_size": datamodule.batch_size, **meter.result(peaks[row["precision"]])}
    if mode == "global":
        row["padded_to"] = datamodule.pad_to_multiple_of
    return row


def hf_model(cfg, num_labels: int, multi_label: bool):
    """transformers' classifier of the same encoder: the pretrained one, or in tiny mode the same random-init one."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    path = resolve_hub_path(cfg.model.pretrained_model_name_or_path, cfg.model.model_dir)
    kind = {"num_labels": num_labels}
    kind["problem_type"] = "multi_label_classification" if multi_label else "single_label_classification"
    if cfg.model.pretrained:
        return AutoModelForSequenceClassification.from_pretrained(path, **kind)
    config = AutoConfig.from_pretrained(path, **kind, **(cfg.model.config_overrides or {}))
    return AutoModelForSequenceClassification.from_config(config)


def hf_settings(precision: str, compiled: bool) -> dict:
    """The Trainer's arguments that decide its speed, as printed and saved with its rows."""
    return (
        HF_TRAINER_SPEED
        | {"bf16": precision == "bf16-mixed", "fp16": precision == "16-mixed"}
        | ({"torch_compile": True} if compiled else {})
    )


def run_hf_trainer(dataset: str, precision: str, epoch: bool, compiled: bool, peaks: dict, args) -> dict:
    """transformers' Trainer on the same tokenized data, model, batch size, lr and steps, at its fastest settings."""
    from transformers import Trainer, TrainerCallback, TrainingArguments

    output_dir = args.out / "scratch"
    cfg = compose_cfg(
        dataset, dict(item.split("=", 1) for item in args.set), step_budget(args, epoch), output_dir, args.tiny
    )
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    train = datamodule.tokenized["train"]
    train = train.add_column("length", datamodule.lengths("train"))
    torch.manual_seed(cfg.seed)
    model = hf_model(cfg, datamodule.num_labels, datamodule.multi_label)
    meter = ThroughputMeter(0 if epoch else args.warmup, training_flops(model.base_model))
    model.register_forward_pre_hook(
        lambda m, a, kw: meter.count(kw["attention_mask"]) if m.training else None, with_kwargs=True
    )

    class Meter(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            meter.step_begins(state.global_step)

        def on_step_end(self, args, state, control, **kwargs):
            meter.step_ends()

    settings = hf_settings(precision, compiled)
    training_args = TrainingArguments(
        output_dir=str(output_dir / "hf"),
        per_device_train_batch_size=datamodule.batch_size,
        learning_rate=cfg.optimizer.lr,
        weight_decay=cfg.optimizer.weight_decay,
        max_steps=step_budget(args, epoch),
        num_train_epochs=1,
        max_grad_norm=cfg.trainer.gradient_clip_val,
        use_cpu=not torch.cuda.is_available(),
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        seed=cfg.seed,
        **settings,
    )
    trainer = Trainer(
        model=model, args=training_args, train_dataset=train, data_collator=datamodule.collate(), callbacks=[Meter()]
    )
    trainer.train()
    mode = "grouped+compile" if compiled else "grouped"
    row = {"runner": "hf-trainer", "dataset": dataset, "mode": mode, "precision": precision, "settings": settings}
    return row | {"batch_size": datamodule.batch_size, **meter.result(peaks[precision])}


def child_command(rows: list[str], args, peaks: dict) -> list[str]:
    cmd = [sys.executable, __file__, "--row", *rows, "--peaks", json.dumps(peaks), "--out", str(args.out)]
    cmd += ["--steps", str(args.steps), "--warmup", str(args.warmup), "--epoch-steps", str(args.epoch_steps)]
    return cmd + (["--tiny"] if args.tiny else []) + ["--set", *args.set]


def run_in_child(rows: list[str], args, peaks: dict) -> list[dict]:
    """`rows` in a fresh process, so they inherit no other process's allocator state or threads."""
    return run_rows(child_command(rows, args, peaks), rows)


def run_row(spec: str, args, peaks: dict) -> dict:
    runner, dataset, mode, precision, *epoch = spec.split(":")
    if runner == "hf-trainer":
        return run_hf_trainer(dataset, precision, bool(epoch), mode.endswith("+compile"), peaks, args)
    return run_ours(dataset, mode, precision, bool(epoch), peaks, args)


COLUMNS = ["runner", "dataset", "mode", "precision", "samples_per_s", "spread", "real_tokens_per_s"]
COLUMNS += ["padded_fraction", "mfu", "peak_memory_mib", "seconds", "vs_global", "vs_hf_best"]


def print_table(rows: list[dict], header: bool = True) -> None:
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) + 1 for c in COLUMNS]
    if header:
        print("  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths)))
    for r in rows:
        print("  ".join(str(r.get(c, "")).ljust(w) for c, w in zip(COLUMNS, widths)), flush=True)


def measure_peaks(hw: Hardware, on_gpu: bool, quick: bool = False) -> dict[str, float]:
    """GEMM peaks (GFLOP/s) per Lightning precision; bf16 on an emulating CPU is measured small, to show it.
    `quick` (tiny mode): one small size, a rough figure."""
    sizes = {"sizes": (512,), "repeats": 3} if quick else {}
    peaks = {FP32: gemm_peak_gflops(torch.float32, **sizes)}
    if bf16_native(hw, on_gpu):
        peaks["bf16-mixed"] = gemm_peak_gflops(torch.bfloat16, **sizes)
    else:
        peaks["bf16-mixed"] = gemm_peak_gflops(torch.bfloat16, sizes=(256,), repeats=2)
    if on_gpu:
        peaks["16-mixed"] = gemm_peak_gflops(torch.float16)
    return {k: round(v, 1) for k, v in peaks.items()}


def plan_rows(datasets: list[str], modes: list[str], default: str, native_half: bool, hf_compile: bool) -> list[str]:
    hf_modes = ["grouped", "grouped+compile"] if hf_compile else ["grouped"]
    rows = []
    for dataset in datasets:
        rows += [f"ours:{dataset}:{mode}:{FP32}" for mode in modes]
        if default != FP32:
            rows.append(f"ours:{dataset}:grouped:{default}")
        rows += [f"hf-trainer:{dataset}:{mode}:{FP32}" for mode in hf_modes]
        if native_half:
            rows += [f"hf-trainer:{dataset}:{mode}:{default}" for mode in hf_modes]
    return rows


def median_row(repeats: list[dict]) -> dict:
    """The repeat of median speed, with the spread of all repeats: (max − min) / median samples/s."""
    ranked = sorted(repeats, key=lambda r: r["samples_per_s"])
    row = dict(ranked[(len(ranked) - 1) // 2])
    rates = [r["samples_per_s"] for r in ranked]
    row["repeats"] = rates
    row["spread"] = f"±{(rates[-1] - rates[0]) / 2 / row['samples_per_s']:.1%}" if len(rates) > 1 else ""
    return row


def compare(rows: list[dict], row: dict) -> None:
    same = [r for r in rows if r["dataset"] == row["dataset"]]
    base = next((r for r in same if r["runner"] == "ours" and r["mode"] == "global"), None)
    if base and row is not base:
        row["vs_global"] = round(row["samples_per_s"] / base["samples_per_s"], 2)
    hf = [r for r in same if r["runner"] == "hf-trainer" and r["precision"] == row["precision"]]
    if hf and row["runner"] == "ours":
        row["vs_hf_best"] = round(row["samples_per_s"] / max(r["samples_per_s"] for r in hf), 2)


def print_machine(machine: dict, hw: Hardware, peaks: dict, emulated: bool) -> None:
    print(
        f"processor: {machine['processor']}  ({hw.summary()}, {machine['threads']} threads, torch {torch.__version__})"
    )
    shown = ", ".join(f"{k} {v:,.0f}" for k, v in peaks.items())
    print(f"GEMM peak GFLOP/s: {shown}" + (" (bf16 emulated)" if emulated else ""))
    print(f"default precision (auto): {machine['default_precision']} — {machine['reason']}")
    settings = ", ".join(f"{k}={v}" for k, v in HF_TRAINER_SPEED.items())
    print(f"HF Trainer settings: {settings}, bf16/fp16 where native (its best on this machine)\n")


def epoch_specs(args, default: str) -> list[str]:
    """One full emotion epoch of ours and of the Trainer: the same data for both, no luck of the draw in lengths."""
    runners = ["ours"] + ([] if args.no_hf else ["hf-trainer"])
    return [] if args.no_epoch else [f"{runner}:emotion:grouped:{default}:epoch" for runner in runners]


def run_epochs(specs: list[str], measure, default: str) -> list[dict]:
    print(f"\none full emotion epoch, grouped, {default}:")
    epochs = [measure(spec) for spec in specs]
    for runner, last in zip((spec.split(":")[0] for spec in specs), epochs):
        print(f"  {runner:<10} {last['steps']} steps  {last['seconds']:.1f} s  {last['samples_per_s']} samples/s")
    if len(epochs) == 2:
        print(f"  ours / hf-trainer: {epochs[0]['samples_per_s'] / epochs[1]['samples_per_s']:.2f}×")
    return epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["emotion", "go_emotions"])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each step-count row, in alternation")
    parser.add_argument("--no-epoch", action="store_true", help="skip the full emotion epoch")
    parser.add_argument("--epoch-steps", type=int, default=0, help=argparse.SUPPRESS)  # tiny: an epoch's first N
    parser.add_argument("--no-hf", action="store_true", help="skip the HF Trainer reference rows")
    parser.add_argument("--hf-compile", action="store_true", help="add the Trainer's torch_compile=True rows")
    parser.add_argument(
        "--tiny", action="store_true", help="a random-init tiny BERT, 2 steps, 2 repeats, 3 epoch steps"
    )
    parser.add_argument("--set", nargs="*", default=[], help="extra config overrides for every row, key=value")
    parser.add_argument("--row", nargs="+", help=argparse.SUPPRESS)  # runner:dataset:mode:precision[:epoch] …
    parser.add_argument("--peaks", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    if args.row:  # in a child
        for row in args.row:
            print("ROW " + json.dumps(run_row(row, args, json.loads(args.peaks))), flush=True)
        return
    if args.tiny:
        args.steps, args.warmup, args.repeats, args.epoch_steps = 2, 1, 2, 3

    hw, on_gpu = Hardware.detect(), uses_gpu("auto")
    default, reason = choose_precision(hw, on_gpu)
    peaks = measure_peaks(hw, on_gpu, quick=args.tiny)
    machine = {"processor": processor_name(), "capabilities": hw.summary(), "threads": torch.get_num_threads()}
    machine |= {"gemm_peak_gflops": peaks, "default_precision": default, "reason": reason, "torch": torch.__version__}
    print_machine(machine, hw, peaks, not bf16_native(hw, on_gpu))
    specs = plan_rows(args.datasets, args.modes, default, default != FP32, args.hf_compile)
    if args.no_hf:
        specs = [s for s in specs if not s.startswith("hf-trainer")]
    runs: dict[str, list[dict]] = {spec: [] for spec in specs}
    order = [spec for _ in range(args.repeats) for spec in specs]  # A B C … A B C …: a slow minute hits all alike
    epochs = epoch_specs(args, default)
    # a process per row for figures; the tiny mode runs every row in one (a start costs ~10 s of imports)
    done = iter(run_in_child(order + epochs, args, peaks)) if args.tiny else None

    def measure(spec: str) -> dict:
        return next(done) if done else run_in_child([spec], args, peaks)[0]

    for i, spec in enumerate(order):
        runs[spec].append(measure(spec))
        repeat = i // len(specs) + 1
        print(f"  [{repeat}/{args.repeats}] {spec}: {runs[spec][-1]['samples_per_s']} samples/s", flush=True)
    rows = [median_row(repeats) for repeats in runs.values()]
    for row in rows:
        compare(rows, row)
    epochs = run_epochs(epochs, measure, default) if epochs else []
    print()
    print_table(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"speed_{datetime.now():%Y-%m-%d_%H-%M-%S}.json"
    record = {"machine": machine, "hf_trainer_settings": HF_TRAINER_SPEED, "rows": rows, "emotion_epoch": epochs}
    path.write_text(json.dumps(record, indent=2))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
