"""The network alone (encoder → head → logits): shared by training and by inference."""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel

from emo_lightning.utils.errors import ConfigError


class EmotionNetwork(nn.Module):
    """`backbone` → `head`. A head whose `reads_pooler` is true also gets the encoder's pooler output, and the
    pooler trains with it; otherwise the pooler is unused and stays frozen (a trainable unused one breaks DDP)."""

    def __init__(self, backbone: PreTrainedModel, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.reads_pooler = bool(getattr(head, "reads_pooler", False))
        pooler = getattr(backbone, "pooler", None)
        if self.reads_pooler and pooler is None:
            raise ConfigError(
                f"head.pooling=pooler reads the encoder's pooler layer, which {type(backbone).__name__} lacks: "
                "use head.pooling=cls, mean or max"
            )
        if pooler is not None:
            pooler.requires_grad_(self.reads_pooler)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        extend = getattr(self.head, "extend_inputs", None)  # heads that put something before the text
        if extend is not None:
            input_ids, attention_mask = extend(input_ids, attention_mask)
        # Only ids and mask: BERT, DistilBERT, RoBERTa, SqueezeBERT and MiniLM all accept these.
        outputs = self.backbone(input_ids=input_ids, attention_mask=attention_mask)
        pooled = outputs.pooler_output if self.reads_pooler else None
        return self.head(outputs.last_hidden_state, attention_mask, pooled)  # (batch, num_labels)
