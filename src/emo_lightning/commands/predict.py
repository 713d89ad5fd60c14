"""`emo-predict` / `python predict.py`: predict emotions with a trained run, e.g.
`python predict.py run_dir=outputs/runs/<run> text="i miss my friends"`.

A whole file: `python predict.py run_dir=… input_file=texts.csv` writes texts.predictions.csv beside it.
"""

import hydra
from omegaconf import DictConfig

from emo_lightning.utils.errors import ConfigError


def print_predictions(predictor, texts: list[str], cfg: DictConfig) -> None:
    for prediction in predictor.predict(texts):
        print(prediction.text)
        shown = prediction.scores[: cfg.top_k]
        for name, prob in shown:
            print(f"  {name:<16} {prob:.3f}")
        if predictor.spec.multi_label:
            source = f"threshold {cfg.threshold}" if cfg.threshold is not None else "thresholds saved with the model"
            rule = " (or the most probable label)" if predictor.spec.at_least_one else ""
            decided = prediction.labels
            if cfg.top_k is not None:  # the decided labels among the k shown: the two lists agree
                decided = [label for label in decided if label in dict(shown)]
                rule += f", of the {cfg.top_k} best"
            print(f"  above {source}{rule}: {', '.join(decided) or '(none)'}")


def check_settings(cfg: DictConfig) -> None:
    """The settings predict.py reads, checked before the model loads: one line naming the problem and the fix."""
    from emo_lightning.utils.config import read_value
    from emo_lightning.utils.rules import PREDICT, check_values

    check_values(cfg, PREDICT, read=read_value)
    if bool(cfg.text or cfg.texts) == bool(cfg.input_file):
        raise ConfigError('give text="..." / texts=["...","..."], or input_file=<file> (one of them)')
    if cfg.input_file:
        from emo_lightning.inference.files import planned_output_file  # reading tables needs `datasets`

        planned_output_file(cfg.input_file, cfg.output_file, cfg.overwrite)


def print_file_summary(result) -> None:
    print(f"wrote {result.rows} rows with predictions to {result.output_file}")
    for name, count in result.label_counts.most_common():
        print(f"  {name:<16} {count:>7}  {count / max(result.rows, 1):6.1%}")


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    # imported here, after Hydra parsed the command line (fast --help and errors); nothing below imports Lightning
    from emo_lightning.cli.runner import exit_on_bad_input
    from emo_lightning.inference.predictor import EmotionPredictor

    texts = ([cfg.text] if cfg.text else []) + list(cfg.texts)
    with exit_on_bad_input():  # one line and exit 2 for bad input, before anything is written
        check_settings(cfg)  # before the model loads (seconds)
        predictor = EmotionPredictor.from_run(
            cfg.run_dir, cfg.batch_size, cfg.precision, cfg.threshold, backend=cfg.backend
        )
        if cfg.input_file:
            from emo_lightning.inference.files import predict_file  # reading tables needs `datasets`

            result = predict_file(
                predictor, cfg.input_file, cfg.output_file, cfg.text_column, cfg.delimiter, cfg.encoding, cfg.overwrite
            )
    if cfg.input_file:
        print_file_summary(result)
    else:
        print_predictions(predictor, texts, cfg)


def run() -> None:
    from emo_lightning.cli.pages import help_on_request
    from emo_lightning.cli.runner import run_cli

    help_on_request("predict.py")  # --help: the page of conf/ for people (Hydra's own: --hydra-help)
    run_cli(main)
