"""Position encodings computed from explicit positions, so packed segments restart at 0: absolute ones added to
the embeddings (sinusoidal, learned), or relative ones added to the attention scores (`RelativeBias`)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

TABLE = "table"  # the learned table's module name, by which `learned_max_len` finds it in parameters


def sinusoidal(positions, dim: int, dtype=jnp.float32):
    """[B, T, dim] sin/cos encodings (Vaswani et al. 2017) of integer positions [B, T]."""
    half = dim // 2
    freq = np.exp(-np.log(10000.0) * np.arange(half) / max(half - 1, 1))
    angles = positions[..., None].astype(jnp.float32) * freq
    enc = jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)
    if dim % 2:
        enc = jnp.pad(enc, [(0, 0)] * (enc.ndim - 1) + [(0, 1)])
    return enc.astype(dtype)


class Positions(nn.Module):
    """Adds sinusoidal or learned position encodings to embeddings [B, T, D]; "relative" adds none (the
    positions enter the attention scores instead, `RelativeBias`).

    A learned table has rows for positions 0 .. max_len - 1 only; later
    positions reuse the last row, so callers keep sequences within it
    (`learned_max_len` reads the limit back from the parameters).
    """

    kind: str  # "sinusoidal" | "learned" | "relative"
    max_len: int
    dim: int

    @nn.compact
    def __call__(self, x, positions):
        if self.kind == "relative":
            return x
        if self.kind == "sinusoidal":
            return x + sinusoidal(positions, self.dim, x.dtype)
        table = nn.Embed(self.max_len, self.dim, embedding_init=nn.initializers.normal(self.dim ** -0.5), name=TABLE)
        return x + table(jnp.minimum(positions, self.max_len - 1)).astype(x.dtype)


def learned_max_len(params, under: str) -> int | None:
    """The longest sequence the learned position tables below a module `under` can encode; None: no table.

    `params` is any pytree of Flax parameters (one model's, or an ensemble's
    several); each learned table is a `.../under/.../table/embedding` leaf
    [max_len, dim], and the smallest wins. Sinusoidal encodings (and models
    without positions: RNNs) have no table and no limit. Reads shapes only,
    so abstract parameters (`jax.eval_shape`) work too.
    """
    sizes = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        names = [str(getattr(k, "key", getattr(k, "name", k))) for k in path]
        if names[-2:] == [TABLE, "embedding"] and under in names[:-2]:
            sizes.append(int(leaf.shape[0]))
    return min(sizes) if sizes else None


def relative_buckets(distance, num_buckets: int, max_distance: int, bidirectional: bool = True):
    """Buckets of key-minus-query distances, as T5's relative attention (Raffel et al. 2020).

    Bidirectional (the encoder): half the buckets are for keys before the query (and the query itself),
    half for keys after it. One-sided (a causal decoder, `bidirectional=False`): every bucket is for keys
    at or before the query, since it never sees one after (those distances share bucket 0). Within a side,
    distances below half its buckets each have their own bucket; longer ones share buckets spaced evenly
    in log(distance) up to `max_distance`, and all beyond it the side's last bucket. Near words, which
    decide most tags and the next target piece, are told apart exactly; far ones only roughly.

    distance: int array (key position - query position) -> int32 bucket ids in [0, num_buckets), same shape.
    """
    if bidirectional:
        side = num_buckets // 2
        offset = (distance > 0).astype(jnp.int32) * side
        far = jnp.abs(distance)
    else:
        side, offset, far = num_buckets, 0, jnp.maximum(-distance, 0)
    exact = side // 2
    scale = (side - exact) / np.log(max_distance / exact)
    logged = exact + (jnp.log(jnp.maximum(far, 1).astype(jnp.float32) / exact) * scale).astype(jnp.int32)
    return offset + jnp.where(far < exact, far, jnp.minimum(logged, side - 1)).astype(jnp.int32)


class RelativeBias(nn.Module):
    """A learned scalar per head and distance bucket, added to the attention scores (T5's relative positions).

    One table for all the layers of a stack, as T5 shares it. It starts at zero, so an untrained stack sees
    no order at all; the gradient of each bucket differs from the first step since text is ordered.
    `bidirectional=False` buckets for a causal decoder (`relative_buckets`).
    """

    num_heads: int
    num_buckets: int
    max_distance: int
    bidirectional: bool = True

    @nn.compact
    def __call__(self, q_positions, k_positions):
        """q_positions [B, Tq], k_positions [B, Tk] int -> float32 bias [B, H, Tq, Tk]."""
        table = self.param("bias", nn.initializers.zeros, (self.num_buckets, self.num_heads))
        distance = k_positions[:, None, :] - q_positions[:, :, None]
        buckets = relative_buckets(distance, self.num_buckets, self.max_distance, self.bidirectional)
        return jnp.take(table, buckets, axis=0).transpose(0, 3, 1, 2).astype(jnp.float32)
