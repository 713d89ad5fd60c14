"""The model folder and `transformers.pipeline()`: our probabilities where the head is a transformers class, a loud
refusal for every other head, our own loader on every form, and a Hub model card."""

from __future__ import annotations

import re
import shutil

import pytest
import torch
import yaml
from omegaconf import OmegaConf
from transformers import pipeline

from emo_lightning.data.loading import load_tokenizer
from emo_lightning.inference.predictor import EmotionPredictor
from emo_lightning.models.backbone import load_backbone
from emo_lightning.models.card import card_facts
from emo_lightning.models.folder import ClassifierSpec, load_model_dir, save_model_dir
from emo_lightning.models.heads import LabelPromptHead, LinearHead, MLPHead, label_prompt
from emo_lightning.models.network import EmotionNetwork
from emo_lightning.utils.errors import ConfigError
from tests.conftest import compose_train

LABELS = ["anger", "joy", "sadness", "fear"]
TEXTS = ["i am so happy today", "i feel scared and afraid of the dark", "furious"]
HEADS = {"linear": LinearHead, "mlp": MLPHead, "label_prompt": LabelPromptHead}


def build_network(family: str, tiny_models, head: str = "linear", pooling: str = "pooler"):
    """A tiny random-init network with a spread-out head (distinct probabilities), and its head record."""
    torch.manual_seed(0)
    backbone = load_backbone(str(tiny_models[family])).eval()
    args = {"hidden_size": 32, "num_labels": len(LABELS), "pooling": pooling}
    if head == "label_prompt":
        args |= label_prompt(load_tokenizer(str(tiny_models[family]), None), LABELS)
    module = HEADS[head](**args)
    for param in module.parameters():
        torch.nn.init.normal_(param, std=1.0)
    return EmotionNetwork(backbone, module).eval(), {"type": head, **args}


def export(path, family, tiny_models, multi_label=False, head="linear", pooling="pooler", **card):
    network, record = build_network(family, tiny_models, head, pooling)
    thresholds = [0.3, 0.4, 0.5, 0.6] if multi_label else None
    spec = ClassifierSpec(LABELS, multi_label, 0.5, 32, record, thresholds=thresholds)
    return save_model_dir(path, network, load_tokenizer(str(tiny_models[family]), None), spec, **card), network


def logits(network, tokenizer) -> torch.Tensor:
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        return network(batch["input_ids"], batch["attention_mask"])


def front_matter(card: str) -> dict:
    _, header, _ = card.split("---\n", 2)
    return yaml.safe_load(header)


@pytest.mark.parametrize(("family", "multi_label"), [("bert", False), ("bert", True), ("squeezebert", False)])
def test_pooler_linear_folder_gives_our_probabilities_in_pipeline(tmp_path, tiny_models, family, multi_label):
    folder, _ = export(tmp_path / "model", family, tiny_models, multi_label)
    ours = EmotionPredictor(folder, precision="fp32").predict_proba(TEXTS)
    answers = pipeline("text-classification", model=str(folder), top_k=None, device="cpu")(TEXTS)
    for row, answer in zip(ours, answers):
        theirs = {item["label"]: item["score"] for item in answer}
        assert answer[0]["label"] == LABELS[int(row.argmax())]
        assert torch.allclose(torch.tensor([theirs[name] for name in LABELS]), row, atol=1e-4)
    if not multi_label:  # softmax: the pipeline's scores sum to one; multi-label: sigmoids, they need not
        assert sum(item["score"] for item in answers[0]) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    ("family", "head", "pooling"),
    [
        ("bert", "linear", "mean"),
        ("bert", "linear", "cls"),
        ("bert", "mlp", "pooler"),
        ("bert", "label_prompt", "max"),
        ("roberta", "linear", "pooler"),  # RobertaForSequenceClassification has its own head: not ours
    ],
)
def test_folder_of_other_heads_is_refused_by_pipeline_and_loads_with_ours(tmp_path, tiny_models, family, head, pooling):
    folder, network = export(tmp_path / "model", family, tiny_models, head=head, pooling=pooling)
    assert not (folder / "config.json").exists() and (folder / "encoder" / "config.json").is_file()
    with pytest.raises(ValueError, match="Unrecognized model"):
        pipeline("text-classification", model=str(folder), device="cpu")
    loaded, tokenizer, spec = load_model_dir(folder)
    assert spec.head["pooling"] == pooling
    assert torch.allclose(logits(loaded, tokenizer), logits(network, tokenizer), atol=1e-5)


def test_our_loader_reads_the_transformers_form_and_the_form_before_encoder(tmp_path, tiny_models):
    folder, network = export(tmp_path / "hf" / "model", "bert", tiny_models)
    loaded, tokenizer, _ = load_model_dir(folder)
    assert type(loaded.backbone).__name__ == "BertModel"
    assert torch.allclose(logits(loaded, tokenizer), logits(network, tokenizer), atol=1e-5)
    old, network = export(tmp_path / "old" / "model", "bert", tiny_models, pooling="mean")
    for item in (old / "encoder").iterdir():  # the layout written before encoder/: the encoder at the top
        shutil.move(item, old / item.name)
    (old / "encoder").rmdir()
    loaded, tokenizer, _ = load_model_dir(old)
    assert torch.allclose(logits(loaded, tokenizer), logits(network, tokenizer), atol=1e-5)


def test_the_pooler_trains_only_with_a_head_that_reads_it(tiny_models):
    for pooling, trains in (("pooler", True), ("mean", False)):
        network, _ = build_network("bert", tiny_models, pooling=pooling)
        assert all(p.requires_grad == trains for p in network.backbone.pooler.parameters())
    network.train()
    ids = torch.tensor([[2, 10, 11, 3]])
    network, _ = build_network("bert", tiny_models)
    network(ids, torch.ones_like(ids)).sum().backward()
    assert network.backbone.pooler.dense.weight.grad.abs().sum() > 0


def test_pooler_pooling_on_an_encoder_without_a_pooler_is_one_line(tiny_models):
    backbone = load_backbone(str(tiny_models["distilbert"]))
    with pytest.raises(ConfigError) as caught:
        EmotionNetwork(backbone, LinearHead(32, len(LABELS), pooling="pooler"))
    assert str(caught.value) == (
        "head.pooling=pooler reads the encoder's pooler layer, which DistilBertModel lacks: "
        "use head.pooling=cls, mean or max"
    )


@pytest.mark.parametrize(("pooling", "library"), [("pooler", "transformers"), ("mean", "emo-lightning")])
def test_model_card_front_matter_and_labels(tmp_path, tiny_models, pooling, library):
    cfg = compose_train(["model=bert_base", "data=go_emotions"])
    facts = card_facts(OmegaConf.to_container(cfg, resolve=True))
    metrics = {"val/f1_macro": 0.61, "test/f1_macro": 0.58, "val/loss": 0.2, "test/jaccard_tuned": 0.5}
    per_label = {"val": dict.fromkeys(LABELS, 0.6), "test": dict.fromkeys(LABELS, 0.5)}
    folder, _ = export(
        tmp_path / "model",
        "bert",
        tiny_models,
        True,
        pooling=pooling,
        metrics=metrics,
        per_label=per_label,
        config=facts,
    )
    card = (folder / "README.md").read_text()
    header, pooler = front_matter(card), library == "transformers"
    assert header["library_name"] == library and header.get("pipeline_tag") == (
        "text-classification" if pooler else None
    )
    assert header["base_model"] == "google-bert/bert-base-uncased"
    assert header["datasets"] == ["google-research-datasets/go_emotions"]
    assert header["metrics"] == ["f1", "jaccard"] and header["labels"] == LABELS
    assert "multi-label-classification" in header["tags"]
    body = card.split("---\n", 2)[2]
    assert all(f"| `{name}` | {t:.2f} | 0.6000 | 0.5000 |" in body for name, t in zip(LABELS, [0.3, 0.4, 0.5, 0.6]))
    assert "| f1_macro | 0.6100 | 0.5800 |" in body and "val/loss" not in body
    assert "from emo_lightning import EmotionPredictor" in body and "emo-predict run_dir=" in body
    assert ('pipeline("text-classification"' in body) == (library == "transformers")


def test_model_card_without_metrics_or_config_still_names_every_label(tmp_path, tiny_models):
    folder, _ = export(tmp_path / "model", "bert", tiny_models, pooling="mean")
    card = (folder / "README.md").read_text()
    header = front_matter(card)
    assert header["library_name"] == "emo-lightning" and "base_model" not in header and "metrics" not in header
    assert all(f"| `{name}` |" in card.split("---\n", 2)[2] for name in LABELS)


def python_snippets(card: str, folder) -> list[str]:
    """The card's Python code blocks, pointed at `folder`."""
    return [code.replace("path/to/model", str(folder)) for code in re.findall(r"```python\n(.*?)```", card, re.S)]


@pytest.mark.parametrize(
    ("family", "head", "pooling", "opens"),
    [
        ("bert", "linear", "pooler", True),  # saved as BertForSequenceClassification: pipeline() opens it
        ("bert", "linear", "mean", False),  # the default head: no config.json at the top
        ("bert", "label_prompt", "mean", False),
        ("roberta", "linear", "pooler", False),  # RobertaForSequenceClassification's head is not ours
    ],
)
def test_card_tags_and_snippets_match_what_pipeline_opens(tmp_path, tiny_models, capsys, family, head, pooling, opens):
    """pipeline_tag (the Hub's widget and "Use this model" call pipeline()) only on a folder pipeline() opens; every
    Python snippet of the card runs on the folder."""
    folder, _ = export(tmp_path / "model", family, tiny_models, True, head=head, pooling=pooling)
    card = (folder / "README.md").read_text()
    header = front_matter(card)
    assert header.get("pipeline_tag") == ("text-classification" if opens else None)
    assert header["library_name"] == ("transformers" if opens else "emo-lightning")
    assert ("text-classification" in header["tags"]) == opens
    snippets = python_snippets(card, folder)
    assert len(snippets) == 1 + opens and any("pipeline(" in code for code in snippets) == opens
    for code in snippets:
        exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - the card's own snippet, as a reader runs it
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == len(snippets) and printed[0].startswith("[")
    if opens:
        [answer] = pipeline("text-classification", model=str(folder), top_k=None, device="cpu")([TEXTS[0]])
        assert sorted(item["label"] for item in answer) == sorted(LABELS) and all(n in printed[1] for n in LABELS)
    else:
        with pytest.raises(ValueError, match="Unrecognized model"):
            pipeline("text-classification", model=str(folder), device="cpu")
