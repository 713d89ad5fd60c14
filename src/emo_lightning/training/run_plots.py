"""The `RunPlots` callback: a run's figures in its plots/ folder (`run_figures`), sent to W&B and TensorBoard with
the top of errors.csv."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch

from emo_lightning.analysis.run_figures import evaluation_figures, plot_curves
from emo_lightning.evaluation.splits import Evaluation

log = logging.getLogger(__name__)


class RunPlots(L.Callback):
    """Records the training loss per step and validation metrics per validation during fit; draws curves.png at
    the end of fit and, from the final evaluation, per_label_f1.png, reliability_<stage>.png and
    pr_curves_<stage>.png (multi-label) or confusion_<stage>.png (single-label)."""

    def __init__(self, dirpath: str | Path) -> None:
        self.dirpath = Path(dirpath)
        self.train_loss: list[torch.Tensor] = []  # kept on the device; read once at the end (no per-step sync)
        self.train_steps: list[int] = []
        self.validations: list[dict[str, float]] = []

    def state_dict(self) -> dict:
        """The curves so far (saved in checkpoints, so a resumed run draws the whole run)."""
        losses = torch.stack(self.train_loss).float().cpu().tolist() if self.train_loss else []
        return {"train_loss": losses, "train_steps": list(self.train_steps), "validations": list(self.validations)}

    def load_state_dict(self, state_dict: dict) -> None:
        self.train_loss = [torch.tensor(loss) for loss in state_dict.get("train_loss", [])]
        self.train_steps = list(state_dict.get("train_steps", []))
        self.validations = list(state_dict.get("validations", []))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None:
            self.train_loss.append(loss.detach())
            self.train_steps.append(trainer.global_step)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        logged = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        self.validations.append({"step": trainer.global_step, **logged})

    def on_fit_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        self.dirpath.mkdir(parents=True, exist_ok=True)
        losses = torch.stack(self.train_loss).float().cpu().tolist() if self.train_loss else []
        plot_curves(list(zip(self.train_steps, losses)), self.validations, self.dirpath / "curves.png")
        publish(trainer.loggers, [self.dirpath / "curves.png"])

    def evaluation(
        self, evaluation: Evaluation, label_names: list[str], loggers: list = (), multi_label: bool | None = None
    ) -> None:
        """The final evaluation's figures (`evaluation_figures`) in the plots folder, and to `loggers` that take
        images. `multi_label` None: single-label where there are confusion counts."""
        multi_label = not evaluation.confusion if multi_label is None else multi_label
        publish(loggers, evaluation_figures(evaluation, label_names, multi_label, self.dirpath))
        log.info("plots in %s", self.dirpath)


def publish(loggers: list, figures: list[Path]) -> None:
    """Send PNG files to the loggers that take images: W&B (`plots/<name>`, an image panel beside the metrics) and
    TensorBoard (`plots/<name>` in its Images tab)."""
    from lightning.pytorch.loggers import TensorBoardLogger

    for logger in loggers:
        if hasattr(logger, "log_image"):
            for figure in figures:
                logger.log_image(key=f"plots/{figure.stem}", images=[str(figure)])
        elif isinstance(logger, TensorBoardLogger):
            from matplotlib.image import imread

            for figure in figures:
                pixels = (imread(figure)[..., :3] * 255).round().astype("uint8")  # RGBA floats in [0, 1]
                logger.experiment.add_image(f"plots/{figure.stem}", pixels, dataformats="HWC")
            logger.experiment.flush()


def publish_errors(loggers: list, rows: list[dict], top: int = 200) -> None:
    """The `top` rows of errors.csv to W&B (table `errors`) and TensorBoard (Markdown text `errors`)."""
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    from emo_lightning.evaluation.error_rows import ERROR_COLUMNS, markdown_table

    shown = rows[:top]
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.log_table(key="errors", columns=ERROR_COLUMNS, data=[[r[c] for c in ERROR_COLUMNS] for r in shown])
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_text("errors", markdown_table(shown[:50]))
            logger.experiment.flush()
