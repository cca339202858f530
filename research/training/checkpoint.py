"""orbax checkpoints: the most recent N, and the best by the validation metric.

Two managers in `checkpoints/last` and `checkpoints/best`. orbax writes
asynchronously into a temporary folder and renames it when complete, so a
killed run never leaves a checkpoint that a later run would load.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

log = logging.getLogger(__name__)


class Checkpoints:
    def __init__(self, run_dir: Path, keep: int, best_metric: str, best_mode: str = "max"):
        root = Path(run_dir).absolute() / "checkpoints"
        self.best_metric = best_metric
        self.last = ocp.CheckpointManager(root / "last", options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))
        self.best = ocp.CheckpointManager(
            root / "best",
            options=ocp.CheckpointManagerOptions(
                max_to_keep=1, create=True, best_fn=lambda m: m[best_metric], best_mode=best_mode
            ),
        )

    def save(self, step: int, state: Any, meta: dict, metrics: dict | None = None) -> None:
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
        self.last.save(step, args=args)
        if metrics is not None and self.best_metric in metrics:
            args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
            self.best.save(step, args=args, metrics={self.best_metric: float(metrics[self.best_metric])})

    def close(self) -> None:
        self.last.wait_until_finished()
        self.best.wait_until_finished()
        self.last.close()
        self.best.close()


def restore(directory: Path, abstract_state: Any, step: int | None = None) -> tuple[Any, dict]:
    """Restores (state, meta) from a manager folder (`.../last` or `.../best`)."""
    mngr = ocp.CheckpointManager(Path(directory).absolute(), options=ocp.CheckpointManagerOptions(create=False))
    step = mngr.latest_step() if step is None else step
    if step is None:
        raise FileNotFoundError(f"no complete checkpoint in {directory}")
    out = mngr.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()))
    mngr.close()
    return out["state"], out["meta"]


def abstract(state: Any) -> Any:
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, state)


def latest(run_dir: Path, state: Any) -> tuple[Any, dict] | None:
    """The newest complete checkpoint of a run as (state, meta), or None.

    Folders orbax had not finished (a run killed mid-write leaves them under a
    temporary name) are never loaded; each one is named in a warning.
    """
    root = Path(run_dir).absolute() / "checkpoints" / "last"
    if not root.is_dir():
        return None
    for p in sorted(root.iterdir()):
        if p.is_dir() and not p.name.isdigit():
            log.warning("ignoring incomplete checkpoint %s", p)
    if not any(p.name.isdigit() for p in root.iterdir()):
        return None
    return restore(root, abstract(state))
