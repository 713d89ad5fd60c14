"""Looking at a dataset and at frozen encoders before (and after) training: `python analyze.py task=…`."""
