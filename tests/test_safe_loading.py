"""Loading a model folder runs no code from it: heads by registry key, safetensors, no remote code; bad folders fail
in one line."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from hydra.utils import instantiate

from emo_lightning.data.loading import load_tokenizer
from emo_lightning.inference.predictor import EmotionPredictor
from emo_lightning.models.backbone import load_backbone
from emo_lightning.models.folder import ClassifierSpec, load_model_dir, save_model_dir
from emo_lightning.models.heads import LinearHead
from emo_lightning.models.network import EmotionNetwork
from emo_lightning.utils.errors import ConfigError

LABELS = ["anger", "joy", "sadness"]
LINEAR = "emo_lightning.models.heads.LinearHead"
REEXPORT = "re-export the model with train.py"


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_models):
    """A tiny bert + linear head exported as train.py does (head given by its training config)."""
    torch.manual_seed(0)
    backbone = load_backbone(str(tiny_models["bert"])).eval()
    network = EmotionNetwork(backbone, LinearHead(32, len(LABELS), pooling="cls")).eval()
    head = {"_target_": LINEAR, "pooling": "cls", "dropout": 0.1, "hidden_size": 32, "num_labels": len(LABELS)}
    spec = ClassifierSpec(LABELS, multi_label=False, threshold=0.5, max_length=32, head=head)
    tokenizer = load_tokenizer(str(tiny_models["bert"]), None)
    path = save_model_dir(tmp_path_factory.mktemp("run") / "model", network, tokenizer, spec)
    ids = torch.tensor([[2, 10, 11, 12, 3]])
    with torch.no_grad():
        logits = network(ids, torch.ones_like(ids))
    return path, ids, logits


@pytest.fixture
def run_dir(tmp_path, exported):
    """A fresh copy of the exported run (run/model/), free to tamper with."""
    shutil.copytree(exported[0], tmp_path / "run" / "model")
    return tmp_path / "run"


def rewrite_head(model_dir, head) -> str:
    spec_file = model_dir / "classifier.json"
    record = json.loads(spec_file.read_text())
    record["head"] = head
    spec_file.write_text(json.dumps(record))
    return str(spec_file)


def test_classifier_json_names_the_head_by_key_and_loads_the_same_network(run_dir, exported):
    record = json.loads((run_dir / "model" / "classifier.json").read_text())
    assert record["head"] == {"type": "linear", "pooling": "cls", "dropout": 0.1, "hidden_size": 32, "num_labels": 3}
    network, tokenizer, spec = load_model_dir(run_dir / "model")
    assert isinstance(network.head, LinearHead) and spec.label_names == LABELS and tokenizer.pad_token == "[PAD]"
    ids = exported[1]
    with torch.no_grad():
        assert torch.allclose(network(ids, torch.ones_like(ids)), exported[2], atol=1e-6)


def test_folder_from_before_the_registry_with_a_head_target_still_loads(run_dir, exported):
    rewrite_head(run_dir / "model", {"_target_": LINEAR, "pooling": "cls", "hidden_size": 32, "num_labels": 3})
    network, _, spec = load_model_dir(run_dir / "model")
    assert spec.head["type"] == "linear" and "_target_" not in spec.head
    ids = exported[1]
    with torch.no_grad():
        assert torch.allclose(network(ids, torch.ones_like(ids)), exported[2], atol=1e-6)


def test_tampered_head_target_is_refused_and_nothing_runs(run_dir, tmp_path):
    marker = tmp_path / "touched"
    evil = {"_target_": "pathlib.Path.touch", "self": {"_target_": "pathlib.Path", "_args_": [str(marker)]}}
    instantiate(json.loads(json.dumps(evil)), _convert_="all")  # what the old loader did: it does create the file
    assert marker.exists()
    marker.unlink()
    spec_file = rewrite_head(run_dir / "model", evil)
    expected = f"{spec_file} names head 'pathlib.Path.touch', which is not one of linear, mlp, label_prompt: {REEXPORT}"
    with pytest.raises(ConfigError) as caught:
        load_model_dir(run_dir / "model")
    assert str(caught.value) == expected
    with pytest.raises(ConfigError) as caught:  # predict.py's way in, from the run dir
        EmotionPredictor.from_run(run_dir)
    assert str(caught.value) == expected
    assert not marker.exists()


@pytest.mark.parametrize("key", ["_target_", "type"])
def test_os_system_as_head_is_refused_and_nothing_runs(run_dir, tmp_path, key):
    marker = tmp_path / "ran"
    spec_file = rewrite_head(run_dir / "model", {key: "os.system", "command": f"touch {marker}"})
    with pytest.raises(ConfigError) as caught:
        load_model_dir(run_dir / "model")
    assert (
        str(caught.value)
        == f"{spec_file} names head 'os.system', which is not one of linear, mlp, label_prompt: {REEXPORT}"
    )
    assert not marker.exists()


def test_unknown_head_argument_is_one_line(run_dir):
    spec_file = rewrite_head(run_dir / "model", {"type": "linear", "hidden_size": 32, "num_labels": 3, "evil": 1})
    with pytest.raises(ConfigError) as caught:
        load_model_dir(run_dir / "model")
    assert str(caught.value) == (
        f"{spec_file} gives head linear arguments it does not take (got an unexpected keyword argument 'evil'): "
        f"{REEXPORT}"
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "{not json",
            "is not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))",
        ),
        ('["a list"]', "holds list, not an object"),
        ('{"label_names": ["a"], "multi_label": false}', "lacks head, max_length, threshold"),
    ],
)
def test_malformed_classifier_json_is_one_line(run_dir, text, problem):
    spec_file = run_dir / "model" / "classifier.json"
    spec_file.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_model_dir(run_dir / "model")
    assert str(caught.value) == f"{spec_file} {problem}: {REEXPORT}"


def test_model_code_named_in_config_json_is_never_run(run_dir, tmp_path):
    """A config.json `auto_map` pointing at Python files beside it: transformers' own BertModel loads instead."""
    marker = tmp_path / "imported"
    model_dir = run_dir / "model"
    encoder_dir = model_dir / "encoder"  # a cls-pooling folder keeps its encoder here (pipeline() cannot load it)
    config = json.loads((encoder_dir / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "configuration_evil.EvilConfig", "AutoModel": "modeling_evil.EvilModel"}
    (encoder_dir / "config.json").write_text(json.dumps(config))
    for module in ("configuration_evil", "modeling_evil"):
        (encoder_dir / f"{module}.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    network, _, _ = load_model_dir(model_dir)
    assert type(network.backbone).__name__ == "BertModel"
    assert not marker.exists()


def test_missing_head_weights_are_one_line(run_dir):
    (run_dir / "model" / "head.safetensors").unlink()
    with pytest.raises(ConfigError, match=r"head.safetensors does not hold this head's weights \(.*\): re-export"):
        load_model_dir(run_dir / "model")


def test_training_head_outside_the_registry_is_refused_before_training():
    with pytest.raises(ConfigError) as caught:
        ClassifierSpec(LABELS, False, 0.5, 32, head={"_target_": "my_project.FancyHead", "hidden_size": 32})
    assert str(caught.value) == (
        "the head config names head 'my_project.FancyHead', which is not one of linear, mlp, label_prompt: "
        "use head=linear, mlp or label_prompt"
    )


def test_training_head_with_an_argument_its_class_lacks_is_one_line():
    with pytest.raises(ConfigError) as caught:
        ClassifierSpec(LABELS, False, 0.5, 32, head={"_target_": LINEAR, "hidden_size": 32, "num_labels": 3, "x": 1})
    assert str(caught.value) == (
        "the head config gives head linear arguments it does not take (got an unexpected keyword argument 'x'): "
        "LinearHead takes hidden_size, num_labels, pooling, dropout"
    )


def test_encoder_weights_load_only_from_safetensors(run_dir):
    """A folder whose encoder weights were swapped for a pickle (pytorch_model.bin) is refused, not unpickled."""
    model_dir = run_dir / "model"
    (model_dir / "encoder" / "model.safetensors").rename(model_dir / "encoder" / "pytorch_model.bin")
    with pytest.raises(ConfigError, match=rf"^{model_dir} lacks encoder or tokenizer files \(.*\): re-export"):
        load_model_dir(model_dir)
