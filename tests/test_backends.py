"""backend=auto|torch|onnx|onnx-int8|openvino: the speeds export measures, what auto picks from them, and refusals."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from emo_lightning.inference.backends import RoutedBackend, open_backend
from emo_lightning.inference.engine import TorchBackend, predict_probabilities
from emo_lightning.inference.onnx_export import export_run
from emo_lightning.inference.predictor import EmotionPredictor
from emo_lightning.utils.errors import ConfigError
from emo_lightning.utils.hardware import HARDWARE_ENV, machine_id
from tests.conftest import ROOT
from tests.test_predict_files import TEXTS, model_dir


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_models, tiny_mirror):
    """A tiny trained run with its int8 export (parity passed, speeds measured here)."""
    from tests.conftest import compose_train

    out = tmp_path_factory.mktemp("exported")
    cfg = compose_train(
        [
            f"model.pretrained_model_name_or_path={tiny_models['bert']}",
            f"paths.data_dir={tiny_mirror}",
            "trainer.accelerator=cpu",
            "trainer.devices=1",
            "data.batch_size=8",
            "data.eval_batch_size=16",
            "logger=none",
            "plots=none",
            "trainer.max_epochs=4",
            "optimizer.lr=3e-3",
            "model.freeze_word_embeddings=false",  # the tiny model's table is random, not pretrained: it trains
        ],
        out,
    )
    from emo_lightning.train import train

    train(cfg)
    report = export_run(out, "onnx-int8")
    return out, report


def test_routed_backend_sends_each_batch_to_the_nearest_measured_size(tmp_path, tiny_models):
    network = EmotionPredictor(model_dir(tmp_path / "model", tiny_models, False), precision="fp32").network
    small, large = TorchBackend(network), TorchBackend(network, torch.bfloat16)
    routed = RoutedBackend({64: large, 1: small})
    assert [routed.backend_for(rows) is small for rows in (1, 2, 8, 9, 64, 500)] == [True] * 3 + [False] * 3
    assert routed.name == "auto(torch-fp32@1, torch-bf16@64)"
    assert RoutedBackend({1: small, 64: small}).name == "torch-fp32"


@pytest.mark.parametrize("kind, expected", [("avx2", "torch-fp32"), ("amx", "auto(torch-fp32@1, torch-bf16@64)")])
def test_auto_without_an_export_follows_the_machine(tmp_path, tiny_models, monkeypatch, kind, expected):
    monkeypatch.setenv(HARDWARE_ENV, kind)
    predictor = EmotionPredictor(model_dir(tmp_path / "model", tiny_models, False))
    assert predictor.backend.name == expected  # bf16 only pays off in batches on an AMX CPU
    fp32 = EmotionPredictor(model_dir(tmp_path / "model2", tiny_models, False), backend="torch", precision="fp32")
    assert torch.allclose(predictor.predict_proba(TEXTS[:1]), fp32.predict_proba(TEXTS[:1]), atol=1e-6)


def test_export_measures_every_passing_backend_and_auto_runs_the_fastest(exported):
    run_dir, report = exported
    speeds = report["speeds"]
    assert speeds["machine"] == machine_id()
    for size in ("1", "64"):
        rates = speeds["texts_per_second"][size]
        assert {"torch-fp32", "onnx", "onnx-int8"} <= set(rates) and all(rate > 0 for rate in rates.values())
        (openvino,) = report["openvino"]
        assert (openvino["backend"] in rates) == openvino["passed"]  # timed where it passed its parity check
        assert speeds["auto"][size] == max(rates, key=rates.get)
    predictor = EmotionPredictor.from_run(run_dir)
    assert isinstance(predictor.backend, RoutedBackend)
    assert {size: backend.name for size, backend in predictor.backend.choices.items()} == {
        int(size): name for size, name in speeds["auto"].items()
    }
    # a few texts go to the backend chosen for batch size 1: auto answers exactly as that backend opened by name
    chosen = speeds["auto"]["1"]
    named = {"torch-fp32": ("torch", "fp32"), "torch-bf16": ("torch", "bf16"), "onnx": ("onnx", "auto")}
    named |= {"openvino-fp32": ("openvino", "auto"), "openvino-bf16": ("openvino", "auto")}
    backend, precision = named.get(chosen, (chosen, "auto"))
    reference = EmotionPredictor.from_run(run_dir, backend=backend, precision=precision)
    assert reference.backend.name == chosen
    # (not fp32's labels: int8 or bf16 may flip a near tie of this tiny model; the parity check bounds that)
    assert torch.allclose(predictor.predict_proba(TEXTS), reference.predict_proba(TEXTS), atol=1e-6)
    assert [p.labels for p in predictor.predict(TEXTS)] == [p.labels for p in reference.predict(TEXTS)]


def test_auto_ignores_speeds_measured_on_another_machine(exported, tmp_path):
    run_dir, _ = exported
    copy = tmp_path / "run"
    for folder in ("model", "onnx"):
        shutil.copytree(run_dir / folder, copy / folder)
    parity = json.loads((copy / "onnx" / "parity.json").read_text())
    parity["speeds"]["machine"] = "another processor; CPU AVX2; 64 cores"
    parity["speeds"]["auto"] = {"1": "torch-fp32", "64": "torch-fp32"}
    (copy / "onnx" / "parity.json").write_text(json.dumps(parity))
    # the rule: an ONNX export that passed its parity check, int8 first
    assert EmotionPredictor.from_run(copy).backend.name == "onnx-int8"


@pytest.mark.parametrize(
    "backend, precision, message",
    [
        ("tensorrt", "auto", "backend=tensorrt is not one of auto, torch, onnx, onnx-int8, openvino"),
        ("onnx", "fp32", "precision=fp32 applies to the PyTorch backend only"),
        ("openvino", "bf16", "precision=bf16 applies to the PyTorch backend only"),
        ("onnx", "auto", "backend=onnx needs an export with its parity check"),
        ("onnx-int8", "auto", "python export.py run_dir="),
        ("openvino", "auto", "backend=openvino needs an export with its parity check"),
    ],
)
def test_backend_refusals_are_one_line(tmp_path, tiny_models, backend, precision, message):
    folder = model_dir(tmp_path / "model", tiny_models, False)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        EmotionPredictor(folder, backend=backend, precision=precision)
    assert "\n" not in str(error.value)
    network = EmotionPredictor(folder, precision="fp32").network
    with pytest.raises(ConfigError, match="backend="):
        open_backend(backend if backend != "onnx" else "tensorrt", network, tmp_path / "onnx", precision)


def test_predict_script_takes_the_backend(exported):
    run_dir, report = exported
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    answers, text = {}, "i am thrilled and happy about today"  # a training text: no near tie for int8 to flip
    (openvino,) = report["openvino"]
    if not openvino["passed"]:  # bf16 flipped too many near ties of this tiny model: refused, with the reason
        with pytest.raises(ConfigError, match="backend=openvino failed its parity check at export"):
            EmotionPredictor.from_run(run_dir, backend="openvino")
    for backend in ("onnx", "onnx-int8") + (("openvino",) if openvino["passed"] else ()):  # the same path, in-process
        predictor = EmotionPredictor.from_run(run_dir, backend=backend)
        answers[backend] = predictor.spec.label_names[int(predictor.predict_proba([text]).argmax())]
    for backend in ("torch", "auto"):  # the script itself, with the backend it is given
        result = subprocess.run(
            [sys.executable, "predict.py", f"run_dir={run_dir}", f"text={text}", f"backend={backend}"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        answers[backend] = lines[lines.index(text) + 1].split()[0]  # the top label
    assert len(set(answers.values())) == 1, answers


def test_batches_in_lanes_give_the_same_probabilities_in_order_and_restore_threads(tmp_path, tiny_models):
    predictor = EmotionPredictor(model_dir(tmp_path / "model", tiny_models, False), precision="fp32")
    texts = [f"{text} {'very ' * n}" for n in range(9) for text in TEXTS]  # 36 texts of many lengths
    args = (predictor.tokenizer, texts, 32, False, 4)
    threads = torch.get_num_threads()
    one = predict_probabilities(TorchBackend(predictor.network, lanes=1), *args)
    two = predict_probabilities(TorchBackend(predictor.network, lanes=2), *args)
    assert torch.get_num_threads() == threads  # this thread's torch setting is back
    assert torch.allclose(one, two, atol=1e-6) and one.shape == (36, len(predictor.spec.label_names))
    alone = torch.cat([predict_probabilities(predictor.backend, predictor.tokenizer, [t], 32, False) for t in texts])
    assert torch.allclose(two, alone, atol=1e-5)  # each row is its own text's, in input order
