"""Which backend runs the network: `backend=auto|torch|onnx|onnx-int8|openvino`, and the speeds `auto` reads.

`python export.py` measures every backend that passed its parity check (PyTorch fp32, PyTorch at the machine's
precision, ONNX fp32, ONNX int8, OpenVINO at the machine's precision) at batch 1 and at batch 64 on this machine
and writes the figures into `onnx/parity.json`. `auto` then runs, for each batch, the backend measured fastest at
the nearer of those sizes. Without measurements of this machine it takes a rule (see `rule_choices`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from emo_lightning.inference.engine import Backend, TorchBackend, predict_probabilities
from emo_lightning.inference.parity import PARITY_FILE, backend_records, passed_backends, read_parity
from emo_lightning.utils.console import command_for
from emo_lightning.utils.errors import ConfigError
from emo_lightning.utils.hardware import Hardware, inference_dtype, machine_id

log = logging.getLogger(__name__)

MEASURED_BATCH_SIZES = (1, 64)


def open_torch(name: str, network: torch.nn.Module, onnx_dir: Path, device: torch.device) -> Backend:
    return TorchBackend(network, inference_dtype(name.removeprefix("torch-"), Hardware.detect(), device), device)


def open_onnx(name: str, network: torch.nn.Module, onnx_dir: Path, device: torch.device) -> Backend:
    from emo_lightning.inference.onnx_backend import OnnxBackend

    return OnnxBackend(onnx_dir, int8=name == "onnx-int8")


def open_openvino(name: str, network: torch.nn.Module, onnx_dir: Path, device: torch.device) -> Backend:
    from emo_lightning.inference.openvino_backend import OpenVinoBackend

    return OpenVinoBackend(onnx_dir, torch.bfloat16 if name == "openvino-bf16" else torch.float32)


@dataclass(frozen=True)
class BackendKind:
    """A `backend=` option: the `Backend.name`s it runs as (what parity.json records), whether it runs the `onnx/`
    export, and how to open one of those names (its module is imported only then)."""

    names: tuple[str, ...]
    exported: bool
    open: Callable[[str, torch.nn.Module, Path, torch.device], Backend]


# `backend=` option → kind. A new backend: its module in inference/, one entry here (and its parity in the export).
BACKENDS: dict[str, BackendKind] = {
    "torch": BackendKind(("torch-fp32", "torch-bf16", "torch-fp16"), exported=False, open=open_torch),
    "onnx": BackendKind(("onnx",), exported=True, open=open_onnx),
    "onnx-int8": BackendKind(("onnx-int8",), exported=True, open=open_onnx),
    "openvino": BackendKind(("openvino-fp32", "openvino-bf16"), exported=True, open=open_openvino),
}
BACKEND_CHOICES = ("auto", *BACKENDS)
EXPORTED_BACKENDS = tuple(option for option, kind in BACKENDS.items() if kind.exported)  # they run the onnx/ export


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


class LazyBackend:
    """A backend opened when a batch first needs it: `auto` opens only the backends of the batch sizes it gets
    (one text to predict.py: not the one for batches; serve.py warms both up before it serves)."""

    def __init__(self, name: str, open_backend: Callable[[], Backend]) -> None:
        self.name = name
        self._open = open_backend
        self._backend: Backend | None = None

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = self._open()
        return self._backend

    @property
    def lanes(self) -> int:
        return getattr(self.backend, "lanes", 1)

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.backend.logits(input_ids, attention_mask)


def check_backend_choice(backend: str, precision: str) -> None:
    """One line for an unknown backend, or a precision given to a backend it does not apply to."""
    if backend not in BACKEND_CHOICES:
        raise ConfigError(f"backend={backend} is not one of {', '.join(BACKEND_CHOICES)}: pick one (auto: the fastest)")
    if precision != "auto" and backend in EXPORTED_BACKENDS:
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
    if backend in EXPORTED_BACKENDS:
        record = check_exported(onnx_dir, backend)
        return named_backend(record["backend"], network, onnx_dir, device)
    return auto_backend(network, onnx_dir, device)


def check_exported(onnx_dir: Path, backend: str) -> dict:
    """The parity record of `backend` in the export; a one-line ConfigError where there is none, or it failed."""
    report = read_parity(onnx_dir)
    fmt = "onnx-int8" if backend == "onnx-int8" else "onnx"
    records = backend_records(report, ("backends", "openvino"))
    found = [record for record in records if record["backend"] in BACKENDS[backend].names]
    if not found:
        redo = f"delete {onnx_dir} and run" if onnx_dir.exists() else "run"
        raise ConfigError(
            f"backend={backend} needs an export with its parity check in {onnx_dir}: "
            f"{redo} `{command_for('export.py')} run_dir={onnx_dir.parent} format={fmt}` first"
        )
    if not found[0]["passed"]:
        raise ConfigError(f"backend={backend} failed its parity check at export ({found[0]['problem']})")
    return found[0]


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
            source = f"a rule (no speeds measured: `{command_for('export.py')}` measures them)"
    lazy = {name: LazyBackend(name, partial(named_backend, name, network, onnx_dir, device)) for name in names.values()}
    routed = RoutedBackend({size: lazy[name] for size, name in names.items()})
    log.debug("backend auto → %s, from %s", routed.name, source)
    return routed


def fastest(speeds: dict[str, float]) -> str:
    return max(speeds, key=speeds.get)


def rule_choices(report: dict | None, device: torch.device) -> dict[int, str]:
    """Without measurements: an exported ONNX model that passed (int8 first), else PyTorch at the machine's
    precision for large batches and fp32 for single texts (on an AMX CPU bf16 pays off only in batches)."""
    passed = passed_backends(report, ("backends",))
    for name in ("onnx-int8", "onnx"):
        if name in passed:
            return {size: name for size in MEASURED_BATCH_SIZES}
    machine = TorchBackend.name_for(inference_dtype("auto", Hardware.detect(), device))
    return {1: "torch-fp32" if device.type == "cpu" else machine, 64: machine}


def named_backend(name: str, network: torch.nn.Module, onnx_dir: Path, device: torch.device) -> Backend:
    """A backend by its `Backend.name` (torch-fp32, torch-bf16, onnx, onnx-int8, openvino-bf16, …: `BACKENDS`)."""
    kind = next((kind for kind in BACKENDS.values() if name in kind.names), None)
    if kind is None:
        raise ConfigError(f"{name} is not a backend this version runs: export the run again with export.py")
    return kind.open(name, network, onnx_dir, device)


def texts_per_second(backend: Backend, tokenizer, texts: list[str], max_length: int, multi_label: bool, batch: int):
    """Throughput of one pass of the one inference path (tokenization included) over `texts`."""
    started = time.perf_counter()
    predict_probabilities(backend, tokenizer, texts, max_length, multi_label, batch)
    return len(texts) / (time.perf_counter() - started)


def measure_speeds(
    backends: list[Backend], tokenizer, texts: list[str], max_length: int, multi_label: bool, passes: int = 3
) -> dict:
    """texts/s of each backend at each of `MEASURED_BATCH_SIZES` on this machine: what `auto` chooses from.

    Batch 1 on 64 texts, batch 64 on 512 (or the texts there are); the best of `passes` passes, in steady state
    (a first pass may build kernels for each new batch shape: OpenVINO does), taken in turns so that a noisy
    moment of a shared machine hits every backend.
    """
    samples = {1: texts[:64], 64: texts[:512]}
    figures: dict[str, dict[str, float]] = {str(size): {} for size in MEASURED_BATCH_SIZES}
    for size in MEASURED_BATCH_SIZES:
        for _ in range(passes):
            for backend in backends:
                rate = texts_per_second(backend, tokenizer, samples[size], max_length, multi_label, size)
                figures[str(size)][backend.name] = round(max(rate, figures[str(size)].get(backend.name, 0.0)), 1)
        log.info(
            "speed at batch %d: %s → backend=auto runs %s",
            size,
            ", ".join(f"{name} {rate:.0f}/s" for name, rate in figures[str(size)].items()),
            fastest(figures[str(size)]),
        )
    chosen = {str(size): fastest(figures[str(size)]) for size in MEASURED_BATCH_SIZES}
    return {"machine": machine_id(), "texts_per_second": figures, "auto": chosen}
