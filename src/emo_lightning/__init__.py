"""emo-lightning: fine-tune any Hugging Face encoder to read emotions in text."""

__version__ = "0.1.0"
