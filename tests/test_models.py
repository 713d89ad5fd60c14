"""Heads, losses and metrics against references and hand-computed values."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from emo_lightning.models.heads import LinearHead, MLPHead, Pooler
from emo_lightning.models.loop_metrics import SampleJaccard, build_metrics
from emo_lightning.models.losses import AsymmetricLoss, BCELoss, CrossEntropyLoss, FocalLoss, default_loss
from emo_lightning.utils.errors import ConfigError

COUNTS = torch.tensor([30.0, 10.0, 5.0])
N = 40


@pytest.mark.parametrize("head_cls", [LinearHead, MLPHead])
@pytest.mark.parametrize("pooling", ["cls", "mean", "max"])
def test_head_shapes(head_cls, pooling):
    head = head_cls(hidden_size=16, num_labels=5, pooling=pooling)
    hidden, mask = torch.randn(3, 7, 16), torch.ones(3, 7, dtype=torch.long)
    assert head(hidden, mask).shape == (3, 5)


def test_mean_pooling_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert torch.allclose(Pooler("mean")(hidden, mask), torch.tensor([[2.0, 3.0]]))
    assert torch.allclose(Pooler("max")(hidden, mask), torch.tensor([[3.0, 4.0]]))
    assert torch.allclose(Pooler("cls")(hidden, mask), torch.tensor([[1.0, 2.0]]))


def test_unknown_pooling_is_refused():
    with pytest.raises(ConfigError, match="head.pooling=avg"):
        Pooler("avg")


def test_bce_matches_torch_and_weights_positives():
    logits, targets = torch.randn(8, 3), torch.randint(0, 2, (8, 3)).float()
    assert torch.allclose(
        BCELoss(True, COUNTS, N)(logits, targets), F.binary_cross_entropy_with_logits(logits, targets)
    )
    weighted = BCELoss(True, COUNTS, N, class_weighting=True)
    assert torch.allclose(weighted.pos_weight, torch.tensor([1.0, 3.0, 7.0]))  # max(1, neg/pos)
    expected = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=torch.tensor([1.0, 3.0, 7.0]))
    assert torch.allclose(weighted(logits, targets), expected)


def test_ce_matches_torch_and_refuses_multi_label():
    logits, targets = torch.randn(8, 3), torch.randint(0, 3, (8,))
    assert torch.allclose(CrossEntropyLoss(False, COUNTS, N)(logits, targets), F.cross_entropy(logits, targets))
    balanced = CrossEntropyLoss(False, COUNTS, N, class_weighting=True)
    assert torch.allclose(balanced.weight, N / (3 * COUNTS))
    with pytest.raises(ConfigError, match="loss=ce needs single-label data.*use loss=bce or loss=focal"):
        CrossEntropyLoss(True, COUNTS, N)


@pytest.mark.parametrize("class_weighting", [False, True])
def test_focal_with_gamma_zero_equals_bce_and_ce(class_weighting):
    logits = torch.randn(16, 3)
    multi = torch.randint(0, 2, (16, 3)).float()
    single = torch.randint(0, 3, (16,))
    focal_multi = FocalLoss(True, COUNTS, N, gamma=0.0, class_weighting=class_weighting)
    bce = BCELoss(True, COUNTS, N, class_weighting=class_weighting)
    assert torch.allclose(focal_multi(logits, multi), bce(logits, multi), atol=1e-6)
    focal_single = FocalLoss(False, COUNTS, N, gamma=0.0, class_weighting=class_weighting)
    ce = CrossEntropyLoss(False, COUNTS, N, class_weighting=class_weighting)
    assert torch.allclose(focal_single(logits, single), ce(logits, single), atol=1e-6)


def test_focal_down_weights_easy_examples():
    easy = torch.tensor([[6.0, -6.0]])
    target = torch.tensor([[1.0, 0.0]])
    focal = FocalLoss(True, COUNTS[:2], N, gamma=2.0)(easy, target)
    assert focal < 1e-3 * F.binary_cross_entropy_with_logits(easy, target)


def test_asymmetric_loss_without_asymmetry_is_bce():
    logits, targets = torch.randn(16, 3), torch.randint(0, 2, (16, 3)).float()
    asl = AsymmetricLoss(True, COUNTS, N, gamma_neg=0.0, gamma_pos=0.0, clip=0.0)
    assert torch.allclose(asl(logits, targets), BCELoss(True, COUNTS, N)(logits, targets), atol=1e-6)


def test_asymmetric_loss_ignores_easy_negatives_but_not_positives():
    asl = AsymmetricLoss(True, COUNTS[:1], N, gamma_neg=4.0, gamma_pos=0.0, clip=0.05)
    easy_negative = torch.tensor([[-3.5]])  # p ≈ 0.03 < clip: costs nothing
    assert asl(easy_negative, torch.zeros(1, 1)) == 0.0
    hard_positive = torch.tensor([[-2.0]])  # a missed positive keeps its full BCE
    bce = F.binary_cross_entropy_with_logits(hard_positive, torch.ones(1, 1))
    assert torch.allclose(asl(hard_positive, torch.ones(1, 1)), bce)
    with pytest.raises(ConfigError, match="loss=asl needs 0 ≤ clip < 1"):
        AsymmetricLoss(True, COUNTS, N, clip=1.5)


def test_default_loss_follows_the_task():
    assert isinstance(default_loss(True, COUNTS, N), BCELoss)
    assert isinstance(default_loss(False, COUNTS, N), CrossEntropyLoss)


def test_single_label_metrics_hand_computed():
    # gold 0,0,1,2 ; predicted 0,1,1,2 → accuracy 3/4; F1 per class: 0: 2/3, 1: 2/3, 2: 1
    probs = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
    target = torch.tensor([0, 0, 1, 2])
    metrics = build_metrics(3, multi_label=False)
    metrics.update(probs[:2], target[:2])  # two batches: computed over the whole split
    metrics.update(probs[2:], target[2:])
    out = metrics.compute()
    assert out["accuracy"] == pytest.approx(0.75)
    assert out["f1_macro"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert out["f1_weighted"] == pytest.approx((2 * 2 / 3 + 2 / 3 + 1) / 4)


def test_multi_label_metrics_hand_computed():
    probs = torch.tensor([[0.9, 0.6, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.3]])
    target = torch.tensor([[1, 0, 0], [0, 1, 1], [0, 0, 0]])
    out = build_metrics(3, multi_label=True).forward(probs, target)
    # predictions at 0.5: {0,1}, {1}, {} ; gold {0}, {1,2}, {}
    # jaccard: 1/2, 1/2, 1 (empty vs empty) → 2/3 ; exact match: 1/3
    assert out["jaccard"] == pytest.approx(2 / 3)
    assert out["exact_match"] == pytest.approx(1 / 3)
    # micro: tp=2, fp=1, fn=1 → F1 = 2/3 ; macro: label0 1, label1 2/3, label2 0 → 5/9
    assert out["f1_micro"] == pytest.approx(2 / 3)
    assert out["f1_macro"] == pytest.approx(5 / 9)


def test_sample_jaccard_threshold():
    metric = SampleJaccard(threshold=0.25)
    metric.update(torch.tensor([[0.3, 0.2]]), torch.tensor([[1, 1]]))
    assert metric.compute() == pytest.approx(0.5)


def test_label_prompt_marks_each_labels_first_token(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    from emo_lightning.models.heads import label_prompt

    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    prompt = label_prompt(tokenizer, ["happy", "sad", "news_label"])
    ids, positions = prompt["prompt_ids"], prompt["label_positions"]
    assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id and prompt["drop_first"]
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert [tokens[p] for p in positions] == ["happy", "sad", "news"]  # news_label: "news" "label"
    assert positions == sorted(positions) and len(ids) == 6


def test_label_prompt_goes_before_the_text_and_padding_changes_nothing(tiny_tokenizer_dir, tiny_models):
    from transformers import AutoModel, AutoTokenizer

    from emo_lightning.models.heads import LabelPromptHead, label_prompt
    from emo_lightning.models.network import EmotionNetwork

    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    backbone = AutoModel.from_pretrained(tiny_models["bert"]).eval()
    prompt = label_prompt(tokenizer, ["happy", "sad"])
    head = LabelPromptHead(backbone.config.hidden_size, 2, **prompt).eval()
    batch = tokenizer(["happy news", "sad sad news and the text of it"], padding=True, return_tensors="pt")
    ids, mask = head.extend_inputs(batch["input_ids"], batch["attention_mask"])
    assert ids[0].tolist()[: len(prompt["prompt_ids"])] == prompt["prompt_ids"]
    assert ids[0, len(prompt["prompt_ids"])].item() == tokenizer.convert_tokens_to_ids("happy")  # text, no [CLS]
    assert mask.shape == ids.shape and mask[0].sum() == len(prompt["prompt_ids"]) + batch["attention_mask"][0].sum() - 1
    network = EmotionNetwork(backbone, head)
    with torch.no_grad():
        padded = network(batch["input_ids"], batch["attention_mask"])[0]
        alone = tokenizer(["happy news"], return_tensors="pt")
        single = network(alone["input_ids"], alone["attention_mask"])[0]
    assert torch.allclose(padded, single, atol=1e-5)


def test_label_prompt_needs_one_position_per_label():
    from emo_lightning.models.heads import LabelPromptHead

    with pytest.raises(ConfigError, match="the label prompt has 2 labels, the data 3"):
        LabelPromptHead(16, 3, prompt_ids=[1, 5, 6, 2], label_positions=[1, 2])


@pytest.mark.parametrize("family", ["bert", "distilbert", "squeezebert", "roberta"])
def test_position_limit_is_the_longest_input_the_model_reads(tiny_models, family):
    from transformers import AutoModel

    from emo_lightning.models.backbone import position_limit

    model = AutoModel.from_pretrained(tiny_models[family]).eval()
    limit = position_limit(model.config)
    assert limit == (129 if family == "roberta" else 130)  # max_position_embeddings=130; roberta: less pad_id + 1
    with torch.no_grad():
        ids = torch.full((1, limit), 5)
        assert model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state.shape[1] == limit
        ids = torch.full((1, limit + 1), 5)
        with pytest.raises((IndexError, RuntimeError, ValueError)):
            model(input_ids=ids, attention_mask=torch.ones_like(ids))


def test_check_max_length_refuses_more_than_the_model_reads(tiny_models, tiny_tokenizer_dir):
    from transformers import AutoConfig, AutoTokenizer

    from emo_lightning.models.backbone import check_max_length

    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    bert, roberta = (AutoConfig.from_pretrained(tiny_models[f]) for f in ("bert", "roberta"))
    check_max_length(bert, tokenizer, 130)
    check_max_length(roberta, tokenizer, 129)
    with pytest.raises(ConfigError) as caught:
        check_max_length(roberta, tokenizer, 130)
    name = str(tiny_models["roberta"])
    assert (
        str(caught.value)
        == f"data.max_length=130 is more tokens than model {name} reads (129): set data.max_length ≤ 129"
    )
    with pytest.raises(ConfigError, match=r"^label prompt \+ data.max_length=200 is more tokens than model"):
        check_max_length(bert, tokenizer, 200, key="label prompt + data.max_length")


def test_models_without_a_position_table_have_no_limit():
    from transformers import AutoConfig

    from emo_lightning.models.backbone import position_limit

    assert position_limit(AutoConfig.for_model("deberta-v2", position_biased_input=False)) is None
    assert position_limit(AutoConfig.for_model("deberta-v2")) == 512
    assert position_limit(AutoConfig.for_model("roberta")) == 510  # pad_token_id 1: positions 2 … 513


def test_model_folder_without_weights_is_one_line(tmp_path, tiny_models):
    import shutil

    from emo_lightning.models.backbone import load_backbone

    shutil.copy(tiny_models["bert"] / "config.json", tmp_path / "config.json")
    with pytest.raises(ConfigError) as caught:
        load_backbone(str(tmp_path))
    assert str(caught.value) == (
        f"model {tmp_path} has no weights (model.safetensors / pytorch_model.bin): point "
        "model.pretrained_model_name_or_path at a folder with weights, or set model.pretrained=false"
    )
    assert load_backbone(str(tmp_path), pretrained=False).config.hidden_size == 32  # the config alone suffices


def test_model_with_its_own_code_needs_trust_remote_code(tmp_path):
    import json

    from emo_lightning.models.backbone import load_backbone

    marker = tmp_path / "imported"
    auto_map = {"AutoConfig": "configuration_custom.CustomConfig", "AutoModel": "modeling_custom.CustomModel"}
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "custom_encoder", "auto_map": auto_map}))
    for module in ("configuration_custom", "modeling_custom"):
        (tmp_path / f"{module}.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    with pytest.raises(ConfigError) as caught:
        load_backbone(str(tmp_path))
    assert str(caught.value) == (
        f"model {tmp_path} needs its own Python code to load (auto_map): read that code, then set "
        "model.trust_remote_code=true, or use a model transformers knows"
    )
    assert not marker.exists()


def test_tokenizer_folder_without_tokenizer_files_is_one_line(tmp_path, tiny_models):
    import shutil

    from emo_lightning.data.loading import load_tokenizer

    shutil.copy(tiny_models["bert"] / "config.json", tmp_path / "config.json")  # transformers would build an empty one
    with pytest.raises(ConfigError) as caught:
        load_tokenizer(str(tmp_path), None)
    assert str(caught.value) == (
        f"tokenizer folder {tmp_path} has no tokenizer files (tokenizer.json, tokenizer_config.json, vocab.txt, …): "
        "set data.tokenizer to a folder or Hub id that has them (save_pretrained of a tokenizer writes them)"
    )


def test_tokenizer_without_pad_token_is_refused(tmp_path, tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    from emo_lightning.data.loading import load_tokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    tokenizer.pad_token = None
    tokenizer.save_pretrained(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_tokenizer(str(tmp_path), None)
    assert str(caught.value).startswith(f"tokenizer {tmp_path} has no pad token: this framework pads each batch")
    assert load_tokenizer(str(tiny_tokenizer_dir), None).pad_token == "[PAD]"
