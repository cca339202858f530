"""The sweep report's figures: the metric against parameters, the validation curves, the metric
against compute with its Pareto frontier, and sequence accuracy by target length; and the score against
the training budget across sweeps (`python -m research.scaling`) or against a setting (`python -m research.tune`).

Pure drawing: `research/report.py` and `research/analysis/` compute every number (groups over seeds,
the Pareto frontier, the by-length buckets) and each function here only plots what it is given and writes one PNG.
matplotlib is imported on first use, on its file-only Agg backend.
"""
from __future__ import annotations

import math
from pathlib import Path

def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display on a cluster node)."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def _save(plt, fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plots(rows: list[dict], groups: list[dict], out: Path) -> list[str]:
    """metric_vs_params.png (every run, and each architecture's mean ± std) and validation_curves.png."""
    plt = _pyplot()
    metric = rows[0]["metric"]
    colors = {g["architecture"]: plt.get_cmap("tab10")(i % 10) for i, g in enumerate(groups)}
    markers = {"rnn": "o", "cnn": "s", "transformer": "^"}

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    for g in groups:
        rs = [r for r in rows if r["architecture"] == g["architecture"]]
        ax.scatter([r["params"] for r in rs], [r.get(f"validation_{metric}") for r in rs], color=colors[g["architecture"]],
                   marker=markers.get(g["decoder"], "o"), alpha=0.5, s=20)
        ax.errorbar(g["params_mean"], g[f"validation_{metric}_mean"], yerr=g[f"validation_{metric}_std"] or 0.0,
                    color=colors[g["architecture"]], marker=markers.get(g["decoder"], "o"), markersize=8, capsize=3,
                    label=f"{g['architecture']} (n={g['runs']})")
    ax.set_xlabel("parameters")
    ax.set_ylabel(f"validation {metric} (final)")
    ax.set_title(f"{metric} vs parameter count: runs (small) and mean ± std over seeds")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    _save(plt, fig, out / "metric_vs_params.png")

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), dpi=100)
    for r in rows:
        steps = [c["step"] for c in r["_curves"]]
        for ax, key in zip(axes, ("loss", metric)):
            ax.plot(steps, [c.get(key, math.nan) for c in r["_curves"]], color=colors[r["architecture"]], marker=".",
                    alpha=0.8, label=f"{r['architecture']} seed {r['seed']}")
    for ax, key in zip(axes, ("loss", metric)):
        ax.set_xlabel("step")
        ax.set_ylabel(f"validation {key}")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=6, ncol=2)
    fig.suptitle(f"validation curves of all {len(rows)} runs")
    _save(plt, fig, out / "validation_curves.png")
    return ["metric_vs_params.png", "validation_curves.png"]


def compute_plot(rows: list[dict], groups: list[dict], comp: dict, column: str, out: Path) -> str:
    """The metric against cumulative FLOPs and training seconds: every run's validation curve, each
    architecture's final (mean cost, mean score), and the Pareto frontier through those points."""
    plt = _pyplot()
    metric = column.split("_", 1)[1]
    colors = {g["architecture"]: plt.get_cmap("tab10")(i % 10) for i, g in enumerate(groups)}
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), dpi=100)
    for ax, cost, label in zip(axes, ("flops", "train_seconds"), ("training FLOPs", "training seconds")):
        for arch, runs in comp["curves"][cost].items():
            for c in runs:
                ax.plot([p[0] for p in c], [p[1] for p in c], color=colors[arch], alpha=0.35, lw=1)
        for arch, m in comp["means"].items():
            ax.scatter([m[cost]], [m["score"]], color=colors[arch], s=40, zorder=3, label=arch,
                       edgecolors="black" if arch in comp["frontier"][cost] else "none")
        line = [comp["means"][a] for a in comp["frontier"][cost]]
        ax.step([m[cost] for m in line], [m["score"] for m in line], where="post", color="black", lw=1.2,
                label="Pareto frontier")
        ax.set_xlabel(f"cumulative {label}")
        ax.set_ylabel(f"{metric}: validation curves; points: final {column.replace('_', ' ')} (mean)")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, ncol=2)
    fig.suptitle(f"{metric} against compute ({len(rows)} runs)")
    _save(plt, fig, out / "metric_vs_compute.png")
    return "metric_vs_compute.png"


def length_plot(groups: list[dict], found: dict, out: Path) -> str:
    """Sequence accuracy against target length, mean ± std over seeds per architecture, the
    longest training target marked: where each architecture stops generalising."""
    plt = _pyplot()
    colors = {g["architecture"]: plt.get_cmap("tab10")(i % 10) for i, g in enumerate(groups)}
    markers = {"rnn": "o", "cnn": "s", "transformer": "^"}
    x = [(lo + hi) / 2 for lo, hi in found["buckets"]]
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=100)
    for g in groups:
        arch = g["architecture"]
        ys = [math.nan if v is None else v for v in found["mean"][arch]]
        err = [0.0 if v is None else v for v in found["std"][arch]]
        ax.errorbar(x, ys, yerr=err, color=colors[arch], marker=markers.get(g["decoder"], "o"), capsize=2, lw=1.2,
                    label=arch)
    if found["boundary"] is not None:
        ax.axvline(found["boundary"] + 0.5, color="black", ls="--", lw=1,
                   label=f"longest training target ({found['boundary']})")
    ax.set_xlabel(f"target length (symbols; buckets {', '.join(f'{lo}-{hi}' for lo, hi in found['buckets'])})")
    ax.set_ylabel(f"{found['split']} sequence accuracy (%)")
    ax.set_ylim(-3, 103)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("exact-match accuracy by target length: mean ± std over seeds")
    _save(plt, fig, out / "accuracy_by_length.png")
    return "accuracy_by_length.png"


def budget_plot(curves: dict, budgets: list[float], column: str, path: Path, baselines: dict | None = None) -> None:
    """Score against training FLOPs (log scale) across sweeps of one comparison: per architecture, at each budget
    it has, (FLOPs, its runs' scores, their confidence.Interval) as `research.scaling.curves` gives them; every
    run a dot, each mean with its 95% t interval, joined across budgets; and each baseline's (FLOPs, score) points
    (`research.scaling.baseline_curves`) dashed and grey, where a run must get to beat it."""
    setting_plot(curves, budgets, [f"{b:.3g}" for b in budgets], "training FLOPs", column, path, baselines=baselines)


def setting_plot(curves: dict, ticks: list[float], labels: list[str], xlabel: str, column: str, path: Path,
                 baselines: dict | None = None, chosen: dict | None = None) -> None:
    """Score against one setting on a log scale (the training budget, the learning rate): per architecture,
    (x, its runs' scores, their confidence.Interval) at each x it has; every run a dot, each mean with its 95% t
    interval, joined; baselines' (x, score) points dashed and grey; `chosen`: architecture -> the x chosen for it
    (`research.tune`: on validation), ringed in black."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=100)
    for k, (arch, points) in enumerate(curves.items()):
        color = plt.get_cmap("tab10")(k % 10)
        for x, scores, _ in points:
            ax.scatter([x] * len(scores), scores, color=color, s=12, alpha=0.4)
        means = [i.mean for _, _, i in points]
        err = [[0.0 if i.low is None else i.mean - i.low for _, _, i in points],
               [0.0 if i.high is None else i.high - i.mean for _, _, i in points]]
        ax.errorbar([x for x, _, _ in points], means, yerr=err, color=color, marker="o", capsize=3, label=arch)
        at = [(x, i.mean) for x, _, i in points if chosen and chosen.get(arch) == x]
        ax.scatter([x for x, _ in at], [m for _, m in at], s=140, facecolors="none", edgecolors="black", zorder=3)
    for k, (name, points) in enumerate((baselines or {}).items()):
        ax.plot([x for x, _ in points], [v for _, v in points], color="0.35", linestyle=("--", ":", "-.")[k % 3],
                marker="_", markersize=14, label=f"baseline: {name}")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ticks, labels)
    ax.minorticks_off()
    ax.set_xlabel(xlabel + ("; ringed: chosen on validation" if chosen else ""))
    ax.set_ylabel(f"{column.replace('_', ' ')}: runs, mean and 95% t interval")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(plt, fig, path)
