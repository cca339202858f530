"""What a run spends (steps, target tokens, training FLOPs, training seconds) and where its budget ends.

`trainer.budget` names what the runs of a comparison share; at equal FLOPs a
cheaper architecture gets more steps, which is the point of matching compute
rather than steps. Everything is counted on the host after each step, from
what the step really did: the target tokens its loss counted, the analytic
FLOPs of the batch shape it ran (`research/models/flops.py`: padded positions
included, since XLA computes them) and the wall time from fetching the batch
to the step's result (validation and checkpoints excluded; the first step's
compilation included, since the run waited for it).

The learning-rate schedule reads `position()`: how far the decay has come,
in the budget's own units, so a cosine reaches its floor where the budget
ends whatever its kind. Warm-up stays in steps. With `trainer.budget=steps`
the position is (step - warmup) / (max_steps - warmup), the step-based
cosine of every toolkit. `seconds` budgets depend on the machine and its
load, so their runs are not reproducible bit for bit (the manifest says so);
the others are.

The spent amounts and the warm-up mark go into every checkpoint, so a
resumed run continues counting where it stopped.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from typing import Callable

import jax
import numpy as np

from research.registry import ConfigError

log = logging.getLogger(__name__)

KINDS = ("steps", "tokens", "flops", "seconds")
UNITS = {"steps": "steps", "tokens": "target tokens", "flops": "training FLOPs", "seconds": "training seconds"}


@dataclasses.dataclass
class Spent:
    """Cumulative amounts since step 0 (the `tokens`, `flops`, `train_seconds` of metrics.jsonl)."""

    steps: int = 0
    tokens: float = 0.0
    flops: float = 0.0
    seconds: float = 0.0

    def row(self) -> dict[str, float]:
        """The cumulative columns of a metrics.jsonl row."""
        return {"tokens": self.tokens, "flops": self.flops, "train_seconds": self.seconds}


class Budget:
    """Counts what the run spends and says where the budget and the warm-up end.

    Args:
      kind: one of KINDS; amount: in that kind's unit (steps: `trainer.max_steps`).
      max_steps: a cap for every kind; a run also ends there (warned at the end
        when it came before the budget).
      warmup_steps: the schedule's warm-up, in steps whatever the budget.
      state: `state()` of a checkpoint, to continue a resumed run.
    """

    def __init__(self, kind: str, amount: float, max_steps: int, warmup_steps: int, state: dict | None = None):
        if kind not in KINDS:
            raise ConfigError(f"trainer.budget: '{kind}' is not one of {', '.join(KINDS)}")
        if not amount > 0:
            raise ConfigError(f"trainer.budget_amount: must be positive, got {amount}")
        self.kind, self.amount, self.max_steps, self.warmup_steps = kind, float(amount), max_steps, warmup_steps
        state = state or {}
        self.spent = Spent(**state.get("spent", {}))
        self.warm_fraction: float | None = state.get("warm_fraction")  # fraction spent when warm-up ended

    def state(self) -> dict:
        return {"kind": self.kind, "amount": self.amount, "spent": dataclasses.asdict(self.spent),
                "warm_fraction": self.warm_fraction}

    def add(self, tokens: float, flops: float, seconds: float) -> None:
        """Counts one finished step."""
        s = self.spent
        s.steps += 1
        s.tokens += tokens
        s.flops += flops
        s.seconds += seconds
        if self.warm_fraction is None and s.steps >= self.warmup_steps:
            self.warm_fraction = min(self.fraction(), 1.0)

    def fraction(self) -> float:
        """The part of the budget spent, in its own unit."""
        return getattr(self.spent, self.kind) / self.amount

    def position(self) -> float:
        """Where the decay stands for the next step, in [0, 1]: 0 until warm-up ends, 1 at the budget's end."""
        if self.warm_fraction is None:
            return 0.0
        if self.warm_fraction >= 1.0:
            return 1.0
        return min(max((self.fraction() - self.warm_fraction) / (1.0 - self.warm_fraction), 0.0), 1.0)

    def exhausted(self) -> bool:
        return self.fraction() >= 1.0

    def ended_by(self) -> str | None:
        """"budget" or "max_steps" once either ends the run, else None."""
        if self.exhausted():
            return "budget"
        return "max_steps" if self.spent.steps >= self.max_steps else None

    def describe(self) -> str:
        if self.kind == "steps":
            return f"{self.max_steps} steps"
        return f"{self.amount:.4g} {UNITS[self.kind]} (at most {self.max_steps} steps)"


def amount_of(trainer):
    """A `TrainerConfig`'s budget amount, in its kind's unit: `max_steps` for a steps budget."""
    return trainer.max_steps if trainer.budget == "steps" else trainer.budget_amount


def for_trainer(trainer, warmup_steps: int, state: dict | None = None, start_step: int = 0) -> Budget:
    """The Budget of a `TrainerConfig`, continuing a checkpoint's budget `state` at `start_step`.

    A checkpoint trained under another budget kind or amount is refused. One
    written before budgets were counted (no state) resumes a steps budget
    only, its tokens, FLOPs and seconds counted from the resumed step.
    """
    amount = float(amount_of(trainer))
    if state and (state.get("kind"), state.get("amount")) != (trainer.budget, amount):
        raise ConfigError(f"trainer.budget: the checkpoint was trained under budget {state.get('kind')}={state.get('amount')}, "
                          f"the config asks for {trainer.budget}={amount}; resume with the same budget")
    if not state and start_step:
        if trainer.budget != "steps":
            raise ConfigError(f"trainer.budget: the checkpoint at step {start_step} records no spent budget (written before "
                              f"budgets were counted); it can resume under trainer.budget=steps only")
        log.warning("the checkpoint at step %d records no spent budget: tokens, FLOPs and seconds are counted from there",
                    start_step)
        state = {"spent": {"steps": start_step}, "warm_fraction": min(start_step / amount, 1.0)
                 if start_step >= warmup_steps else None}
    return Budget(trainer.budget, amount, trainer.max_steps, warmup_steps, state)


def agreed_seconds(seconds: float) -> float:
    """The slowest process's step time, so that every process of a run ends a seconds budget at the
    same step (the others would wait forever in the next collective); one all-gather per step,
    only with several processes."""
    if jax.process_count() == 1:
        return seconds
    from jax.experimental import multihost_utils
    return float(np.max(multihost_utils.process_allgather(np.float64(seconds))))


def manifest_entry(trainer) -> dict:
    """What the manifest records of the budget."""
    return {"kind": trainer.budget, "amount": amount_of(trainer), "unit": UNITS[trainer.budget], "max_steps": trainer.max_steps,
            "reproducible": trainer.budget != "seconds"}


def flops_counter(count: Callable[[int, int, int], int]) -> Callable[[tuple], int]:
    """A cached (batch, source, target) -> train FLOPs: a run has a few batch shapes only."""
    cache: dict[tuple, int] = {}

    def of(shape: tuple) -> int:
        if shape not in cache:
            cache[shape] = int(count(*shape))
        return cache[shape]

    return of


def progress_percent(budget: Budget) -> int:
    """Whole percent of the budget spent, for the progress display."""
    return min(int(math.floor(100 * budget.fraction())), 100)
