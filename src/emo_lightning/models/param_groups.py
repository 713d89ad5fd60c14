"""Optimizer parameter groups: no weight decay on 1-D parameters, optional layer-wise learning-rate decay."""

from __future__ import annotations

import re

from torch import nn

from emo_lightning.utils.errors import ConfigError

# An encoder layer's index in a parameter name: BERT/RoBERTa `encoder.layer.3.`, DistilBERT `transformer.layer.3.`,
# SqueezeBERT `encoder.layers.3.`, ModernBERT `layers.3.`.
LAYER_INDEX = re.compile(r"(?:^|\.)layers?\.(\d+)\.")


def is_embedding(name: str) -> bool:
    """A backbone parameter of its input embeddings (or their projection, as in ELECTRA and ALBERT)."""
    return name.startswith("backbone.") and "embedding" in name


class ParameterGroups:
    """Splits a network's trainable parameters into optimizer groups.

    Biases and norm weights (every 1-D parameter) get no weight decay. With `layer_decay` < 1 (layer-wise learning-rate
    decay, LLRD), the head and the backbone's top layer learn at the optimizer's rate, each encoder layer below at
    `layer_decay` times the rate of the one above, and the embeddings lowest. Each group carries its factor as
    `lr_scale`; `EmotionClassifier.configure_optimizers` applies it.

    Args:
        layer_decay: rate factor per layer, in (0, 1]; 1 keeps one rate for the whole network.
    """

    def __init__(self, layer_decay: float = 1.0) -> None:
        if not 0 < layer_decay <= 1:
            raise ConfigError(f"layer_decay={layer_decay} is outside (0, 1]: use e.g. 0.9, or 1.0 for one rate")
        self.layer_decay = layer_decay

    def depths(self, network: nn.Module) -> dict[str, int]:
        """Depth of each trainable parameter of an `EmotionNetwork`: 0 for the backbone's embeddings, i + 1 for its
        encoder layer i, the top for the rest (the head, a pooler, a final norm)."""
        names = [name for name, p in network.named_parameters() if p.requires_grad]
        layer_of = {name: name.startswith("backbone.") and LAYER_INDEX.search(name) for name in names}
        indices = {int(match.group(1)) for match in layer_of.values() if match}
        if self.layer_decay < 1 and not indices:
            raise ConfigError(
                "layer_decay < 1 needs a backbone with numbered layers (`encoder.layer.N.`), and this one has none: "
                "set layer_decay=1.0"
            )
        top = max(indices, default=-1) + 2
        return {
            name: 0 if is_embedding(name) else int(layer_of[name].group(1)) + 1 if layer_of[name] else top
            for name in names
        }

    def __call__(self, network: nn.Module) -> list[dict]:
        depths = self.depths(network)
        top = max(depths.values(), default=0)
        groups: dict[tuple[float, bool], dict] = {}
        for name, param in network.named_parameters():
            if not param.requires_grad:
                continue
            scale = self.layer_decay ** (top - depths[name])
            decayed = param.ndim >= 2
            group = groups.setdefault(
                (scale, decayed),
                {"params": [], "lr_scale": scale} | ({} if decayed else {"weight_decay": 0.0}),
            )
            group["params"].append(param)
        return list(groups.values())
