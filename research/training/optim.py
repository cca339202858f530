"""AdamW with warm-up and decay, and global-norm clipping, from the `optim` group.

The learning rate is applied by the train step (`steps.train_step`), not
inside the optax chain: a cosine decays over the run's BUDGET (steps,
tokens, FLOPs or seconds; `research/training/budget.py`), whose position
only the host knows, so the step takes it as an argument. The chain returns
the AdamW direction, -(Adam update + weight decay), which the step scales by
`schedule(count, position)`; the product is bit for bit what optax.adamw
with that learning rate gives.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from research.registry import check


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    name: str = "adamw"
    learning_rate: float = 1e-3  # peak, reached at the end of warm-up
    warmup_steps: int = 1000  # linear warm-up from 0
    schedule: str = "inverse_sqrt"  # inverse_sqrt (Vaswani et al.) | cosine (to min_lr_ratio where the budget ends) | constant
    min_lr_ratio: float = 0.0  # cosine only
    b1: float = 0.9
    b2: float = 0.98  # 0.98 as in the Transformer paper: steadier with large warm-ups
    eps: float = 1e-9
    weight_decay: float = 0.0001  # applied to matrices only, not to biases and norms
    clip_norm: float = 1.0  # global gradient norm; 0 disables

    def __post_init__(self):
        check(self.name == "adamw", "name", f"'{self.name}' is not one of adamw")
        check(self.schedule in ("inverse_sqrt", "cosine", "constant"), "schedule", f"'{self.schedule}' is not one of inverse_sqrt, cosine, constant")
        check(self.learning_rate > 0, "learning_rate", "must be positive")
        check(self.warmup_steps >= 0, "warmup_steps", "must be >= 0")
        check(self.clip_norm >= 0, "clip_norm", "must be >= 0")
        check(0.0 <= self.min_lr_ratio <= 1.0, "min_lr_ratio", "must be in [0, 1]")
        check(0.0 <= self.b1 < 1.0, "b1", "must be in [0, 1)")
        check(0.0 <= self.b2 < 1.0, "b2", "must be in [0, 1)")
        check(self.eps > 0, "eps", "must be positive")
        check(self.weight_decay >= 0, "weight_decay", "must be >= 0")


Schedule = Callable[..., jax.Array]  # (count, position=None) -> learning rate


def schedule(cfg: OptimConfig, max_steps: int) -> Schedule:
    """lr(count, position=None): linear warm-up over `warmup_steps` updates, then the decay.

    `position` in [0, 1] is where a cosine stands between the end of warm-up
    and the end of the budget (`Budget.position()`); without it, the step
    count's own position toward `max_steps` (a steps budget). inverse_sqrt and
    constant do not depend on where the budget ends.
    """
    warm = max(cfg.warmup_steps, 1)
    warmup = optax.linear_schedule(0.0, cfg.learning_rate, warm)
    peak, floor = cfg.learning_rate, cfg.min_lr_ratio

    def lr(count, position=None):
        if cfg.schedule == "constant":
            decay = jnp.asarray(peak, jnp.float32)
        elif cfg.schedule == "cosine":
            if position is None:
                position = jnp.clip((count - warm) / max(max_steps - warm, 1), 0.0, 1.0)
            decay = peak * ((1.0 - floor) * 0.5 * (1.0 + jnp.cos(jnp.pi * position)) + floor)
        else:
            decay = peak * jax.lax.rsqrt(count / warm)  # 1 at the end of warm-up, then 1 / sqrt(step)
        return jnp.where(count < warm, warmup(count), decay)

    return lr


def optimizer(cfg: OptimConfig, frozen: tuple[str, ...] = ()) -> optax.GradientTransformation:
    """The AdamW DIRECTION (learning rate 1): the train step multiplies it by the schedule.

    `learning_rate` is a schedule returning 1.0 so that the optimizer state
    keeps optax's update count (ScaleByScheduleState) and checkpoints keep
    the same structure as when the chain applied the schedule itself.

    `frozen`: top-level parameter names (e.g. "target_embed") whose direction
    is zero, so neither the update nor weight decay touches them; the other
    parameters get AdamW, clipped by their own global norm. Without frozen
    names the chain (and its state) is exactly as before.
    """
    decay_mask = lambda params: jax.tree.map(lambda p: p.ndim >= 2, params)
    adamw = optax.adamw(lambda count: 1.0, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay,
                        mask=decay_mask)
    chain = optax.chain(optax.clip_by_global_norm(cfg.clip_norm), adamw) if cfg.clip_norm > 0 else adamw
    if not frozen:
        return chain
    labels = lambda params: {k: jax.tree.map(lambda _: "frozen" if k in frozen else "train", v) for k, v in params.items()}
    return optax.multi_transform({"train": chain, "frozen": optax.set_to_zero()}, labels)
