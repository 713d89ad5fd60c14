"""Hydra sweeper `hydra/sweeper=emo_optuna`: an Optuna study over a search space, trials run by Hydra's launcher."""
