"""Classification heads: pool the encoder's last hidden state, then map it to one logit per label.

`pooling=pooler` takes the encoder's own pooler output instead (BERT: tanh(dense(hidden[:, 0]))); with the linear
head that is exactly Hugging Face's `BertForSequenceClassification`, so the model folder loads in `pipeline()`.

`LabelPromptHead` also shapes the input: the label names go before the text, and each label is scored from its own
name's token as the encoder read it beside the text (as in SpanEmo, Alhuzali & Ananiadou 2021).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from emo_lightning.utils.errors import ConfigError

POOLINGS = ("cls", "mean", "max", "pooler")
HEADS: dict[str, type[PooledHead]] = {}  # `type` in a model folder's classifier.json → class: what a folder may name


def register_head(name: str):
    """Class decorator: the head is known to model folders, calibration and wiring by `name` (its `conf/head/`
    file's name)."""

    def register(cls: type[PooledHead]) -> type[PooledHead]:
        HEADS[name] = cls
        return cls

    return register


class Pooler(nn.Module):
    """(batch, seq, hidden) + (batch, seq) mask → (batch, hidden); `pooler` returns `pooled`, the encoder's pooler
    output, which `EmotionNetwork` passes to heads whose `reads_pooler` is true."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        if mode not in POOLINGS:
            raise ConfigError(f"head.pooling={mode} is not known: use one of {', '.join(POOLINGS)}")
        self.mode = mode

    def forward(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor, pooled: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.mode == "pooler":
            return pooled
        if self.mode == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (batch, seq, 1)
        if self.mode == "mean":
            return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min).max(dim=1).values


class PooledHead(nn.Module):
    """A head that pools the encoder's output with `self.pool` (a `Pooler`). What a new head may override: the
    arguments it takes from the data (`data_arguments`), a check of the input it needs (`check_input`), and the
    output layer that calibration folds its temperatures into (`temperature_layers`)."""

    pool: Pooler

    @property
    def reads_pooler(self) -> bool:
        """Whether it reads the encoder's pooler output (so the pooler layer trains)."""
        return self.pool.mode == "pooler"

    @classmethod
    def data_arguments(cls, tokenizer: PreTrainedTokenizerBase, label_names: list[str]) -> dict:
        """Constructor arguments that come from the data and tokenizer (saved in the model folder); none here."""
        return {}

    @classmethod
    def check_input(cls, positions: int | None, arguments: dict, max_length: int) -> None:
        """Refuse, before training, a head whose input cannot fit the encoder's `positions`; nothing to check here."""

    def temperature_layers(self, temperatures: list[float]) -> list[str] | None:
        """State-dict keys whose division by the temperatures (one per label, or one shared) divides the logits by
        them; None where no such keys exist (the engine then divides the logits)."""
        return None

    def shares_one_temperature(self) -> bool:
        """Whether one output unit serves every label (its folded layers take a single temperature)."""
        return False


@register_head("linear")
class LinearHead(PooledHead):
    """Pooling → dropout → linear."""

    def __init__(self, hidden_size: int, num_labels: int, pooling: str = "mean", dropout: float = 0.1) -> None:
        super().__init__()
        self.pool = Pooler(pooling)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor, pooled: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.classifier(self.dropout(self.pool(hidden, attention_mask, pooled)))  # (batch, num_labels)

    def temperature_layers(self, temperatures: list[float]) -> list[str]:
        return ["classifier.weight", "classifier.bias"]


@register_head("mlp")
class MLPHead(PooledHead):
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

    def forward(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor, pooled: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.mlp(self.pool(hidden, attention_mask, pooled))  # (batch, num_labels)

    def temperature_layers(self, temperatures: list[float]) -> list[str]:
        last = len(self.mlp) - 1
        return [f"mlp.{last}.weight", f"mlp.{last}.bias"]


def label_prompt(tokenizer: PreTrainedTokenizerBase, label_names: list[str]) -> dict:
    """Token ids of the label names as one segment (with the tokenizer's special tokens), the position of each
    name's first token, and whether the tokenizer starts every text with a special token (dropped after the prompt).
    """
    encoded = tokenizer([name.replace("_", " ") for name in label_names], is_split_into_words=True)
    word_ids = encoded.word_ids()
    positions = [word_ids.index(i) for i in range(len(label_names))]
    starts_special = encoded["input_ids"][0] in tokenizer.all_special_ids
    return {"prompt_ids": encoded["input_ids"], "label_positions": positions, "drop_first": starts_special}


@register_head("label_prompt")
class LabelPromptHead(PooledHead):
    """Label names before the text; label i's logit from [its name's token ; pooled text] → dropout → linear.

    `prompt_ids`, `label_positions` and `drop_first` come from `label_prompt` (the model folder keeps them).
    """

    def __init__(
        self,
        hidden_size: int,
        num_labels: int,
        prompt_ids: list[int],
        label_positions: list[int],
        drop_first: bool = True,
        pooling: str = "mean",
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if len(label_positions) != num_labels:
            raise ConfigError(f"the label prompt has {len(label_positions)} labels, the data {num_labels}")
        self.register_buffer("prompt_ids", torch.tensor(prompt_ids, dtype=torch.long), persistent=False)
        self.register_buffer("positions", torch.tensor(label_positions, dtype=torch.long), persistent=False)
        self.drop_first = drop_first
        self.pool = Pooler(pooling)
        self.dropout = nn.Dropout(dropout)
        self.scorer = nn.Linear(2 * hidden_size, 1)
        self.label_bias = nn.Parameter(torch.zeros(num_labels))

    def extend_inputs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(prompt + text ids, mask): the text keeps its closing special token, not its opening one."""
        if self.drop_first:
            input_ids, attention_mask = input_ids[:, 1:], attention_mask[:, 1:]
        prompt = self.prompt_ids.expand(input_ids.shape[0], -1)
        ids = torch.cat([prompt, input_ids], dim=1)
        return ids, torch.cat([torch.ones_like(prompt, dtype=attention_mask.dtype), attention_mask], dim=1)

    def forward(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor, pooled: torch.Tensor | None = None
    ) -> torch.Tensor:
        text_mask = attention_mask.clone()
        text_mask[:, : self.prompt_ids.numel()] = 0  # pool the text, not the prompt
        text = self.pool(hidden, text_mask, pooled)
        labels = hidden[:, self.positions]  # (batch, num_labels, hidden)
        features = torch.cat([labels, text.unsqueeze(1).expand_as(labels)], dim=-1)
        return self.scorer(self.dropout(features)).squeeze(-1) + self.label_bias  # (batch, num_labels)

    @classmethod
    def data_arguments(cls, tokenizer: PreTrainedTokenizerBase, label_names: list[str]) -> dict:
        return label_prompt(tokenizer, label_names)

    @classmethod
    def check_input(cls, positions: int | None, arguments: dict, max_length: int) -> None:
        """The label names go before every text: prompt + text must fit in the model's positions."""
        prompt_length = len(arguments["prompt_ids"]) - int(arguments["drop_first"])
        if positions is not None and prompt_length + max_length > positions:
            raise ConfigError(
                f"head=label_prompt puts {prompt_length} tokens of label names before each text, and with "
                f"data.max_length={max_length} that is more than the {positions} positions the model reads: "
                f"set data.max_length ≤ {positions - prompt_length}, or use head=linear"
            )

    def temperature_layers(self, temperatures: list[float]) -> list[str] | None:
        """One scorer serves every label, so only a single shared temperature folds in."""
        return ["scorer.weight", "scorer.bias", "label_bias"] if len(set(temperatures)) == 1 else None

    def shares_one_temperature(self) -> bool:
        return True
