"""The one inference path: texts → token ids → a backend's logits → fp32 probabilities → label decisions.

The final evaluation of a training run, its predictions/*.csv, `EmotionPredictor` and predict.py all call
`predict_probabilities` (the evaluation its two halves, `predict_logits` and `to_probabilities`, to fit temperatures
on the logits) and `decide`; only the `Backend` that runs the network differs (PyTorch here, ONNX beside).
Nothing here imports Lightning or Hydra, so prediction loads fast.
"""

from __future__ import annotations

import contextlib
import copy
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Protocol

import torch
from torch import nn
from tqdm.auto import tqdm

from emo_lightning.data.batching import SortedBatchSampler, restore_order
from emo_lightning.models.thresholds import binarize

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

DTYPE_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


class Backend(Protocol):
    """Runs the network: token ids → logits. Implementations: TorchBackend (here), OnnxBackend (onnx_backend.py)."""

    name: str  # "torch-fp32", "torch-bf16", "onnx", "onnx-int8"
    lanes: int  # batches it may run at once, each on a share of the cores (1: one after another, on all cores)

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(batch, labels) float32 on the CPU, from int64 CPU ids and mask padded with the tokenizer's pad id."""
        ...


class TorchBackend:
    """A PyTorch network (e.g. `EmotionNetwork`) in eval mode on `device`, its weights in `dtype`.

    For bf16/fp16 it runs a copy of the network cast to that dtype (the given network stays fp32): on an AMX CPU
    that is ~1.2× the speed of autocast over fp32 weights, which re-casts every weight on every call. Logits come
    back in fp32. `device`: where the network's parameters are, unless given (the network is not moved).
    `lanes`: batches run at once, each on a share of the cores (default: see `default_lanes`).
    """

    def __init__(
        self,
        network: nn.Module,
        dtype: torch.dtype = torch.float32,
        device: torch.device | None = None,
        lanes: int | None = None,
    ):
        if dtype not in DTYPE_NAMES:
            raise ValueError(f"dtype {dtype} is not one of {', '.join(map(str, DTYPE_NAMES))}")
        network.eval()
        self.network = network if dtype == torch.float32 else copy.deepcopy(network).to(dtype)
        self.dtype = dtype
        self.device = device if device is not None else next(network.parameters()).device
        self.name = self.name_for(dtype)
        self.lanes = lanes if lanes is not None else default_lanes(self.device)

    @staticmethod
    def name_for(dtype: torch.dtype) -> str:
        return f"torch-{DTYPE_NAMES[dtype]}"

    @torch.inference_mode()
    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        logits = self.network(input_ids.to(self.device), attention_mask.to(self.device))
        return logits.float().cpu()


def predict_probabilities(
    backend: Backend,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    max_length: int,
    multi_label: bool,
    batch_size: int = 64,
    progress: bool = False,
    temperatures: torch.Tensor | None = None,
) -> torch.Tensor:
    """fp32 probabilities (len(texts), num_labels) in the order of `texts` (no texts: shape (0, 0)).

    Sigmoid (multi-label) or softmax of `predict_logits`, divided first by `temperatures` (one for the softmax, one
    per label for the sigmoids; None: as they are, e.g. where a model folder folded them into its weights).
    """
    logits = predict_logits(backend, tokenizer, texts, max_length, batch_size, progress)
    return to_probabilities(logits, multi_label, temperatures) if logits.numel() else logits


def to_probabilities(logits: torch.Tensor, multi_label: bool, temperatures: torch.Tensor | None = None) -> torch.Tensor:
    """fp32 sigmoid (multi-label) or softmax of `logits` / `temperatures` (None: of the logits)."""
    logits = logits.float()
    if temperatures is not None:
        logits = logits / torch.as_tensor(temperatures, dtype=torch.float32)
    return torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=-1)


def predict_logits(
    backend: Backend,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    max_length: int,
    batch_size: int = 64,
    progress: bool = False,
) -> torch.Tensor:
    """fp32 logits (len(texts), num_labels) in the order of `texts` (no texts: shape (0, 0)).

    Texts are truncated to `max_length` tokens and batched longest first (little padding).
    """
    if not texts:
        return torch.empty(0, 0)
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    batches = SortedBatchSampler([len(ids) for ids in encoded], batch_size)

    def batch_logits(indices: list[int]) -> torch.Tensor:
        return backend.logits(*pad_batch([encoded[i] for i in indices], tokenizer)).float()

    lanes = lanes_for(backend, min(batch_size, len(texts))) if len(batches) > 1 else 1
    chunks = []
    with tqdm(total=len(batches), desc="predict", unit="batch", disable=not progress) as bar, in_lanes(lanes) as run:
        for logits in run(batch_logits, batches):
            chunks.append(logits)
            bar.update()
    return restore_order(torch.cat(chunks), batches.order)


def default_lanes(device: torch.device) -> int:
    """On a CPU one lane per intra-op thread (the cores torch uses), on a GPU one. Measured on a 2-core AMX Xeon,
    MiniLM, the 2,000 emotion test texts in batches of 64: bf16 1,328 → 1,556 texts/s with 2 lanes, fp32 495 → 524
    (small batches of short texts keep one core busier than two cores share one batch)."""
    return torch.get_num_threads() if device.type == "cpu" else 1


def lanes_for(backend: Backend, rows: int) -> int:
    """The lanes of the backend that runs batches of `rows` texts (a routed backend picks one per batch size)."""
    chosen = backend.backend_for(rows) if hasattr(backend, "backend_for") else backend
    return max(1, getattr(chosen, "lanes", 1))


@contextlib.contextmanager
def in_lanes(lanes: int):
    """A `map(function, batches)` that yields results in order: in this thread, or over `lanes` threads that each
    run torch with an equal share of its intra-op threads. Meanwhile this thread runs torch on one thread (its idle
    thread team would otherwise spin on the lanes' cores); its setting is restored after."""
    if lanes <= 1:
        yield map
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    share = max(1, threads // lanes)
    try:
        with ThreadPoolExecutor(lanes, "predict", initializer=torch.set_num_threads, initargs=(share,)) as pool:
            yield pool.map
    finally:
        torch.set_num_threads(threads)


def pad_batch(encoded: list[list[int]], tokenizer: PreTrainedTokenizerBase) -> tuple[torch.Tensor, torch.Tensor]:
    """int64 (ids, mask) of one batch, padded to its longest text with the tokenizer's pad id on its padding side."""
    longest = max(len(ids) for ids in encoded)
    input_ids = torch.full((len(encoded), longest), tokenizer.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(encoded), longest), dtype=torch.long)
    for row, ids in enumerate(encoded):
        span = slice(longest - len(ids), longest) if tokenizer.padding_side == "left" else slice(0, len(ids))
        input_ids[row, span] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, span] = 1
    return input_ids, attention_mask


def decide(
    probs: torch.Tensor,
    multi_label: bool,
    thresholds: torch.Tensor | float,
    at_least_one: bool = False,
    temperatures: torch.Tensor | list[float] | None = None,
) -> torch.Tensor:
    """Boolean (texts, labels): labels at/above threshold (multi-label, with the at_least_one rule) or the top label.
    `temperatures`: the calibration of `probs` (None: uncalibrated); at_least_one picks by the uncalibrated score."""
    if multi_label:
        return binarize(probs, thresholds, at_least_one, temperatures)
    return torch.nn.functional.one_hot(probs.argmax(1), probs.shape[1]).bool()
