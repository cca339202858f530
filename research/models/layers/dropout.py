"""Dropout whose keep decisions are 16-bit draws, four to each Threefry hash.

Why not `flax.linen.Dropout`: it draws its mask with `jax.random.bernoulli`,
one 32-bit uniform per element, and under JAX's default (partitionable)
Threefry each element costs a whole Threefry-2x32 hash (20 rounds) whose
64 output bits are folded into 32. Dropout sits on every residual branch and
embedding: at the benchmark shape it took about 10% of the transformer train
step (the step with it against without it, 2026-12-06), and drawing the keep
decisions four to a hash took about half of that away (README "Benchmarks").

Here one hash gives 64 bits, cut into four 16-bit draws, so a mask costs a
quarter of the hashes. An element is kept when its draw is at least
round(rate * 65536): the rate is honoured to within 1/131072 (0.1 becomes
6554/65536 = 0.100006). The counters are laid out in the mask's own shape
(a hash per 4 elements of the last axis), so the mask is an elementwise
function of the position and comes out the same on one device or split over
a mesh. The key comes from the same `dropout` collection as before.

Masks differ from `flax.linen.Dropout`'s for the same key, so runs of code
before this module do not repeat bit for bit with it.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import linen as nn
from jax import lax
from jax.extend.random import threefry2x32_p

DRAW_BITS = 16
DRAWS_PER_HASH = 64 // DRAW_BITS  # two 32-bit words out of each hash


def key_words(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A raw uint32[2] key or a typed threefry key -> its two uint32 words."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    if key.shape != (2,) or key.dtype != jnp.uint32:
        raise ValueError(f"dropout needs a threefry key (uint32[2]); got {key.dtype}{list(key.shape)}")
    return key[0], key[1]


def uniform16(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """uint32 array of `shape` holding independent uniform draws in [0, 65536).

    Hash number i along the last axis (counter (0, row * m + i), m hashes a
    row) gives the draws at positions 4i .. 4i + 3 of that row: the low and
    high halves of its first output word, then of its second.
    """
    if not shape:
        return uniform16(key, (1,))[0]
    *rows, d = shape
    m = -(-d // DRAWS_PER_HASH)  # hashes per row
    counters = lax.iota(jnp.uint32, math.prod(rows) * m).reshape(*rows, m)
    k0, k1 = key_words(key)
    w0, w1 = threefry2x32_p.bind(k0, k1, jnp.zeros_like(counters), counters)
    mask = jnp.uint32(0xFFFF)
    draws = jnp.stack([w0 & mask, w0 >> DRAW_BITS, w1 & mask, w1 >> DRAW_BITS], axis=-1)  # [..., m, 4]
    return draws.reshape(*rows, m * DRAWS_PER_HASH)[..., :d]


def keep_mask(key: jax.Array, shape: tuple[int, ...], rate: float) -> jax.Array:
    """bool array of `shape`: True where an element is kept (probability 1 - rate, to 1/131072)."""
    threshold = round(rate * (1 << DRAW_BITS))
    return uniform16(key, shape) >= jnp.uint32(threshold)


class Dropout(nn.Module):
    """Inverted dropout: zero with probability `rate`, scale the rest by 1 / (1 - rate).

    The same call as `flax.linen.Dropout` (`deterministic`, the `dropout`
    rng collection), so it replaces it everywhere in the models.
    """

    rate: float
    rng_collection: str = "dropout"

    @nn.compact
    def __call__(self, x, deterministic: bool):
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"dropout rate {self.rate} is not in [0, 1]")
        if deterministic or self.rate == 0.0:
            return x
        if self.rate == 1.0:
            return jnp.zeros_like(x)
        keep = keep_mask(self.make_rng(self.rng_collection), x.shape, self.rate)
        return lax.select(keep, x * jnp.asarray(1.0 / (1.0 - self.rate), x.dtype), jnp.zeros_like(x))
