"""The figures of a training run: curves, per-label F1, confusion matrices (single-label), precision-recall curves
per label (multi-label) and reliability diagrams; drawn after training (`RunPlots`) and by `analyze.py task=errors`;
and the learning-rate finder's curve (`tune=lr_find`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from emo_lightning.analysis.plotting import pyplot, save_figure
from emo_lightning.evaluation.splits import Evaluation
from emo_lightning.models.calibration import uncalibrated


def evaluation_figures(
    evaluation: Evaluation, label_names: list[str], multi_label: bool, dirpath: Path, per_label: bool = True
) -> list[Path]:
    """Draw per_label_f1.png (`per_label`), and per stage reliability_<stage>.png and pr_curves_<stage>.png
    (multi-label) or confusion_<stage>.png (single-label) into `dirpath`; return their paths."""
    dirpath.mkdir(parents=True, exist_ok=True)
    figures = []
    if per_label:
        cut = " at the validation-tuned thresholds" if evaluation.tuned else ""
        figures.append(dirpath / "per_label_f1.png")
        plot_per_label_f1(evaluation.per_label, figures[-1], title=f"per-label F1{cut}")
    for stage, out in evaluation.outputs.items():
        if stage in evaluation.confusion:
            figures.append(dirpath / f"confusion_{stage}.png")
            plot_confusion(evaluation.confusion[stage], label_names, figures[-1], title=f"{stage}: true vs predicted")
        if multi_label:
            figures.append(dirpath / f"pr_curves_{stage}.png")
            title = f"{stage}: precision-recall per label, calibrated probabilities (dot: the run's decisions, at t)"
            plot_pr_curves(out.probs, out.gold, out.pred, label_names, figures[-1], title, evaluation.thresholds)
        figures.append(dirpath / f"reliability_{stage}.png")
        plot_stage_reliability(evaluation, stage, multi_label, figures[-1])
    return figures


def plot_stage_reliability(evaluation: Evaluation, stage: str, multi_label: bool, path: Path) -> None:
    """reliability_<stage>.png: the calibrated probabilities (and the uncalibrated ones, where temperatures were
    fitted); the top-label confidence (single-label) or every (text, label) probability pooled (multi-label)."""
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
    plot_reliability(curves, ECE_BINS, path, title, xlabel, ylabel, log_counts=True)  # the top bin dwarfs the rest


def plot_curves(train_loss: list[tuple[int, float]], validations: list[dict[str, float]], path: Path) -> None:
    """Left: training loss per step (raw and smoothed) and validation loss; right: validation metrics.

    `validations` holds one dict per validation run, with its `step` and the `val/...` values logged then.
    """
    plt = pyplot()
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


def plot_lr_find(
    rates: list[float], losses: list[float], suggestion: float | None, configured: float, log_x: bool, path: Path
) -> None:
    """The learning-rate finder's smoothed training loss against the rate it stepped at, the suggested rate marked
    (a red point and a line) beside the rate the config had (a dashed line)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(rates, losses, color="C0", label="training loss (smoothed)")
    if log_x:
        ax.set_xscale("log")
    ax.axvline(configured, color="0.4", linestyle="--", linewidth=1, label=f"config: optimizer.lr={configured:g}")
    title = "learning-rate finder: no suggestion (too few finite losses)"
    if suggestion is not None:
        at = min(range(len(rates)), key=lambda i: abs(rates[i] - suggestion))
        ax.axvline(suggestion, color="C3", linewidth=1)
        ax.plot([rates[at]], [losses[at]], "o", color="C3", markersize=8, label=f"suggested: {suggestion:g}")
        title = f"learning-rate finder: suggests optimizer.lr={suggestion:g} (steepest descent)"
    ax.set(title=title, xlabel="learning rate (optimizer.lr; layer-decayed groups below it)", ylabel="loss")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_per_label_f1(per_label: dict[str, dict[str, float]], path: Path, title: str = "per-label F1") -> None:
    """Horizontal bars per label and split (val, test), labels ordered by the last split's F1, best on top."""
    plt = pyplot()
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
    plt = pyplot()
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


def plot_pr_curves(
    probs, gold, pred, names: list[str], path: Path, title: str, thresholds: list[float] | None = None
) -> None:
    """Small multiples, one per label: its precision-recall curve, average precision in the title, and the point of
    the run's decisions `pred` (at the tuned `thresholds`, when given) marked."""
    from torchmetrics.functional.classification import binary_average_precision, binary_precision_recall_curve

    plt = pyplot()
    cols = min(7, len(names))
    rows = -(-len(names) // cols)
    width, height = 2.3 * cols, 2.3 * rows + 0.6
    fig, axes = plt.subplots(rows, cols, figsize=(width, height), sharex=True, sharey=True, squeeze=False)
    # fixed ticks and margins: tick finding and tight_layout over 28 panels took most of the figure's seconds
    axes[0, 0].set_xticks([0, 0.5, 1])
    axes[0, 0].set_yticks([0, 0.5, 1])
    fig.subplots_adjust(
        left=0.6 / width, right=1 - 0.15 / width, bottom=0.5 / height, top=1 - 0.85 / height, wspace=0.12, hspace=0.42
    )
    for i, ax in enumerate(axes.flat):
        if i >= len(names):  # an empty cell of the last row: the cell above shows the recall axis
            ax.set_visible(False)
            axes.flat[i - cols].tick_params(labelbottom=True)
            axes.flat[i - cols].set_xlabel("recall", fontsize=8)
            continue
        scores, targets = probs[:, i].float().contiguous(), gold[:, i].long()
        positives = int(targets.sum())
        if positives == 0:
            ax.set_title(f"{names[i]}\n(no gold texts)", fontsize=8)
        else:
            precision, recall, _ = binary_precision_recall_curve(scores, targets)
            ap = float(binary_average_precision(scores, targets))
            ax.plot(recall.numpy(), precision.numpy(), color="C0", linewidth=1)
            decided = pred[:, i].bool()
            hits = int((decided & targets.bool()).sum())
            ax.plot(hits / positives, hits / max(int(decided.sum()), 1), "o", color="C3", markersize=4)
            cut = f", t={thresholds[i]:.2f}" if thresholds is not None else ""
            ax.set_title(f"{names[i]}\nAP {ap:.2f}, {positives} gold{cut}", fontsize=8)
        ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes[-1][: len(names) - cols * (rows - 1)]:
        ax.set_xlabel("recall", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("precision", fontsize=8)
    fig.suptitle(title, fontsize=10, y=1 - 0.12 / height, va="top")
    save_figure(fig, path)
    plt.close(fig)


def reliability_points(confidence, correct, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Per equal-width bin of `confidence`: mean confidence, share correct, count; and the ECE (count-weighted)."""
    confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=float)
    index = np.clip((confidence * bins).astype(int), 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    shown = np.maximum(counts, 1)
    mean_confidence = np.bincount(index, confidence, bins) / shown
    accuracy = np.bincount(index, correct, bins) / shown
    ece = float((counts * np.abs(accuracy - mean_confidence)).sum() / max(counts.sum(), 1))
    return mean_confidence, accuracy, counts, ece


def plot_reliability(
    curves: dict[str, tuple], bins: int, path: Path, title: str, xlabel: str, ylabel: str, log_counts: bool
) -> None:
    """Reliability diagram: per bin of confidence, the share correct (curve name → (confidence, correct)), the
    diagonal of a calibrated model; below, the examples per bin (of the first curve). ECE of each in the legend."""
    plt = pyplot()
    fig, (ax, count_ax) = plt.subplots(
        2, 1, figsize=(6, 6.2), sharex=True, gridspec_kw={"height_ratios": [3, 1]}, squeeze=True
    )
    ax.plot([0, 1], [0, 1], "--", color="gray", linewidth=1, label="calibrated (diagonal)")
    edges = np.linspace(0, 1, bins + 1)
    for i, (name, (confidence, correct)) in enumerate(curves.items()):
        mean_confidence, accuracy, counts, ece = reliability_points(confidence, correct, bins)
        filled = counts > 0
        ax.plot(
            mean_confidence[filled],
            accuracy[filled],
            "o-",
            color=f"C{i}",
            markersize=4,
            label=f"{name} (ECE of these bins {ece:.3f})",
        )
        if i == 0:
            count_ax.bar(edges[:-1], counts, width=1 / bins, align="edge", color=f"C{i}", alpha=0.7, edgecolor="white")
    ax.set(xlim=(0, 1), ylim=(0, 1), ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    if log_counts:
        from matplotlib.ticker import NullFormatter

        count_ax.set_yscale("log")
        count_ax.yaxis.set_minor_formatter(NullFormatter())
    count_ax.set(xlabel=xlabel, ylabel=f"{next(iter(curves))}\nexamples" + (" (log)" if log_counts else ""))
    count_ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
