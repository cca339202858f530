"""What the training loop does after each step, as small hooks.

The loop (`loop.run_steps`) only runs steps; everything else a step may
trigger is a hook, called in order after every step with the loop's state:
the divergence guard, timing, the train log, validation, early stopping,
checkpoints, the preemption stop and the progress display (t5x's trainer
actions are the model). A hook reads and sets a few fields of `LoopState`
(`evaluated`, `improved`, `saved`, `stopped`, `converged`) so that later
hooks of the same step know what earlier ones did: a preempted step that
validation already checkpointed is not saved twice.

Every process of a multi-process run calls every hook (validation and
checkpoints are collective); what they write goes through `MetricsLog`,
which only the first process opens.
"""
from __future__ import annotations

import collections
import dataclasses
import logging
import math
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from research.training import memory
from research.training.checkpoint import Checkpoints
from research.training.meter import Meter
from research.training.metrics_log import MetricsLog

log = logging.getLogger("research.training.loop")


@dataclasses.dataclass
class LoopState:
    """The mutable part of a run while it trains; hooks read it and set the flags of the current step."""

    state: Any  # TrainState
    step: int = 0  # steps done
    last_eval: dict = dataclasses.field(default_factory=dict)  # the latest validation results
    evaluated: bool = False  # flags of the current step, reset before its hooks run
    improved: bool = False  # this validation is the best so far (by trainer.select_by)
    saved: bool = False
    stopped: str | None = None  # the stop signal's name once the run must stop (it resumes later)
    converged: bool = False  # early stopping ended the run (it is finished)
    final: bool = False  # this step spent the budget (or reached trainer.max_steps): the run's last

    def new_step(self, state: Any, step: int) -> None:
        self.state, self.step = state, step
        self.evaluated = self.improved = self.saved = False


class Hook(Protocol):
    def after_step(self, loop: LoopState, metrics: dict, seconds: float) -> None: ...


class Diverged(RuntimeError):
    """Too many consecutive steps with a non-finite loss or gradient."""


@dataclasses.dataclass
class DivergenceGuard:
    """Stops the run after `max_bad` skipped (non-finite) steps in a row; warns at each."""

    max_bad: int
    run_dir: Path
    checkpoints: Checkpoints | None
    bad: int = 0

    def after_step(self, loop: LoopState, metrics: dict, seconds: float) -> None:
        self.bad = self.bad + 1 if metrics["skipped"] else 0
        if not self.bad:
            return
        log.warning("step %d: loss %s, gradient norm %s: update skipped (%d in a row; the limit is trainer.max_bad_steps=%d)",
                    loop.step, metrics["loss"], metrics["grad_norm"], self.bad, self.max_bad)
        if self.bad >= self.max_bad:
            last = self.checkpoints.last.latest_step() if self.checkpoints else None
            where = (f"The last checkpoint (step {last}) in {self.run_dir / 'checkpoints' / 'last'} is intact"
                     if last is not None else "No checkpoint was written")
            raise Diverged(f"step {loop.step}: the loss or the gradients were not finite for {self.bad} steps in a row; "
                           f"stopping. {where}. Lower optim.learning_rate or raise optim.warmup_steps, then rerun "
                           f"(or trainer.resume=true)")


class StepTimer:
    """Step times, for the compile time: the first call compiles, the rest are typical steps.

    Bounded: a long run must not grow per step (tests/training/test_soak.py).
    """

    def __init__(self):
        self.first: float | None = None
        self.times: collections.deque = collections.deque(maxlen=1000)

    def after_step(self, loop: LoopState, metrics: dict, seconds: float) -> None:
        if self.first is None:
            self.first = seconds
        else:
            self.times.append(seconds)

    @property
    def compile_s(self) -> float:
        """What the first step took beyond a typical one."""
        return max(self.first - float(np.median(self.times)), 0.0) if self.times else 0.0


class TrainLog:
    """Averages step metrics over `every` steps (and at the last) into a `train` row of metrics.jsonl
    and one log line; the row also carries `spent()`: the cumulative tokens, flops and train_seconds."""

    def __init__(self, logger: MetricsLog, every: int, spent: Callable[[], dict]):
        self.logger, self.every, self.spent = logger, every, spent
        self.meter = Meter()
        self.speeds: collections.deque = collections.deque(maxlen=1000)

    def after_step(self, loop: LoopState, metrics: dict, seconds: float) -> None:
        self.meter.add(metrics, seconds)
        if loop.step % self.every and not loop.final:
            return
        avg = self.meter.flush()
        avg["memory_mb"] = memory.resident_mb() or 0.0
        avg.update(self.spent())
        self.speeds.append(avg["tokens_per_s"])
        self.logger.write(loop.step, "train", avg)
        log.info("step %d loss %.3f acc %.3f lr %.2e %.0f tok/s%s", loop.step, avg.get("loss", float("nan")),
                 avg.get("accuracy", float("nan")), avg.get("learning_rate", float("nan")), avg["tokens_per_s"],
                 f" ({avg['skipped']:.0f} skipped)" if avg["skipped"] else "")

    @property
    def tokens_per_s(self) -> float:
        """The median logged throughput, leaving out the first window (it holds the compilation)."""
        return float(np.median(list(self.speeds)[1:] or self.speeds)) if self.speeds else 0.0


class Validation:
    """Every `every` steps and at the last: `validate(params, step)` -> results, kept as `loop.last_eval`."""

    def __init__(self, validate: Callable[[Any, int], dict], every: int):
        self.validate, self.every = validate, every

    def after_step(self, loop: LoopState, metrics: dict, seconds: float) -> None:
        if loop.step % self.every == 0 or loop.final:
            loop.last_eval = self.validate(loop.state.params, loop.step)
            loop.evaluated = True


class EarlyStopping:
    """Tracks the best validation value of `key` ("max" or "min" is better) and, with
    `patience` > 0, ends the run after that many evaluations in a row without a strict
    improvement (a NaN never improves). Its state goes into every checkpoint, so a
    resumed run counts on where it stopped."""

    def __init__(self, key: str, mode: str, patience: int, state: dict | None = None):
        self.key, self.mode, self.patience = key, mode, patience
        state = state if state and state.get("key") == key else {}  # another select_by starts afresh
        self.best, self.best_step, self.bad = state.get("best"), state.get("best_step"), state.get("bad", 0)

    def state(self) -> dict:
        return {"key": self.key, "best": self.best, "best_step": self.best_step, "bad": self.bad}

    def after_step(self, loop: LoopState, metrics: dict, seconds: float) -> None:
        if not loop.evaluated:
            return
        value = float(loop.last_eval[self.key])
        if not math.isnan(value) and (self.best is None or (value > self.best if self.mode == "max" else value < self.best)):
            self.best, self.best_step, self.bad = value, loop.step, 0
            loop.improved = True
            return
        self.bad += 1
        if self.patience and self.bad >= self.patience and not loop.final:
            loop.converged = True
            log.info("early stopping at step %d: validation %s has not improved on %.4f (step %d) for %d evaluations "
                     "(trainer.patience=%d)", loop.step, self.key, self.best, self.best_step, self.bad, self.patience)


class Checkpointing:
    """Saves after each validation and every `every` steps; a validation that improved
    (`loop.improved`, set by EarlyStopping) also becomes the best checkpoint."""

    def __init__(self, checkpoints: Checkpoints, every: int, meta: Callable[[LoopState], dict]):
        self.checkpoints, self.every, self.meta = checkpoints, every, meta

    def save(self, loop: LoopState) -> None:
        # Every validation is offered with its metrics; the best manager takes an improvement, or
        # (keeping the K best for trainer.average=best:K) any validation that ranks among them.
        self.checkpoints.save(loop.step, loop.state, self.meta(loop), loop.last_eval if loop.evaluated else None,
                              improved=loop.improved)
        loop.saved = True

    def after_step(self, loop: LoopState, metrics: dict, seconds: float) -> None:
        if loop.evaluated or loop.step % self.every == 0:
            self.save(loop)


class PreemptionStop:
    """On a stop signal (any process's): checkpoint this step unless already saved, then stop the loop."""

    def __init__(self, requested: Callable[[], bool], name: Callable[[], str], checkpointing: Checkpointing | None,
                 run_dir: Path):
        self.requested, self.name, self.checkpointing, self.run_dir = requested, name, checkpointing, run_dir

    def after_step(self, loop: LoopState, metrics: dict, seconds: float) -> None:
        if loop.final or loop.converged or not self.requested():
            return
        if self.checkpointing and not loop.saved:
            self.checkpointing.save(loop)
        loop.stopped = self.name()
        log.warning("%s at step %d: %s; continue with trainer.resume=true and the same run directory (%s)",
                    loop.stopped, loop.step, "checkpoint written" if self.checkpointing else
                    "no checkpoint (trainer.checkpoint=false)", self.run_dir)


class ProgressDisplay:
    """Advances the progress display (`research.console.progress`) to `done()` (steps, or whole
    percent of another budget), with the loss at each log step."""

    def __init__(self, bar, every: int, done: Callable[[], int], shown: int = 0):
        self.bar, self.every, self.done, self.shown = bar, every, done, shown

    def after_step(self, loop: LoopState, metrics: dict, seconds: float) -> None:
        now = self.done()
        if loop.step % self.every == 0:
            self.bar.update(now - self.shown, loss=float(metrics["loss"]))
        else:
            self.bar.update(now - self.shown)
        self.shown = now


def run_hooks(hooks: list[Hook], loop: LoopState, metrics: dict, seconds: float) -> None:
    for hook in hooks:
        hook.after_step(loop, metrics, seconds)
