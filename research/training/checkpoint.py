"""orbax checkpoints: the most recent N, and the best by the validation metric.

Two managers in `checkpoints/last` and `checkpoints/best` (the best one, or
the K best for `trainer.average=best:K`, see `averaging.py`). orbax writes
asynchronously into a temporary folder and renames it when complete, so a
killed run never leaves a checkpoint that a later run would load.

A checkpoint is data, never code: arrays go through orbax's array format
and everything else through JSON, so loading one runs nothing from it. The
JSON meta carries a digest of the arrays taken when they were saved; a
restore that reads different bytes (a flipped bit, a truncated file) is
caught by it, and `latest` falls back to the previous checkpoint.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used: unreadable or corrupt."""


class IncompatibleCheckpoint(CheckpointError):
    """A checkpoint of another model, vocabulary or input pipeline than the config builds."""


class Checkpoints:
    """The run's two orbax managers; `keep_best` > 1 keeps that many best checkpoints, for averaging."""

    def __init__(self, run_dir: Path, keep: int, best_metric: str, best_mode: str = "max", keep_best: int = 1):
        root = Path(run_dir).absolute() / "checkpoints"
        self.best_metric, self.keep_best = best_metric, max(1, keep_best)
        # Each manager its own barrier names: with several processes, the two saving the same
        # step at once would otherwise meet at one barrier and fail ("already ongoing").
        sync = lambda kind: ocp.options.MultiprocessingOptions(barrier_sync_key_prefix=kind)
        self.last = ocp.CheckpointManager(root / "last", options=ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=True, multiprocessing_options=sync("last")))
        # orbax keeps the `keep_best` checkpoints ranked best by `best_fn` (ties: the later ones).
        self.best = ocp.CheckpointManager(root / "best", options=ocp.CheckpointManagerOptions(
            max_to_keep=self.keep_best, create=True, best_fn=lambda m: m[best_metric], best_mode=best_mode,
            multiprocessing_options=sync("best")))

    def save(self, step: int, state: Any, meta: dict, metrics: dict | None = None, improved: bool = True) -> None:
        """Saves `state` as the latest checkpoint of `step`; with `metrics` (this step's validation)
        also as a best one, when the caller judged it the best so far (`improved`) or, keeping
        several best (`keep_best` > 1), whenever its metric is a number: orbax then keeps the
        `keep_best` best of all the validations it was given, not only the improvements."""
        meta = {**meta, "digest": {part: digest(getattr(state, part)) for part in PARTS}}
        args = lambda: ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
        self.last.save(step, args=args())
        value = float(metrics[self.best_metric]) if metrics is not None and self.best_metric in metrics else None
        if value is not None and (improved or (self.keep_best > 1 and math.isfinite(value))):
            self.best.save(step, args=args(), metrics={self.best_metric: value})

    def close(self) -> int | None:
        """Waits for pending writes; -> the step of the best checkpoint (None before any validation)."""
        self.last.wait_until_finished()
        self.best.wait_until_finished()
        best = self.best.best_step()
        self.last.close()
        self.best.close()
        return best


# Hashed one by one, so that evaluation can verify the parameters alone and
# saving hashes each array once.
PARTS = ("step", "params", "opt_state")


def digest(tree: Any) -> str:
    """A hash of a pytree's paths, dtypes, shapes and bytes (this process's copy of each array)."""
    h = hashlib.blake2b(digest_size=16)
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        a = np.asarray(leaf.addressable_data(0) if isinstance(leaf, jax.Array) else leaf)
        h.update(f"{jax.tree_util.keystr(path)}|{a.dtype}|{a.shape}|".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def verify(tree: Any, meta: dict, part: str, where: Path) -> None:
    """Raises CheckpointError when `tree` is not what was saved as `part`:
    "state" (a whole TrainState) or one of its PARTS."""
    saved = meta.get("digest") or {}
    pieces = {p: getattr(tree, p) for p in PARTS} if part == "state" else {part: tree}
    if any(p not in saved for p in pieces):
        raise CheckpointError(f"{where}: no digest in its meta; it was not written by this version of research.train")
    if any(digest(t) != saved[p] for p, t in pieces.items()):
        raise CheckpointError(f"{where}: corrupt: the arrays read back differ from those saved (digest mismatch)")


def read_meta(step_dir: Path) -> dict:
    """The JSON meta of one step folder; CheckpointError when missing or unreadable."""
    path = Path(step_dir) / "meta" / "metadata"
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: unreadable checkpoint meta ({type(e).__name__}: {e})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: checkpoint meta is not a JSON object")
    return meta


def mismatch(saved: dict, current: dict, prefix: str = "") -> list[str]:
    """`key: checkpoint X, config Y` for every leaf where two nested dicts differ."""
    out = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key, "<absent>"), current.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += mismatch(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: checkpoint {a!r}, config {b!r}")
    return out


def check_compatible(meta: dict, expected: dict, where: Path) -> None:
    """Refuses, before any array is read, a checkpoint of another model or vocabulary.

    `expected` holds what the current run would build: {"architecture": ...,
    "tokenizer": fingerprint}; each is compared when the checkpoint has it.
    """
    diffs = []
    for key, value in expected.items():
        if key in meta:
            diffs += mismatch({key: meta[key]}, {key: value})
    if diffs:
        raise IncompatibleCheckpoint(f"{where} was made for another model, vocabulary or input pipeline; refusing to load it:\n  "
                              + "\n  ".join(diffs))


def restore(directory: Path, abstract_state: Any, step: int | None = None) -> tuple[Any, dict]:
    """Restores (state, meta) from a manager folder (`.../last` or `.../best`), unverified."""
    mngr = ocp.CheckpointManager(Path(directory).absolute(), options=ocp.CheckpointManagerOptions(create=False))
    step = mngr.latest_step() if step is None else step
    if step is None:
        raise FileNotFoundError(f"no complete checkpoint in {directory}")
    out = mngr.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()))
    mngr.close()
    return out["state"], out["meta"]


def restore_params(step_dir: Path) -> Any:
    """Restores only the parameters of a saved TrainState (or of an averaged checkpoint,
    which holds nothing else), onto this process's first device.

    The target is built from the checkpoint's own metadata, so no optimizer
    has to be rebuilt, and parameters saved on another device kind (a GPU
    run, evaluated on CPU) load all the same.
    """
    path = Path(step_dir).absolute() / "state"
    tree = ocp.StandardCheckpointer().metadata(path).item_metadata.tree
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = {"params": jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), tree["params"])}
    args = ocp.args.PyTreeRestore(item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(target),
                                  partial_restore=True)
    with ocp.PyTreeCheckpointer() as ckpt:
        return ckpt.restore(path, args=args)["params"]


def abstract(state: Any) -> Any:
    """The restore target of a state: its arrays as `jax.ShapeDtypeStruct`s (ones already abstract pass through)."""
    return jax.tree.map(lambda x: x if isinstance(x, jax.ShapeDtypeStruct) else ocp.utils.to_shape_dtype_struct(x), state)


def latest(run_dir: Path, state: Any, expected: dict | None = None) -> tuple[Any, dict] | None:
    """The newest complete, intact checkpoint of a run as (state, meta), or None.

    `state` gives the structure, shapes and shardings to restore into: a
    concrete state or an abstract one (`research.training.state.abstract`).

    Folders orbax had not finished (a run killed mid-write leaves them under a
    temporary name) are never loaded; a complete one that fails to read or to
    verify is skipped with a warning naming it, for the one before. A
    checkpoint of another model or vocabulary (`expected`, see
    `check_compatible`) stops the search with IncompatibleCheckpoint: the
    run directory belongs to another configuration.
    """
    root = Path(run_dir).absolute() / "checkpoints" / "last"
    if not root.is_dir():
        return None
    for p in sorted(root.iterdir()):
        if p.is_dir() and not p.name.isdigit():
            log.warning("ignoring incomplete checkpoint %s", p)
    steps = sorted((int(p.name) for p in root.iterdir() if p.is_dir() and p.name.isdigit()), reverse=True)
    for step in steps:
        where = root / str(step)
        try:
            check_compatible(read_meta(where), expected or {}, where)
            restored, meta = restore(root, abstract(state), step)
            verify(restored, meta, "state", where)
        except IncompatibleCheckpoint:
            raise
        except CheckpointError as e:
            log.warning("skipping checkpoint: %s", e)
            continue
        except Exception as e:  # orbax / tensorstore read errors of a truncated or damaged file
            log.warning("skipping checkpoint: %s: unreadable (%s: %s)", where, type(e).__name__, str(e).splitlines()[0] if str(e) else "")
            continue
        if step != steps[0]:
            log.warning("resuming from step %d, the newest intact checkpoint", step)
        return restored, meta
    if steps:
        raise CheckpointError(f"{root}: none of the checkpoints {sorted(steps)} is intact (see the warnings above); "
                              f"move the folder away to start over")
    return None
