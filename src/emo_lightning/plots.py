"""PNG figures of a run in its plots/ folder: training curves, per-label F1, reliability diagrams, multi-label
precision-recall curves, single-label confusion matrices; sent to W&B and TensorBoard with the top errors."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch

from emo_lightning.evaluation import Evaluation
from emo_lightning.utils.atomic import atomic_path

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
        """per_label_f1.png, reliability_<stage>.png, and pr_curves_<stage>.png (multi-label) or confusion_<stage>.png
        (single-label); also to `loggers` that take images. `multi_label` None: single-label where there are
        confusion counts."""
        from emo_lightning.analysis.figures import plot_pr_curves  # here: figures imports this module

        multi_label = not evaluation.confusion if multi_label is None else multi_label
        self.dirpath.mkdir(parents=True, exist_ok=True)
        cut = " at the validation-tuned thresholds" if evaluation.thresholds is not None else ""
        figures = [self.dirpath / "per_label_f1.png"]
        plot_per_label_f1(evaluation.per_label, figures[0], title=f"per-label F1{cut}")
        for stage, counts in evaluation.confusion.items():
            figures.append(self.dirpath / f"confusion_{stage}.png")
            plot_confusion(counts, label_names, figures[-1], title=f"{stage}: true vs predicted")
        for stage, out in evaluation.outputs.items():
            if multi_label:
                figures.append(self.dirpath / f"pr_curves_{stage}.png")
                title = (
                    f"{stage}: precision-recall per label, calibrated probabilities (dot: the run's decisions, at t)"
                )
                plot_pr_curves(out.probs, out.gold, out.pred, label_names, figures[-1], title, evaluation.thresholds)
            figures.append(self.dirpath / f"reliability_{stage}.png")
            plot_stage_reliability(evaluation, stage, multi_label, figures[-1])
        publish(loggers, figures)
        log.info("plots in %s", self.dirpath)


def uncalibrated(probs: torch.Tensor, temperatures: list[float], multi_label: bool) -> torch.Tensor:
    """The probabilities before temperature scaling, recovered from the calibrated ones: sigmoid(logit(p) · T)
    per label, or softmax(log(p) · T) (exact up to float rounding: log p is the scaled logits up to a shift)."""
    scale = torch.tensor(temperatures, dtype=torch.float64)
    p = probs.double()
    if multi_label:
        return torch.sigmoid(torch.logit(p.clamp(1e-12, 1 - 1e-12)) * scale)
    return torch.softmax(p.clamp_min(1e-300).log() * scale, dim=1)


def plot_stage_reliability(evaluation: Evaluation, stage: str, multi_label: bool, path: Path) -> None:
    """reliability_<stage>.png: the calibrated probabilities (and the uncalibrated ones, where temperatures were
    fitted); the top-label confidence (single-label) or every (text, label) probability pooled (multi-label)."""
    from emo_lightning.analysis.figures import plot_reliability
    from emo_lightning.models.calibration import ECE_BINS

    out = evaluation.outputs[stage]
    if evaluation.temperatures is not None:
        versions = {
            "calibrated": out.probs,
            "uncalibrated": uncalibrated(out.probs, evaluation.temperatures, multi_label),
        }
    else:
        versions = {"probabilities": out.probs}
    curves = {}
    for name, probs in versions.items():
        if multi_label:
            curves[name] = (probs.flatten().tolist(), out.gold.flatten().tolist())
        else:
            confidence, top = probs.max(dim=1)
            curves[name] = (confidence.tolist(), out.gold.gather(1, top.unsqueeze(1)).squeeze(1).tolist())
    metrics = evaluation.metrics
    what = "all (text, label) probabilities pooled" if multi_label else "top-label confidence"
    title = f"{stage}: reliability, {what}"
    if f"{stage}/ece" in metrics and f"{stage}/ece_calibrated" in metrics:
        kind = "mean per-label ECE" if multi_label else "ECE"
        before, after = metrics[f"{stage}/ece"], metrics[f"{stage}/ece_calibrated"]
        title += f"\n{kind}: {before:.3f} uncalibrated → {after:.3f} calibrated"
    xlabel = "predicted probability" if multi_label else "confidence (top-label probability)"
    ylabel = "share of them that are gold labels" if multi_label else "accuracy"
    plot_reliability(curves, ECE_BINS, path, title, xlabel, ylabel, log_counts=multi_label)


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

    from emo_lightning.analysis.errors import ERROR_COLUMNS, markdown_table

    shown = rows[:top]
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.log_table(key="errors", columns=ERROR_COLUMNS, data=[[r[c] for c in ERROR_COLUMNS] for r in shown])
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_text("errors", markdown_table(shown[:50]))
            logger.experiment.flush()


def save_figure(fig, path: Path) -> None:
    """Write `fig` as PNG under a temporary name beside `path`, then rename: never a half-written figure."""
    with atomic_path(path) as temporary:
        fig.savefig(temporary, dpi=110, format="png")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    return plt


def plot_curves(train_loss: list[tuple[int, float]], validations: list[dict[str, float]], path: Path) -> None:
    """Left: training loss per step (raw and smoothed) and validation loss; right: validation metrics.

    `validations` holds one dict per validation run, with its `step` and the `val/...` values logged then.
    """
    plt = _pyplot()
    fig, (loss_ax, metric_ax) = plt.subplots(1, 2, figsize=(11, 4))
    if train_loss:
        steps, losses = zip(*train_loss)
        window = max(1, len(losses) // 50)
        if window == 1:
            loss_ax.plot(steps, losses, color="C0", label="train")
        else:
            smoothed = torch.tensor(losses).unfold(0, window, 1).mean(1).tolist()
            loss_ax.plot(steps, losses, color="C0", alpha=0.25, linewidth=0.8)
            loss_ax.plot(steps[window - 1 :], smoothed, color="C0", label=f"train (mean of {window} steps)")
    val_steps = [v["step"] for v in validations]
    if any("val/loss" in v for v in validations):
        loss_ax.plot(val_steps, [v.get("val/loss") for v in validations], "o-", color="C1", label="validation")
    loss_ax.set(title="loss", xlabel="optimizer step")
    loss_ax.legend(fontsize=8)
    names = sorted({k for v in validations for k in v if k.startswith("val/") and k != "val/loss"})
    for i, name in enumerate(names):
        metric_ax.plot(val_steps, [v.get(name) for v in validations], "o-", color=f"C{i % 10}", label=name)
    metric_ax.set(title="validation metrics", xlabel="optimizer step")
    if names:
        metric_ax.legend(fontsize=7)
    for ax in (loss_ax, metric_ax):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_per_label_f1(per_label: dict[str, dict[str, float]], path: Path, title: str = "per-label F1") -> None:
    """Horizontal bars per label and split (val, test), labels ordered by the last split's F1, best on top."""
    plt = _pyplot()
    stages = list(per_label)
    labels = sorted(per_label[stages[-1]], key=lambda name: per_label[stages[-1]][name])
    height = 0.8 / len(stages)
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(labels) * len(stages) + 1.2))
    for i, stage in enumerate(stages):
        positions = [j + i * height for j in range(len(labels))]
        ax.barh(positions, [per_label[stage][name] for name in labels], height=height, label=stage)
    ax.set_yticks([j + height * (len(stages) - 1) / 2 for j in range(len(labels))], labels, fontsize=8)
    ax.set(xlim=(0, 1), xlabel="F1", title=title)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_confusion(counts: torch.Tensor, label_names: list[str], path: Path, title: str = "confusion") -> None:
    """Rows: the true label, normalized to 1; each cell shows its share and its count."""
    plt = _pyplot()
    shares = counts.float() / counts.sum(1, keepdim=True).clamp(min=1)
    size = 1.2 + 0.7 * len(label_names)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (row, col), count in zip(
        torch.cartesian_prod(*[torch.arange(len(label_names))] * 2).tolist(), counts.flatten()
    ):
        color = "white" if shares[row, col] > 0.6 else "black"
        ax.text(col, row, f"{shares[row, col]:.2f}\n{int(count)}", ha="center", va="center", fontsize=7, color=color)
    ticks = range(len(label_names))
    ax.set_xticks(ticks, label_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(ticks, label_names, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
