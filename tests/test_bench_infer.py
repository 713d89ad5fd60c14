"""bench_infer's peer row: `transformers.pipeline` on a run's folder, for both kinds of folder a run leaves (the
whole benchmark in its smallest mode: tests/test_folder_trust.py, beside its refusal of a tampered run)."""

from __future__ import annotations

import pytest

from benchmarks.bench_infer import pipeline_row
from tests.test_model_folder import LABELS, TEXTS, export


@pytest.mark.parametrize(("pooling", "same_network"), [("pooler", True), ("mean", False)])
def test_pipeline_row_runs_on_either_folder(tmp_path, tiny_models, pooling, same_network):
    export(tmp_path / "run" / "model", "bert", tiny_models, pooling=pooling)
    texts = TEXTS * 4  # the row times one call per text and one call on all of them
    row = pipeline_row(tmp_path / "run", texts, [LABELS[0]] * len(texts))
    assert row["batch1_texts_per_s"] > 0 and row["batch64_texts_per_s"] > 0
    # the run's own network gives an accuracy; a head pipeline() cannot hold gets a new one: speed only
    assert (row["accuracy"] is not None) == same_network
    assert ("the run's network" in row["runs"]) == same_network
