"""Load datasets and tokenizers through the real Hub path, resolved against a local mirror first."""

from __future__ import annotations

from pathlib import Path

from datasets import DatasetDict, load_dataset
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from emo_lightning.utils.errors import ConfigError
from emo_lightning.utils.hub import not_found_hint, resolve_hub_path

# What `save_pretrained` of some tokenizer writes; a folder with none of them holds no tokenizer (transformers would
# still build one with an empty vocabulary from a bare config.json).
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
)


def load_hub_dataset(path: str, name: str | None, data_dir: str | None) -> DatasetDict:
    """`load_dataset(path, name)` with `path` resolved against the `data_dir` mirror."""
    resolved = resolve_hub_path(path, data_dir)
    try:
        return load_dataset(resolved, name)
    except (FileNotFoundError, ConnectionError) as err:
        raise ConfigError(f"dataset {not_found_hint(path, data_dir, 'paths.data_dir', 'EMO_DATA_DIR')}") from err
    except ValueError as err:
        if "BuilderConfig" in str(err) or "Config name" in str(err):
            raise ConfigError(f"dataset '{path}' has no config '{name}': {str(err).splitlines()[0]}") from err
        raise


def load_tokenizer(
    name_or_path: str, model_dir: str | None, trust_remote_code: bool = False
) -> PreTrainedTokenizerBase:
    """`AutoTokenizer.from_pretrained` with `name_or_path` resolved against the `model_dir` mirror.

    Refuses a folder without tokenizer files and a tokenizer without a pad token (batches are padded).
    `trust_remote_code`: run a tokenizer's own Python code (`auto_map`); off, only transformers' tokenizers load.
    """
    resolved = resolve_hub_path(name_or_path, model_dir)
    folder = Path(resolved)
    if folder.is_dir() and not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise ConfigError(
            f"tokenizer folder {folder} has no tokenizer files (tokenizer.json, tokenizer_config.json, vocab.txt, …): "
            "set data.tokenizer to a folder or Hub id that has them (save_pretrained of a tokenizer writes them)"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved, trust_remote_code=trust_remote_code)
    except OSError as err:
        hint = not_found_hint(name_or_path, model_dir, "paths.model_dir", "EMO_MODEL_DIR")
        raise ConfigError(f"tokenizer {hint}, or set data.tokenizer to one that exists") from err
    except ValueError as err:
        if "trust_remote_code" in str(err):
            raise ConfigError(
                f"tokenizer {name_or_path} needs its own Python code to load (auto_map), which is off: "
                "set data.tokenizer to a tokenizer transformers knows"
            ) from err
        raise
    if tokenizer.pad_token is None:
        raise ConfigError(
            f"tokenizer {name_or_path} has no pad token: this framework pads each batch to its longest text, so use "
            "a model whose tokenizer has one (BERT, RoBERTa, DistilBERT, MiniLM …), or add one and save_pretrained it"
        )
    return tokenizer
