"""The configs every command composes (Hydra reads them from this package: `pkg://emo_lightning.conf`)."""
