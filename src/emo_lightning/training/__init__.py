"""What a training run needs around Lightning's loop: checkpoints that survive kills (`checkpointing`), DDP jobs
launched from Hydra jobs (`distributed`), the loggers (`loggers`), early stopping that survives a resume
(`stopping`).

May import sweeps, analysis, serving, evaluation, inference, models, data and utils; imported by `train` and `cli`.
"""
