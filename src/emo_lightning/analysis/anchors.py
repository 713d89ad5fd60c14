"""Published results on the three datasets (test split), and the baseline a user gets without us: what a run is
compared with in `analyze.py task=report` and in docs/RESULTS.md (`make bench-quality`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Anchor:
    source: str
    model: str
    values: dict[str, float | str]  # metric → value ("~0.94", "0.48–0.49" where the source gives no single figure)


@dataclass(frozen=True)
class AnchorTable:
    columns: dict[str, str]  # metric key (as in metrics.json, without the split and `_tuned`) → column title
    rows: tuple[Anchor, ...]


STACK = "`../shared/STACK.md`"
ANCHORS = {
    "emotion": AnchorTable(
        {"accuracy": "accuracy", "f1_macro": "macro-F1"},
        (
            Anchor("Tunstall et al., *NLP with Transformers* ch. 2 (verified)", "DistilBERT", {"accuracy": 0.927}),
            Anchor("bert-base model cards (self-reported)", "bert-base", {"accuracy": "~0.94"}),
            Anchor(
                f"HF Trainer seed recipe, lr 1e-4, length-grouped, bf16 ({STACK})",
                "MiniLM-L6",
                {"accuracy": 0.930, "f1_macro": 0.888},
            ),
        ),
    ),
    "go_emotions": AnchorTable(
        {"f1_macro": "macro-F1", "auroc_micro": "micro-AUROC"},
        (
            Anchor("Demszky et al. 2020 (threshold 0.3)", "BERT-base", {"f1_macro": 0.46}),
            Anchor("faithful reproductions", "BERT-base", {"f1_macro": "0.48–0.49"}),
            Anchor("class-weighted / focal recipes", "BERT-base", {"f1_macro": "~0.53"}),
            Anchor(
                f"HF Trainer seed recipe (CLS pooler), tuned per label ({STACK})",
                "MiniLM-L6",
                {"f1_macro": 0.35, "auroc_micro": 0.92},
            ),
            Anchor(
                f"same Trainer, mean-pooling head, 5 epochs, per-label tuned ({STACK})",
                "MiniLM-L6",
                {"f1_macro": 0.517, "auroc_micro": 0.952},
            ),
        ),
    ),
    "sem_eval_2018": AnchorTable(
        {"jaccard": "Jaccard", "f1_micro": "micro-F1", "f1_macro": "macro-F1"},
        (
            Anchor(
                "SemEval-2018 Task 1 winner (Mohammad et al. 2018)",
                "–",
                {"jaccard": 0.588, "f1_micro": 0.701, "f1_macro": 0.528},
            ),
            Anchor(
                "SpanEmo (Alhuzali & Ananiadou 2021)",
                "BERT-base",
                {"jaccard": 0.601, "f1_micro": 0.713, "f1_macro": 0.578},
            ),
            Anchor(
                f"HF Trainer seed recipe (CLS pooler) ({STACK})",
                "MiniLM-L6",
                {"jaccard": 0.54, "f1_micro": 0.67, "f1_macro": 0.46},
            ),
            Anchor(
                "same Trainer, mean-pooling head, 5 epochs, one tuned threshold (STACK.md)",
                "MiniLM-L6",
                {"jaccard": 0.577, "f1_micro": 0.694, "f1_macro": 0.529},
            ),
        ),
    ),
}


def cell(value: float | str | None) -> str:
    if value is None:
        return "–"
    return value if isinstance(value, str) else f"{value:.3f}"


def anchor_markdown(dataset: str, extra_rows: list[tuple[str, str, dict[str, float | str]]] = ()) -> str:
    """The dataset's anchors as a Markdown table (source, model, one column per metric), then `extra_rows`
    (source, model, values) — e.g. a run's own figures, side by side."""
    table = ANCHORS[dataset]
    lines = ["| source | model | " + " | ".join(table.columns.values()) + " |"]
    lines.append("| --- | --- | " + " | ".join("---" for _ in table.columns) + " |")
    rows = [(a.source, a.model, a.values) for a in table.rows] + list(extra_rows)
    for source, model, values in rows:
        lines.append(f"| {source} | {model} | " + " | ".join(cell(values.get(key)) for key in table.columns) + " |")
    return "\n".join(lines)
