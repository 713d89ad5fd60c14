"""Build any `AutoModel` encoder: pretrained from the Hub / a mirror / a folder, or random-init for tests."""

from __future__ import annotations

import logging

from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from emo_lightning.utils.errors import ConfigError
from emo_lightning.utils.hub import not_found_hint, resolve_hub_path

log = logging.getLogger(__name__)


def load_backbone(
    pretrained_model_name_or_path: str,
    model_type: str | None = None,
    pretrained: bool = True,
    config_overrides: dict | None = None,
    model_dir: str | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
    attn_implementation: str | None = None,
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
    """
    overrides = dict(config_overrides or {})
    config = _load_config(pretrained_model_name_or_path, model_type, pretrained, model_dir)
    unknown = [k for k in overrides if not hasattr(config, k)]
    if unknown:
        raise ConfigError(
            f"model.config_overrides.{unknown[0]} is not a field of {type(config).__name__}: "
            "use one of its fields (e.g. hidden_dropout_prob, num_hidden_layers)"
        )
    config.update(overrides)
    if pretrained:
        path = resolve_hub_path(pretrained_model_name_or_path, model_dir)
        model = AutoModel.from_pretrained(path, config=config, attn_implementation=attn_implementation)
    else:
        if tokenizer is not None:
            config.vocab_size = len(tokenizer)
            config.pad_token_id = tokenizer.pad_token_id
        model = AutoModel.from_config(config, attn_implementation=attn_implementation)
        log.info("random-init %s: %.1fM parameters", type(model).__name__, model.num_parameters() / 1e6)
    _freeze_unused_pooler(model)
    return model.train()  # from_pretrained returns eval mode; dropout must be on for fine-tuning


def _load_config(name: str, model_type: str | None, pretrained: bool, model_dir: str | None) -> PretrainedConfig:
    path = resolve_hub_path(name, model_dir)
    try:
        return AutoConfig.from_pretrained(path)
    except OSError as err:
        if pretrained or model_type is None:
            hint = not_found_hint(name, model_dir, "paths.model_dir", "EMO_MODEL_DIR")
            suffix = "" if pretrained else "; or set model.model_type to build it from scratch"
            raise ConfigError(f"model {hint}{suffix}") from err
        log.info("%s not reachable: building a default %s config (pretrained=false)", name, model_type)
        return AutoConfig.for_model(model_type)


def _freeze_unused_pooler(model: PreTrainedModel) -> None:
    """Our heads pool the last hidden state; the checkpoint's own pooler is unused (and would break DDP)."""
    pooler = getattr(model, "pooler", None)
    if pooler is not None:
        for param in pooler.parameters():
            param.requires_grad_(False)
