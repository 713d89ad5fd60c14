"""Scoring a trained network on whole splits through the inference engine: probabilities, tuned thresholds,
calibration and metrics (`splits`), the run's `predictions/` (`predictions`) and `errors.csv` rows (`error_rows`).

May import inference, models, data and utils (no Lightning loop, no Hydra); imported by train, training, analysis
and the scripts.
"""
