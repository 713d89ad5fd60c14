"""Fine-tune an encoder on an emotion dataset: `python train.py model=squeezebert data=go_emotions`."""

import logging
import sys

import hydra
from omegaconf import DictConfig

from emo_lightning.utils.errors import config_error_in


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from emo_lightning.train import train  # heavy imports after Hydra has parsed the command line

    for name in ("lightning.pytorch", "lightning.fabric"):  # one log line each, through Hydra's handlers
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True

    try:
        metrics = train(cfg)
    except Exception as err:
        config_error = config_error_in(err)
        if config_error is None:
            raise
        logging.getLogger("emo_lightning").error("error: %s", config_error)
        sys.exit(2)
    return metrics.get(cfg.optimized_metric) if cfg.optimized_metric else None


if __name__ == "__main__":
    main()
