"""The three emotion datasets the framework knows by name, each loaded from its Hub id (or a mirror of it)."""

from __future__ import annotations

from datasets import Features, List, Value

from emo_lightning.data.datamodule import TextClassificationDataModule
from emo_lightning.data.encoding import LABELS, TEXT, LabeledSplits, multi_hot
from emo_lightning.data.loading import load_hub_dataset

MULTI_HOT = List(Value("float32"))


class HubDataModule(TextClassificationDataModule):
    """A dataset loaded by Hub id and config name; subclasses give the defaults and the label encoding.

    Args:
        path: Hub id (or local folder); looked up in the `data_dir` mirror first.
        config_name: the dataset config.
    """

    HUB_ID: str
    CONFIG_NAME: str

    def __init__(self, path: str | None = None, config_name: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.path = path or self.HUB_ID
        self.config_name = config_name or self.CONFIG_NAME

    @property
    def name(self) -> str:
        return self.path


class EmotionDataModule(HubDataModule):
    """dair-ai/emotion (CARER): English tweets, 6 classes, one label each."""

    HUB_ID, CONFIG_NAME = "dair-ai/emotion", "split"

    def load_splits(self) -> LabeledSplits:
        raw = load_hub_dataset(self.path, self.config_name, self.data_dir)
        names = raw["train"].features["label"].names
        splits = raw.rename_column("label", LABELS).select_columns([TEXT, LABELS])
        return LabeledSplits(splits, list(names), multi_label=False)


class GoEmotionsDataModule(HubDataModule):
    """google-research-datasets/go_emotions (simplified): Reddit comments, 28 labels, multi-label."""

    HUB_ID, CONFIG_NAME = "google-research-datasets/go_emotions", "simplified"

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


class SemEval2018DataModule(HubDataModule):
    """SemEvalWorkshop/sem_eval_2018_task_1 (subtask5.english, E-c): tweets, 11 bool columns → multi-label."""

    HUB_ID, CONFIG_NAME = "SemEvalWorkshop/sem_eval_2018_task_1", "subtask5.english"

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
