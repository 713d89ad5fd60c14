"""Looking at a dataset and at frozen encoders before (and after) training: `python analyze.py task=…`.

May import evaluation, inference, models, data and utils; imported by training (the run's plots), the scripts
and cli.
"""
