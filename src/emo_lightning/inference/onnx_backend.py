"""The ONNX Runtime backend: an exported `onnx/` folder's `model.onnx` (or `model.int8.onnx`) on the CPU.

An ONNX file is a graph of built-in operators: loading it runs no Python code (no custom-op libraries are
registered).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from emo_lightning.utils.console import command_for
from emo_lightning.utils.errors import ConfigError

FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
INPUT_NAMES = ("input_ids", "attention_mask")


def machine_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def onnx_file(model_dir: Path, int8: bool) -> Path:
    return model_dir / (INT8_FILE if int8 else FP32_FILE)


class OnnxBackend:
    """`model_dir`/model.onnx (fp32) or model.int8.onnx (`int8`) in an onnxruntime CPU session, one thread per core.

    `threads`: intra-op threads (default: the machine's cores).
    """

    def __init__(self, model_dir: str | Path, int8: bool = False, threads: int | None = None) -> None:
        path = onnx_file(Path(model_dir), int8)
        if not path.is_file():
            fmt = "onnx-int8" if int8 else "onnx"
            export = command_for("export.py")
            raise ConfigError(f"{path} does not exist: export it with `{export} run_dir=<run> format={fmt}`")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or machine_cores()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.path = path
        self.name = "onnx-int8" if int8 else "onnx"
        self.lanes = 1  # onnxruntime runs one batch on all its intra-op threads

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        (logits,) = self.session.run(["logits"], numpy_inputs(input_ids, attention_mask))
        return torch.from_numpy(np.asarray(logits, dtype=np.float32))


def numpy_inputs(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, np.ndarray]:
    """The exported graph's inputs by name: contiguous int64 arrays on the CPU."""
    tensors = (input_ids, attention_mask)
    return {name: np.ascontiguousarray(t.cpu().numpy(), dtype=np.int64) for name, t in zip(INPUT_NAMES, tensors)}
