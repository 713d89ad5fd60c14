"""`emo-export` / `python export.py`: export a trained run to ONNX, e.g.
`python export.py run_dir=outputs/runs/<run> format=onnx|onnx-int8`.

Writes <run>/onnx/ (model.onnx, model.int8.onnx for onnx-int8, classifier.json, tokenizer, parity.json) only after
the exported model predicted what the PyTorch model does on the run's validation texts.
"""

import sys

import hydra
from omegaconf import DictConfig, ListConfig, OmegaConf


@hydra.main(version_base="1.3", config_path="../conf", config_name="export")
def main(cfg: DictConfig) -> None:
    from emo_lightning.cli.runner import exit_on_bad_input
    from emo_lightning.utils.console import quiet_libraries

    quiet_libraries()  # one line a step (export, optimize, parity, speed): no weight-loading bar
    with exit_on_bad_input():  # one line and exit 2 for bad input or a failed parity check; nothing is left written
        from emo_lightning.inference.onnx_export import export_run  # needs the [export] extra

        report = export_run(
            cfg.run_dir,
            cfg.format,
            optimize=cfg.optimize,
            max_int8_drop=cfg.max_int8_drop,
            parity_texts=OmegaConf.to_object(texts) if isinstance(texts := cfg.parity_texts, ListConfig) else texts,
            batch_size=cfg.batch_size,
            measure_speed=cfg.measure_speed,
        )
    sys.stdout.write(f"wrote {cfg.run_dir}/onnx ({report['format']})\n")  # each step's figures are logged above


def run() -> None:
    from emo_lightning.cli.pages import help_on_request
    from emo_lightning.cli.runner import run_cli

    help_on_request("export.py")  # --help: the page of conf/ for people (Hydra's own: --hydra-help)
    run_cli(main)
