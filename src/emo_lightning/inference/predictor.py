"""Predict emotions of new text from a `model/` folder alone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from emo_lightning.data.batching import SortedBatchSampler, restore_order
from emo_lightning.evaluation import predicted_sets
from emo_lightning.models.export import load_model_dir
from emo_lightning.utils.errors import ConfigError
from emo_lightning.utils.hardware import Hardware, autocast, inference_dtype


@dataclass
class Prediction:
    text: str
    scores: list[tuple[str, float]]  # every label with its probability, best first
    labels: list[str]  # multi-label: labels at or above the threshold; single-label: the top one


class EmotionPredictor:
    """Wraps an exported model folder: `EmotionPredictor.from_run("outputs/…").predict(["i miss you"])`.

    `precision`: `auto` (bf16 autocast where the machine has native bf16, else fp32), `fp32`, `bf16` or `fp16`;
    probabilities are fp32 either way.
    """

    def __init__(
        self, model_dir: str | Path, batch_size: int = 64, precision: str = "auto", threshold: float | None = None
    ) -> None:
        self.network, self.tokenizer, self.spec = load_model_dir(model_dir)
        self.batch_size = batch_size
        # multi-label decisions: the thresholds saved with the model (tuned on validation) unless one is given
        self.thresholds = [threshold] * len(self.spec.label_names) if threshold else self.spec.label_thresholds()
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = inference_dtype(precision, Hardware.detect(), self.device)
        self.network.to(self.device)

    @classmethod
    def from_run(
        cls, run_dir: str | Path, batch_size: int = 64, precision: str = "auto", threshold: float | None = None
    ) -> EmotionPredictor:
        """Accept a training run dir (holding `model/`) or the model folder itself."""
        run_dir = Path(run_dir).expanduser()
        if not run_dir.exists():
            raise ConfigError(f"run_dir={run_dir} does not exist: give a training run dir (outputs/…) or its model/")
        model_dir = run_dir / "model" if (run_dir / "model").is_dir() else run_dir
        return cls(model_dir, batch_size, precision, threshold)

    @torch.inference_mode()
    def predict_proba(self, texts: list[str], progress: bool = False) -> torch.Tensor:
        """Probabilities (len(texts), num_labels) in fp32, in the order of `texts`; `progress`: a bar over batches."""
        if not texts:
            return torch.empty(0, len(self.spec.label_names))
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.spec.max_length)["input_ids"]
        batches = SortedBatchSampler([len(ids) for ids in encoded], self.batch_size)  # little padding
        chunks = []
        for indices in tqdm(batches, desc="predict", unit="batch", disable=not progress):
            batch = self.tokenizer.pad({"input_ids": [encoded[i] for i in indices]}, return_tensors="pt")
            with autocast(self.device, self.dtype):
                logits = self.network(batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device))
            logits = logits.float().cpu()
            chunks.append(torch.sigmoid(logits) if self.spec.multi_label else torch.softmax(logits, dim=-1))
        return restore_order(torch.cat(chunks), batches.order)

    def predict(self, texts: list[str], progress: bool = False) -> list[Prediction]:
        names = self.spec.label_names
        probs = self.predict_proba(texts, progress)
        chosen = predicted_sets(probs, self.spec.multi_label, torch.tensor(self.thresholds), self.spec.at_least_one)
        predictions = []
        for text, row, picked in zip(texts, probs.tolist(), chosen.tolist()):
            scores = sorted(zip(names, row), key=lambda pair: pair[1], reverse=True)
            labels = [name for name, _ in scores if picked[names.index(name)]]  # best first
            predictions.append(Prediction(text, scores, labels))
        return predictions
