"""A training run around Lightning's loop: `setup` (data, module, callbacks, loggers and Trainer from the config,
and the checks before fit), `finish` (one evaluation after fit through the inference engine, and the run's
artifacts), checkpoints that survive kills (`checkpointing`), DDP jobs launched from Hydra jobs (`distributed`),
the loggers (`loggers`), early stopping that survives a resume (`stopping`), the run's figures (`run_plots`).

May import sweeps, analysis, serving, evaluation, inference, models, data and utils; imported by `train` and `cli`.
"""
