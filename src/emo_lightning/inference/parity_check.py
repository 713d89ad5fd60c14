"""The parity check of an export: PyTorch fp32's probabilities and decisions on the run's validation texts, and
each other backend's record against them (what `parity.json` holds, `inference.parity`)."""

from __future__ import annotations

import csv
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from emo_lightning.inference.engine import TorchBackend, decide, predict_probabilities
from emo_lightning.models.folder import ClassifierSpec
from emo_lightning.models.metrics import micro_f1
from emo_lightning.models.network import EmotionNetwork
from emo_lightning.utils.errors import ConfigError

log = logging.getLogger(__name__)

FP32_MAX_DIFF = 1e-4  # max |Δprob| of model.onnx against the PyTorch fp32 network
INT8_MIN_AGREEMENT = 0.99  # share of texts whose int8 (or bf16 PyTorch) decisions equal PyTorch fp32's
VALIDATION_FILE = Path("predictions") / "val.csv"
EXACT_BACKENDS = {  # fp32 backends held to FP32_MAX_DIFF and identical decisions: what fails, and what then
    "onnx": ("model.onnx", "this encoder does not export faithfully; predict with PyTorch"),
    "openvino-fp32": ("OpenVINO fp32", "it is not used by backend=auto"),
}


@dataclass
class ParityTexts:
    texts: list[str]
    gold: list[list[str]] | None  # label names per text (from val.csv's `gold`); None: no metric
    source: str


def read_parity_texts(run_dir: Path, spec: ClassifierSpec, parity_texts: list[str] | None) -> ParityTexts:
    """The run's validation texts and gold labels (predictions/val.csv), else `parity_texts` (no metric)."""
    path = run_dir / VALIDATION_FILE
    if not path.is_file():
        if parity_texts is None:
            raise ConfigError(f'{path} does not exist: give parity_texts=\'["…","…"]\' to compare the export on')
        return ParityTexts(list(parity_texts), None, "parity_texts")
    if parity_texts is not None:
        log.info("parity: on %s (parity_texts are used only for runs without it)", path)
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "text" not in rows[0]:
        raise ConfigError(f"{path} has no rows or no `text` column: re-run its evaluation, or move it away")
    texts = [row["text"] or "" for row in rows]
    if "gold" not in rows[0]:
        return ParityTexts(texts, None, str(VALIDATION_FILE))
    gold = [[name for name in (row["gold"] or "").split(",") if name] for row in rows]
    unknown = sorted({name for names in gold for name in names} - set(spec.label_names))
    if unknown:
        raise ConfigError(f"{path} names labels the model lacks ({', '.join(unknown[:5])}): it is not this run's")
    return ParityTexts(texts, gold, str(VALIDATION_FILE))


def validation_metric(pred: torch.Tensor, gold: torch.Tensor, multi_label: bool) -> float:
    """Micro-F1 of label sets (multi-label) or accuracy (single-label)."""
    if multi_label:
        return float(micro_f1(pred, gold))
    return float((pred == gold).all(dim=1).double().mean())


def gold_matrix(gold: list[list[str]], label_names: list[str]) -> torch.Tensor:
    matrix = torch.zeros(len(gold), len(label_names), dtype=torch.bool)
    index = {name: i for i, name in enumerate(label_names)}
    for row, names in enumerate(gold):
        matrix[row, [index[name] for name in names]] = True
    return matrix


class ParityCheck:
    """PyTorch fp32's probabilities and decisions on the parity texts, to compare each backend with."""

    def __init__(self, network: EmotionNetwork, tokenizer, spec: ClassifierSpec, data: ParityTexts, batch_size: int):
        self.tokenizer, self.spec, self.data, self.batch_size = tokenizer, spec, data, batch_size
        self.thresholds = torch.tensor(spec.label_thresholds())
        self.gold = gold_matrix(data.gold, spec.label_names) if data.gold is not None else None
        reference = TorchBackend(network)
        self.probs, seconds = self.probabilities(reference)
        log.info("parity: %s on %d texts (%s) in %.1f s", reference.name, len(data.texts), data.source, seconds)
        self.pred = self.decisions(self.probs)
        self.metric = self.score(self.pred)

    def probabilities(self, backend) -> tuple[torch.Tensor, float]:
        """`backend`'s probabilities on the parity texts, and the seconds they took."""
        started = time.perf_counter()
        spec = self.spec  # temperatures not folded into the weights are applied alike on every side
        probs = predict_probabilities(
            backend,
            self.tokenizer,
            self.data.texts,
            spec.max_length,
            spec.multi_label,
            self.batch_size,
            temperatures=spec.engine_temperatures(),
        )
        return probs, time.perf_counter() - started

    def decisions(self, probs: torch.Tensor) -> torch.Tensor:
        spec = self.spec
        return decide(probs, spec.multi_label, self.thresholds, spec.at_least_one, spec.temperatures)

    def score(self, pred: torch.Tensor) -> float | None:
        return None if self.gold is None else validation_metric(pred, self.gold, self.spec.multi_label)

    def compare(self, backend, max_int8_drop: float) -> dict:
        """One backend's parity record (and its line on the console); `problem` names why it failed (None: passed)."""
        probs, seconds = self.probabilities(backend)
        pred = self.decisions(probs)
        diff = float((probs - self.probs).abs().max())
        agreement = float((pred == self.pred).all(dim=1).double().mean())
        metric = self.score(pred)
        drop = None if metric is None else self.metric - metric
        record = {
            "backend": backend.name,
            "file": backend.path.name if hasattr(backend, "path") else None,
            "max_abs_diff": diff,
            "decision_agreement": agreement,
            "metric_before": self.metric,
            "metric_after": metric,
            "metric_drop": drop,
        }
        record["problem"] = self.problem(record, max_int8_drop)
        record["passed"] = record["problem"] is None
        log.info("parity: %s", summary(record, self.metric_name, seconds))
        return record

    def problem(self, record: dict, max_int8_drop: float) -> str | None:
        name, agreement, drop = record["backend"], record["decision_agreement"], record["metric_drop"]
        metric = self.metric_name
        if name in EXACT_BACKENDS:  # fp32 on both sides: the same probabilities, the same decisions
            what, fix = EXACT_BACKENDS[name]
            if record["max_abs_diff"] > FP32_MAX_DIFF:
                return (
                    f"{what}'s probabilities differ from PyTorch's by {record['max_abs_diff']:.2e} "
                    f"(allowed {FP32_MAX_DIFF:.0e}): {fix}"
                )
            if agreement < 1.0:
                return f"{what} decides differently from PyTorch on {1 - agreement:.2%} of texts: {fix}"
            return None
        # int8, or bf16 (PyTorch or OpenVINO at the machine's precision): decisions may move, within limits
        what = "model.int8.onnx" if name == "onnx-int8" else name
        fix = "export format=onnx (fp32) instead" if name == "onnx-int8" else "it is not used by backend=auto"
        if agreement < INT8_MIN_AGREEMENT:
            return (
                f"{what} agrees with PyTorch fp32's decisions on only {agreement:.2%} of texts "
                f"(needs {INT8_MIN_AGREEMENT:.0%}): {fix}"
            )
        if drop is not None and drop > max_int8_drop:
            return (
                f"{what} lowers validation {metric} by {drop:.4f} ({record['metric_before']:.4f} → "
                f"{record['metric_after']:.4f}), above max_int8_drop={max_int8_drop}: {fix}, "
                "or accept more with a larger max_int8_drop"
            )
        return None

    @property
    def metric_name(self) -> str | None:
        if self.gold is None:
            return None
        return "f1_micro" if self.spec.multi_label else "accuracy"


def summary(record: dict, metric: str | None, seconds: float | None = None) -> str:
    """A parity record in a line: the backend, its max |Δprob| and decision agreement, the metric before → after,
    the seconds it took (where given), and FAILED where it failed."""
    line = (
        f"{record['backend']:<13} max |Δprob| {record['max_abs_diff']:.2e}, "
        f"decisions agree {record['decision_agreement']:.2%}"
    )
    if metric is not None:
        line += f", {metric} {record['metric_before']:.4f} → {record['metric_after']:.4f}"
    if seconds is not None:
        line += f" in {seconds:.1f} s"
    return line + ("" if record["passed"] else " FAILED")
