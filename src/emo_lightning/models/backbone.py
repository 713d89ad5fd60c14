"""Build any `AutoModel` encoder: pretrained from the Hub / a mirror / a folder, or random-init for tests."""

from __future__ import annotations

import logging
from pathlib import Path

from transformers import (
    MODEL_MAPPING,
    AutoConfig,
    AutoModel,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from emo_lightning.models.dropout import use_fast_dropout
from emo_lightning.utils.errors import ConfigError
from emo_lightning.utils.hub import not_found_hint, resolve_hub_path

log = logging.getLogger(__name__)

# Architectures that number positions from pad_token_id + 1 (RoBERTa's `create_position_ids_from_input_ids`), so
# pad_token_id + 1 of their max_position_embeddings are never used by a token.
PADDING_OFFSET_POSITIONS = {
    "roberta",
    "roberta-prelayernorm",
    "xlm-roberta",
    "xlm-roberta-xl",
    "camembert",
    "data2vec-text",
    "xmod",
    "mpnet",
    "longformer",
    "ibert",
    "luke",
    "esm",
    "markuplm",
    "lilt",
}


def load_backbone(
    pretrained_model_name_or_path: str,
    model_type: str | None = None,
    pretrained: bool = True,
    config_overrides: dict | None = None,
    model_dir: str | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
    freeze_word_embeddings: bool = False,
    fast_dropout: bool = True,
    gradient_checkpointing: bool = False,
) -> PreTrainedModel:
    """Return the encoder (`AutoModel`) named by `pretrained_model_name_or_path`.

    Args:
        pretrained_model_name_or_path: Hub id or local folder; looked up in the `model_dir` mirror first.
        model_type: the architecture (`bert`, `roberta`, …), used to build a random-init model when
            `pretrained=False` and the checkpoint's config is not reachable.
        pretrained: False builds the same architecture with random weights.
        config_overrides: config fields to change (dropout, or sizes for a tiny random model); each must
            already be a field of the model's config.
        tokenizer: with `pretrained=False`, the embedding table is sized to it.
        attn_implementation: `sdpa`, `eager`, …; None keeps transformers' choice (SDPA where the model has it).
        trust_remote_code: run Python files that come with the checkpoint (`auto_map`); off: only
            transformers' own architectures load.
        freeze_word_embeddings: keep the token-embedding table as pretrained: no dense (vocab × hidden) gradient
            to zero, clip and update every step, when a batch touches a few hundred of its rows.
        fast_dropout: the encoder's `nn.Dropout` modules draw their masks from 16-bit random numbers
            (`dropout.FastDropout`: the same distribution, a third of the RNG time); false keeps torch's.
        gradient_checkpointing: keep only each layer's input in the forward pass and recompute the layer in the
            backward one: less activation memory, one more forward pass, the same gradients (torch replays the
            dropout masks). A backbone transformers cannot checkpoint is refused before its weights load.
    """
    overrides = dict(config_overrides or {})
    pretrained_model_name_or_path = encoder_of(pretrained_model_name_or_path)
    config = _load_config(pretrained_model_name_or_path, model_type, pretrained, model_dir, trust_remote_code)
    unknown = [k for k in overrides if not hasattr(config, k)]
    if unknown:
        raise ConfigError(
            f"model.config_overrides.{unknown[0]} is not a field of {type(config).__name__}: "
            "use one of its fields (e.g. hidden_dropout_prob, num_hidden_layers)"
        )
    config.update(overrides)
    if gradient_checkpointing:  # before the weights load, where the class is known without the checkpoint's code
        _check_checkpointing(_encoder_class(config, trust_remote_code), pretrained_model_name_or_path)
    code = {"attn_implementation": attn_implementation, "trust_remote_code": trust_remote_code}
    if pretrained:
        path = resolve_hub_path(pretrained_model_name_or_path, model_dir)
        try:
            model = AutoModel.from_pretrained(path, config=config, **code)
        except OSError as err:
            raise _weights_error(pretrained_model_name_or_path, path, model_dir) from err
    else:
        if tokenizer is not None:
            config.vocab_size = len(tokenizer)
            config.pad_token_id = tokenizer.pad_token_id
        model = AutoModel.from_config(config, **code)
        log.info("random-init %s: %.1fM parameters", type(model).__name__, model.num_parameters() / 1e6)
    _freeze_unused_pooler(model)
    if freeze_word_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    if fast_dropout:
        use_fast_dropout(model)
    if gradient_checkpointing:
        _check_checkpointing(type(model), pretrained_model_name_or_path)
        enable_gradient_checkpointing(model)
    return model.train()  # from_pretrained returns eval mode; dropout must be on for fine-tuning


def encoder_of(name_or_path: str) -> str:
    """A finished run's `model/` folder keeps its encoder in `encoder/` (unless it is a transformers classifier
    folder): start from that one (intermediate-task transfer); anything else is returned as it is."""
    encoder = Path(name_or_path).expanduser() / "encoder"
    return str(encoder) if (encoder / "config.json").is_file() else name_or_path


def _load_config(
    name: str, model_type: str | None, pretrained: bool, model_dir: str | None, trust_remote_code: bool
) -> PretrainedConfig:
    path = resolve_hub_path(name, model_dir)
    try:
        return AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    except OSError as err:
        if pretrained or model_type is None:
            hint = not_found_hint(name, model_dir, "paths.model_dir", "EMO_MODEL_DIR")
            suffix = "" if pretrained else "; or set model.model_type to build it from scratch"
            raise ConfigError(f"model {hint}{suffix}") from err
        log.info("%s not reachable: building a default %s config (pretrained=false)", name, model_type)
        return AutoConfig.for_model(model_type)
    except ValueError as err:
        if "trust_remote_code" in str(err):
            raise ConfigError(
                f"model {name} needs its own Python code to load (auto_map): read that code, then set "
                "model.trust_remote_code=true, or use a model transformers knows"
            ) from err
        raise


def _weights_error(name: str, path: str, model_dir: str | None) -> ConfigError:
    if Path(path).is_dir():
        return ConfigError(
            f"model {path} has no weights (model.safetensors / pytorch_model.bin): point "
            "model.pretrained_model_name_or_path at a folder with weights, or set model.pretrained=false"
        )
    return ConfigError(f"model weights of {not_found_hint(name, model_dir, 'paths.model_dir', 'EMO_MODEL_DIR')}")


def position_limit(config: PretrainedConfig, pad_token_id: int | None = None) -> int | None:
    """The most tokens (special tokens included) the model reads in one sequence; None where it has no such limit.

    `max_position_embeddings`, less pad_token_id + 1 for RoBERTa-style models (their positions start after the
    padding index); `pad_token_id` stands in where the config has none.
    """
    limit = getattr(config, "max_position_embeddings", None)
    relative_only = getattr(config, "position_biased_input", True) is False  # DeBERTa-v2/v3
    rotary = getattr(config, "position_embedding_type", None) == "rotary"  # ESM-2
    if not isinstance(limit, int) or relative_only or rotary:
        return None
    if config.model_type in PADDING_OFFSET_POSITIONS:
        pad = config.pad_token_id if config.pad_token_id is not None else pad_token_id
        limit -= (pad or 0) + 1
    return limit


def check_max_length(
    config: PretrainedConfig, tokenizer: PreTrainedTokenizerBase, max_length: int, key: str = "data.max_length"
) -> None:
    """Refuse a `max_length` longer than the model can read (it would fail on the first long text, mid-training)."""
    limit = position_limit(config, tokenizer.pad_token_id)
    if limit is not None and max_length > limit:
        name = config.name_or_path or config.model_type
        raise ConfigError(f"{key}={max_length} is more tokens than model {name} reads ({limit}): set {key} ≤ {limit}")


def enable_gradient_checkpointing(model: PreTrainedModel) -> None:
    """Recompute each layer in the backward pass. Non-reentrant checkpointing: torch restores the RNG state for
    the recompute (the same dropout masks, so the same gradients), and frozen inputs need no `requires_grad` trick."""
    kwargs = {"use_reentrant": False}
    enable = getattr(model, "activation_checkpointing_enable", None)  # newer transformers' name for it
    if enable is not None:
        enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def _encoder_class(config: PretrainedConfig, trust_remote_code: bool) -> type | None:
    """The class `AutoModel` builds for `config`; None where the checkpoint's own code decides it."""
    if trust_remote_code and "AutoModel" in (getattr(config, "auto_map", None) or {}):
        return None
    try:
        return MODEL_MAPPING[type(config)]
    except KeyError:
        return None


def _check_checkpointing(model_class: type | None, name: str) -> None:
    if model_class is not None and not getattr(model_class, "supports_gradient_checkpointing", False):
        raise ConfigError(
            f"model.gradient_checkpointing=true, but {model_class.__name__} ({name}) does not support gradient "
            "checkpointing: set model.gradient_checkpointing=false, or use a backbone that does (e.g. model=bert_base)"
        )


def _freeze_unused_pooler(model: PreTrainedModel) -> None:
    """Our heads pool the last hidden state; the checkpoint's own pooler is unused (and would break DDP)."""
    pooler = getattr(model, "pooler", None)
    if pooler is not None:
        for param in pooler.parameters():
            param.requires_grad_(False)
