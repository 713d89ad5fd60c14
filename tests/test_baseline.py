"""`task=baseline` and `task=umap`: frozen features (cached), logistic regression vs dummy, the UMAP panels."""

from __future__ import annotations

import json
import random
from pathlib import Path

import datasets
import pytest
import torch
from omegaconf import DictConfig

from emo_lightning.analysis.baseline import run_baseline
from emo_lightning.analysis.features import POOLINGS, cache_file, load_datamodule, split_features
from emo_lightning.analysis.umap_map import run_umap
from emo_lightning.utils.errors import ConfigError
from emo_lightning.utils.hardware import Hardware, inference_dtype
from tests.test_analyze import compose_analyze

PNG = b"\x89PNG\r\n\x1a\n"
WORDS = {"joy": ["thrilled", "happy", "about", "today"], "sadness": ["lonely", "miss", "my", "friends", "feel"]}


def write_split(path: Path, size: int, rng: random.Random) -> str:
    """Texts whose words are disjoint by label: any encoder's features separate them."""
    rows = [(label, " ".join(rng.choices(WORDS[label], k=rng.randint(2, 5)))) for label in ["joy", "sadness"] * size]
    path.write_text("text,label\n" + "".join(f"{text},{label}\n" for label, text in rows), encoding="utf-8")
    return str(path)


@pytest.fixture(autouse=True)
def datasets_cache(tmp_path, monkeypatch) -> Path:
    """The `datasets` cache (and so the feature cache of in-memory data) in this test's folder."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_datasets")
    return tmp_path / "hf_datasets"


@pytest.fixture
def separable_cfg(tmp_path, tiny_models) -> DictConfig:
    rng = random.Random(0)
    files = {split: write_split(tmp_path / f"{split}.csv", n, rng) for split, n in [("train", 20), ("validation", 8)]}
    files["test"] = write_split(tmp_path / "test.csv", 8, rng)
    overrides = ["data=files", "data.label_column=label", f"model.pretrained_model_name_or_path={tiny_models['bert']}"]
    overrides += [f"data.{split}_file={path}" for split, path in files.items()]
    return compose_analyze(overrides, tmp_path / "out")


def test_features_are_cached_and_reloaded_identical(separable_cfg):
    datamodule = load_datamodule(separable_cfg)
    first = split_features(separable_cfg, datamodule, ["cls", "mean"], ["train", "validation"])
    assert first["train"]["cls"].shape == (40, 32) and first["train"]["mean"].dtype == torch.float32
    assert not torch.equal(first["train"]["cls"], first["train"]["mean"])
    dtype = inference_dtype("auto", Hardware.detect(), torch.device("cpu"))
    cached = [
        cache_file(datamodule, s, separable_cfg.model, p, dtype) for s in ("train", "validation") for p in POOLINGS
    ]
    # beside data=files' tokenized cache entry (data/token_cache.py), the folder the splits are read from
    (entry,) = {Path(datamodule.tokenized[s].cache_files[0]["filename"]).parent for s in ("train", "validation")}
    assert len(set(cached)) == 4 and all(f.is_file() and f.parent == entry / "emo_features" for f in cached)
    written = {f: f.stat().st_mtime_ns for f in cached}

    again = split_features(separable_cfg, load_datamodule(separable_cfg), ["cls", "mean"], ["train", "validation"])
    for split in ("train", "validation"):
        for pooling in ("cls", "mean"):
            assert torch.equal(first[split][pooling], again[split][pooling]), (split, pooling)
    assert {f: f.stat().st_mtime_ns for f in cached} == written  # loaded, not recomputed


def test_logistic_regression_separates_disjoint_texts_and_the_dummy_does_not(separable_cfg, tmp_path, capsys):
    summary = run_baseline(separable_cfg, tmp_path / "out")
    rows = json.loads((tmp_path / "out" / "baseline.json").read_text(encoding="utf-8"))["rows"]
    assert set(rows) == {"dummy", "logreg-cls", "logreg-mean"}
    assert rows["logreg-mean"]["test/accuracy"] == 1.0 and rows["logreg-mean"]["val/accuracy"] == 1.0
    assert rows["dummy"]["test/accuracy"] == 0.5  # one class of two balanced ones
    assert rows["dummy"]["test/f1_macro"] < 0.5
    text = summary.read_text(encoding="utf-8")
    assert "| model | val/accuracy | val/f1_macro | val/f1_weighted | test/accuracy |" in text
    assert "| logreg-mean | 1.0000 |" in text and "| model |" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="already holds a baseline"):
        run_baseline(separable_cfg, tmp_path / "out")


def test_multi_label_baseline_scores_at_tuned_thresholds(tmp_path, tiny_models, tiny_mirror):
    cfg = compose_analyze(
        [
            "data=go_emotions",
            f"paths.data_dir={tiny_mirror}",
            f"model.pretrained_model_name_or_path={tiny_models['bert']}",
            "baseline.poolings=[mean]",
        ],
        tmp_path,
    )
    run_baseline(cfg, tmp_path)
    result = json.loads((tmp_path / "baseline.json").read_text(encoding="utf-8"))
    assert result["multi_label"] and set(result["rows"]) == {"dummy", "logreg-mean"}
    expected = {f"{stage}/{m}" for stage in ("val", "test") for m in ("f1_micro", "f1_macro", "jaccard", "exact_match")}
    for name, scores in result["rows"].items():
        assert set(scores) == expected, name
        assert all(0.0 <= v <= 1.0 for v in scores.values()), name


def test_umap_writes_one_panel_per_label(tmp_path, tiny_models, tiny_mirror):
    overrides = [f"paths.data_dir={tiny_mirror}", f"model.pretrained_model_name_or_path={tiny_models['bert']}"]
    cfg = compose_analyze([*overrides, "umap.n_neighbors=5", "umap.max_points=40", "umap.gridsize=8"], tmp_path)
    summary = run_umap(cfg, tmp_path).read_text(encoding="utf-8")
    figure = tmp_path / "umap.png"
    assert figure.stat().st_size > 5000 and figure.read_bytes()[:8] == PNG
    assert "40 of 48 training texts" in summary and "sadness " in summary


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("baseline.poolings=[cls,max]", "baseline.poolings has max: use cls and/or mean"),
        ("baseline.C=0", "baseline.C=0 must be > 0"),
        ("umap.pooling=max", "umap.pooling=max is not known"),
        ("umap.n_neighbors=1", "umap.n_neighbors=1 must be an int ≥ 2"),
    ],
)
def test_bad_settings_fail_before_any_data_loads(tmp_path, override, message):
    cfg = compose_analyze(["paths.data_dir=/nonexistent", override], tmp_path)
    run = run_umap if override.startswith("umap") else run_baseline
    with pytest.raises(ConfigError, match=message):
        run(cfg, tmp_path)
