"""ONNX export of real tiny trained runs: parity with PyTorch at export time, the ONNX backend, refusals."""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch
from transformers import AutoTokenizer

from emo_lightning.inference import onnx_export, parity_check
from emo_lightning.inference.engine import TorchBackend, predict_probabilities
from emo_lightning.inference.onnx_backend import OnnxBackend, machine_cores
from emo_lightning.inference.onnx_export import export_run
from emo_lightning.inference.openvino_backend import OpenVinoBackend, native_bf16
from emo_lightning.models.folder import load_model_dir, read_spec
from emo_lightning.train import train
from emo_lightning.utils.errors import ConfigError
from tests.conftest import ROOT, require_shared


def tiny_run(tiny_cfg, *overrides: str):
    cfg = tiny_cfg("logger=none", "plots=none", *overrides)
    train(cfg)
    return cfg.paths.output_dir


def val_rows(run_dir) -> list[dict]:
    with open(f"{run_dir}/predictions/val.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize(
    "overrides, metric",
    [
        (["head=linear"], "accuracy"),
        (["head=linear", "head.pooling=pooler"], "accuracy"),  # the transformers classifier form of model/
        (["head=mlp"], "accuracy"),
        (["data=go_emotions", "head=linear"], "f1_micro"),
        (["data=go_emotions", "head=linear", "head.pooling=pooler"], "f1_micro"),
        (["data=sem_eval_2018", "head=label_prompt", "data.max_length=64"], "f1_micro"),
    ],
    ids=[
        "emotion-linear",
        "emotion-pooler_linear",
        "emotion-mlp",
        "go_emotions-linear",
        "go_emotions-pooler_linear",
        "sem_eval-label_prompt",
    ],
)
def test_export_passes_parity_and_writes_a_self_contained_folder(tiny_cfg, tmp_path, overrides, metric):
    run_dir = tiny_run(tiny_cfg, *overrides)
    report = export_run(run_dir, "onnx")
    out = tmp_path / "onnx"
    assert {"model.onnx", "classifier.json", "parity.json", "tokenizer.json"} <= {p.name for p in out.iterdir()}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".onnx")]  # no partial left
    assert json.loads((out / "parity.json").read_text()) == report
    assert report["passed"] and report["metric"] == metric and report["texts"] == len(val_rows(run_dir))
    (fp32,) = report["backends"]
    assert fp32["backend"] == "onnx" and fp32["max_abs_diff"] <= 1e-4 and fp32["decision_agreement"] == 1.0
    assert fp32["metric_after"] == fp32["metric_before"] and fp32["metric_drop"] == 0.0
    if metric == "accuracy":  # the run's own evaluation counted the same correct texts
        rows = val_rows(run_dir)
        assert fp32["metric_before"] == pytest.approx(sum(r["correct"] == "True" for r in rows) / len(rows))
    assert report["fusions"]["SkipLayerNormalization"] == 4  # tiny bert: 2 layers × 2 LayerNorms after residuals
    (openvino,) = report["openvino"]  # OpenVINO on the same model.onnx, at the machine's precision
    if openvino["backend"] == "openvino-fp32":  # held to the fp32 rule, like model.onnx
        assert openvino["passed"] and openvino["max_abs_diff"] <= 1e-4 and openvino["decision_agreement"] == 1.0
    else:
        assert openvino["backend"] == "openvino-bf16" and 0 < openvino["max_abs_diff"] < 0.1


def test_int8_export_of_a_confident_model_keeps_its_decisions(tiny_cfg, tmp_path, caplog):
    run_dir = tiny_run(tiny_cfg, "trainer.max_epochs=4", "optimizer.lr=3e-3")
    report = export_run(run_dir, "onnx-int8")
    assert (tmp_path / "onnx" / "model.int8.onnx").stat().st_size < (tmp_path / "onnx" / "model.onnx").stat().st_size
    fp32, int8 = report["backends"]
    assert int8["backend"] == "onnx-int8" and int8["file"] == "model.int8.onnx" and int8["passed"]
    # int8 moves a 32-wide random-init model's probabilities by up to ~0.1 (0.097 seen): its decisions must hold
    assert int8["decision_agreement"] >= 0.99 and 0 < int8["max_abs_diff"] < 0.15
    assert int8["metric_before"] == fp32["metric_before"] and int8["metric_drop"] <= 0.005
    assert int8["metric_drop"] == pytest.approx(int8["metric_before"] - int8["metric_after"])
    # a graph OpenVINO cannot compile (int8's QAttention is not one of its operators): a warning, no backend
    other = tmp_path / "int8-as-fp32"
    other.mkdir()
    shutil.copy2(tmp_path / "onnx" / "model.int8.onnx", other / "model.onnx")
    with caplog.at_level(logging.WARNING, logger=onnx_export.__name__):
        assert onnx_export.openvino_backend(other) is None
    assert "OpenVINO cannot compile" in caplog.text and "backend=openvino is not available" in caplog.text


def test_onnx_backend_predicts_torch_probabilities_from_the_onnx_folder_alone(tiny_cfg, tmp_path):
    run_dir = tiny_run(tiny_cfg, "data=go_emotions")
    export_run(run_dir, "onnx")
    network, _, spec = load_model_dir(tmp_path / "model")
    onnx_dir = tmp_path / "onnx"
    tokenizer, onnx_spec = AutoTokenizer.from_pretrained(onnx_dir), read_spec(onnx_dir)
    assert onnx_spec == spec
    texts = ["i feel so lonely", "i am thrilled and happy about today and so loving", "news", "a " * 200]
    args = (texts, spec.max_length, spec.multi_label)
    backend = OnnxBackend(onnx_dir)
    assert backend.name == "onnx" and backend.session.get_session_options().intra_op_num_threads >= 1
    onnx_probs = predict_probabilities(backend, tokenizer, *args, batch_size=3)
    torch_probs = predict_probabilities(TorchBackend(network), tokenizer, *args, batch_size=3)
    assert onnx_probs.dtype == torch.float32 and onnx_probs.shape == (4, 28)
    assert (onnx_probs - torch_probs).abs().max() <= 1e-4
    with pytest.raises(ConfigError, match="model.int8.onnx does not exist: export it with"):
        OnnxBackend(onnx_dir, int8=True)


def test_openvino_backend_predicts_torch_probabilities_alone_and_in_lanes(tiny_cfg, tmp_path):
    run_dir = tiny_run(tiny_cfg, "data=go_emotions")
    export_run(run_dir, "onnx", measure_speed=False)
    network, tokenizer, spec = load_model_dir(tmp_path / "model")
    texts = [f"{text} {'very ' * n}" for n in range(5) for text in ("i feel so lonely", "thrilled", "news", "a " * 200)]
    args = (tokenizer, texts, spec.max_length, spec.multi_label)
    reference = predict_probabilities(TorchBackend(network), *args, batch_size=3)
    backend = OpenVinoBackend(tmp_path / "onnx")
    assert backend.name == "openvino-fp32" and backend.lanes == machine_cores()
    in_lanes = predict_probabilities(backend, *args, batch_size=3)  # 7 batches: the per-core streams
    alone = torch.cat([predict_probabilities(backend, tokenizer, [t], spec.max_length, True) for t in texts])
    assert in_lanes.shape == (20, 28) and (in_lanes - reference).abs().max() <= 1e-4
    assert (alone - reference).abs().max() <= 1e-4  # one batch: the all-cores model; each row its own text's
    bf16 = OpenVinoBackend(tmp_path / "onnx", torch.bfloat16)  # bf16 where this CPU runs it natively, else fp32
    native = native_bf16()
    assert bf16.name == ("openvino-bf16" if native else "openvino-fp32")
    assert (predict_probabilities(bf16, *args, batch_size=3) - reference).abs().max() <= (0.05 if native else 1e-4)
    with pytest.raises(ConfigError, match="model.onnx does not exist: export it with"):
        OpenVinoBackend(tmp_path)


def test_failed_parity_leaves_no_folder(tiny_cfg, tmp_path, monkeypatch):
    run_dir = tiny_run(tiny_cfg)
    monkeypatch.setattr(parity_check, "FP32_MAX_DIFF", -1.0)  # every difference, even none, is above it
    with pytest.raises(ConfigError, match=r"model.onnx.s probabilities differ from PyTorch.s by .* \(allowed -1e"):
        export_run(run_dir, "onnx", optimize=False)
    assert not [p for p in tmp_path.iterdir() if "onnx" in p.name]


def test_refusals_before_any_work(tiny_cfg, tmp_path):
    run_dir = tiny_run(tiny_cfg)
    cases = {
        ("onnx-fp16", 0.005, None): "format=onnx-fp16 is not known: use format=onnx or format=onnx-int8",
        ("onnx", -1, None): "max_int8_drop=-1 must be ≥ 0: e.g. max_int8_drop=0.005",
        ("onnx", 0.005, "i am happy"): "parity_texts='i am happy' is not a list of texts",
    }
    for (fmt, drop, texts), message in cases.items():
        with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
            export_run(run_dir, fmt, max_int8_drop=drop, parity_texts=texts)
    (tmp_path / "predictions" / "val.csv").unlink()
    with pytest.raises(ConfigError, match="val.csv does not exist: give parity_texts="):
        export_run(run_dir)
    (tmp_path / "onnx").mkdir()
    with pytest.raises(ConfigError, match="onnx exists: delete it to export again"):
        export_run(run_dir, parity_texts=["i am happy"])


def test_the_script_prints_one_line_for_a_bad_run_dir(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HYDRA_FULL_ERROR": "0"}
    out = subprocess.run(
        [sys.executable, str(ROOT / "export.py"), f"run_dir={tmp_path}/nowhere"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"error: run_dir={tmp_path}/nowhere does not exist: give a training run dir (outputs/runs/<run>)"
    ]


@pytest.mark.slow  # 45 s on 2 cores: the tiny exports above check parity and int8 refusal by the same code
def test_minilm_export_fuses_attention_and_keeps_fp32_answers(tmp_path):
    """The real MiniLM: the BERT optimizer fuses every layer; fp32 ONNX matches PyTorch on real tweets, and int8
    that changes decisions is refused."""
    from datasets import load_dataset

    from emo_lightning.data.loading import load_tokenizer
    from emo_lightning.models.backbone import load_backbone
    from emo_lightning.models.folder import ClassifierSpec, save_model_dir
    from emo_lightning.models.heads import LinearHead
    from emo_lightning.models.network import EmotionNetwork

    data, models = require_shared("data"), require_shared("models")
    name = "sentence-transformers/all-MiniLM-L6-v2"
    texts = load_dataset(str(data / "dair-ai/emotion"), "split", split="validation")["text"][:64]
    torch.manual_seed(0)
    network = EmotionNetwork(load_backbone(name, model_dir=str(models)), LinearHead(384, 6))
    torch.nn.init.normal_(network.head.classifier.weight, std=0.5)  # confident logits, so disagreements would show
    head = {"type": "linear", "hidden_size": 384, "num_labels": 6}
    spec = ClassifierSpec([f"l{i}" for i in range(6)], multi_label=False, threshold=0.5, max_length=96, head=head)
    save_model_dir(tmp_path / "model", network, load_tokenizer(name, str(models)), spec)
    with pytest.raises(ConfigError, match=r"model.int8.onnx agrees with PyTorch fp32's decisions on only .*% of texts"):
        export_run(tmp_path, "onnx-int8", parity_texts=texts)  # a random head: int8 flips close calls
    assert not (tmp_path / "onnx").exists()
    report = export_run(tmp_path, "onnx", parity_texts=texts)
    assert report["fusions"]["Attention"] == 6 and report["fusions"]["EmbedLayerNormalization"] == 1
    assert report["fusions"]["SkipLayerNormalization"] == 12 and report["fusions"]["BiasGelu"] == 6
    (fp32,) = report["backends"]
    assert fp32["max_abs_diff"] <= 1e-4 and fp32["decision_agreement"] == 1.0 and fp32["metric_after"] is None
    assert report["source"] == "parity_texts" and report["texts"] == 64


def test_openvino_leaves_other_streams_open_when_logging_is_reconfigured(monkeypatch):
    """absl.logging (imported by openvino) closed the stream it was made with at the next logging setup
    (Hydra's): here pytest's captured stderr, in a notebook the notebook's."""
    import io
    import logging.config

    import emo_lightning.inference.openvino_backend  # noqa: F401 (imports openvino)

    before = sys.stderr
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a test's or a notebook's stream of the moment
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})  # closes every handler
    assert not before.closed


# What ONNX Runtime's BERT optimizer logs and prints on its own (INFO, on loggers named after its modules).
OPTIMIZER_NOISE = (
    r"Fused |Removed \d+ nodes|Remove reshape node|opset version|Optimized operators|Sort graphs|Model saved"
)
STEP_LINES = [  # export.py's console, in order: one line a step
    r"exported model\.onnx \(\d+\.\d MB\) in \d+\.\d s",
    r"optimized: 9 operators fused \(EmbedLayerNormalization ×1, Attention ×2, BiasGelu ×2, "
    r"SkipLayerNormalization ×4\)",
    r"quantized model\.int8\.onnx \(\d+\.\d MB\) in \d+\.\d s",
    r"parity: torch-fp32 on 24 texts \(predictions/val\.csv\) in \d+\.\d s",
    r"parity: onnx +max \|Δprob\| \S+, decisions agree 100\.00%, accuracy \S+ → \S+ in \d+\.\d s",
    r"parity: onnx-int8 +max \|Δprob\| \S+, decisions agree \S+, accuracy \S+ → \S+ in \d+\.\d s",
    r"parity: openvino-(fp32|bf16) +max \|Δprob\| \S+, decisions agree \S+, accuracy \S+ → \S+ in \d+\.\d s",
    r"speed at batch 1: torch-fp32 \d+/s, .* → backend=auto runs \S+",
    r"speed at batch 64: torch-fp32 \d+/s, .* → backend=auto runs \S+",
    r"wrote {run}/onnx \(onnx-int8\)",
]
TORCH_BF16 = r"parity: torch-bf16 +max \|Δprob\| \S+, decisions agree \S+, accuracy \S+ → \S+ in \d+\.\d s"


def test_the_script_prints_one_line_a_step_and_no_library_noise(tiny_cfg, tmp_path):
    run_dir = tiny_run(tiny_cfg, "trainer.max_epochs=4", "optimizer.lr=3e-3")  # confident: int8 keeps decisions
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HYDRA_FULL_ERROR": "0"}
    out = subprocess.run(
        [sys.executable, str(ROOT / "export.py"), f"run_dir={run_dir}", "format=onnx-int8"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stderr == ""  # no bars, no warnings: each step's line is on stdout
    assert not [line for line in out.stdout.splitlines() if re.match(OPTIMIZER_NOISE, line)], out.stdout
    # PyTorch's bf16 is checked too where this machine runs it natively (AMX): a line of its own, or none
    lines = [line for line in out.stdout.splitlines() if not re.fullmatch(TORCH_BF16, line)]
    patterns = [pattern.format(run=re.escape(str(run_dir))) for pattern in STEP_LINES]
    assert len(lines) == len(patterns), out.stdout
    assert all(re.fullmatch(pattern, line) for pattern, line in zip(patterns, lines)), out.stdout
