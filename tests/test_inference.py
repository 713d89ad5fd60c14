"""One inference path: the final evaluation, predictions/*.csv, the predictor and the engine give the same numbers."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from datasets import load_dataset

from emo_lightning.evaluation.splits import evaluate_splits
from emo_lightning.inference.engine import TorchBackend, decide, predict_probabilities
from emo_lightning.inference.predictor import EmotionPredictor
from emo_lightning.train import train
from emo_lightning.utils.errors import ConfigError
from emo_lightning.utils.rules import render
from tests.test_predict_files import LABELS, TEXTS, model_dir

HEAVY = ("lightning", "hydra", "pytorch_lightning")


def test_final_evaluation_predictor_and_engine_agree(tiny_cfg, tmp_path):
    train(tiny_cfg("data=go_emotions", "logger=none", "trainer.max_steps=3"))
    rows = load_dataset("csv", data_files=str(tmp_path / "predictions" / "val.csv"), split="train")
    predictor = EmotionPredictor.from_run(tmp_path, precision="fp32")
    names, spec = predictor.spec.label_names, predictor.spec
    from_file = torch.tensor([[row[f"prob_{name}"] for name in names] for row in rows])  # rounded to 5 decimals
    texts = rows["text"]
    from_predictor = predictor.predict_proba(texts)
    backend = TorchBackend(predictor.network, torch.float32)
    from_engine = predict_probabilities(backend, predictor.tokenizer, texts, spec.max_length, spec.multi_label, 7)
    assert from_file.shape == (len(texts), 28)
    assert torch.allclose(from_file, from_predictor, atol=1e-4)
    assert torch.allclose(from_engine, from_predictor, atol=1e-5)  # batch size 7 instead of 64: padding-exact
    # evaluating the exported model on the split's texts and gold labels reproduces the run's files
    gold = {"validation": [[float(name in (row["gold"] or "").split(",")) for name in names] for row in rows]}
    split, tokenizer = {"validation": texts}, predictor.tokenizer
    evaluation = evaluate_splits(backend, tokenizer, split, gold, names, True, None, max_length=spec.max_length)
    assert torch.allclose(evaluation.outputs["val"].probs, from_file, atol=1e-4)
    thresholds = json.loads((tmp_path / "metrics.json").read_text())["thresholds"]
    assert thresholds == dict(zip(predictor.spec.label_names, predictor.thresholds)) and len(thresholds) == 28


def test_decide_multi_label_thresholds_are_inclusive_and_per_label():
    probs = torch.tensor([[0.5, 0.2, 0.9], [0.1, 0.3, 0.05]])
    picked = decide(probs, multi_label=True, thresholds=torch.tensor([0.5, 0.25, 0.95]))
    assert picked.tolist() == [[True, False, False], [False, True, False]]
    assert decide(probs, True, 0.3).tolist() == [[True, False, True], [False, True, False]]


def test_decide_at_least_one_fills_only_empty_rows():
    probs = torch.tensor([[0.6, 0.7, 0.1], [0.1, 0.3, 0.2]])
    assert decide(probs, True, 0.5, at_least_one=False).tolist() == [[True, True, False], [False, False, False]]
    assert decide(probs, True, 0.5, at_least_one=True).tolist() == [[True, True, False], [False, True, False]]


def test_decide_single_label_is_the_top_label_whatever_the_threshold():
    probs = torch.tensor([[0.2, 0.5, 0.3], [0.9, 0.05, 0.05]])
    assert decide(probs, False, 0.99).tolist() == [[False, True, False], [True, False, False]]


def test_backends_are_named_by_precision_and_bf16_stays_close(tmp_path, tiny_models):
    predictor = EmotionPredictor(model_dir(tmp_path / "model", tiny_models, multi_label=False), precision="fp32")
    fp32, bf16 = TorchBackend(predictor.network), TorchBackend(predictor.network, torch.bfloat16)
    assert (fp32.name, bf16.name) == ("torch-fp32", "torch-bf16")
    assert predictor.backend.name == "torch-fp32"
    ids = predictor.tokenizer(TEXTS, padding=True, return_tensors="pt")
    exact, rounded = fp32.logits(**ids), bf16.logits(**ids)
    assert exact.dtype == rounded.dtype == torch.float32 and exact.shape == (4, len(LABELS))
    # bf16 keeps 8 significant bits: a logit of -18.5 lands on a grid of 0.125, so the bound is relative too
    assert torch.allclose(exact, rounded, atol=0.1, rtol=0.02) and not torch.equal(exact, rounded)
    assert predict_probabilities(fp32, predictor.tokenizer, [], 32, False).shape == (0, 0)


class Float64Backend:
    """Another backend: the network run in float64 (what an exact reference would do)."""

    name = "torch-fp64"

    def __init__(self, network: torch.nn.Module) -> None:
        self.network, self.calls = network.double(), 0

    @torch.inference_mode()
    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.network(input_ids, attention_mask).float()


def test_predictor_runs_the_backend_it_is_given(tmp_path, tiny_models):
    folder = model_dir(tmp_path / "model", tiny_models, multi_label=True)
    reference = EmotionPredictor(folder, precision="fp32")
    backend = Float64Backend(EmotionPredictor(folder).network)
    predictor = EmotionPredictor(folder, batch_size=2, backend=backend)
    assert predictor.backend is backend
    assert torch.allclose(predictor.predict_proba(TEXTS), reference.predict_proba(TEXTS), atol=1e-5)
    assert backend.calls == 2  # 4 texts in batches of 2
    assert [p.labels for p in predictor.predict(TEXTS)] == [p.labels for p in reference.predict(TEXTS)]
    with pytest.raises(ConfigError, match="precision=bf16 applies to the PyTorch backend only"):
        EmotionPredictor(folder, precision="bf16", backend=backend)


def test_prediction_imports_neither_lightning_nor_hydra():
    code = (
        "import sys, emo_lightning.inference.predictor, emo_lightning.inference.engine, "
        "emo_lightning.evaluation.splits; "
        f"heavy = sorted(m for m in sys.modules if m.startswith({HEAVY!r})); assert not heavy, heavy"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_package_exports_the_predictor_lazily():
    code = (
        "import sys, emo_lightning; assert 'torch' not in sys.modules; "
        "from emo_lightning import EmotionPredictor; "
        "from emo_lightning.inference.predictor import EmotionPredictor as direct; assert EmotionPredictor is direct"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    import emo_lightning

    with pytest.raises(AttributeError, match="no attribute 'Predictor'"):
        emo_lightning.Predictor  # noqa: B018


@pytest.mark.parametrize("bad", [0.0, 0, 1.0, -0.1, 1.5, float("nan"), True, "0.5"])
def test_predictor_refuses_a_threshold_outside_zero_to_one(tmp_path, tiny_models, bad):
    """0.0 was taken for "no threshold" (the saved ones were used instead); now it, and any value that is not a
    number strictly between 0 and 1, is one line before the folder is read."""
    with pytest.raises(ConfigError) as info:
        EmotionPredictor(tmp_path / "not-read", threshold=bad)
    number = isinstance(bad, int | float) and not isinstance(bad, bool)
    assert str(info.value) == (
        f"threshold={render(bad)} must be {'' if number else 'a number '}> 0 and < 1, or null for the thresholds "
        "saved with the model: e.g. threshold=0.5"
    )


def test_a_given_threshold_replaces_every_saved_one(tmp_path, tiny_models):
    folder = model_dir(tmp_path / "model", tiny_models, multi_label=True)
    saved = EmotionPredictor(folder, precision="fp32")
    probs = saved.predict_proba(TEXTS)
    # every label fires where some score is under 0.5, none where every score is over it: either way not the 0.5 picks
    low, high = float(probs.min()), float(probs.max())
    given_threshold = low / 2 if low < 0.5 else (high + 1) / 2
    assert 0 < given_threshold < 1, f"the scores {low}..{high} leave no threshold in (0, 1) that differs from 0.5"
    given = EmotionPredictor(folder, precision="fp32", threshold=given_threshold)
    assert given.thresholds == [given_threshold] * len(LABELS) and saved.thresholds == [0.5] * len(LABELS)
    picked = [set(p.labels) for p in given.predict(TEXTS)]
    assert picked == [{name for name, p in zip(LABELS, row) if p >= given_threshold} for row in probs.tolist()]
    assert sum(map(len, picked)) == int((probs >= given_threshold).sum()) in (0, probs.numel())
    assert picked != [set(p.labels) for p in saved.predict(TEXTS)]
