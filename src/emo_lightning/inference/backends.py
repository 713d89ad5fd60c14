"""Which backend runs the network: `backend=auto|torch|onnx|onnx-int8`, and the speed measurements `auto` reads.

`python export.py` measures every backend that passed its parity check (PyTorch fp32, PyTorch at the machine's
precision, ONNX fp32, ONNX int8) at batch 1 and at batch 64 on this machine and writes the figures into
`onnx/parity.json`. `auto` then runs, for each batch, the backend measured fastest at the nearer of those sizes.
Without measurements of this machine it takes a rule (see `rule_choices`).
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import torch

from emo_lightning.inference.engine import Backend, TorchBackend, predict_probabilities
from emo_lightning.utils.errors import ConfigError
from emo_lightning.utils.hardware import Hardware, inference_dtype, machine_id

log = logging.getLogger(__name__)

BACKEND_CHOICES = ("auto", "torch", "onnx", "onnx-int8")
MEASURED_BATCH_SIZES = (1, 64)
PARITY_FILE = "parity.json"


class RoutedBackend:
    """Runs each batch on the backend chosen for the nearest measured batch size (`choices`: batch size → backend).

    Nearest on a log scale: with choices for 1 and 64, batches of up to 8 texts go to the first.
    """

    def __init__(self, choices: dict[int, Backend]) -> None:
        self.choices = dict(sorted(choices.items()))
        names = [f"{backend.name}@{size}" for size, backend in self.choices.items()]
        unique = {backend.name for backend in self.choices.values()}
        self.name = unique.pop() if len(unique) == 1 else "auto(" + ", ".join(names) + ")"

    def backend_for(self, rows: int) -> Backend:
        size = min(self.choices, key=lambda measured: abs(math.log(max(rows, 1)) - math.log(measured)))
        return self.choices[size]

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.backend_for(len(input_ids)).logits(input_ids, attention_mask)


def check_backend_choice(backend: str, precision: str) -> None:
    """One line for an unknown backend, or a precision given to a backend it does not apply to."""
    if backend not in BACKEND_CHOICES:
        raise ConfigError(f"backend={backend} is not one of {', '.join(BACKEND_CHOICES)}: pick one (auto: the fastest)")
    if precision != "auto" and backend.startswith("onnx"):
        raise ConfigError(
            f"precision={precision} applies to the PyTorch backend only: drop it, or give backend=torch with it"
        )


def open_backend(
    backend: str, network: torch.nn.Module, onnx_dir: Path, precision: str = "auto", device: torch.device | None = None
) -> Backend:
    """The backend named `backend` for `network` (already on `device`) and its exported `onnx_dir` (may not exist).

    `precision` other than auto means PyTorch at that precision (`auto` then picks no other backend).
    """
    check_backend_choice(backend, precision)
    device = device if device is not None else next(network.parameters()).device
    if backend == "torch" or (backend == "auto" and precision != "auto"):
        return TorchBackend(network, inference_dtype(precision, Hardware.detect(), device), device)
    if backend.startswith("onnx"):
        from emo_lightning.inference.onnx_backend import OnnxBackend

        check_exported(onnx_dir, backend)
        return OnnxBackend(onnx_dir, int8=backend == "onnx-int8")
    return auto_backend(network, onnx_dir, device)


def check_exported(onnx_dir: Path, backend: str) -> None:
    report = read_parity(onnx_dir)
    fmt = "onnx-int8" if backend == "onnx-int8" else "onnx"
    if report is None or not any(record["backend"] == backend for record in report["backends"]):
        raise ConfigError(
            f"backend={backend} needs an export with its parity check in {onnx_dir}: "
            f"run `python export.py run_dir={onnx_dir.parent} format={fmt}` first"
        )


def read_parity(onnx_dir: Path) -> dict | None:
    path = onnx_dir / PARITY_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path} is not valid JSON ({error}): delete {onnx_dir} and export again") from None


def auto_backend(network: torch.nn.Module, onnx_dir: Path, device: torch.device) -> Backend:
    """The fastest backend that passed its parity check, per batch size: measured on this machine, else the rule."""
    report = read_parity(onnx_dir) if device.type == "cpu" else None
    measured = (report or {}).get("speeds", {})
    if measured.get("machine") == machine_id():
        names = {size: fastest(measured["texts_per_second"][str(size)]) for size in MEASURED_BATCH_SIZES}
        source = f"measured on this machine at export ({onnx_dir / PARITY_FILE})"
    else:
        names = rule_choices(report, device)
        if report is not None and measured:
            source = f"a rule: {onnx_dir / PARITY_FILE} was measured on another machine ({measured.get('machine')})"
        else:
            source = "a rule (no speeds measured: `python export.py` measures them)"
    opened: dict[str, Backend] = {}
    for name in set(names.values()):
        opened[name] = named_backend(name, network, onnx_dir, device)
    routed = RoutedBackend({size: opened[name] for size, name in names.items()})
    log.debug("backend auto → %s, from %s", routed.name, source)
    return routed


def fastest(speeds: dict[str, float]) -> str:
    return max(speeds, key=speeds.get)


def rule_choices(report: dict | None, device: torch.device) -> dict[int, str]:
    """Without measurements: an exported ONNX model that passed (int8 first), else PyTorch at the machine's
    precision for large batches and fp32 for single texts (on an AMX CPU bf16 pays off only in batches)."""
    passed = [record["backend"] for record in (report or {}).get("backends", []) if record.get("passed")]
    for name in ("onnx-int8", "onnx"):
        if name in passed:
            return {size: name for size in MEASURED_BATCH_SIZES}
    machine = TorchBackend.name_for(inference_dtype("auto", Hardware.detect(), device))
    return {1: "torch-fp32" if device.type == "cpu" else machine, 64: machine}


def named_backend(name: str, network: torch.nn.Module, onnx_dir: Path, device: torch.device) -> Backend:
    """A backend by its `Backend.name`: torch-fp32, torch-bf16, torch-fp16, onnx, onnx-int8."""
    if name.startswith("torch-"):
        return TorchBackend(network, inference_dtype(name.removeprefix("torch-"), Hardware.detect(), device), device)
    from emo_lightning.inference.onnx_backend import OnnxBackend

    return OnnxBackend(onnx_dir, int8=name == "onnx-int8")


def texts_per_second(backend: Backend, tokenizer, texts: list[str], max_length: int, multi_label: bool, batch: int):
    """Throughput of the one inference path (tokenization included) on `texts`, after one warm-up batch."""
    predict_probabilities(backend, tokenizer, texts[:batch], max_length, multi_label, batch)
    started = time.perf_counter()
    predict_probabilities(backend, tokenizer, texts, max_length, multi_label, batch)
    return len(texts) / (time.perf_counter() - started)


def measure_speeds(backends: list[Backend], tokenizer, texts: list[str], max_length: int, multi_label: bool) -> dict:
    """texts/s of each backend at each of `MEASURED_BATCH_SIZES` on this machine: what `auto` chooses from.

    Batch 1 on 64 texts, batch 64 on 512 (or the texts there are), interleaved so a noisy moment hits all backends.
    """
    samples = {1: texts[:64], 64: texts[:512]}
    figures: dict[str, dict[str, float]] = {str(size): {} for size in MEASURED_BATCH_SIZES}
    for size in MEASURED_BATCH_SIZES:
        for backend in backends:
            rate = texts_per_second(backend, tokenizer, samples[size], max_length, multi_label, size)
            figures[str(size)][backend.name] = round(rate, 1)
        log.info(
            "speed at batch %d: %s",
            size,
            ", ".join(f"{name} {rate:.0f}/s" for name, rate in figures[str(size)].items()),
        )
    chosen = {str(size): fastest(figures[str(size)]) for size in MEASURED_BATCH_SIZES}
    return {"machine": machine_id(), "texts_per_second": figures, "auto": chosen}
