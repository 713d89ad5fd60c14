"""Load datasets and tokenizers through the real Hub path, resolved against a local mirror first."""

from __future__ import annotations

from datasets import DatasetDict, load_dataset
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from emo_lightning.utils.errors import ConfigError
from emo_lightning.utils.hub import not_found_hint, resolve_hub_path


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


def load_tokenizer(name_or_path: str, model_dir: str | None) -> PreTrainedTokenizerBase:
    """`AutoTokenizer.from_pretrained` with `name_or_path` resolved against the `model_dir` mirror."""
    resolved = resolve_hub_path(name_or_path, model_dir)
    try:
        return AutoTokenizer.from_pretrained(resolved)
    except OSError as err:
        hint = not_found_hint(name_or_path, model_dir, "paths.model_dir", "EMO_MODEL_DIR")
        raise ConfigError(f"tokenizer {hint}, or set data.tokenizer to one that exists") from err
