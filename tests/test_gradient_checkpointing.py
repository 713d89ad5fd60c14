"""model.gradient_checkpointing changes how much a step keeps in memory, never what it computes: the same losses and
weights as without it, on real Lightning runs of the tiny random-init models; a backbone that cannot do it is
refused before training."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from tests.runs import classifier_and_data, quiet_trainer, refusal

FAST = ("logger=none", "callbacks=none", "trainer.limit_val_batches=0", "trainer.log_every_n_steps=1")


class StepLosses(L.Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))


def fit(tiny_cfg, checkpointing: bool, steps: int = 3):
    """`steps` training steps from the same seed: the weights before, the module after, each step's loss."""
    cfg = tiny_cfg(*FAST, f"trainer.max_steps={steps}", f"model.gradient_checkpointing={str(checkpointing).lower()}")
    L.seed_everything(cfg.seed)  # the head's initial weights, then the dropout masks
    module, datamodule = classifier_and_data(cfg)
    assert module.network.backbone.is_activation_checkpointing == checkpointing
    before = [p.detach().clone() for p in module.parameters()]
    losses = StepLosses()
    trainer = quiet_trainer(cfg)
    trainer.callbacks.append(losses)
    trainer.fit(module, datamodule=datamodule)
    assert trainer.global_step == steps
    return before, module, losses.losses


def test_checkpointed_training_learns_the_same_weights(tiny_cfg):
    """Dropout on (hidden and attention): non-reentrant checkpointing replays the RNG, so the recomputed layers draw
    the masks of the forward pass and every step matches to fp32 rounding."""
    before, plain, plain_losses = fit(tiny_cfg, checkpointing=False)
    _, checkpointed, checkpointed_losses = fit(tiny_cfg, checkpointing=True)
    assert len(plain_losses) == 3
    assert checkpointed_losses == pytest.approx(plain_losses, rel=1e-5, abs=1e-6)
    for (name, a), b in zip(plain.named_parameters(), checkpointed.parameters()):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=name)
    assert any(not torch.equal(a, start) for a, start in zip(plain.parameters(), before))  # they trained


@pytest.mark.parametrize("family", ["bert", "distilbert", "roberta"])
def test_the_option_reaches_the_backbone_and_recomputes_its_layers(tiny_cfg, family):
    """Each encoder layer runs twice a training step with it (forward, then again in backward), once without."""
    for checkpointing, runs in ((False, 1), (True, 2)):
        cfg = tiny_cfg(f"model.gradient_checkpointing={str(checkpointing).lower()}", family=family)
        module, datamodule = classifier_and_data(cfg)
        assert module.network.backbone.is_activation_checkpointing == checkpointing
        assert layer_runs(module, next(iter(datamodule.train_dataloader()))) == runs, (family, checkpointing)


def layer_runs(module, batch: dict) -> int:
    """How often the first encoder layer runs in one training step (transformers checkpoints a layer's forward,
    its own hooks outside: its first sublayer is counted)."""
    backbone = module.network.backbone
    layer = next(m for m in backbone.modules() if type(m).__name__.endswith(("Layer", "TransformerBlock")))
    calls = []
    next(layer.children()).register_forward_pre_hook(lambda *_: calls.append(1))
    module.train()
    loss, _ = module.model_step(batch)
    loss.backward()
    return len(calls)


def test_a_backbone_without_checkpointing_is_refused_before_training(tiny_cfg, tmp_path):
    cfg = tiny_cfg("model.gradient_checkpointing=true", family="squeezebert")
    error = refusal(cfg, tmp_path)
    assert error.startswith("model.gradient_checkpointing=true, but SqueezeBertModel (")
    assert error.endswith(
        "does not support gradient checkpointing: set model.gradient_checkpointing=false, or use a backbone that "
        "does (e.g. model=bert_base)"
    )
