"""Position encodings computed from explicit positions, so packed segments restart at 0."""
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
    """Adds sinusoidal or learned position encodings to embeddings [B, T, D].

    A learned table has rows for positions 0 .. max_len - 1 only; later
    positions reuse the last row, so callers keep sequences within it
    (`learned_max_len` reads the limit back from the parameters).
    """

    kind: str  # "sinusoidal" | "learned"
    max_len: int
    dim: int

    @nn.compact
    def __call__(self, x, positions):
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
