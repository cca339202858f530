"""GloVe (Pennington et al., 2014): word vectors fit to log co-occurrence counts.

The objective, over the nonzero entries X_ij of the co-occurrence matrix
(research/vectors/cooccur.py):

    J = sum_ij f(X_ij) (w_i . w~_j + b_i + b~_j - log X_ij)^2,
    f(x) = min(1, (x / x_max)^alpha)

f lets rare pairs, whose counts are noise, weigh less, and caps frequent
ones at 1 so they do not dominate. The defaults are those of stanfordnlp
GloVe's `glove.c`: x_max 100, alpha 0.75, AdaGrad with learning rate 0.05
and accumulators starting at 1, word and context vectors initialised uniform
in [-0.5/dim, 0.5/dim]; the vector saved for a word is w + w~. As in glove.c
the gradient is that of J/2 (its update is lr * f * diff * vector), so
`learning_rate` means what it means there. The biases start at 0.

One deviation: glove.c runs asynchronous SGD over one entry at a time
(Hogwild threads). Here a minibatch of `batch_size` shuffled entries is one
step: the row gradients of the batch are summed per row (a row met twice
gets both contributions) and AdaGrad updates each touched row once. On CPU
and GPU this is what makes the step fast; per-entry updates would be a
Python-speed loop.

Every batch has one shape (the last is padded with weight-0 entries), so
the jitted step compiles once; `fit` compiles it ahead of time, which makes
a recompilation impossible and keeps compilation out of the epoch times.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from typing import Iterator, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from research.registry import check

log = logging.getLogger(__name__)

Params = dict[str, jax.Array]  # w, c: [V, dim] word and context vectors; b, bc: [V] their biases


@dataclasses.dataclass(frozen=True)
class GloveConfig:
    dim: int = 128  # vector size; glove.c's demo uses 50, the published vectors 50-300
    epochs: int = 25  # passes over the nonzero entries (glove.c's default)
    learning_rate: float = 0.05  # AdaGrad's initial rate (glove.c's default)
    x_max: float = 100.0  # counts at or above it weigh 1 (the paper's value)
    alpha: float = 0.75  # exponent of the weighting below x_max (the paper's value)
    batch_size: int = 4096  # entries per step; glove.c updates one at a time
    seed: int = 0  # initialisation and the shuffle of every epoch

    def __post_init__(self):
        check(self.dim > 0, "dim", f"{self.dim} must be positive")
        check(self.epochs > 0, "epochs", f"{self.epochs} must be positive")
        check(self.learning_rate > 0, "learning_rate", f"{self.learning_rate} must be positive")
        check(self.x_max > 0, "x_max", f"{self.x_max} must be positive")
        check(self.alpha > 0, "alpha", f"{self.alpha} must be positive")
        check(self.batch_size > 0, "batch_size", f"{self.batch_size} must be positive")
        check(self.seed >= 0, "seed", f"{self.seed} must be non-negative")


def weight(x: jax.Array, x_max: float, alpha: float) -> jax.Array:
    """f(x) = min(1, (x / x_max)^alpha)."""
    return jnp.minimum(1.0, (x / x_max) ** alpha)


def init(vocab_size: int, dim: int, seed: int) -> tuple[Params, Params]:
    """-> (params, AdaGrad accumulators): vectors uniform in [-0.5/dim, 0.5/dim], biases 0, accumulators 1."""
    kw, kc = jax.random.split(jax.random.PRNGKey(seed))
    bound = 0.5 / dim
    params = {
        "w": jax.random.uniform(kw, (vocab_size, dim), jnp.float32, -bound, bound),
        "c": jax.random.uniform(kc, (vocab_size, dim), jnp.float32, -bound, bound),
        "b": jnp.zeros((vocab_size,), jnp.float32),
        "bc": jnp.zeros((vocab_size,), jnp.float32),
    }
    return params, jax.tree.map(jnp.ones_like, params)


def _adagrad_rows(table, accum, rows, grads, lr):
    """AdaGrad on the rows of `table` that a batch touched.

    Args:
      table, accum: [V, ...] a parameter and its accumulator.
      rows: [B] the row of each entry (repeats allowed).
      grads: [B, ...] each entry's gradient for its row.
    Returns:
      the updated (table, accum); rows not in `rows` are unchanged.
    """
    # Sum the gradients per distinct row with a fixed-size unique, so the step costs O(B), not O(V).
    # Unused slots repeat a real row but receive no gradient, so they add 0 below.
    unique, inverse = jnp.unique(rows, size=rows.shape[0], fill_value=rows[0], return_inverse=True)
    g = jnp.zeros((rows.shape[0],) + grads.shape[1:], grads.dtype).at[inverse.reshape(-1)].add(grads)
    accum = accum.at[unique].add(g * g)
    table = table.at[unique].add(-lr * g / jnp.sqrt(accum[unique]))
    return table, accum


def step(params: Params, accum: Params, i: jax.Array, j: jax.Array, x: jax.Array, mask: jax.Array,
         *, learning_rate: float, x_max: float, alpha: float) -> tuple[Params, Params, jax.Array]:
    """One AdaGrad step on a batch of entries X[i, j] = x.

    Args:
      i, j: [B] int32 rows (word) and columns (context).
      x: [B] float32 counts (> 0; padding uses 1).
      mask: [B] float32, 0 for padding, which then changes nothing.
    Returns:
      (params, accum, loss): loss is sum f(x) (w_i . w~_j + b_i + b~_j - log x)^2 over the
      batch, the objective J restricted to it.
    """
    f = mask * weight(x, x_max, alpha)  # [B]
    log_x = jnp.log(x)

    def half_loss(rows):
        diff = jnp.sum(rows["w"] * rows["c"], axis=-1) + rows["b"] + rows["bc"] - log_x  # [B]
        return 0.5 * jnp.sum(f * diff * diff)

    rows = {"w": params["w"][i], "c": params["c"][j], "b": params["b"][i], "bc": params["bc"][j]}
    half, grads = jax.value_and_grad(half_loss)(rows)
    params, accum = dict(params), dict(accum)
    for name, index in (("w", i), ("c", j), ("b", i), ("bc", j)):
        params[name], accum[name] = _adagrad_rows(params[name], accum[name], index, grads[name], learning_rate)
    return params, accum, 2.0 * half


class Epoch(NamedTuple):
    index: int  # 0-based
    loss: float  # mean over the nonzero entries of f(X_ij) (w_i . w~_j + b_i + b~_j - log X_ij)^2
    seconds: float
    params: Params  # after this epoch; valid until the iterator resumes (the step donates its buffers)


def entries(counts: sp.spmatrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The nonzero entries of `counts` as (i int32, j int32, x float32) [nnz], duplicates summed."""
    coo = sp.coo_matrix(counts)
    coo.sum_duplicates()
    keep = coo.data > 0
    return coo.row[keep].astype(np.int32), coo.col[keep].astype(np.int32), coo.data[keep].astype(np.float32)


def compile_step(cfg: GloveConfig, params: Params, accum: Params, batch: int):
    """`step` bound to `cfg`, jitted with the parameters donated and compiled for batches of `batch`."""
    fn = jax.jit(lambda p, a, i, j, x, m: step(p, a, i, j, x, m, learning_rate=cfg.learning_rate,
                                                 x_max=cfg.x_max, alpha=cfg.alpha), donate_argnums=(0, 1))
    ints, floats = jax.ShapeDtypeStruct((batch,), jnp.int32), jax.ShapeDtypeStruct((batch,), jnp.float32)
    return fn.lower(params, accum, ints, ints, floats, floats).compile()


def fit(counts: sp.spmatrix, cfg: GloveConfig) -> Iterator[Epoch]:
    """Trains on `counts` [V, V], yielding after every epoch."""
    i_all, j_all, x_all = entries(counts)
    nnz = x_all.size
    if nnz == 0:
        raise ValueError("counts: no nonzero entry to train on")
    batch = min(cfg.batch_size, nnz)
    steps = -(-nnz // batch)
    pad = steps * batch - nnz
    params, accum = init(counts.shape[0], cfg.dim, cfg.seed)
    start = time.perf_counter()
    run = compile_step(cfg, params, accum, batch)
    log.info("glove: %d nonzero entries, %d steps of %d per epoch; step compiled in %.2f s",
             nnz, steps, batch, time.perf_counter() - start)
    rng = np.random.default_rng(cfg.seed)
    mask = np.concatenate([np.ones(nnz, np.float32), np.zeros(pad, np.float32)]).reshape(steps, batch)
    for epoch in range(cfg.epochs):
        start = time.perf_counter()
        order = rng.permutation(nnz)
        # Padding: entry (0, 0) with count 1 (log 1 = 0, finite) and mask 0.
        i = np.concatenate([i_all[order], np.zeros(pad, np.int32)]).reshape(steps, batch)
        j = np.concatenate([j_all[order], np.zeros(pad, np.int32)]).reshape(steps, batch)
        x = np.concatenate([x_all[order], np.ones(pad, np.float32)]).reshape(steps, batch)
        losses = []
        for s in range(steps):
            params, accum, loss = run(params, accum, i[s], j[s], x[s], mask[s])
            losses.append(loss)
        total = float(jnp.sum(jnp.stack(losses)))  # one host read per epoch: steps are not synchronised
        yield Epoch(epoch, total / nnz, time.perf_counter() - start, params)


def vectors(params: Params) -> np.ndarray:
    """The saved vectors, w + w~ as glove.c writes them: float32 [V, dim]."""
    return np.asarray(params["w"] + params["c"], dtype=np.float32)


def train(counts: sp.spmatrix, cfg: GloveConfig, log_every: int = 0) -> tuple[np.ndarray, list[float]]:
    """Trains GloVe on `counts` [V, V]; -> (vectors [V, dim] float32, mean weighted loss of every epoch).

    With `log_every` > 0, logs the loss every that many epochs.
    """
    history, last = [], None
    for last in fit(counts, cfg):
        history.append(last.loss)
        if log_every and (last.index + 1) % log_every == 0:
            log.info("glove: epoch %d/%d loss %.5f (%.2f s)", last.index + 1, cfg.epochs, last.loss, last.seconds)
    return vectors(last.params), history
