"""The packed-draw dropout against a NumPy Threefry-2x32 written from the Random123 specification."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.models.layers.dropout import Dropout, keep_mask, threefry2x32 as written_out, uniform16

ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
PARITY = 0x1BD11BDA


def threefry2x32(key: tuple[int, int], x0: np.ndarray, x1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Threefry-2x32, 20 rounds (Salmon et al. 2011), on uint32 arrays, in NumPy."""
    ks = [np.uint32(key[0]), np.uint32(key[1]), np.uint32(key[0] ^ key[1] ^ PARITY)]
    rotl = lambda v, r: (v << np.uint32(r)) | (v >> np.uint32(32 - r))
    x0 = x0.astype(np.uint32) + ks[0]
    x1 = x1.astype(np.uint32) + ks[1]
    for group in range(5):
        for r in ROTATIONS[group % 2]:
            x0 = x0 + x1
            x1 = rotl(x1, r) ^ x0
        x0 = x0 + ks[(group + 1) % 3]
        x1 = x1 + ks[(group + 2) % 3] + np.uint32(group + 1)
    return x0, x1


def reference_draws(key: tuple[int, int], shape: tuple[int, ...]) -> np.ndarray:
    """The module's documented layout: hash i of row r has counter (0, r * m + i) and gives draws 4i .. 4i + 3."""
    *rows, d = shape
    m = math.ceil(d / 4)
    counters = np.arange(math.prod(rows) * m, dtype=np.uint32)
    w0, w1 = threefry2x32(key, np.zeros_like(counters), counters)
    draws = np.stack([w0 & 0xFFFF, w0 >> 16, w1 & 0xFFFF, w1 >> 16], axis=-1)
    return draws.reshape(*rows, 4 * m)[..., :d]


@pytest.mark.parametrize("key, counter, expected", [
    ((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
])
def test_the_numpy_reference_gives_the_random123_answers(key, counter, expected):
    out = threefry2x32(key, np.array([counter[0]], np.uint32), np.array([counter[1]], np.uint32))
    with np.errstate(over="ignore"):
        assert (int(out[0][0]), int(out[1][0])) == expected


def test_the_written_out_hash_is_jax_threefry2x32_bit_for_bit():
    from jax.extend.random import threefry2x32_p

    words = jax.random.bits(jax.random.PRNGKey(5), (4, 1000), jnp.uint32)
    for k0, k1 in [(0, 0), (0xFFFFFFFF, 1), (0x13198A2E, 0x03707344)]:
        k0, k1 = jnp.uint32(k0), jnp.uint32(k1)
        ours = jax.jit(written_out)(k0, k1, words[0], words[1])
        theirs = threefry2x32_p.bind(k0, k1, words[0], words[1])
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("shape", [(3, 5, 10), (7, 4), (13,), (2, 1, 1)])
def test_draws_are_the_threefry_words_cut_in_four(shape):
    key = jax.random.PRNGKey(1234)
    words = tuple(int(w) for w in np.asarray(key))
    with np.errstate(over="ignore"):
        expected = reference_draws(words, shape)
    np.testing.assert_array_equal(np.asarray(uniform16(key, shape)), expected)
    # a typed key gives the same draws as its raw words
    np.testing.assert_array_equal(np.asarray(uniform16(jax.random.wrap_key_data(key), shape)), expected)


def test_keep_mask_thresholds_the_draws_at_the_rounded_rate():
    key, shape, rate = jax.random.PRNGKey(7), (16, 33), 0.3
    with np.errstate(over="ignore"):
        draws = reference_draws(tuple(int(w) for w in np.asarray(key)), shape)
    np.testing.assert_array_equal(np.asarray(keep_mask(key, shape, rate)), draws >= round(0.3 * 65536))


def test_keep_rate_and_lanes_are_uniform_over_a_million_draws():
    n = 1 << 20
    draws = np.asarray(uniform16(jax.random.PRNGKey(0), (n // 256, 256))).reshape(-1, 4)
    sd_mean = math.sqrt((65536**2 - 1) / 12 / (n // 4))  # of a lane's mean, uniform on 0..65535
    for lane in range(4):  # each of the four draws cut from a hash
        assert abs(draws[:, lane].mean() - 32767.5) < 5 * sd_mean
    kept = (draws >= 6554).mean()
    p = 1 - 6554 / 65536
    assert abs(kept - p) < 5 * math.sqrt(p * (1 - p) / n)


def _apply(rate, x, deterministic=False, seed=0):
    return Dropout(rate).apply({}, x, deterministic, rngs={"dropout": jax.random.PRNGKey(seed)})


def test_dropout_zeroes_and_rescales():
    x = jnp.full((64, 257), 2.0)
    y = np.asarray(_apply(0.25, x))
    assert set(np.unique(y)) <= {0.0, np.float32(2.0 / 0.75)}
    zeroed = (y == 0).mean()
    assert abs(zeroed - 0.25) < 5 * math.sqrt(0.25 * 0.75 / y.size)
    # the gradient flows through exactly the kept elements, scaled the same way
    g = np.asarray(jax.grad(lambda v: _apply(0.25, v).sum())(x))
    np.testing.assert_array_equal(g, np.where(y != 0, np.float32(1 / 0.75), 0.0))


def test_dropout_identity_cases_and_bad_rate():
    x = jnp.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(_apply(0.5, x, deterministic=True), x)
    np.testing.assert_array_equal(_apply(0.0, x), x)
    np.testing.assert_array_equal(_apply(1.0, x), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="dropout rate 1.5"):
        _apply(1.5, x)
    with pytest.raises(ValueError, match="threefry key"):
        uniform16(jnp.zeros((4,), jnp.uint32), (2, 2))


def test_two_sites_and_two_keys_draw_different_masks():
    from flax import linen as nn

    class Two(nn.Module):
        @nn.compact
        def __call__(self, x):
            return Dropout(0.5)(x, False), Dropout(0.5)(x, False)

    x = jnp.ones((32, 32))
    a, b = Two().apply({}, x, rngs={"dropout": jax.random.PRNGKey(0)})
    c, _ = Two().apply({}, x, rngs={"dropout": jax.random.PRNGKey(1)})
    assert (np.asarray(a) != np.asarray(b)).any() and (np.asarray(a) != np.asarray(c)).any()
