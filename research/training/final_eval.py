"""The end of a run: its selected parameters decoded on the test split (`trainer.test=true`).

Which parameters: with `trainer.average=none` the best checkpoint (the last
one, with a warning, when the run never validated); with `last:K` / `best:K`
the element-wise mean of those K checkpoints (`averaging.py`), which the
first process also writes to `checkpoints/average/<last|best>K` so that
`research.evaluate checkpoint=last:K` can score it again later. A run
without checkpoints (`trainer.checkpoint=false`) is scored with its final
parameters, which the loop passes in.

Decoding (a classifier's prediction: the run's task's `evaluate_split`) and
files are research.evaluate's, so `hyps_test.txt` and `eval_test.json` are
exactly what `python -m research.evaluate run_dir=RUN split=test` writes. Every process decodes (the parameters are replicated);
only the first writes.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import jax

from research import evaluate
from research.config import RunConfig
from research.run_dir import Run, from_config, with_params
from research.training import averaging, evaluation

log = logging.getLogger(__name__)


def evaluate_test(run_dir: Path, cfg: RunConfig, main: bool, final_params: Any = None,
                  final_step: int | None = None) -> dict | None:
    """Scores the test split as the module docstring says; -> evaluate's results (None without `trainer.test`).

    Args:
      run_dir: the finished run, its checkpoints closed (all writes complete).
      cfg: the config it trained with (the run directory may hold none).
      main: this process writes the files.
      final_params, final_step: the last state's parameters and step; used only
        with `trainer.checkpoint=false`.

    Raises ConfigError naming `trainer.average` when the run has fewer than K
    checkpoints to average; its checkpoints are intact, and
    `python -m research.average` can average fewer.
    """
    if not cfg.trainer.test:
        return None
    run = parameters(Path(run_dir), cfg, main, final_params, final_step)
    results, outputs = evaluate.evaluate(run, "test")
    if main:
        paths = evaluate.write(Path(run_dir), "test", results, outputs)
        log.info("test: %s; wrote %s", " ".join(f"{k} {v:.3f}" for k, v in short(results).items()
                                                 if isinstance(v, float)), ", ".join(p.name for p in paths.values()))
    return results


def parameters(run_dir: Path, cfg: RunConfig, main: bool, final_params: Any = None, final_step: int | None = None) -> Run:
    """The run with the parameters `trainer.test` scores (see the module docstring)."""
    t = cfg.trainer
    if not t.checkpoint:
        if final_params is None:
            raise ValueError("trainer.checkpoint=false: pass the final parameters to evaluate on test")
        return with_params(run_dir, cfg, final_params, "final", int(final_step or t.max_steps), {})
    chosen = averaging.parse(t.average)
    if chosen is None:
        return from_config(run_dir, cfg, "best")
    kind, k = chosen
    key, mode = evaluation.selection(cfg.data.task, t.select_by)
    # Every process averages for itself (no process waits for another's file); the first writes it.
    params, meta, _ = averaging.build(run_dir, kind, k, key, mode, label=f"trainer.average={t.average}", save=main)
    params = jax.device_put(params, jax.local_devices()[0])
    return with_params(run_dir, cfg, params, t.average, meta["step"], meta)


def short(results: dict) -> dict:
    """The figures of a test evaluation that belong in summary.json: its numbers, signatures and checkpoint."""
    keep = {k: results[k] for k in ("checkpoint", "step", "examples", "averaged_steps") if k in results}
    keep.update({k: v for k, v in results.items() if k.endswith("_signature")})
    return {**keep, **{k: v for k, v in evaluation.numbers(results).items() if k not in ("step", "examples", "wall_s")}}
