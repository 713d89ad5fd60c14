"""The training step's levers change how much work a step does, never what it computes: clipping folded into fused
AdamW updates the weights as clipping first does, and frozen word embeddings stay as pretrained while the rest
trains."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from emo_lightning.models.clipping import clip_grad_norm, foldable
from tests.runs import classifier_and_data, quiet_trainer


def network() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Embedding(50, 16), nn.Linear(16, 16), nn.GELU(), nn.Linear(16, 3))


def train_steps(clip, fused: bool, grad_size: float, steps: int = 4) -> list[torch.Tensor]:
    """`steps` AdamW updates of a small network whose gradients have norm ~`grad_size`, clipped by `clip`."""
    net = network()
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-2, weight_decay=0.01, fused=fused)
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        ids = torch.randint(0, 50, (8, 5), generator=generator)
        loss = net(ids).mean(dim=1).pow(2).sum() * grad_size
        loss.backward()
        clip(optimizer, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return [p.detach().clone() for p in net.parameters()]


def torch_clip(optimizer, max_norm):
    params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    torch.nn.utils.clip_grad_norm_(params, max_norm)


@pytest.mark.parametrize("grad_size", [1e3, 1e-3], ids=["clipped", "not-clipped"])
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "foreach"])
def test_clip_grad_norm_updates_as_clipping_first(fused, grad_size):
    ours, reference = train_steps(clip_grad_norm, fused, grad_size), train_steps(torch_clip, fused, grad_size)
    moved = train_steps(lambda *_: None, fused, grad_size)  # unclipped: the clipped case must differ from it
    for a, b in zip(ours, reference):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert any(not torch.allclose(a, m, atol=1e-4) for a, m in zip(ours, moved)) == (grad_size > 1)


def test_only_the_fused_adam_family_takes_the_factor_in_its_step():
    params = [nn.Parameter(torch.ones(3))]
    assert foldable(torch.optim.AdamW(params, fused=True)) and foldable(torch.optim.Adam(params, fused=True))
    assert not foldable(torch.optim.AdamW(params)) and not foldable(torch.optim.SGD(params, lr=0.1))
    optimizer = torch.optim.SGD(params, lr=0.1)
    params[0].grad = torch.full((3,), 4.0)
    norm = clip_grad_norm(optimizer, 1.0)  # not fused: scaled in place, as clip_grad_norm_ does
    assert float(norm) == pytest.approx(48**0.5) and float(params[0].grad.norm()) == pytest.approx(1.0, rel=1e-5)
    assert not hasattr(optimizer, "grad_scale")


def test_frozen_word_embeddings_stay_pretrained_and_the_rest_trains(tiny_cfg):
    cfg = tiny_cfg("model.freeze_word_embeddings=true", "logger=none", "callbacks=none", "trainer.max_steps=3")
    module, datamodule = classifier_and_data(cfg)
    table = module.network.backbone.get_input_embeddings().weight
    before = {name: p.detach().clone() for name, p in module.named_parameters()}
    trainer = quiet_trainer(cfg)
    trainer.fit(module, datamodule=datamodule)
    assert not table.requires_grad and table.grad is None
    optimized = {id(p) for group in trainer.optimizers[0].param_groups for p in group["params"]}
    assert id(table) not in optimized
    for name, p in module.named_parameters():
        changed = not torch.equal(before[name], p.detach())
        assert changed == p.requires_grad, name  # the table and the unused pooler stay; every trained one moved


@pytest.mark.parametrize("p", [0.1, 0.25, 0.5])
def test_fast_dropout_has_nn_dropouts_distribution(p):
    """Drop rate p (to 1/65,536), independent elements, every output's mean its input's, the same gradient mask,
    identity in eval mode; reproducible from torch's seed."""
    from emo_lightning.models.dropout import FastDropout, keep_mask

    n = 4_000_000
    torch.manual_seed(0)
    mask, scale = keep_mask(torch.Size([n]), p, torch.device("cpu"))
    kept = mask.float()
    sigma = (p * (1 - p) / n) ** 0.5
    assert abs(1 - float(kept.mean()) - p) < 4 * sigma + 1 / 65536
    assert scale == pytest.approx(1 / (1 - p), rel=1e-4)
    pairs = kept.view(-1, 2)  # the two halves of one 32-bit draw, and neighbouring draws: uncorrelated
    for a, b in ((pairs[:, 0], pairs[:, 1]), (kept[:-1], kept[1:])):
        assert abs(float(torch.corrcoef(torch.stack([a, b]))[0, 1])) < 5 / n**0.5

    drop = FastDropout(p)
    x = torch.full((n,), 2.0, requires_grad=True)
    torch.manual_seed(1)
    y = drop(x)
    assert float(y.mean()) == pytest.approx(2.0, abs=8 * 2 * sigma / (1 - p))  # unbiased: E[y] = x
    zero, kept_value = torch.unique(y).tolist()
    assert zero == 0.0 and kept_value == pytest.approx(2.0 * scale)
    y.sum().backward()
    assert torch.equal(x.grad != 0, y != 0)  # the gradient flows exactly where the value was kept
    torch.manual_seed(1)
    assert torch.equal(drop(x), y)
    assert torch.equal(drop.eval()(x), x)


def test_encoders_get_fast_dropout_unless_switched_off(tiny_cfg):
    from emo_lightning.models.dropout import FastDropout

    for fast in (True, False):
        cfg = tiny_cfg(f"model.fast_dropout={str(fast).lower()}")
        module, _ = classifier_and_data(cfg)
        kinds = {type(m) for m in module.network.backbone.modules() if isinstance(m, nn.Dropout)}
        assert kinds == ({FastDropout} if fast else {nn.Dropout})
