"""The three emotion datasets the framework knows by name, each loaded from its Hub id (or a mirror of it)."""

from __future__ import annotations

from datasets import Features, List, Value

from emo_lightning.data.datamodule import TextClassificationDataModule
from emo_lightning.data.encoding import LABELS, TEXT, LabeledSplits, multi_hot
from emo_lightning.data.loading import load_hub_dataset

MULTI_HOT = List(Value("float32"))


class EmotionDataModule(TextClassificationDataModule):
    """dair-ai/emotion (CARER): English tweets, 6 classes, one label each."""

    def __init__(self, path: str = "dair-ai/emotion", config_name: str = "split", **kwargs) -> None:
        super().__init__(**kwargs)
        self.path, self.config_name = path, config_name

    @property
    def name(self) -> str:
        return self.path

    def load_splits(self) -> LabeledSplits:
        raw = load_hub_dataset(self.path, self.config_name, self.data_dir)
        names = raw["train"].features["label"].names
        splits = raw.rename_column("label", LABELS).select_columns([TEXT, LABELS])
        return LabeledSplits(splits, list(names), multi_label=False)


class GoEmotionsDataModule(TextClassificationDataModule):
    """google-research-datasets/go_emotions (simplified): Reddit comments, 28 labels, multi-label."""

    def __init__(
        self, path: str = "google-research-datasets/go_emotions", config_name: str = "simplified", **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.path, self.config_name = path, config_name

    @property
    def name(self) -> str:
        return self.path

    def load_splits(self) -> LabeledSplits:
        raw = load_hub_dataset(self.path, self.config_name, self.data_dir)
        names = list(raw["train"].features["labels"].feature.names)
        features = Features({TEXT: Value("string"), LABELS: MULTI_HOT})
        splits = raw.select_columns([TEXT, LABELS]).map(
            lambda b: {LABELS: [multi_hot(ids, len(names)) for ids in b[LABELS]]},
            batched=True,
            features=features,
            desc="Multi-hot labels",
        )
        return LabeledSplits(splits, names, multi_label=True)


class SemEval2018DataModule(TextClassificationDataModule):
    """SemEvalWorkshop/sem_eval_2018_task_1 (subtask5.english, E-c): tweets, 11 bool columns → multi-label."""

    def __init__(
        self,
        path: str = "SemEvalWorkshop/sem_eval_2018_task_1",
        config_name: str = "subtask5.english",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.path, self.config_name = path, config_name

    @property
    def name(self) -> str:
        return self.path

    def load_splits(self) -> LabeledSplits:
        raw = load_hub_dataset(self.path, self.config_name, self.data_dir)
        names = [col for col, f in raw["train"].features.items() if getattr(f, "dtype", None) == "bool"]
        features = Features({TEXT: Value("string"), LABELS: MULTI_HOT})
        splits = raw.map(
            lambda b: {
                TEXT: b["Tweet"],
                LABELS: [[float(v) for v in row] for row in zip(*(b[n] for n in names))],
            },
            batched=True,
            remove_columns=raw["train"].column_names,
            features=features,
            desc="Multi-hot labels",
        )
        return LabeledSplits(splits, names, multi_label=True)
