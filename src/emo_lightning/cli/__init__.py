"""The command line around the scripts: one-line errors and exit codes (`runner`), a job's failure record and
the multirun bookkeeping (`jobs`), `resume=` (`resume`), `--help` and its pages (`help`, `pages`).

Owns what happens between a shell command and `train(cfg)`. May import every layer below it (train, training,
sweeps, analysis, serving, evaluation, inference, models, data, utils); nothing imports it but the root scripts.
"""
