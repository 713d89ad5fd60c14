"""Full-dataset training (minutes to tens of minutes on 2 CPU cores): `make test-all`."""

from __future__ import annotations

import pytest

from emo_lightning.train import train
from tests.conftest import compose_train, require_shared


@pytest.mark.slow
def test_minilm_on_emotion_reaches_090_test_accuracy(tmp_path):
    data = require_shared("data")
    models = require_shared("models")
    cfg = compose_train([f"paths.data_dir={data}", f"paths.model_dir={models}", "logger=csv"], tmp_path)
    metrics = train(cfg)
    assert metrics["test/accuracy"] >= 0.90


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["go_emotions", "sem_eval_2018"])
def test_minilm_multi_label_one_epoch_beats_chance(dataset, tmp_path):
    data = require_shared("data")
    models = require_shared("models")
    cfg = compose_train(
        [f"data={dataset}", f"paths.data_dir={data}", f"paths.model_dir={models}", "trainer.max_epochs=1"], tmp_path
    )
    metrics = train(cfg)
    assert metrics["test/auroc_micro"] > 0.85
