"""The datamodules by `data=` option: what a run folder's `data._target_` may name (nothing else is imported)."""

from __future__ import annotations

from emo_lightning.data.datamodule import TextClassificationDataModule
from emo_lightning.data.files import FilesDataModule
from emo_lightning.data.hub_datasets import EmotionDataModule, GoEmotionsDataModule, SemEval2018DataModule

DATAMODULES: dict[str, type[TextClassificationDataModule]] = {
    "emotion": EmotionDataModule,
    "go_emotions": GoEmotionsDataModule,
    "sem_eval_2018": SemEval2018DataModule,
    "files": FilesDataModule,
}
DATAMODULE_TARGETS = {f"{cls.__module__}.{cls.__qualname__}" for cls in DATAMODULES.values()}
