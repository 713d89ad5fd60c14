"""Shared fixtures: tiny real tokenizer/models/mirror, the real mirror beside the checkout, composed configs."""

from __future__ import annotations

import os
from pathlib import Path

# Before the libraries below are imported: they read these when they load.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from tests.helpers import build_tiny_model, build_tokenizer, write_tiny_mirror

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
SHARED = Path(os.environ.get("EMO_SHARED_DIR", ROOT.parent / "shared"))


def require_shared(sub: str) -> Path:
    """The real mirror path; skipped where ../shared is absent, but a failure under CI=true."""
    path = SHARED / sub
    if not path.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but the mirror {path} is missing")
        pytest.skip(f"real mirror {path} not here (it is beside the checkout in CI)")
    return path


@pytest.fixture(scope="session", autouse=True)
def tokenized_cache(tmp_path_factory) -> Path:
    """data=files keeps tokenized rows between runs (data/token_cache.py): the suite's go to a folder of its own,
    never ~/.cache, and the train.py runs it starts inherit it."""
    path = tmp_path_factory.mktemp("tokenized")
    os.environ["EMO_TOKENIZED_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tokenizer")
    build_tokenizer(path)
    return path


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, tiny_tokenizer_dir) -> dict[str, Path]:
    """One tiny random-init model folder per architecture family."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    root = tmp_path_factory.mktemp("models")
    return {t: build_tiny_model(root / t, t, tokenizer) for t in ("bert", "distilbert", "squeezebert", "roberta")}


@pytest.fixture(scope="session")
def tiny_mirror(tmp_path_factory) -> Path:
    return write_tiny_mirror(tmp_path_factory.mktemp("mirror"))


def compose_train(overrides: list[str], output_dir: Path | None = None) -> DictConfig:
    """Compose conf/train.yaml as the CLI would, with a concrete output dir."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir or "/tmp/emo-test")
    return cfg


@pytest.fixture
def tiny_cfg(tmp_path, tiny_models, tiny_mirror):
    """A composer of fast configs: tiny bert + tiny mirror + a few batches, no figures unless `plots=` is given,
    writing under tmp_path."""

    def make(*overrides: str, family: str = "bert") -> DictConfig:
        base = [
            f"model.pretrained_model_name_or_path={tiny_models[family]}",
            f"paths.data_dir={tiny_mirror}",
            "trainer.accelerator=cpu",
            "trainer.devices=1",
            "trainer.max_epochs=1",
            "trainer.log_every_n_steps=1",
            "data.batch_size=8",
            "data.eval_batch_size=16",
            "model.freeze_word_embeddings=false",  # the tiny models' tables are random, not pretrained: they train
        ]
        if not any(o.startswith("plots=") for o in overrides):
            base.append("plots=none")  # figures cost seconds a run: only the tests that look at them draw them
        return compose_train(base + list(overrides), tmp_path)

    return make


@pytest.fixture(autouse=True)
def no_leftover_hydra_job():
    """Each test starts outside any Hydra job: a test that ran a Hydra app in-process leaves its job config
    behind (a global), and code that asks "am I in a Hydra job?" would read that stale one."""
    from hydra.core.hydra_config import HydraConfig

    HydraConfig.instance().cfg = None
    yield
    HydraConfig.instance().cfg = None
    import logging

    root = logging.getLogger()  # a Hydra app run in-process leaves its console handler on a stream pytest closed
    for handler in list(root.handlers):
        if isinstance(handler, logging.StreamHandler) and getattr(handler.stream, "closed", False):
            root.removeHandler(handler)


_FAULT_STDERR: list[int] = []  # a copy of the worker's real stderr, taken before any test captures fd 2


def pytest_configure(config) -> None:
    _FAULT_STDERR.append(os.dup(2))


@pytest.fixture(autouse=True)
def fatal_errors_keep_their_traceback():
    """Lightning's `Trainer` puts back, after each fit, the Python-level handler of every signal — SIG_DFL for
    SIGSEGV, SIGBUS, SIGFPE, SIGABRT, SIGILL — which silently uninstalls faulthandler: a native crash in a later
    test would end the worker with no traceback. Reinstall it after each test."""
    import faulthandler

    yield
    faulthandler.disable()
    faulthandler.enable(file=_FAULT_STDERR[0], all_threads=True)
