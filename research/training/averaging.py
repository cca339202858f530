"""Checkpoint averaging: the element-wise mean of the last or best K checkpoints' parameters.

As fairseq's `scripts/average_checkpoints.py` does: averaging the last few
checkpoints of a run (or its few best) smooths the noise of the final
updates and usually gains a little BLEU over any single one of them.

An averaged checkpoint is written to

  checkpoints/average/<last|best><K>/state      orbax: {"params": ...} only
  checkpoints/average/<last|best><K>/meta/metadata   JSON: identity, averaged steps, digest

the layout of one step folder of `checkpoints/last`, so that the same
readers (`checkpoint.read_meta`, `checkpoint.restore_params`,
`checkpoint.verify`) load it; `research.run_dir.load(checkpoint="last:5")`
does. It is written into a temporary folder beside it and renamed into place
when complete: an interrupted write leaves no folder of that name.

The mean is accumulated in float64 on the host and cast back to each leaf's
dtype: K copies of one tree average to it bit for bit, and the result does
not depend on the device.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from research.registry import ConfigError
from research.training import checkpoint as checkpoints

log = logging.getLogger(__name__)

KINDS = ("last", "best")
# What an averaged checkpoint copies from the ones it averages, which must all agree on it.
IDENTITY = ("architecture", "tokenizer", "pipeline")


def parse(spec: str, key: str = "average", extra: str = "none, ") -> tuple[str, int] | None:
    """`"last:5"` -> ("last", 5), `"best:3"` -> ("best", 3), `"none"` -> None (`trainer.average`'s
    values); ConfigError naming `key` and the `extra` values it also takes otherwise."""
    if spec == "none" and "none" in extra:
        return None
    m = re.fullmatch(r"(last|best):([1-9][0-9]*)", spec)
    if m is None:
        raise ConfigError(f"{key}: '{spec}' is not one of {extra}last:K, best:K (K a positive integer)")
    return m.group(1), int(m.group(2))


def best_to_keep(spec: str) -> int:
    """How many best checkpoints a run with `trainer.average=spec` keeps: K for best:K, else 1."""
    parsed = parse(spec)
    return parsed[1] if parsed and parsed[0] == "best" else 1


def folder(run_dir: Path, kind: str, k: int) -> Path:
    """Where the average of the `kind` K checkpoints of a run is written."""
    return Path(run_dir).absolute() / "checkpoints" / "average" / f"{kind}{k}"


def mean(trees: Sequence[Any], names: Sequence[str]) -> Any:
    """The element-wise mean of parameter trees of one structure, each leaf in its own dtype.

    Floating leaves are summed in float64 in the given order and divided once;
    other leaves (integers, booleans) must be equal in every tree. Raises
    CheckpointError naming the tree (`names[i]`) and the first leaf whose
    path, shape or dtype differs from the first tree's.
    """
    if not trees:
        raise ValueError("no parameter trees to average")
    flat, treedef = jax.tree_util.tree_flatten_with_path(trees[0])
    paths = [jax.tree_util.keystr(p) for p, _ in flat]
    firsts = [np.asarray(leaf) for _, leaf in flat]
    sums = [a.astype(np.float64) if _inexact(a) else a for a in firsts]
    for tree, name in zip(trees[1:], names[1:]):
        flat, other = jax.tree_util.tree_flatten_with_path(tree)
        if other != treedef:
            differing = sorted(set(paths) ^ {jax.tree_util.keystr(p) for p, _ in flat})[:3]
            raise checkpoints.CheckpointError(f"{name}: its parameters have another structure than {names[0]}'s "
                                              f"(differing: {', '.join(differing) or 'the tree layout'})")
        for i, (path, a, (_, b)) in enumerate(zip(paths, firsts, flat)):
            b = np.asarray(b)
            if (b.shape, b.dtype) != (a.shape, a.dtype):
                raise checkpoints.CheckpointError(f"{name}: parameter {path} is {b.dtype}{list(b.shape)}, "
                                                  f"{a.dtype}{list(a.shape)} in {names[0]}")
            if _inexact(a):
                sums[i] = sums[i] + b.astype(np.float64)
            elif not np.array_equal(a, b):
                raise checkpoints.CheckpointError(f"{name}: non-floating parameter {path} differs from "
                                                  f"{names[0]}'s and cannot be averaged")
    out = [(s / len(trees)).astype(a.dtype) if _inexact(a) else a for s, a in zip(sums, firsts)]
    return jax.tree_util.tree_unflatten(treedef, out)


def _inexact(a: np.ndarray) -> bool:
    return jnp.issubdtype(a.dtype, jnp.inexact)  # bfloat16 too, which NumPy does not count


def steps(manager_dir: Path) -> list[int]:
    """The complete checkpoints of one manager folder (`checkpoints/last` or `best`), oldest first."""
    if not Path(manager_dir).is_dir():
        return []
    mngr = ocp.CheckpointManager(Path(manager_dir).absolute(),
                                 options=ocp.CheckpointManagerOptions(create=False, read_only=True))
    out = sorted(mngr.all_steps())  # finalized only: an interrupted write is not listed
    mngr.close()
    return out


def choose(run_dir: Path, kind: str, k: int, key: str, mode: str, label: str) -> list[Path]:
    """The step folders of the K checkpoints to average, oldest step first.

    `last`: the K newest of `checkpoints/last`. `best`: the K of
    `checkpoints/best` with the best validation `key` ("max" or "min" is
    better) as saved in their meta; a tie goes to the earlier step, and a
    NaN is never among the best. Fewer than K: ConfigError naming `label`
    (the setting asked for, e.g. "trainer.average=last:5" or "--last 5") and
    how many there are.
    """
    if kind not in KINDS:
        raise ConfigError(f"{label}: '{kind}' is not one of {', '.join(KINDS)}")
    root = Path(run_dir).absolute() / "checkpoints" / kind
    found = steps(root)
    if kind == "best":
        value = {s: _metric(checkpoints.read_meta(root / str(s)), key) for s in found}
        found = [s for s in found if not math.isnan(value[s])]
        ranked = sorted(found, key=lambda s: (-value[s] if mode == "max" else value[s], s))
        found = sorted(ranked[:k])
    else:
        found = found[-k:]
    if len(found) < k:
        keeps = ("a run keeps trainer.keep_checkpoints of them" if kind == "last" else
                 f"with a validation {key}; a run keeps K when trained with trainer.average=best:K, else 1")
        raise ConfigError(f"{label}: needs {k} {kind} checkpoints, but {root} has {len(found)} complete ({keeps}); "
                          f"average fewer")
    return [root / str(s) for s in found]


def _metric(meta: dict, key: str) -> float:
    value = (meta.get("validation") or {}).get(key)
    return float(value) if isinstance(value, (int, float)) else math.nan


def average(step_dirs: Sequence[Path], restore: Callable[[Path], Any] = checkpoints.restore_params) -> tuple[Any, dict]:
    """(mean parameters as host arrays, meta) of the checkpoints in `step_dirs`.

    The meta copies their identity (model, tokenizer, input pipeline), which
    must be the same in all; `step` is the newest averaged step, `average`
    lists them all, and `digest` is that of the mean parameters.
    """
    metas = [checkpoints.read_meta(d) for d in step_dirs]
    identity = {key: metas[0][key] for key in IDENTITY if key in metas[0]}
    for d, meta in zip(step_dirs[1:], metas[1:]):
        differ = [key for key in IDENTITY if meta.get(key) != metas[0].get(key)]
        if differ:
            raise checkpoints.IncompatibleCheckpoint(f"{d}: another {', '.join(differ)} than {step_dirs[0]}; "
                                                     "refusing to average them")
    trees = []
    for d, meta in zip(step_dirs, metas):
        params = restore(d)
        checkpoints.verify(params, meta, "params", d)
        trees.append(jax.device_get(params))
    params = mean(trees, [str(d) for d in step_dirs])
    meta = {**identity, "step": max(int(m["step"]) for m in metas),
            "average": {"steps": [int(m["step"]) for m in metas],
                        "checkpoints": [f"{Path(d).parent.name}/{Path(d).name}" for d in step_dirs]},
            "digest": {"params": checkpoints.digest(params)}}
    return params, meta


def write(target: Path, params: Any, meta: dict) -> Path:
    """Writes an averaged checkpoint to `target` atomically: into a temporary folder
    beside it, renamed into place when complete (replacing an older one)."""
    target = Path(target).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp, old = (target.with_name(f".{target.name}.{what}-{os.getpid()}") for what in ("tmp", "old"))
    shutil.rmtree(tmp, ignore_errors=True)
    moved = False
    try:
        _write_folder(tmp, params, meta)
        if target.exists():  # a directory cannot be renamed over a full one: the old one steps aside first
            os.replace(target, old)
            moved = True
        os.replace(tmp, target)
    except BaseException:
        if moved and not target.exists():
            os.replace(old, target)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if moved:
        shutil.rmtree(old, ignore_errors=True)
    return target


def _write_folder(path: Path, params: Any, meta: dict) -> None:
    """The step-folder layout read by `checkpoint.read_meta` and `checkpoint.restore_params`."""
    path.mkdir(parents=True)
    # This process alone: in a multi-process run only the first one writes it.
    me = jax.process_index()
    mp = ocp.options.MultiprocessingOptions(primary_host=me, active_processes={me}, barrier_sync_key_prefix="average")
    with ocp.Checkpointer(ocp.PyTreeCheckpointHandler(multiprocessing_options=mp), multiprocessing_options=mp) as c:
        c.save(path / "state", args=ocp.args.PyTreeSave({"params": params}))
    (path / "meta").mkdir()
    (path / "meta" / "metadata").write_text(json.dumps(meta, indent=2))


def build(run_dir: Path, kind: str, k: int, key: str, mode: str, label: str, save: bool = True) -> tuple[Any, dict, Path]:
    """Chooses, averages and (with `save`) writes the average of a run's `kind` K checkpoints;
    -> (mean parameters, meta, the averaged checkpoint's folder)."""
    params, meta = average(choose(run_dir, kind, k, key, mode, label))
    target = folder(run_dir, kind, k)
    if save:
        write(target, params, meta)
        log.info("averaged %s checkpoints %s into %s", kind, meta["average"]["steps"], target)
    return params, meta, target
