"""Sampling: seeding, agreement with greedy in the limits, and the filters."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.data.batch import BOS, PAD
from research.decoding.greedy import greedy
from research.decoding.sample import filter_logits, sample

V = 8


def toy_model(seed: int, batch: int, scale: float):
    """Random bigram logits (times `scale`) plus a per-row bias carried in the state."""
    k_table, k_bias = jax.random.split(jax.random.key(seed))
    table = scale * jax.random.normal(k_table, (V, V))
    state = {"bias": 0.5 * scale * jax.random.normal(k_bias, (batch, V))}
    return (lambda state, tokens: (table[tokens] + state["bias"], state)), state


def run_sample(step_fn, state, key, max_len, max_steps, **kw):
    fn = jax.jit(lambda s, r, m: sample(step_fn, s, r, max_steps, m, **kw))
    return jax.tree.map(np.asarray, fn(state, key, jnp.asarray(max_len, jnp.int32)))


def run_greedy(step_fn, state, max_len, max_steps):
    fn = jax.jit(lambda s, m: greedy(step_fn, s, max_steps, m))
    return jax.tree.map(np.asarray, fn(state, jnp.asarray(max_len, jnp.int32)))


def teacher_forced_logits(step_fn, state, tokens):
    """[B, T, V] logits the model gives after BOS + tokens[:, :t]."""
    prev, out = jnp.full(tokens.shape[:1], BOS, jnp.int32), []
    for t in range(tokens.shape[1]):
        logits, state = step_fn(state, prev)
        out.append(logits)
        prev = jnp.asarray(tokens[:, t], jnp.int32)
    return np.asarray(jnp.stack(out, axis=1))


def test_same_seed_same_output_different_seed_differs():
    step_fn, state = toy_model(0, 6, scale=0.3)  # flat: many likely continuations
    max_len = [10] * 6
    a = run_sample(step_fn, state, jax.random.key(1), max_len, 10)
    b = run_sample(step_fn, state, jax.random.key(1), max_len, 10)
    c = run_sample(step_fn, state, jax.random.key(2), max_len, 10)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("kw", [dict(top_k=1), dict(temperature=1e-6), dict(top_p=0.01)],
                         ids=["top_k=1", "temperature->0", "top_p=0.01"])
def test_degenerate_settings_equal_greedy(kw):
    step_fn, state = toy_model(1, 5, scale=2.0)
    max_len = [12, 12, 5, 1, 12]
    expected = run_greedy(step_fn, state, max_len, 12)
    for seed in (0, 1):
        got = run_sample(step_fn, state, jax.random.key(seed), max_len, 12, **kw)
        for x, y in zip(got, expected):
            np.testing.assert_array_equal(x, y)


def test_sampled_tokens_stay_inside_top_k_and_scores_are_model_log_probs():
    batch, max_steps, top_k = 8, 6, 3
    step_fn, state = toy_model(2, batch, scale=1.0)
    tokens, lengths, scores = run_sample(step_fn, state, jax.random.key(0), [max_steps] * batch, max_steps,
                                         temperature=1.5, top_k=top_k)
    logits = teacher_forced_logits(step_fn, state, tokens)                   # [B, T, V]
    mask = np.arange(max_steps) < lengths[:, None]                           # [B, T]
    kth = np.sort(logits, axis=-1)[..., -top_k]
    chosen = np.take_along_axis(logits, tokens[..., None], axis=-1)[..., 0]
    assert (chosen[mask] >= kth[mask]).all()
    assert (tokens[~mask] == PAD).all()
    # Scores are untempered, unfiltered model log-probs of the chosen tokens.
    log_probs = np.asarray(jax.nn.log_softmax(logits))
    chosen_lp = np.take_along_axis(log_probs, tokens[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(scores, (chosen_lp * mask).sum(1), rtol=1e-5)


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_first_token_frequencies_follow_the_tempered_softmax(temperature):
    """4000 one-step draws from one row; frequencies within 3 points of softmax(logits / T)."""
    step_fn, state = toy_model(3, 1, scale=1.0)
    state = jax.tree.map(lambda x: jnp.repeat(x, 4000, axis=0), state)
    tokens, _, _ = run_sample(step_fn, state, jax.random.key(7), [1] * 4000, 1, temperature=temperature)
    logits, _ = step_fn(jax.tree.map(lambda x: x[:1], state), jnp.array([BOS]))
    expected = np.asarray(jax.nn.softmax(logits[0] / temperature))
    observed = np.bincount(tokens[:, 0], minlength=V) / 4000
    np.testing.assert_allclose(observed, expected, atol=0.03)


def test_top_p_keeps_the_smallest_nucleus():
    probs = np.array([[0.5, 0.3, 0.15, 0.05]])
    logits = jnp.log(jnp.asarray(probs, jnp.float32))
    kept = lambda p: np.isfinite(np.asarray(filter_logits(logits, 1.0, 0, p)))[0].tolist()
    assert kept(0.4) == [True, False, False, False]
    assert kept(0.6) == [True, True, False, False]
    assert kept(0.85) == [True, True, True, False]
    assert kept(1.0) == [True, True, True, True]


def test_rejects_bad_settings():
    step_fn, state = toy_model(0, 1, 1.0)
    for kw in (dict(temperature=0.0), dict(top_k=-1), dict(top_p=0.0)):
        with pytest.raises(ValueError):
            sample(step_fn, state, jax.random.key(0), 3, jnp.array([3]), **kw)
