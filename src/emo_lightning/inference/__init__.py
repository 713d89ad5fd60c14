"""One inference path for every consumer (evaluation, prediction, export checks, serving): the engine, its
backends (torch, ONNX Runtime, OpenVINO), the export and the predictor.

May import models, data and utils; imports no Lightning, Hydra or OmegaConf, no training, evaluation or analysis.
"""
