"""TensorBoard extras for looking inside a run: cross-attention heatmaps as images.

Decoders with attention `sow("intermediates", "cross_attention", w)` in their
full-sequence call: per layer [B, H, T, S] (transformer, cnn) or once
[B, 1, T, S] (rnn). `AttentionImages` runs the model teacher-forced on a few
fixed validation examples (reference targets, not the decoded hypothesis),
collects those weights and logs one image per example: a panel per layer,
heads averaged, source pieces along x and target pieces along y.
"""
from __future__ import annotations

import logging
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from research.data.batch import pad_batch

log = logging.getLogger(__name__)

MAX_LABELS = 60  # longer axes are drawn without per-piece tick labels


def cross_attention(intermediates: Any) -> list[np.ndarray]:
    """Every sown `cross_attention` array in `intermediates`, in layer order, as float32 numpy."""
    found: list[np.ndarray] = []

    def walk(node):
        if isinstance(node, dict) or hasattr(node, "items"):
            for k, v in node.items():
                if k == "cross_attention":
                    found.extend(np.asarray(jnp.asarray(w, jnp.float32)) for w in v)
                else:
                    walk(v)

    walk(intermediates)
    return found


def render(layers: list[np.ndarray], source: list[str], target: list[str], title: str = "") -> np.ndarray:
    """Heatmaps of [H, T, S] weights per layer -> an RGB image [height, width, 3] uint8.

    Args:
      layers: one [H, T, S] array per layer, already cropped to the real lengths.
      source, target: the S source and T target pieces used as tick labels.
    """
    import matplotlib  # noqa: PLC0415 - only runs that log images need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    t, s = layers[0].shape[-2:]
    panel_w, panel_h = min(max(3.0, 0.2 * s + 1.5), 16.0), min(max(2.5, 0.2 * t + 1.2), 16.0)
    fig, axes = plt.subplots(1, len(layers), figsize=(panel_w * len(layers), panel_h), dpi=80, squeeze=False)
    for i, (ax, w) in enumerate(zip(axes[0], layers)):
        mean = w.mean(0)  # [T, S]; colours scaled to the panel's largest weight, so early, flat attention still shows
        ax.imshow(mean, cmap="viridis", vmin=0.0, vmax=max(float(mean.max()), 1e-6), aspect="auto", interpolation="nearest")
        heads = f", mean of {w.shape[0]} heads" if w.shape[0] > 1 else ""
        ax.set_title(f"layer {i}{heads}" if len(layers) > 1 else f"attention{heads}", fontsize=9)
        if s <= MAX_LABELS:
            ax.set_xticks(range(s), source, rotation=90, fontsize=7)
        if t <= MAX_LABELS and i == 0:
            ax.set_yticks(range(t), target, fontsize=7)
        elif i:
            ax.set_yticks([])
        ax.set_xlabel("source", fontsize=8)
    axes[0][0].set_ylabel("target", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image


class AttentionImages:
    """Logs cross-attention heatmaps of `n` fixed validation examples at each evaluation.

    Built once per run (the forward pass with `mutable=["intermediates"]` is
    jitted once for one small batch); `log` is called after each validation.
    Decoders that sow nothing (no attention) log nothing.
    """

    def __init__(self, model, tokenizer, examples: Any, data_cfg, n: int = 2):
        self.n = min(n, len(examples))
        self.pieces: list[tuple[list[str], list[str]]] = []
        if not self.n:
            return
        rows = [examples[i] for i in range(self.n)]
        src = [tokenizer.encode_source(r["source"])[: data_cfg.max_source_len - 1] for r in rows]
        tgt = [tokenizer.encode_target(r["target"])[: data_cfg.max_target_len - 1] for r in rows]
        self.batch = pad_batch(src, tgt, max(map(len, src)) + 1, max(map(len, tgt)) + 1)
        for s, t in zip(src, tgt):  # the labels: what each position holds (source) or predicts (target)
            self.pieces.append(([tokenizer.source.id_to_piece(i) for i in s] + ["</s>"],
                                [tokenizer.target.id_to_piece(i) for i in t] + ["</s>"]))
        self._apply = jax.jit(lambda params, batch: model.apply({"params": params}, batch, mutable=["intermediates"])[1])

    def weights(self, params) -> list[list[np.ndarray]]:
        """Per example, per layer: [H, T, S] weights cropped to the example's lengths."""
        layers = cross_attention(self._apply(params, self.batch))
        out = []
        for row, (src, tgt) in enumerate(self.pieces):
            out.append([w[row, :, : len(tgt), : len(src)] for w in layers])
        return out

    def log(self, logger, step: int, params, tag: str = "attention") -> int:
        """Adds one image per example to `logger` (a metrics_log.MetricsLog); returns how many."""
        if not self.n:
            return 0
        per_example = self.weights(params)  # on every process: the forward pass is collective
        if not per_example or not per_example[0]:
            return 0  # this decoder has no cross-attention
        if not logger.enabled:
            return 0  # drawing is for the process that writes
        for i, (layers, (src, tgt)) in enumerate(zip(per_example, self.pieces)):
            image = render(layers, src, tgt, title=f"step {step}, validation example {i}")
            logger.image(step, f"{tag}/example_{i}", image)
        return len(per_example)
