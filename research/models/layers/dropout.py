"""Dropout whose keep decisions are 16-bit draws, four to each Threefry hash.

Why not `flax.linen.Dropout`: it draws its mask with `jax.random.bernoulli`,
one 32-bit uniform per element, and under JAX's default (partitionable)
Threefry each element costs a whole Threefry-2x32 hash (20 rounds) whose
64 output bits are folded into 32. Dropout sits on every residual branch and
embedding: at the benchmark shape it took about 10% of the transformer train
step (the step with it against without it, 2026-12-06), and drawing the keep
decisions four to a hash took about half of that away (README "Benchmarks").

Here one hash gives 64 bits, cut into four 16-bit draws. An element is kept
when its draw is at least round(rate * 65536): the rate is honoured to within
1/131072 (0.1 becomes 6554/65536 = 0.100006). The counters are laid out in
the mask's own shape (a hash per 4 elements of the last axis), so the mask is
an elementwise function of the position and comes out the same on one device
or split over a mesh. The key comes from the same `dropout` collection as before.

The hash is written out here (`threefry2x32`, the same function as JAX's
`threefry2x32_p`, bit for bit) and each element computes the hash of its group
of four and keeps its own 16 bits. Why: on CPU JAX lowers `threefry2x32_p` to
a loop of five steps, which XLA cannot fuse into what reads the draws, so the
draws were written out as an array (the four quarters stacked) and read back
by each use of the mask. Written out, the hash fuses into the select that
applies the mask, forward and backward. It does four times the hashing and
still made the benchmark steps faster (2026-12-06, in turns with the loop
version in one process, ms): transformer 787/779, 851/834, 780/759, 823/760,
then 8 more rounds with a median of 772/760 (6 of 8 faster); LSTM pair
787/768, 800/783, 840/803, 836/817. The masks are the
same as before, but the code around them fuses differently, which on some
batch shapes moves results in the last bit (the demo's mean loss over its
first 50 steps: 7.4451581 -> 7.4451562): runs of code before c04930f do not
repeat bit for bit with it.

Masks differ from `flax.linen.Dropout`'s for the same key, so runs of code
before this module (07af2e7) do not repeat bit for bit with it.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import linen as nn
from jax import lax

DRAW_BITS = 16
DRAWS_PER_HASH = 64 // DRAW_BITS  # two 32-bit words out of each hash
ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))  # Threefry-2x32's, alternating by group of 4 rounds
PARITY = 0x1BD11BDA  # the key schedule's constant


def key_words(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A raw uint32[2] key or a typed threefry key -> its two uint32 words."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    if key.shape != (2,) or key.dtype != jnp.uint32:
        raise ValueError(f"dropout needs a threefry key (uint32[2]); got {key.dtype}{list(key.shape)}")
    return key[0], key[1]


def threefry2x32(k0, k1, x0, x1):
    """Threefry-2x32 with 20 rounds (Salmon et al. 2011) on uint32 arrays: key (k0, k1), counter (x0, x1).

    Straight-line elementwise code, so that XLA fuses it with what uses the
    words (JAX's own lowering on CPU is a loop; see the module docstring).
    """
    rotl = lambda v, r: (v << jnp.uint32(r)) | (v >> jnp.uint32(32 - r))
    ks = (k0, k1, k0 ^ k1 ^ jnp.uint32(PARITY))
    x0, x1 = x0 + ks[0], x1 + ks[1]
    for group in range(5):
        for r in ROTATIONS[group % 2]:
            x0 = x0 + x1
            x1 = rotl(x1, r) ^ x0
        x0 = x0 + ks[(group + 1) % 3]
        x1 = x1 + ks[(group + 2) % 3] + jnp.uint32(group + 1)
    return x0, x1


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
    position = lax.broadcasted_iota(jnp.uint32, shape, len(shape) - 1)
    row = lax.iota(jnp.uint32, math.prod(rows)).reshape(*rows, 1)
    counters = row * jnp.uint32(m) + position // DRAWS_PER_HASH
    w0, w1 = threefry2x32(*key_words(key), jnp.zeros_like(counters), counters)
    lane = position % DRAWS_PER_HASH
    word = jnp.where(lane < 2, w0, w1)
    return jnp.where(lane % 2 == 0, word & jnp.uint32(0xFFFF), word >> DRAW_BITS)


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
