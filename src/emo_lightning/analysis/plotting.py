"""Matplotlib for files: the headless pyplot, and PNGs written whole or not at all."""

from __future__ import annotations

from pathlib import Path

from emo_lightning.utils.atomic import atomic_path


def save_figure(fig, path: Path) -> None:
    """Write `fig` as PNG under a temporary name beside `path`, then rename: never a half-written figure."""
    with atomic_path(path) as temporary:
        fig.savefig(temporary, dpi=110, format="png")


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    return plt
