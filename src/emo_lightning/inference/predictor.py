"""Predict emotions of new text from a `model/` folder alone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from emo_lightning.data.batching import SortedBatchSampler, restore_order
from emo_lightning.models.export import load_model_dir
from emo_lightning.utils.errors import ConfigError


@dataclass
class Prediction:
    text: str
    scores: list[tuple[str, float]]  # every label with its probability, best first
    labels: list[str]  # multi-label: labels at or above the threshold; single-label: the top one


class EmotionPredictor:
    """Wraps an exported model folder: `EmotionPredictor.from_run("outputs/…").predict(["i miss you"])`."""

    def __init__(self, model_dir: str | Path, batch_size: int = 64) -> None:
        self.network, self.tokenizer, self.spec = load_model_dir(model_dir)
        self.batch_size = batch_size

    @classmethod
    def from_run(cls, run_dir: str | Path, batch_size: int = 64) -> EmotionPredictor:
        """Accept a training run dir (holding `model/`) or the model folder itself."""
        run_dir = Path(run_dir).expanduser()
        if not run_dir.exists():
            raise ConfigError(f"run_dir={run_dir} does not exist: give a training run dir (outputs/…) or its model/")
        model_dir = run_dir / "model" if (run_dir / "model").is_dir() else run_dir
        return cls(model_dir, batch_size)

    @torch.inference_mode()
    def predict_proba(self, texts: list[str]) -> torch.Tensor:
        """Probabilities (len(texts), num_labels) in fp32, in the order of `texts`."""
        if not texts:
            return torch.empty(0, len(self.spec.label_names))
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.spec.max_length)["input_ids"]
        batches = SortedBatchSampler([len(ids) for ids in encoded], self.batch_size)  # little padding
        chunks = []
        for indices in batches:
            batch = self.tokenizer.pad({"input_ids": [encoded[i] for i in indices]}, return_tensors="pt")
            logits = self.network(batch["input_ids"], batch["attention_mask"]).float()
            chunks.append(torch.sigmoid(logits) if self.spec.multi_label else torch.softmax(logits, dim=-1))
        return restore_order(torch.cat(chunks), batches.order)

    def predict(self, texts: list[str]) -> list[Prediction]:
        names = self.spec.label_names
        predictions = []
        for text, probs in zip(texts, self.predict_proba(texts).tolist()):
            scores = sorted(zip(names, probs), key=lambda pair: pair[1], reverse=True)
            if self.spec.multi_label:
                labels = [name for name, p in scores if p >= self.spec.threshold]
            else:
                labels = [scores[0][0]]
            predictions.append(Prediction(text, scores, labels))
        return predictions
