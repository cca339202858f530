"""Pooling (research/models/layers/pooling.py) against NumPy, and the classifier's indifference to padding."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research import tasks
from research.data.batch import pad_batch
from research.models.layers.pooling import POOLINGS, AttentionPooling, first_real, masked_max, masked_mean
from tests.helpers.marks import slow_after
from tests.helpers.classification import run_config, sample_corpus

RNG = np.random.default_rng(0)
# Three rows of a crafted memory [3, 6, 4]: 4 real positions, 6 real, none (an empty row of a batch).
MEMORY = RNG.normal(size=(3, 6, 4)).astype(np.float32)
SEGMENTS = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0]], np.int32)
MEMORY[0, 4:] = 100.0  # pads hold large values: any leak shows in max and mean
LENGTHS = [4, 6, 0]


def _reference(kind: str) -> np.ndarray:
    out = np.zeros((3, 4), np.float32)
    for b, n in enumerate(LENGTHS):
        if n:
            real = MEMORY[b, :n]
            out[b] = {"mean": real.mean(0), "max": real.max(0), "first": real[0]}[kind]
    return out


@pytest.mark.parametrize("kind,fn", [("mean", masked_mean), ("max", masked_max), ("first", first_real)])
def test_pooling_equals_numpy_over_the_real_positions(kind, fn):
    np.testing.assert_allclose(np.asarray(fn(jnp.asarray(MEMORY), jnp.asarray(SEGMENTS))), _reference(kind), rtol=1e-6)


def test_first_is_the_first_real_position_when_the_row_starts_with_pads():
    segments = np.array([[0, 0, 1, 1, 1, 0]], np.int32)
    np.testing.assert_allclose(np.asarray(first_real(jnp.asarray(MEMORY[:1]), jnp.asarray(segments))), MEMORY[0, 2:3])


def test_attention_pooling_is_a_softmax_of_the_learned_query_over_real_positions():
    pool = AttentionPooling()
    params = pool.init(jax.random.PRNGKey(0), jnp.asarray(MEMORY), jnp.asarray(SEGMENTS))["params"]
    got = np.asarray(pool.apply({"params": params}, jnp.asarray(MEMORY), jnp.asarray(SEGMENTS)))
    w, b, q = (np.asarray(params["key"]["kernel"]), np.asarray(params["key"]["bias"]), np.asarray(params["query"]))
    want = np.zeros((3, 4), np.float32)
    for row, n in enumerate(LENGTHS):
        if n:
            scores = (MEMORY[row, :n] @ w + b) @ q / np.sqrt(4.0)
            weights = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
            want[row] = weights @ MEMORY[row, :n]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    return sample_corpus(tmp_path_factory.mktemp("pad"))


# Each encoder once in `make test` (the 12 took 72 s of the suite on 2026-12-03), the rest in test-slow.
FAST = [("rnn", "attention"), ("cnn", "max"), ("transformer", "mean")]


@pytest.mark.parametrize("encoder,pooling", slow_after(3, FAST + [(e, p) for e in ("rnn", "cnn", "transformer")
                                                                  for p in POOLINGS if (e, p) not in FAST]))
def test_padding_changes_no_logit(texts, tmp_path, encoder, pooling):
    """The same 5 texts padded to 24 and to 40 positions, and an empty row added: the same logits."""
    cfg = run_config(encoder, tmp_path, f"model.pooling={pooling}")
    tok = texts.tokenizer
    rows = [texts.valid[i] for i in range(5)]
    src = [tok.encode_source(r["source"])[: 8 + 3 * i] for i, r in enumerate(rows)]  # 8..20 pieces, different lengths
    tgt = [tok.encode_target(r["target"]) for r in rows]
    short = pad_batch(src, tgt, 24, 2)
    long = pad_batch(src + [[]], tgt + [[]], 40, 2)
    long = {k: v.copy() for k, v in long.items()}
    for k in long:  # row 5: an empty row (all padding), as the last batch of a split has
        long[k][5] = 0
    model, _ = tasks.get("classification").build_model(cfg, tok)
    params = model.init(jax.random.PRNGKey(0), {k: jnp.asarray(v) for k, v in short.items()})["params"]
    a = np.asarray(model.apply({"params": params}, {k: jnp.asarray(v) for k, v in short.items()}))
    b = np.asarray(model.apply({"params": params}, {k: jnp.asarray(v) for k, v in long.items()}))
    np.testing.assert_allclose(b[:5], a, rtol=1e-5, atol=1e-5)
    assert np.isfinite(b[5]).all()  # the empty row pools to zeros: finite logits (its loss weight is 0)
