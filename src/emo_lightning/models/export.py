"""The `model/` folder: everything prediction needs, without the training config.

model/
  config.json, model.safetensors   the encoder (`save_pretrained`), fp32
  tokenizer files                  `save_pretrained` of the tokenizer
  head.safetensors                 head weights, fp32
  classifier.json                  head class + arguments, label names, problem type, thresholds, max_length
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from hydra.utils import instantiate
from safetensors.torch import load_file, save_file
from transformers import AutoModel, AutoTokenizer, PreTrainedTokenizerBase

from emo_lightning.models.network import EmotionNetwork
from emo_lightning.utils.errors import ConfigError

CLASSIFIER_FILE = "classifier.json"
HEAD_WEIGHTS = "head.safetensors"


@dataclass
class ClassifierSpec:
    """What the logits mean and how to rebuild the head."""

    label_names: list[str]
    multi_label: bool
    threshold: float
    max_length: int
    head: dict  # the head's `_target_` and arguments
    thresholds: list[float] | None = None  # multi-label: one per label, tuned on validation; None: `threshold`
    at_least_one: bool = False  # multi-label: a text with no label above threshold gets its most probable one

    def label_thresholds(self) -> list[float]:
        return list(self.thresholds) if self.thresholds else [self.threshold] * len(self.label_names)

    @property
    def problem_type(self) -> str:
        return "multi_label_classification" if self.multi_label else "single_label_classification"


def save_model_dir(
    path: str | Path, network: EmotionNetwork, tokenizer: PreTrainedTokenizerBase, spec: ClassifierSpec
) -> Path:
    """Write `network`, `tokenizer` and `spec` into a new folder `path` (never over an existing one)."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists; the model folder is written only once per run")
    backbone = network.backbone
    backbone.config.id2label = dict(enumerate(spec.label_names))
    backbone.config.label2id = {name: i for i, name in enumerate(spec.label_names)}
    backbone.config.problem_type = spec.problem_type
    fp32_backbone = {k: v.detach().float().cpu().contiguous() for k, v in backbone.state_dict().items()}
    backbone.save_pretrained(path, state_dict=fp32_backbone)
    tokenizer.save_pretrained(path)
    head = {k: v.detach().float().cpu().contiguous() for k, v in network.head.state_dict().items()}
    save_file(head, path / HEAD_WEIGHTS)
    (path / CLASSIFIER_FILE).write_text(json.dumps({**asdict(spec), "problem_type": spec.problem_type}, indent=2))
    return path


def load_model_dir(path: str | Path) -> tuple[EmotionNetwork, PreTrainedTokenizerBase, ClassifierSpec]:
    """Rebuild the network, tokenizer and spec that `save_model_dir` wrote."""
    path = Path(path)
    spec_file = path / CLASSIFIER_FILE
    if not spec_file.is_file():
        raise ConfigError(f"{path} holds no {CLASSIFIER_FILE}: point at a run dir or its model/ folder")
    fields = json.loads(spec_file.read_text())
    fields.pop("problem_type", None)
    spec = ClassifierSpec(**fields)
    backbone = AutoModel.from_pretrained(path)
    head = instantiate(spec.head)
    head.load_state_dict(load_file(path / HEAD_WEIGHTS))
    network = EmotionNetwork(backbone, head).eval()
    return network, AutoTokenizer.from_pretrained(path), spec
