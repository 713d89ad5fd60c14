"""Predict emotions of new text from a `model/` folder alone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from emo_lightning.inference.backends import check_backend_choice, open_backend
from emo_lightning.inference.engine import Backend, decide, predict_probabilities
from emo_lightning.models.folder import load_model_dir
from emo_lightning.utils.errors import ConfigError
from emo_lightning.utils.rules import PREDICT, check_value


@dataclass
class Prediction:
    text: str
    scores: list[tuple[str, float]]  # every label with its probability, best first
    labels: list[str]  # multi-label: labels at or above the threshold; single-label: the top one


def check_threshold(threshold: object) -> None:
    """None (the thresholds saved with the model), or a number in (0, 1) (NaN is none): else a one-line
    ConfigError."""
    check_value("threshold", threshold, PREDICT)


class EmotionPredictor:
    """Wraps an exported model folder: `EmotionPredictor.from_run("outputs/…").predict(["i miss you"])`.

    `backend`: `auto` (the fastest that passed its parity check, per batch size: see inference/backends.py),
    `torch`, `onnx` or `onnx-int8` (the run's `onnx/` export), or a `Backend` object. `precision` (for PyTorch):
    `auto` (bf16 weights where the machine has native bf16, else fp32), `fp32`, `bf16` or `fp16`; probabilities
    are fp32 either way. Tokenizer, labels, thresholds and calibration temperatures come from the folder.

    `threshold` (multi-label): one threshold for every label instead of the saved ones, on the calibrated
    probabilities; None keeps the saved ones. It must lie in (0, 1), as predict.py's, serve.py's and training's
    `threshold`: at 0 every label fires for every text and at 1 almost none does, so neither decides anything.
    """

    def __init__(
        self,
        model_dir: str | Path,
        batch_size: int = 64,
        precision: str = "auto",
        threshold: float | None = None,
        backend: str | Backend = "auto",
    ) -> None:
        if isinstance(backend, str):
            check_backend_choice(backend, precision)
        elif precision != "auto":
            raise ConfigError(
                f"precision={precision} applies to the PyTorch backend only, and backend={backend.name} was given: "
                "drop precision (or the backend)"
            )
        check_threshold(threshold)
        self.model_dir = model_dir = Path(model_dir)
        self.network, self.tokenizer, self.spec = load_model_dir(model_dir)
        self.batch_size = batch_size
        # multi-label decisions: the thresholds saved with the model (tuned on validation, or the fixed one of
        # thresholds=none) unless one is given
        given = threshold is not None
        self.thresholds = [float(threshold)] * len(self.spec.label_names) if given else self.spec.label_thresholds()
        if isinstance(backend, str):
            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
            backend = open_backend(backend, self.network.to(device), model_dir.parent / "onnx", precision, device)
        self.backend = backend

    @classmethod
    def from_run(
        cls,
        run_dir: str | Path,
        batch_size: int = 64,
        precision: str = "auto",
        threshold: float | None = None,
        backend: str | Backend = "auto",
    ) -> EmotionPredictor:
        """Accept a training run dir (holding `model/`) or the model folder itself."""
        run_dir = Path(run_dir).expanduser()
        if not run_dir.exists():
            raise ConfigError(f"run_dir={run_dir} does not exist: give a training run dir (outputs/…) or its model/")
        model_dir = run_dir / "model" if (run_dir / "model").is_dir() else run_dir
        return cls(model_dir, batch_size, precision, threshold, backend)

    def predict_proba(self, texts: list[str], progress: bool = False) -> torch.Tensor:
        """Probabilities (len(texts), num_labels) in fp32, in the order of `texts`; `progress`: a bar over batches."""
        if not texts:
            return torch.empty(0, len(self.spec.label_names))
        spec = self.spec
        return predict_probabilities(
            self.backend,
            self.tokenizer,
            list(texts),
            spec.max_length,
            spec.multi_label,
            self.batch_size,
            progress,
            temperatures=spec.engine_temperatures(),  # None where the folder folded them into its weights
        )

    def predict(self, texts: list[str], progress: bool = False) -> list[Prediction]:
        names = self.spec.label_names
        probs = self.predict_proba(texts, progress)
        spec = self.spec
        chosen = decide(probs, spec.multi_label, torch.tensor(self.thresholds), spec.at_least_one, spec.temperatures)
        predictions = []
        for text, row, picked in zip(texts, probs.tolist(), chosen.tolist()):
            scores = sorted(zip(names, row), key=lambda pair: pair[1], reverse=True)
            labels = [name for name, _ in scores if picked[names.index(name)]]  # best first
            predictions.append(Prediction(text, scores, labels))
        return predictions
