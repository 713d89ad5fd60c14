"""Precision and kernel choices as functions of the machine: every kind of machine, and bf16 training on CPU."""

from __future__ import annotations

import logging

import pytest
import torch
from safetensors.torch import load_file

from emo_lightning.train import train
from emo_lightning.utils.errors import ConfigError
from emo_lightning.utils.hardware import (
    HARDWARE_ENV,
    Hardware,
    choose_precision,
    inference_dtype,
    resolve_precision,
)
from tests.runs import classifier_and_data, quiet_trainer

AMD_AVX2 = Hardware(cpu_isa="AVX2")
ZEN4_AVX512_BF16 = Hardware(cpu_isa="AVX512", avx512_bf16=True)
XEON_AMX = Hardware(cpu_isa="AVX512", avx512_bf16=True, amx=True)
A100 = Hardware(cuda=True, cuda_bf16=True, cpu_isa="AVX2")
V100 = Hardware(cuda=True, cuda_bf16=False, cpu_isa="AVX512", avx512_bf16=True, amx=True)

CPU, GPU = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize(
    ("hw", "on_gpu", "expected"),
    [
        (AMD_AVX2, False, "32-true"),
        (ZEN4_AVX512_BF16, False, "bf16-mixed"),
        (XEON_AMX, False, "bf16-mixed"),
        (A100, True, "bf16-mixed"),
        (V100, True, "16-mixed"),
        (A100, False, "32-true"),  # trainer.accelerator=cpu on a GPU machine: the CPU decides
        (V100, False, "bf16-mixed"),  # ... and this one's CPU has AMX
    ],
    ids=["amd-avx2", "avx512-bf16-no-amx", "xeon-amx", "gpu-bf16", "gpu-fp16-only", "gpu-box-on-cpu", "amx-box-on-cpu"],
)
def test_auto_precision_per_machine(hw, on_gpu, expected, caplog):
    precision, reason = choose_precision(hw, on_gpu)
    assert precision == expected and reason
    with caplog.at_level(logging.INFO, logger="emo_lightning.utils.hardware"):
        assert resolve_precision("auto", hw, on_gpu) == expected
    assert f"precision auto → {expected}: {reason}" in caplog.text


def test_explicit_precision_wins_and_emulated_bf16_is_warned(caplog):
    with caplog.at_level(logging.WARNING, logger="emo_lightning.utils.hardware"):
        assert resolve_precision("32-true", XEON_AMX, False) == "32-true"
        assert resolve_precision("bf16-mixed", XEON_AMX, False) == "bf16-mixed"
        assert not caplog.records
        assert resolve_precision("bf16-mixed", AMD_AVX2, False) == "bf16-mixed"
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "emulated" in message and "trainer.precision=auto" in message


@pytest.mark.parametrize(
    ("precision", "hw", "device", "expected"),
    [
        ("auto", AMD_AVX2, CPU, torch.float32),
        ("auto", ZEN4_AVX512_BF16, CPU, torch.float32),
        ("auto", XEON_AMX, CPU, torch.bfloat16),
        ("auto", A100, GPU, torch.bfloat16),
        ("auto", V100, GPU, torch.float16),
        ("fp32", XEON_AMX, CPU, torch.float32),
        ("bf16", AMD_AVX2, CPU, torch.bfloat16),
    ],
)
def test_inference_dtype_per_machine(precision, hw, device, expected):
    assert inference_dtype(precision, hw, device) == expected


def test_unknown_inference_precision_is_a_config_error():
    with pytest.raises(ConfigError, match="precision=half is not one of auto"):
        inference_dtype("half", AMD_AVX2, CPU)


def test_detected_hardware_matches_torch(monkeypatch):
    monkeypatch.delenv(HARDWARE_ENV, raising=False)
    hw = Hardware.detect()
    assert hw.amx == torch.cpu._is_amx_tile_supported() and hw.cuda == torch.cuda.is_available()
    assert hw.cpu_isa in hw.summary()


@pytest.mark.parametrize(
    ("kind", "training", "inference"), [("amx", "bf16-mixed", torch.bfloat16), ("avx2", "32-true", torch.float32)]
)
def test_hardware_switch_reports_the_other_machine_kind(kind, training, inference, monkeypatch):
    """EMO_HARDWARE=amx makes any machine take the AMX paths (bf16), =avx2 the AVX2 ones (fp32)."""
    monkeypatch.setenv(HARDWARE_ENV, kind)
    hw = Hardware.detect()
    assert choose_precision(hw, on_gpu=False)[0] == training
    assert inference_dtype("auto", hw, CPU) == inference
    assert f"{HARDWARE_ENV}={kind}" in hw.summary()
    monkeypatch.setenv(HARDWARE_ENV, "sapphire")
    with pytest.raises(ConfigError, match="EMO_HARDWARE=sapphire is not one of auto, amx, avx2: unset it or pick one"):
        Hardware.detect()


def test_bf16_mixed_training_on_cpu_learns_and_keeps_fp32(tiny_cfg, tmp_path):
    """Any CPU can run bf16 autocast (emulated where slow); the loss must fall and everything kept is fp32."""
    cfg = tiny_cfg(
        "trainer.precision=bf16-mixed",
        "debug=overfit",
        "logger=none",
        "trainer.overfit_batches=1",
        "trainer.max_epochs=40",
        "optimizer.lr=3e-3",
    )
    torch.manual_seed(0)  # the head's initialization: the same whatever ran before in this process
    module, datamodule = classifier_and_data(cfg)
    batch = next(iter(datamodule.train_dataloader()))
    before = module.model_step(batch)[0].item()
    trainer = quiet_trainer(cfg)
    assert trainer.precision == "bf16-mixed"
    trainer.fit(module, datamodule=datamodule)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        module.eval()
        loss, logits = module.model_step(batch)
        probs = module.probabilities(logits)
    assert logits.dtype == torch.bfloat16  # autocast really ran the network in bf16 ...
    assert loss.dtype == torch.float32 and probs.dtype == torch.float32  # ... but loss and probabilities are fp32
    assert loss.item() < 0.2 * before
    assert all(p.dtype == torch.float32 for p in module.parameters())


def test_bf16_run_saves_fp32_checkpoint_metrics_and_model(tiny_cfg, tmp_path):
    cfg = tiny_cfg("data=go_emotions", "trainer.precision=bf16-mixed", "logger=none")
    metrics = train(cfg)
    assert all(isinstance(v, float) for v in metrics.values())
    checkpoint = torch.load(next(tmp_path.rglob("*.ckpt")), weights_only=True)
    assert all(t.dtype == torch.float32 for t in checkpoint["state_dict"].values() if t.is_floating_point())
    model_dir = tmp_path / "model"
    weights = [load_file(f) for f in model_dir.rglob("*.safetensors")]
    assert weights and all(t.dtype == torch.float32 for w in weights for t in w.values())


FP16_NEEDS_CUDA = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="fp16 loss scaling needs CUDA (Lightning turns CPU 16-mixed into bf16-mixed)"
)


@pytest.mark.parametrize(
    ("precision", "accelerator"),
    [("bf16-mixed", "cpu"), pytest.param("16-mixed", "gpu", marks=[pytest.mark.gpu, FP16_NEEDS_CUDA])],
)
def test_fused_adamw_with_clipping_under_mixed_precision(precision, accelerator, tiny_cfg):
    """Lightning refuses gradient clipping with fused optimizers under AMP; ours clips the unscaled gradients."""
    cfg = tiny_cfg(
        f"trainer.precision={precision}",
        f"trainer.accelerator={accelerator}",
        "logger=none",
        "callbacks=none",
        "trainer.max_steps=3",
    )
    assert cfg.optimizer.fused and cfg.trainer.gradient_clip_val == 1.0
    module, datamodule = classifier_and_data(cfg)
    trainer = quiet_trainer(cfg)
    trainer.fit(module, datamodule=datamodule)
    assert trainer.global_step == 3
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    assert grads and torch.nn.utils.get_total_norm(grads) <= 1.0 + 1e-4  # the last step's gradients, clipped


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "unfused"])
def test_fp16_loss_scaling_with_clipping_fused_or_not(fused, tiny_cfg):
    """16-mixed (auto's choice on pre-Ampere GPUs) with a GradScaler, on CPU: Lightning unscales an unfused optimizer
    itself before clipping and refuses to clip a fused one; ours clips the true gradients of both, unscaled once."""
    from hydra.utils import instantiate
    from lightning.pytorch.plugins.precision import MixedPrecision

    cfg = tiny_cfg("logger=none", "callbacks=none", "trainer.max_steps=3", f"optimizer.fused={str(fused).lower()}")
    assert cfg.trainer.gradient_clip_val == 1.0
    torch.manual_seed(cfg.seed)  # the head's init: not whatever the tests before left in the global generator
    module, datamodule = classifier_and_data(cfg)
    # Lightning turns CPU 16-mixed into bf16-mixed: give it the plugin itself; a scale of 2^10 leaves fp16 room for
    # the tiny model's first gradients (2^16 overflowed on some inits, skipping a step)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    trainer = instantiate(
        cfg.trainer,
        precision=None,
        plugins=[MixedPrecision("16-mixed", "cpu", scaler=scaler)],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
    )
    trainer.fit(module, datamodule=datamodule)
    assert trainer.global_step == 3 and trainer.precision == "16-mixed"
    assert scaler.get_scale() == 2.0**10  # no step was skipped for an overflow: all three were real steps
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    norm = float(torch.nn.utils.get_total_norm(grads))
    assert 0.99 <= norm <= 1.0 + 1e-4, norm  # the last step's true (unscaled) gradients, clipped to norm 1


def test_bf16_prediction_agrees_with_fp32_on_real_texts(tmp_path):
    """The real MiniLM, real tweets: bf16 weights (auto's choice for batches on AMX CPUs) gives fp32's answers."""
    from datasets import load_dataset

    from emo_lightning.data.loading import load_tokenizer
    from emo_lightning.inference.predictor import EmotionPredictor
    from emo_lightning.models.backbone import load_backbone
    from emo_lightning.models.folder import ClassifierSpec, save_model_dir
    from emo_lightning.models.heads import LinearHead
    from emo_lightning.models.network import EmotionNetwork
    from tests.conftest import require_shared

    data, models = require_shared("data"), require_shared("models")
    name = "sentence-transformers/all-MiniLM-L6-v2"
    texts = load_dataset(str(data / "dair-ai/emotion"), "split", split="test")["text"][:8]
    torch.manual_seed(0)
    head = {"_target_": "emo_lightning.models.heads.LinearHead", "hidden_size": 384, "num_labels": 6}
    network = EmotionNetwork(load_backbone(name, model_dir=str(models)), LinearHead(384, 6))
    torch.nn.init.normal_(network.head.classifier.weight, std=0.5)  # confident logits, so disagreements would show
    spec = ClassifierSpec([f"l{i}" for i in range(6)], multi_label=False, threshold=0.5, max_length=96, head=head)
    save_model_dir(tmp_path / "model", network, load_tokenizer(name, str(models)), spec)
    fp32 = EmotionPredictor(tmp_path / "model", precision="fp32").predict_proba(texts)
    bf16 = EmotionPredictor(tmp_path / "model", precision="bf16").predict_proba(texts)
    assert bf16.dtype == torch.float32
    assert (fp32.argmax(1) == bf16.argmax(1)).all()
    assert (fp32 - bf16).abs().max() < 0.05
