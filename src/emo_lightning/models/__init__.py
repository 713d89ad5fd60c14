"""The network and its training system: backbones, heads, losses, metrics, thresholds, calibration, optimizer
groups and step levers, and the model folder a run exports (`folder`, its card in `card`).

May import utils only (never data); imported by every layer above it.
"""
