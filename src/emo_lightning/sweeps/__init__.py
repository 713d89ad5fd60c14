"""Sweeps of many runs: the Optuna search space and study (`study`), trial pruning (`pruning`), the summary of a
multirun's jobs (`summary`, also `python -m emo_lightning.sweeps`) and seed-noise tests (`significance`). The Hydra
sweeper plugin (`hydra_plugins.emo_optuna_sweeper`) is a thin shim over `study`.

May import evaluation, inference, models, data and utils; imported by training, train and cli.
"""
