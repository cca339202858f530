"""TensorBoard extras for a classifier: the validation confusion matrix as an image at each evaluation.

Rows are the true labels, columns the predicted ones, in the label
vocabulary's order; each row is normalised by its count, so the diagonal reads
as per-class recall whatever the class sizes (the counts themselves are in
eval_<split>.json's `confusion_matrix`). Drawn with matplotlib, like the
attention heatmaps of attention_images.py, and logged through the run's
MetricsLog as `validation/confusion_matrix`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

MAX_LABELS = 80  # more labels are drawn without per-label tick labels
TAG = "validation/confusion_matrix"


def render(counts: np.ndarray, names: Sequence[str], title: str = "") -> np.ndarray:
    """counts [L, L] (true x predicted) -> an RGB image [height, width, 3] uint8, rows normalised."""
    import matplotlib  # noqa: PLC0415 - only runs that log images need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    counts = np.asarray(counts, np.float64)
    rates = counts / np.maximum(counts.sum(1, keepdims=True), 1.0)
    n = len(names)
    size = min(max(4.0, 0.18 * n + 2.5), 18.0)
    fig, ax = plt.subplots(figsize=(size + 1.0, size), dpi=80)
    shown = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    if n <= MAX_LABELS:
        ax.set_xticks(range(n), names, rotation=90, fontsize=7)
        ax.set_yticks(range(n), names, fontsize=7)
    ax.set_xlabel("predicted", fontsize=8)
    ax.set_ylabel("true (row-normalised)", fontsize=8)
    fig.colorbar(shown, ax=ax, fraction=0.04)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image


class ConfusionImages:
    """The images hook of single-label classification (research/tasks/classification.py)."""

    def __init__(self, names: Sequence[str]):
        self.names = list(names)

    def log(self, logger, step: int, params, scores) -> int:
        """Adds the confusion matrix of this validation (`scores.metrics["confusion_matrix"]`); returns 1, or 0
        on a process that does not write."""
        del params  # drawn from the validation's own predictions
        if not logger.enabled:
            return 0
        counts = np.asarray(scores.metrics["confusion_matrix"])
        logger.image(step, TAG, render(counts, self.names, title=f"step {step}, validation"))
        return 1


class NoImages:
    """For tasks without an image (multi-label classification has no single confusion matrix)."""

    def log(self, logger, step: int, params, scores) -> int:
        return 0
