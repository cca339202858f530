"""AdamW with warm-up and decay, and global-norm clipping, from the `optim` group."""
from __future__ import annotations

import dataclasses

import jax
import optax

from research.registry import check


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    name: str = "adamw"
    learning_rate: float = 1e-3  # peak, reached at the end of warm-up
    warmup_steps: int = 1000  # linear warm-up from 0
    schedule: str = "inverse_sqrt"  # inverse_sqrt (Vaswani et al.) | cosine (to min_lr_ratio at trainer.max_steps) | constant
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


def schedule(cfg: OptimConfig, max_steps: int) -> optax.Schedule:
    warm = max(cfg.warmup_steps, 1)
    warmup = optax.linear_schedule(0.0, cfg.learning_rate, warm)
    if cfg.schedule == "constant":
        decay = optax.constant_schedule(cfg.learning_rate)
    elif cfg.schedule == "cosine":
        decay = optax.cosine_decay_schedule(cfg.learning_rate, max(max_steps - warm, 1), alpha=cfg.min_lr_ratio)
    else:
        decay = lambda step: cfg.learning_rate * jax.lax.rsqrt((step + warm) / warm)
    return optax.join_schedules([warmup, decay], [warm])


def optimizer(cfg: OptimConfig, lr: optax.Schedule) -> optax.GradientTransformation:
    decay_mask = lambda params: jax.tree.map(lambda p: p.ndim >= 2, params)
    adamw = optax.adamw(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay, mask=decay_mask)
    return optax.chain(optax.clip_by_global_norm(cfg.clip_norm), adamw) if cfg.clip_norm > 0 else adamw
