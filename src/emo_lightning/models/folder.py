"""The `model/` folder: everything prediction needs, without the training config.

model/
  config.json, model.safetensors   only where the head is a Hugging Face class (linear head, pooling=pooler, a
                                   model type of `SEQUENCE_CLASSIFIERS`): that `*ForSequenceClassification` with our
                                   weights, so `transformers.pipeline("text-classification", model=...)` gives our
                                   probabilities
  encoder/                         every other head: the encoder alone (`save_pretrained`), fp32; with no config.json
                                   at the top, `pipeline()` refuses the folder instead of adding a random classifier
  tokenizer files                  `save_pretrained` of the tokenizer
  head.safetensors                 head weights, fp32
  classifier.json                  head type + arguments, label names, problem type, thresholds, max_length,
                                   temperatures (calibration) and whether they are folded into the head's weights
  README.md                        the model card (`emo_lightning.models.card`)

Temperatures are folded into the head's final linear layer where it has one per label (linear, mlp; label_prompt
with one temperature): its weights then give calibrated probabilities in every runtime. Otherwise the engine divides
the logits by them (`ClassifierSpec.engine_temperatures`). Folders written before `encoder/` (the encoder's
config.json at the top) or before `temperatures` still load. Loading runs no code from the
folder: the head is named by a key of `HEADS` (never an importable path), weights are safetensors, and transformers
loads only its own architectures (trust_remote_code=False).
"""

from __future__ import annotations

import copy
import inspect
import json
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, fields, replace
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedTokenizerBase,
)

from emo_lightning.models.calibration import folded_head_weights
from emo_lightning.models.card import render_card
from emo_lightning.models.heads import HEADS, LinearHead
from emo_lightning.models.network import EmotionNetwork
from emo_lightning.utils.errors import ConfigError

CLASSIFIER_FILE = "classifier.json"
HEAD_WEIGHTS = "head.safetensors"
ENCODER_DIR = "encoder"
CARD_FILE = "README.md"
# Model types whose `*ForSequenceClassification` is dropout(encoder pooler output) → Linear `classifier`: exactly our
# LinearHead(pooling="pooler").
SEQUENCE_CLASSIFIERS = ("bert", "squeezebert")
HEAD_NAMES = ", ".join(HEADS)
# Folders written before the `type` key named the class by `_target_`: accepted for exactly these strings.
HEAD_TARGETS = {f"{cls.__module__}.{cls.__qualname__}": key for key, cls in HEADS.items()}
REEXPORT = "re-export the model with train.py"


@dataclass
class ClassifierSpec:
    """What the logits mean and how to rebuild the head.

    `head` may be given as a training config (`_target_` of a `HEADS` class plus arguments); it is kept as
    {"type": <HEADS key>, **arguments}.
    """

    label_names: list[str]
    multi_label: bool
    threshold: float
    max_length: int
    head: dict  # {"type": "linear" | "mlp" | "label_prompt", **constructor arguments}
    thresholds: list[float] | None = None  # multi-label: one per label, tuned on validation; None: `threshold`
    at_least_one: bool = False  # multi-label: a text with no label above threshold gets its most probable one
    temperatures: list[float] | None = None  # calibration fitted on validation: 1 (softmax) or one per label
    temperatures_folded: bool = False  # the head's weights already divide its logits by `temperatures`

    def __post_init__(self) -> None:
        self.head = head_record(self.head)

    def label_thresholds(self) -> list[float]:
        return list(self.thresholds) if self.thresholds else [self.threshold] * len(self.label_names)

    def engine_temperatures(self) -> torch.Tensor | None:
        """What prediction must still divide the logits by: None where there are none or the weights hold them."""
        if not self.temperatures or self.temperatures_folded:
            return None
        return torch.tensor(self.temperatures, dtype=torch.float32)

    @property
    def problem_type(self) -> str:
        return "multi_label_classification" if self.multi_label else "single_label_classification"


def head_record(head: Mapping, source: Path | None = None) -> dict:
    """{"type": key, **arguments} for a head given by `type` or by the `_target_` of a registered class.

    Names are compared as strings (nothing is imported) and the arguments are bound against the class's signature.
    `source`: the classifier.json the head comes from (for messages); None: the training config.
    """
    where, fix = (str(source), REEXPORT) if source else ("the head config", "use head=linear, mlp or label_prompt")
    if not isinstance(head, Mapping):
        raise ConfigError(f"{where} gives the head as {type(head).__name__}, not an object: {fix}")
    args = dict(head)
    key, target = args.pop("type", None), args.pop("_target_", None)
    if key is None and isinstance(target, str) and target in HEAD_TARGETS:
        key = HEAD_TARGETS[target]
    if key is None and target is None:
        raise ConfigError(f"{where} names no head type: {fix}")
    if not isinstance(key, str) or key not in HEADS:
        name = key if key is not None else target
        raise ConfigError(f"{where} names head {name!r}, which is not one of {HEAD_NAMES}: {fix}")
    signature = inspect.signature(HEADS[key])
    try:
        signature.bind(**args)
    except TypeError as err:
        fix = fix if source else f"{HEADS[key].__name__} takes {', '.join(signature.parameters)}"
        raise ConfigError(f"{where} gives head {key} arguments it does not take ({err}): {fix}") from err
    return {"type": key, **args}


def build_head(head: Mapping, source: Path | None = None) -> nn.Module:
    """The head module a `head_record` describes."""
    record = head_record(head, source)
    args = {k: v for k, v in record.items() if k != "type"}
    try:
        return HEADS[record["type"]](**args)
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:
        where, fix = (str(source), REEXPORT) if source else ("the head config", "fix the head config")
        raise ConfigError(f"{where} gives head {record['type']} bad arguments ({err}): {fix}") from err


def loads_with_transformers(network: EmotionNetwork) -> bool:
    """Whether `network` is exactly a transformers `*ForSequenceClassification` (linear head on the pooler)."""
    head = network.head
    return (
        isinstance(head, LinearHead)
        and head.reads_pooler
        and network.backbone.config.model_type in SEQUENCE_CLASSIFIERS
    )


def _fp32(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().float().cpu().contiguous() for k, v in module.state_dict().items()}


def _save_sequence_classifier(
    path: Path, network: EmotionNetwork, spec: ClassifierSpec, head_weights: Mapping[str, torch.Tensor]
) -> None:
    """Write `network` as its transformers `*ForSequenceClassification`, its classifier from `head_weights`: every
    weight ours, none random."""
    config = copy.deepcopy(network.backbone.config)  # the live model's config stays as it was
    config.id2label = dict(enumerate(spec.label_names))
    config.label2id = {name: i for i, name in enumerate(spec.label_names)}
    config.problem_type = spec.problem_type  # multi-label: pipeline() applies a sigmoid, not a softmax
    if hasattr(config, "classifier_dropout"):
        config.classifier_dropout = network.head.dropout.p
    with torch.device("meta"):  # no random init: every tensor comes from our state dict below
        model = AutoModelForSequenceClassification.from_config(config)
    prefix = model.base_model_prefix
    state = {f"{prefix}.{k}": v for k, v in _fp32(network.backbone).items()}
    state |= {k: v for k, v in head_weights.items() if k.startswith("classifier.")}
    model.load_state_dict(state, strict=True, assign=True)
    model.save_pretrained(path)


def save_model_dir(
    path: str | Path,
    network: EmotionNetwork,
    tokenizer: PreTrainedTokenizerBase,
    spec: ClassifierSpec,
    *,
    metrics: Mapping[str, float] | None = None,
    per_label: Mapping[str, Mapping[str, float]] | None = None,
    config: Mapping | None = None,
    tuned: bool | None = None,
) -> Path:
    """Write `network`, `tokenizer`, `spec` and a model card into a new folder `path` (never over an existing one).

    `metrics` (metrics.json's "metrics"), `per_label` (its "per_label_f1") and `config` (`model_card.card_facts` of
    the training config) go into README.md; None leaves them out of it. `tuned`: whether `spec.thresholds` were tuned
    on validation (False: the fixed threshold of thresholds=none; None: they were, where there are any).
    `spec.temperatures` are folded into the saved head weights where the head allows it (`network` itself is left as
    it is).
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists; the model folder is written only once per run")
    head_weights = _fp32(network.head)
    if spec.temperatures and not spec.temperatures_folded:
        folded = folded_head_weights(network.head, spec.temperatures)
        head_weights = folded if folded is not None else head_weights
        spec = replace(spec, temperatures_folded=folded is not None)
    record = {**asdict(spec), "head": head_record(spec.head), "problem_type": spec.problem_type}
    transformers = loads_with_transformers(network)
    if transformers:
        _save_sequence_classifier(path, network, spec, head_weights)
    else:
        network.backbone.save_pretrained(path / ENCODER_DIR, state_dict=_fp32(network.backbone))
    tokenizer.save_pretrained(path)
    save_file(head_weights, path / HEAD_WEIGHTS)
    (path / CLASSIFIER_FILE).write_text(json.dumps(record, indent=2))
    card = render_card(
        spec.label_names,
        spec.multi_label,
        spec.max_length,
        thresholds=spec.label_thresholds() if spec.multi_label else None,
        tuned=bool(spec.thresholds) if tuned is None else tuned,
        at_least_one=spec.at_least_one,
        transformers=transformers,
        temperatures=spec.temperatures,
        metrics=metrics,
        per_label=per_label,
        facts={"head": record["head"]["type"], "pooling": record["head"].get("pooling"), **(config or {})},
    )
    (path / CARD_FILE).write_text(card)
    return path


def read_spec(path: Path) -> ClassifierSpec:
    """The ClassifierSpec in `path`/classifier.json; one-line ConfigError when it is missing or malformed."""
    spec_file = path / CLASSIFIER_FILE
    if not spec_file.is_file():
        raise ConfigError(f"{path} holds no {CLASSIFIER_FILE}: point at a run dir or its model/ folder")
    try:
        record = json.loads(spec_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{spec_file} is not valid JSON ({err}): {REEXPORT}") from err
    if not isinstance(record, dict):
        raise ConfigError(f"{spec_file} holds {type(record).__name__}, not an object: {REEXPORT}")
    record.pop("problem_type", None)
    known = {f.name for f in fields(ClassifierSpec)}
    required = {f.name for f in fields(ClassifierSpec) if f.default is MISSING and f.default_factory is MISSING}
    missing, unknown = sorted(required - set(record)), sorted(set(record) - known)
    if missing or unknown:
        problem = f"lacks {', '.join(missing)}" if missing else f"has unknown fields {', '.join(unknown)}"
        raise ConfigError(f"{spec_file} {problem}: {REEXPORT}")
    record["head"] = head_record(record["head"], spec_file)
    check_temperatures(record, spec_file)
    return ClassifierSpec(**record)


def check_temperatures(record: Mapping, spec_file: Path) -> None:
    """`temperatures` of a classifier.json: absent/null, or positive finite numbers, one per softmax or per label."""
    value = record.get("temperatures")
    if value is None:
        return
    count = len(record.get("label_names") or []) if record.get("multi_label") else 1
    numbers = isinstance(value, list) and all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in value)
    if not numbers or len(value) != count or not all(0 < t < float("inf") for t in value):
        raise ConfigError(f"{spec_file} gives temperatures {value!r}, not {count} positive numbers: {REEXPORT}")


def _load_encoder(path: Path) -> nn.Module:
    """The encoder of a model folder in any of its forms (never from a pickle, never running the folder's code)."""
    code = {"trust_remote_code": False, "use_safetensors": True}
    if (path / ENCODER_DIR).is_dir():
        return AutoModel.from_pretrained(path / ENCODER_DIR, **code)
    config = AutoConfig.from_pretrained(path, trust_remote_code=False)
    if any(name.endswith("ForSequenceClassification") for name in config.architectures or []):
        model = AutoModelForSequenceClassification.from_pretrained(path, config=config, **code)
        return model.base_model  # its classifier is the head, loaded from head.safetensors
    return AutoModel.from_pretrained(path, config=config, **code)  # written before encoder/: the encoder at the top


def load_model_dir(path: str | Path) -> tuple[EmotionNetwork, PreTrainedTokenizerBase, ClassifierSpec]:
    """Rebuild the network, tokenizer and spec that `save_model_dir` wrote, running no code from the folder."""
    path = Path(path)
    spec = read_spec(path)
    head = build_head(spec.head, path / CLASSIFIER_FILE)
    try:
        head.load_state_dict(load_file(path / HEAD_WEIGHTS))
    except (OSError, SafetensorError, RuntimeError) as err:
        reason = str(err).splitlines()[0]
        raise ConfigError(f"{path / HEAD_WEIGHTS} does not hold this head's weights ({reason}): {REEXPORT}") from err
    try:
        backbone = _load_encoder(path)
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    except OSError as err:
        raise ConfigError(f"{path} lacks encoder or tokenizer files ({str(err).splitlines()[0]}): {REEXPORT}") from err
    except ValueError as err:
        if "trust_remote_code" not in str(err):
            raise
        message = f"{path} needs its own Python code to load, which a model folder never runs: {REEXPORT}"
        raise ConfigError(message) from err
    network = EmotionNetwork(backbone, head).eval()
    return network, tokenizer, spec
