"""`emo-evaluate` / `python evaluate.py`: score a trained run on any labelled data, e.g.
`python evaluate.py run_dir=outputs/runs/<run> data=go_emotions`.

Your own file: `python evaluate.py run_dir=… data=files data.test_file=theirs.csv data.label_column=label`. The run's
model folder (thresholds, calibration, backends) is scored under the names of its metrics.json; labels are matched
by name (labels.map / labels.unknown / labels.missing for a mismatch). Writes outputs/evaluate/<run>_<data>_<time>/:
metrics.json, predictions/<split>.csv, summary.md.
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from emo_lightning.analysis.tasks import output_subject

OmegaConf.register_new_resolver("analysis_subject", output_subject, replace=True)  # names the output folder


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from emo_lightning.cli.runner import exit_on_bad_input  # imported after Hydra parsed the command line
    from emo_lightning.utils.console import quiet_libraries

    quiet_libraries()
    # one line and exit 2 for bad input, before anything is written; the folder Hydra made for the job goes
    with exit_on_bad_input(Path(cfg.paths.output_dir)):
        from emo_lightning.analysis.evaluate_data import run_evaluate

        data = HydraConfig.get().runtime.choices.get("data")
        summary = run_evaluate(cfg, Path(cfg.paths.output_dir), data)
    sys.stdout.write(f"wrote {summary}\n")


def run() -> None:
    from emo_lightning.cli.pages import help_on_request
    from emo_lightning.cli.runner import run_cli

    help_on_request("evaluate.py")  # --help: the page of conf/ for people (Hydra's own: --hydra-help)
    run_cli(main)
