"""`task=umap`: a 2-D UMAP map of frozen training features, one hexbin panel per label (where its texts lie)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
from omegaconf import DictConfig
from sklearn.preprocessing import MinMaxScaler

from emo_lightning.analysis.features import POOLINGS, load_datamodule, split_features
from emo_lightning.analysis.plotting import pyplot, save_figure
from emo_lightning.data.encoding import LABELS
from emo_lightning.utils.atomic import atomic_write_text, refuse_to_overwrite
from emo_lightning.utils.errors import ConfigError
from emo_lightning.utils.rules import ANALYZE, check_value, check_values

log = logging.getLogger(__name__)

SUMMARY = "umap.md"
FIGURE = "umap.png"
COLOUR_MAPS = ("Greys", "Blues", "Oranges", "Reds", "Purples", "Greens", "YlOrBr", "PuRd", "BuGn", "GnBu", "OrRd")


def run_umap(cfg: DictConfig, output_dir: Path) -> Path:
    """Map a seeded sample of `cfg.data`'s training features to 2-D; write umap.png and umap.md, return the md."""
    output_dir = Path(output_dir)
    settings = cfg.umap
    check_settings(settings, cfg.baseline.batch_size)
    refuse_to_overwrite(output_dir, (SUMMARY, FIGURE), "a UMAP map")
    datamodule = load_datamodule(cfg)
    total = len(datamodule.tokenized["train"])
    if total <= settings.n_neighbors:
        raise ConfigError(
            f"umap.n_neighbors={settings.n_neighbors} needs more training texts than that ({total} here): "
            f"set umap.n_neighbors below {total}"
        )
    features = split_features(cfg, datamodule, [settings.pooling], ["train"])["train"][settings.pooling].numpy()
    sample = np.random.default_rng(cfg.seed).permutation(total)[: settings.max_points]
    sample.sort()
    names, multi_label = list(datamodule.label_names), datamodule.multi_label
    carries = label_matrix(np.asarray(datamodule.labeled.splits["train"][LABELS])[sample], len(names), multi_label)
    log.info("umap: mapping %d of %d training texts", len(sample), total)
    points = embed(features[sample], settings, cfg.seed)

    output_dir.mkdir(parents=True, exist_ok=True)
    title = f"{datamodule.name}: UMAP of frozen {settings.pooling}-pooled features, texts of each label"
    plot_label_panels(points, carries, names, int(settings.gridsize), output_dir / FIGURE, title)
    summary = output_dir / SUMMARY
    atomic_write_text(summary, summary_markdown(datamodule.name, cfg, len(sample), total, carries, names))
    log.info("umap: %s and %s in %s", FIGURE, SUMMARY, output_dir)
    return summary


def check_settings(settings: DictConfig, batch_size: int) -> None:
    """One-line errors for bad `umap.*` values, before any data is read."""
    if settings.pooling not in POOLINGS:
        raise ConfigError(f"umap.pooling={settings.pooling} is not known: use umap.pooling=mean or umap.pooling=cls")
    check_values(settings, ANALYZE, under="umap")
    if int(settings.max_points) <= int(settings.n_neighbors):
        raise ConfigError(
            f"umap.max_points={settings.max_points} must exceed umap.n_neighbors={settings.n_neighbors}: "
            "e.g. umap.max_points=20000"
        )
    check_value("baseline.batch_size", batch_size, ANALYZE)


def label_matrix(labels: np.ndarray, num_labels: int, multi_label: bool) -> np.ndarray:
    """Boolean (texts, labels): which labels each text carries."""
    if multi_label:
        return labels.astype(bool)
    return np.eye(num_labels, dtype=bool)[labels.astype(int)]


def embed(features: np.ndarray, settings: DictConfig, seed: int) -> np.ndarray:
    """(texts, 2) UMAP coordinates of min-max scaled features (cosine distances), seeded."""
    import umap  # numba compiles on first import (seconds): only this task pays for it

    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=int(settings.n_neighbors),
        min_dist=float(settings.min_dist),
        metric="cosine",
        random_state=seed,
        n_jobs=1,  # a seeded UMAP runs on one thread anyway; saying so keeps umap from warning about it
    )
    return reducer.fit_transform(MinMaxScaler().fit_transform(features))


def plot_label_panels(
    points: np.ndarray, carries: np.ndarray, names: list[str], gridsize: int, path: Path, title: str
) -> None:
    """A grid of hexbin panels on one shared extent (the central 99% of the map), each the map of the texts carrying
    one label, titled with its count."""
    plt = pyplot()
    columns = min(len(names), 3 if len(names) <= 6 else 4 if len(names) <= 12 else 6)
    rows = math.ceil(len(names) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.0 * rows + 0.6), squeeze=False)
    low, high = np.percentile(points, [0.5, 99.5], axis=0)  # a few outliers would shrink the map to a corner
    low, high = low - 0.05 * (high - low), high + 0.05 * (high - low)
    extent = (low[0], high[0], low[1], high[1])
    inside = ((points >= low) & (points <= high)).all(axis=1)
    for i, ax in enumerate(axes.flat):
        if i >= len(names):
            ax.axis("off")
            continue
        chosen = points[carries[:, i] & inside]
        if len(chosen):
            cmap = COLOUR_MAPS[i % len(COLOUR_MAPS)]
            ax.hexbin(chosen[:, 0], chosen[:, 1], gridsize=gridsize, extent=extent, cmap=cmap, mincnt=1)
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_title(f"{names[i]} ({int(carries[:, i].sum())})", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=11)
    fig.supxlabel("UMAP 1")
    fig.supylabel("UMAP 2")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def summary_markdown(dataset: str, cfg: DictConfig, sampled: int, total: int, carries: np.ndarray, names) -> str:
    settings = cfg.umap
    counts = ", ".join(f"{name} {int(n)}" for name, n in zip(names, carries.sum(axis=0)))
    return "\n".join(
        [
            f"# UMAP: {dataset}",
            "",
            f"![UMAP map, one panel per label]({FIGURE})",
            "",
            f"{sampled} of {total} training texts (a sample seeded with seed={cfg.seed}), frozen "
            f"`{cfg.model.pretrained_model_name_or_path}` features ({settings.pooling} pooling), min-max scaled, "
            f"mapped by UMAP (cosine, n_neighbors={settings.n_neighbors}, min_dist={settings.min_dist}); "
            f"hexbins of {settings.gridsize} cells across, over the central 99% of the map (a few outliers would "
            "shrink it to a corner). Each panel is titled with its label's texts in the sample.",
            "",
            f"Texts per label in the sample: {counts}.",
            "",
            "Labels whose panels light up the same regions are ones the frozen encoder does not tell apart; a "
            "label with a region of its own is one a linear probe (task=baseline) can find.",
            "",
        ]
    )
