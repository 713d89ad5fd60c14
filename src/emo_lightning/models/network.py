"""The network alone (encoder → head → logits): shared by training and by inference."""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel


class EmotionNetwork(nn.Module):
    def __init__(self, backbone: PreTrainedModel, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        extend = getattr(self.head, "extend_inputs", None)  # heads that put something before the text
        if extend is not None:
            input_ids, attention_mask = extend(input_ids, attention_mask)
        # Only ids and mask: BERT, DistilBERT, RoBERTa, SqueezeBERT and MiniLM all accept these.
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(hidden, attention_mask)  # (batch, num_labels)
