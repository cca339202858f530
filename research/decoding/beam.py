"""Batched beam search over the narrow step callback, with a finished set.

Each source row keeps `beam_size` live hypotheses; the model state is tiled
to [B * beam_size, ...] (each row repeated beam_size times, so beam j of row
b is flat row b * beam_size + j) and reordered after every step by one
gather on the leading axis. This works for any state pytree because every
leaf has the rows as its leading axis.

A hypothesis that emits EOS, or reaches its row's length limit, moves to a
separate finished set of the n_best best length-normalised hypotheses. The
search for a row stops when no live beam can still beat the worst kept
finished hypothesis (an exact bound, see `_best_achievable`), or at the limit.

Scores use the GNMT length penalty (Wu et al., 2016):
  score = log_prob / ((5 + length) / 6) ** alpha
alpha = 0 ranks by raw log-probability (short hypotheses are favoured);
larger alpha rewards longer ones.

With a coverage penalty (research/decoding/coverage_penalty.py) a finishing
hypothesis scores log_prob / penalty(length) - p(coverage): `penalty(state)`
gives p for every flat row of the state after the step, and a candidate takes
its parent's. The live beams are not penalised.

Only the state that a step changes is reordered. A leaf the step callback
returns as it got it (the same traced array: the encoder output, the
cross-attention keys and values projected once per source) holds the same
row K times over from the tiling on, so the gather would copy it into itself;
`reorder` leaves such leaves alone. At the benchmark shape (batch 32, beam 4,
3 layers, width 256) they are 28 MB of the ~80 MB a step would copy. The
transformer's self-attention buffers, most of the rest, are `Stationary`
(research/models/interfaces.py): each source row's beams side by side,
written in place, read through a table of the beam slots that hold each
hypothesis's positions, which is what is gathered.

Like the fairseq search, an EOS candidate is finalised only if it ranks in
the top beam_size of the 2 * beam_size candidates of its row. Without that,
beam size 1 would also collect the runner-up EOS at every step and could
return something greedy search never produced; with it, beam size 1 and
alpha = 0 reproduce greedy search exactly.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from research.data.batch import BOS, EOS, PAD
from research.decoding.constraints import Processor
from research.decoding.loop import StepFn
from research.models.interfaces import is_stationary


def length_penalty(length: jax.Array, alpha: float) -> jax.Array:
    """GNMT penalty ((5 + length) / 6) ** alpha; 1 at length 1 for any alpha."""
    return ((5.0 + jnp.asarray(length, jnp.float32)) / 6.0) ** alpha


def tile_beams(tree: Any, beam_size: int) -> Any:
    """Repeats every row beam_size times: leaves [B, ...] -> [B * beam_size, ...]; a `Stationary` leaf
    repeats its beam axis instead (its rows stay the B source rows), and one without a beam axis (shared by
    a row's beams) stays as it is."""
    def one(x):
        if is_stationary(x) and x.beam_axis is None:
            return x
        if is_stationary(x):
            return x.replace(value=jax.tree.map(lambda y: jnp.repeat(y, beam_size, axis=x.beam_axis), x.value))
        return jnp.repeat(x, beam_size, axis=0)

    return jax.tree.map(one, tree, is_leaf=is_stationary)


def reorder(before: Any, after: Any, rows: jax.Array) -> Any:
    """`after` with every leaf the step changed gathered to `rows`; a leaf it passed through stays as it is,
    and so does a `Stationary` one (its decoder finds a row's history through a table that is gathered).

    `before` and `after` are the state given to and returned by one step (the
    same tree structure, as `lax.while_loop` requires). "Passed through" is
    object identity at trace time, so it holds at every iteration of the loop.
    """
    def one(old, new):
        return new if new is old or is_stationary(new) else jnp.take(new, rows, axis=0)

    return jax.tree.map(one, before, after, is_leaf=is_stationary)


def _best_achievable(live_log_probs, length, row_max, alpha):
    """Upper bound [B] on the final score of any continuation of the live beams.

    Extending a hypothesis only adds log-probabilities <= 0, so its log-prob
    can only fall; the final length lies in [length + 1, row_max] and the
    penalty is monotonic in length, so the best case divides the current
    (non-positive) log-prob by the largest penalty at either end of that
    range: at row_max when alpha >= 0.

    Args:
      live_log_probs: [B, K] log-probs of the live beams (-inf when empty).
      length: scalar, tokens generated so far.
      row_max: [B] the last length a hypothesis of each row may reach.
    """
    best = jnp.max(live_log_probs, axis=-1)
    biggest_penalty = jnp.maximum(length_penalty(length + 1, alpha), length_penalty(row_max, alpha))
    return best / biggest_penalty


def beam_search(
    step_fn: StepFn,
    state: Any,
    beam_size: int,
    max_steps: int,
    max_len: jax.Array,
    alpha: float = 0.6,
    n_best: int = 1,
    bos: int = BOS,
    eos: int = EOS,
    process: Processor | None = None,
    penalty: Callable[[Any], jax.Array] | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Finds the n_best highest-scoring hypotheses of every row.

    alpha = 0.6 is the GNMT default and the one the Flax WMT example uses.

    Args:
      step_fn: `step_fn(state, tokens [N]) -> (logits [N, V], new_state)`.
      state: pytree with leading axis B on every leaf (untiled).
      beam_size: K, live hypotheses per row (static).
      max_steps: static length of the token buffers.
      max_len: [B] int32 per-row cap on generated tokens, EOS included.
      alpha: length-penalty exponent (see module docstring).
      n_best: how many finished hypotheses to return per row (static).
      bos, eos: start and end ids.
      process: output constraints (`constraints.processor`) applied to every
        live hypothesis's log-probabilities, with its own tokens; None: off.
      penalty: `penalty(state) -> [N]` float32 >= 0, subtracted from the score
        of a hypothesis finishing from that row (a coverage penalty); None: off.

    Returns:
      tokens [B, n_best, max_steps] int32: BOS excluded, the final EOS
        included, PAD after (as in `greedy`); a hypothesis cut at the
        length limit has no EOS.
      lengths [B, n_best] int32: generated tokens, counting the EOS.
      scores [B, n_best] float32: length-normalised scores, best first.
      log_probs [B, n_best] float32: summed log-probabilities.
      Slots with no hypothesis (possible only if a row finished fewer than
      n_best) have score and log-prob -inf and length 0.
    """
    if beam_size < 1 or n_best < 1:
        raise ValueError(f"beam_size and n_best must be >= 1, got {beam_size} and {n_best}")
    max_len = jnp.asarray(max_len, jnp.int32)
    b, k, t = max_len.shape[0], beam_size, max_steps
    row_max = jnp.minimum(max_len, max_steps)  # [B]
    neg_inf = jnp.float32(-jnp.inf)
    init = dict(
        i=jnp.zeros((), jnp.int32),
        # Only beam 0 starts alive, so the K copies don't yield K duplicates.
        live_last=jnp.full((b, k), bos, jnp.int32),
        live_tokens=jnp.full((b, k, t), PAD, jnp.int32),
        live_log_probs=jnp.full((b, k), neg_inf).at[:, 0].set(0.0),
        fin_tokens=jnp.full((b, n_best, t), PAD, jnp.int32),
        fin_lengths=jnp.zeros((b, n_best), jnp.int32),
        fin_scores=jnp.full((b, n_best), neg_inf),
        fin_log_probs=jnp.full((b, n_best), neg_inf),
        done=row_max <= 0,
        state=tile_beams(state, k),
    )

    def cond(c):
        return (c["i"] < max_steps) & ~jnp.all(c["done"])

    def body(c):
        i, done = c["i"], c["done"]
        length = i + 1  # length of every candidate made at this step
        logits, state = step_fn(c["state"], c["live_last"].reshape(b * k))
        v = logits.shape[-1]
        log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
        if process is not None:
            log_probs = process(log_probs, c["live_tokens"].reshape(b * k, t), i)
        log_probs = log_probs.reshape(b, k, v)
        flat = (c["live_log_probs"][:, :, None] + log_probs).reshape(b, k * v)
        # 2K candidates: even if K of them end, K can stay alive.
        cand_lp, cand_idx = jax.lax.top_k(flat, min(2 * k, k * v))  # [B, C], best first
        parent, token = cand_idx // v, cand_idx % v
        cand_tokens = jnp.take_along_axis(c["live_tokens"], parent[:, :, None], axis=1)
        cand_tokens = cand_tokens.at[:, :, i].set(token)  # [B, C, T]
        at_limit = length >= row_max  # [B]
        ends = (token == eos) | at_limit[:, None]

        # Finished set: merge the top-K ending candidates, keep the n_best best.
        rank = jnp.arange(cand_lp.shape[1])
        finalise = ends & (rank < k)[None, :] & ~done[:, None]
        new_scores = cand_lp / length_penalty(length, alpha)
        if penalty is not None:
            new_scores = new_scores - jnp.take_along_axis(penalty(state).reshape(b, k), parent, axis=1)
        new_scores = jnp.where(finalise, new_scores, neg_inf)
        all_scores = jnp.concatenate([c["fin_scores"], new_scores], axis=1)
        fin_scores, keep = jax.lax.top_k(all_scores, n_best)  # ties keep older first

        def pick(old, new):
            """Selects the kept slots from [B, n_best + C, ...] old-then-new."""
            index = keep.reshape(keep.shape + (1,) * (old.ndim - 2))
            return jnp.take_along_axis(jnp.concatenate([old, new], axis=1), index, axis=1)

        fin_tokens = pick(c["fin_tokens"], cand_tokens)
        fin_log_probs = pick(c["fin_log_probs"], cand_lp)
        fin_lengths = pick(c["fin_lengths"], jnp.full(cand_lp.shape, length, jnp.int32))
        fin_lengths = jnp.where(jnp.isneginf(fin_scores), 0, fin_lengths)

        # Live set: the K best candidates that did not end.
        live_log_probs, pos = jax.lax.top_k(jnp.where(ends, neg_inf, cand_lp), k)  # [B, K]
        live_parent = jnp.take_along_axis(parent, pos, axis=1)
        rows = (jnp.arange(b)[:, None] * k + live_parent).reshape(b * k)

        bound = _best_achievable(live_log_probs, length, row_max, alpha)
        done = done | at_limit | (fin_scores[:, -1] >= bound)
        return dict(
            i=i + 1,
            live_last=jnp.take_along_axis(token, pos, axis=1),
            live_tokens=jnp.take_along_axis(cand_tokens, pos[:, :, None], axis=1),
            live_log_probs=live_log_probs,
            fin_tokens=fin_tokens,
            fin_lengths=fin_lengths,
            fin_scores=fin_scores,
            fin_log_probs=fin_log_probs,
            done=done,
            state=reorder(c["state"], state, rows),
        )

    out = jax.lax.while_loop(cond, body, init)
    return out["fin_tokens"], out["fin_lengths"], out["fin_scores"], out["fin_log_probs"]
