"""The PNG figures of `task=explore`: label frequency, text lengths per label, label co-occurrence, labels per text."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emo_lightning.analysis.plotting import pyplot, save_figure


def percent():
    """A tick formatter showing shares (0..1) as percentages."""
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(1.0)


def label_fontsize(count: int) -> int:
    """Tick font size that keeps `count` label names apart."""
    return 9 if count <= 12 else 7


def plot_label_frequency(counts: dict[str, list[float]], sizes: dict[str, int], names: list[str], path: Path) -> None:
    """Horizontal bars per label and split: the share of the split's texts with that label, most frequent on top
    (by train); shares, not counts, so that splits of different sizes compare."""
    plt = pyplot()
    splits = list(counts)
    order = sorted(range(len(names)), key=lambda i: counts[splits[0]][i])
    height = 0.8 / len(splits)
    fig, ax = plt.subplots(figsize=(8, min(0.25 * len(splits), 0.5) * len(names) + 1.6))
    for s, split in enumerate(splits):
        shares = [counts[split][i] / max(sizes[split], 1) for i in order]
        positions = [j + s * height for j in range(len(names))]
        ax.barh(positions, shares, height=height, label=f"{split} ({sizes[split]:,} texts)")
    ax.set_yticks([j + height * (len(splits) - 1) / 2 for j in range(len(names))], [names[i] for i in order])
    ax.tick_params(axis="y", labelsize=label_fontsize(len(names)))
    ax.margins(y=0.01)
    ax.xaxis.set_major_formatter(percent())
    ax.set(xlabel="share of the split's texts with the label", ylabel="label", title="label frequency per split")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_text_lengths(words: dict[str, list[int]], tokens: dict[str, list[int]], path: Path, split: str) -> None:
    """Two panels of horizontal box plots, one box per label: the length of its texts in words and in tokens."""
    plt = pyplot()
    names = [name for name in words if words[name]]
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.3 * len(names) + 1.8), sharey=True)
    for ax, lengths, unit in zip(axes, (words, tokens), ("words", "tokens")):
        ax.boxplot([lengths[name] for name in names], vert=False, flierprops={"markersize": 2, "alpha": 0.4})
        ax.set(xlabel=f"text length in {unit}" + cut_axis(ax, lengths), title=f"{split}: {unit} per text, by label")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(1, len(names) + 1), names)
    axes[0].invert_yaxis()  # the first label on top
    axes[0].tick_params(axis="y", labelsize=label_fontsize(len(names)))
    axes[0].set_ylabel("label")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def cut_axis(ax, lengths: dict[str, list[int]]) -> str:
    """Cut the x axis short of a few extreme lengths (that would squeeze every box); say so in the axis label."""
    values = np.concatenate([np.asarray(v) for v in lengths.values() if v])
    right = max(float(np.percentile(values, 99.9)) * 1.2, 1.0)
    if values.max() <= right:
        return ""
    ax.set_xlim(left=0, right=right)
    return f" (cut at {right:.0f}; {int((values > right).sum())} longer, up to {int(values.max())})"


def plot_cooccurrence(matrix: np.ndarray, names: list[str], path: Path, split: str) -> None:
    """Heatmap: row label → the share of its texts that also carry the column label (the diagonal is left blank);
    shares are written in the cells where the labels are few enough to read them."""
    plt = pyplot()
    matrix = np.asarray(matrix, dtype=float)
    shares = matrix / np.maximum(np.diag(matrix), 1)[:, None]
    np.fill_diagonal(shares, np.nan)
    size = 2.5 + 0.32 * len(names)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=max(np.nanmax(shares, initial=0), 0.01))
    if len(names) <= 12:
        for row in range(len(names)):
            for col in range(len(names)):
                if row != col:
                    color = "white" if shares[row, col] > 0.6 * np.nanmax(shares) else "black"
                    ax.text(col, row, f"{shares[row, col]:.2f}", ha="center", va="center", fontsize=7, color=color)
    fontsize = label_fontsize(len(names))
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=fontsize)
    ax.set_yticks(range(len(names)), names, fontsize=fontsize)
    ax.set(xlabel="also has this label", ylabel="texts with this label", title=f"{split}: label co-occurrence")
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the row label's texts")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_labels_per_text(per_split: dict[str, dict[int, int]], path: Path) -> None:
    """Bars per split: the share of its texts that carry 0, 1, 2, … labels."""
    plt = pyplot()
    splits = list(per_split)
    counts = sorted({k for hist in per_split.values() for k in hist})
    width = 0.8 / len(splits)
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(counts) + 2), 4))
    for s, split in enumerate(splits):
        total = max(sum(per_split[split].values()), 1)
        shares = [per_split[split].get(k, 0) / total for k in counts]
        ax.bar([j + s * width for j in range(len(counts))], shares, width=width, label=f"{split} ({total:,} texts)")
    ax.set_xticks([j + width * (len(splits) - 1) / 2 for j in range(len(counts))], [str(k) for k in counts])
    ax.yaxis.set_major_formatter(percent())
    ax.set(xlabel="labels on the text", ylabel="share of the split's texts", title="labels per text")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
