"""emo-lightning: fine-tune any Hugging Face encoder to read emotions in text.

`from emo_lightning import EmotionPredictor` loads the predictor (torch, transformers) on first use only, so that
`import emo_lightning` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emo_lightning.inference.predictor import EmotionPredictor

__version__ = "0.1.0"
__all__ = ["EmotionPredictor", "__version__"]


def __getattr__(name: str):
    if name == "EmotionPredictor":
        from emo_lightning.inference.predictor import EmotionPredictor

        return EmotionPredictor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
