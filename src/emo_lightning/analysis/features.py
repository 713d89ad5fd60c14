"""Frozen-encoder features of a dataset's splits: the [CLS] vector and the masked mean of the last hidden state.

Computed once per (dataset, split, encoder, max_length, pooling, dtype) and cached as safetensors (plain tensors,
nothing that runs code on load) in `emo_features/` beside the tokenized data in the `datasets` cache.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from pathlib import Path

import datasets
import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from emo_lightning.data.batching import SortedBatchSampler, restore_order
from emo_lightning.data.datamodule import TextClassificationDataModule
from emo_lightning.inference.engine import DTYPE_NAMES, pad_batch
from emo_lightning.utils.atomic import atomic_path
from emo_lightning.utils.errors import ConfigError
from emo_lightning.utils.hardware import Hardware, inference_dtype
from emo_lightning.utils.hub import resolve_hub_path

log = logging.getLogger(__name__)

POOLINGS = ("cls", "mean")
CACHE_FOLDER = "emo_features"


def check_poolings(poolings: list[str], key: str) -> None:
    """Refuse an empty list or a pooling other than cls / mean."""
    unknown = [p for p in poolings if p not in POOLINGS]
    if not poolings or unknown:
        found = f"has {unknown[0]}" if unknown else "is empty"
        raise ConfigError(f"{key} {found}: use {' and/or '.join(POOLINGS)}, e.g. {key}=[cls,mean]")


def load_datamodule(cfg: DictConfig) -> TextClassificationDataModule:
    """The datamodule of `cfg.data`, its splits loaded and tokenized."""
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("fit")
    return datamodule


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """(batch, hidden) fp32: the first real token's vector (cls) or the mean over real tokens (mean)."""
    if pooling == "cls":
        first = mask.argmax(dim=1)  # the first real token, whichever side the padding is on
        return hidden[torch.arange(hidden.shape[0]), first].float()
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return ((hidden * weights).sum(1) / weights.sum(1).clamp(min=1)).float()


def cache_file(
    datamodule: TextClassificationDataModule, split: str, model_cfg: DictConfig, pooling: str, dtype
) -> Path:
    """Where one split's features of one pooling are cached: named for what they depend on."""
    tokenized = datamodule.tokenized[split]
    key = {
        "dataset": datamodule.name,
        "fingerprint": tokenized._fingerprint,  # changes with the data and the tokenization
        "split": split,
        "backbone": str(Path(model_cfg.pretrained_model_name_or_path).expanduser()),
        "backbone_files": backbone_stamp(str(model_cfg.pretrained_model_name_or_path), model_cfg.get("model_dir")),
        "pretrained": bool(model_cfg.get("pretrained", True)),
        "config_overrides": OmegaConf.to_container(model_cfg, resolve=True).get("config_overrides"),
        "max_length": datamodule.max_length,
        "pooling": pooling,
        "dtype": DTYPE_NAMES[dtype],
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    folder = Path(tokenized.cache_files[0]["filename"]).parent if tokenized.cache_files else None
    # data=files' are read from its tokenized cache entry; in-memory data (data.cache_tokenized=false): the datasets'
    folder = folder or Path(datasets.config.HF_DATASETS_CACHE)
    safe_name = "".join(c if c.isalnum() or c in "-_" else "_" for c in datamodule.name)
    return folder / CACHE_FOLDER / f"{safe_name}_{split}_{pooling}_{digest}.safetensors"


@functools.lru_cache(maxsize=8)
def backbone_stamp(name_or_path: str, model_dir: str | None) -> tuple[tuple[str, int, int], ...] | None:
    """(name, size, mtime) of a local model folder's files, so that features of re-saved weights are recomputed."""
    folder = Path(resolve_hub_path(name_or_path, model_dir))
    if not folder.is_dir():
        return None
    return tuple(sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in folder.iterdir() if f.is_file()))


def split_features(
    cfg: DictConfig, datamodule: TextClassificationDataModule, poolings: list[str], splits: list[str]
) -> dict[str, dict[str, torch.Tensor]]:
    """split → pooling → fp32 features (texts, hidden) in the split's order; cached ones are loaded, the rest
    computed in one pass per split through the frozen `cfg.model` encoder."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = inference_dtype("auto", Hardware.detect(), device)
    result: dict[str, dict[str, torch.Tensor]] = {}
    encoder = None
    for split in splits:
        files = {p: cache_file(datamodule, split, cfg.model, p, dtype) for p in poolings}
        rows = len(datamodule.tokenized[split])
        result[split] = {p: load_file(f)["features"] for p, f in files.items() if f.is_file()}
        result[split] = {p: t for p, t in result[split].items() if t.shape[0] == rows}  # else: recomputed
        missing = [p for p in poolings if p not in result[split]]
        if not missing:
            log.info("%s %s features: cached in %s", datamodule.name, split, files[poolings[0]].parent)
            continue
        if encoder is None:
            encoder = hydra.utils.instantiate(cfg.model).to(device=device, dtype=dtype).eval()
        computed = encode_split(encoder, datamodule, split, missing, cfg.baseline.batch_size, device)
        for pooling, features in computed.items():
            with atomic_path(files[pooling]) as temporary:
                save_file({"features": features.contiguous()}, str(temporary), metadata={"split": split})
            result[split][pooling] = features
    return result


@torch.inference_mode()
def encode_split(
    encoder: torch.nn.Module,
    datamodule: TextClassificationDataModule,
    split: str,
    poolings: list[str],
    batch_size: int,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """pooling → fp32 (texts, hidden) of one tokenized split, in length-sorted batches."""
    ids = datamodule.tokenized[split]["input_ids"]
    batches = SortedBatchSampler([len(row) for row in ids], batch_size)
    chunks: dict[str, list[torch.Tensor]] = {p: [] for p in poolings}
    for indices in tqdm(batches, desc=f"features {split}", unit="batch"):
        input_ids, mask = pad_batch([ids[i] for i in indices], datamodule.tokenizer)
        input_ids, mask = input_ids.to(device), mask.to(device)
        hidden = encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
        for pooling in poolings:
            chunks[pooling].append(pool(hidden, mask, pooling).cpu())
    return {p: restore_order(torch.cat(c), batches.order) for p, c in chunks.items()}
