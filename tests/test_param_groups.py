"""Optimizer parameter groups: weight-decay split and layer-wise learning-rate decay, on real tiny backbones."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoModel

from emo_lightning.models.backbone import load_backbone
from emo_lightning.models.heads import LinearHead
from emo_lightning.models.network import EmotionNetwork
from emo_lightning.models.param_groups import ParameterGroups
from emo_lightning.utils.errors import ConfigError
from tests.runs import classifier_and_data, quiet_trainer, refusal

# Where each family keeps its encoder layers and whether it has a pooler (which sits at the top, with the head).
LAYER_PREFIX = {
    "bert": "backbone.encoder.layer.",
    "roberta": "backbone.encoder.layer.",
    "distilbert": "backbone.transformer.layer.",
    "squeezebert": "backbone.encoder.layers.",
}


def tiny_network(path) -> EmotionNetwork:
    backbone = load_backbone(str(path))
    return EmotionNetwork(backbone, LinearHead(hidden_size=backbone.config.hidden_size, num_labels=6))


@pytest.mark.parametrize("family", sorted(LAYER_PREFIX))
def test_depth_counts_from_embeddings_through_each_layer_to_the_head(family, tiny_models):
    network = tiny_network(tiny_models[family])
    depths = ParameterGroups(0.5).depths(network)
    for name, depth in depths.items():
        if name.startswith("backbone.embeddings."):
            assert depth == 0, name
        elif name.startswith(LAYER_PREFIX[family]):
            assert depth == int(name[len(LAYER_PREFIX[family])].split(".")[0]) + 1, name
        else:  # the head (the pooler is frozen): the top, one above the last of the 2 layers
            assert depth == 3 and not name.startswith("backbone.encoder."), name
    assert {depths[n] for n in depths if n.startswith("head.")} == {3}
    assert sorted(set(depths.values())) == [0, 1, 2, 3]


def test_groups_scale_rates_per_layer_and_exempt_1d_parameters(tiny_models):
    network = tiny_network(tiny_models["bert"])
    groups = ParameterGroups(0.5)(network)
    assert sorted({g["lr_scale"] for g in groups}) == [0.125, 0.25, 0.5, 1.0]
    scale_of = {id(p): g["lr_scale"] for g in groups for p in g["params"]}
    named = dict(network.named_parameters())
    assert scale_of[id(named["backbone.embeddings.word_embeddings.weight"])] == 0.125
    assert scale_of[id(named["backbone.encoder.layer.0.attention.self.query.weight"])] == 0.25
    assert scale_of[id(named["backbone.encoder.layer.1.output.dense.weight"])] == 0.5
    assert scale_of[id(named["head.classifier.weight"])] == 1.0
    for group in groups:
        assert all(p.ndim < 2 for p in group["params"]) == (group.get("weight_decay") == 0.0)
    trainable = [p for p in named.values() if p.requires_grad]  # all but the frozen, unused pooler
    assert sum(len(g["params"]) for g in groups) == len(trainable) < len(named)


def test_default_is_one_rate_with_the_weight_decay_split(tiny_models):
    network = tiny_network(tiny_models["distilbert"])
    groups = ParameterGroups()(network)
    assert len(groups) == 2 and {g["lr_scale"] for g in groups} == {1.0}
    no_decay = next(g for g in groups if "weight_decay" in g)
    assert no_decay["weight_decay"] == 0.0 and all(p.ndim == 1 for p in no_decay["params"])


def test_trainer_run_applies_the_layer_rates(tiny_cfg):
    cfg = tiny_cfg(
        "param_groups=layer_decay",
        "param_groups.layer_decay=0.5",
        "optimizer.lr=1e-3",
        "logger=none",
        "callbacks=none",
        "trainer.max_steps=2",
    )
    module, datamodule = classifier_and_data(cfg)
    embeddings = module.network.backbone.embeddings.word_embeddings.weight
    before = embeddings.detach().clone()
    trainer = quiet_trainer(cfg)
    trainer.fit(module, datamodule=datamodule)
    groups = trainer.optimizers[0].param_groups
    assert sorted({g["initial_lr"] for g in groups}) == pytest.approx([1.25e-4, 2.5e-4, 5e-4, 1e-3])
    for group in groups:  # the schedule moves every group by the same factor
        assert group["lr"] / group["initial_lr"] == pytest.approx(groups[0]["lr"] / groups[0]["initial_lr"])
    assert not torch.equal(before, embeddings.detach())  # the lowest group still learns


def test_layer_decay_outside_its_range_is_refused_before_training(tiny_cfg, tmp_path):
    cfg = tiny_cfg("param_groups=layer_decay", "param_groups.layer_decay=1.5")
    error = refusal(cfg, tmp_path)
    assert "layer_decay=1.5" in error and "0.9" in error


def test_layer_decay_needs_numbered_layers():
    # ALBERT shares one layer group across depth: no `layer.N.` names, so there is nothing to decay per layer.
    config = AutoConfig.for_model(
        "albert", hidden_size=32, embedding_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    network = EmotionNetwork(AutoModel.from_config(config), LinearHead(hidden_size=32, num_labels=3))
    with pytest.raises(ConfigError, match="set layer_decay=1.0"):
        ParameterGroups(0.9)(network)
    assert {g["lr_scale"] for g in ParameterGroups(1.0)(network)} == {1.0}
