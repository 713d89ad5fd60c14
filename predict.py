"""Predict emotions with a trained run: `python predict.py run_dir=outputs/runs/<run> text="i miss my friends"`."""

import sys

import hydra
from omegaconf import DictConfig

from emo_lightning.utils.errors import ConfigError, config_error_in


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    from emo_lightning.inference.predictor import EmotionPredictor

    texts = ([cfg.text] if cfg.text else []) + list(cfg.texts)
    try:
        if not texts:
            raise ConfigError('nothing to predict: give text="..." or texts=["...","..."]')
        predictor = EmotionPredictor.from_run(
            cfg.run_dir, batch_size=cfg.batch_size, precision=cfg.precision, threshold=cfg.threshold
        )
    except Exception as err:
        if config_error_in(err) is None:
            raise
        print(f"error: {config_error_in(err)}", file=sys.stderr)
        sys.exit(2)
    for prediction in predictor.predict(texts):
        print(prediction.text)
        for name, prob in prediction.scores[: cfg.top_k]:
            print(f"  {name:<16} {prob:.3f}")
        if predictor.spec.multi_label:
            source = f"threshold {cfg.threshold}" if cfg.threshold else "thresholds saved with the model"
            rule = " (or the most probable label)" if predictor.spec.at_least_one else ""
            print(f"  above {source}{rule}: {', '.join(prediction.labels) or '(none)'}")


if __name__ == "__main__":
    main()
