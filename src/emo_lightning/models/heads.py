"""Classification heads: pool the encoder's last hidden state, then map it to one logit per label."""

from __future__ import annotations

import torch
from torch import nn

from emo_lightning.utils.errors import ConfigError

POOLINGS = ("cls", "mean", "max")


class Pooler(nn.Module):
    """(batch, seq, hidden) + (batch, seq) mask → (batch, hidden)."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        if mode not in POOLINGS:
            raise ConfigError(f"head.pooling={mode} is not known: use one of {', '.join(POOLINGS)}")
        self.mode = mode

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.mode == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (batch, seq, 1)
        if self.mode == "mean":
            return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min).max(dim=1).values


class LinearHead(nn.Module):
    """Pooling → dropout → linear."""

    def __init__(self, hidden_size: int, num_labels: int, pooling: str = "mean", dropout: float = 0.1) -> None:
        super().__init__()
        self.pool = Pooler(pooling)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.pool(hidden, attention_mask)))  # (batch, num_labels)


class MLPHead(nn.Module):
    """Pooling → dropout → linear → GELU → dropout → linear."""

    def __init__(
        self,
        hidden_size: int,
        num_labels: int,
        pooling: str = "mean",
        dropout: float = 0.1,
        inner_dim: int | None = None,
    ) -> None:
        super().__init__()
        inner_dim = inner_dim or hidden_size
        self.pool = Pooler(pooling)
        self.mlp = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(hidden_size, inner_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(inner_dim, num_labels),
        )

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.pool(hidden, attention_mask))  # (batch, num_labels)
