"""Greedy search against a step-by-step Python reference on a toy model."""
import jax
import jax.numpy as jnp
import numpy as np

from research.data.batch import BOS, EOS, PAD
from research.decoding.greedy import greedy

V = 7


def toy_model(seed: int, batch: int):
    """A random bigram table plus a per-row bias; EOS grows likelier each step.

    The per-row step counter in the state makes the model non-Markov, like a
    decoder with positions, and exercises state threading.
    """
    k_table, k_bias = jax.random.split(jax.random.key(seed))
    table = 2.0 * jax.random.normal(k_table, (V, V))
    state = {"bias": jax.random.normal(k_bias, (batch, V)), "t": jnp.zeros((batch,), jnp.int32)}
    is_eos = (jnp.arange(V) == EOS).astype(jnp.float32)

    def step_fn(state, tokens):
        logits = table[tokens] + state["bias"] + 0.7 * state["t"][:, None] * is_eos
        return logits, {"bias": state["bias"], "t": state["t"] + 1}

    return step_fn, state


def reference(step_fn, state, max_steps, max_len):
    """Plain Python greedy: one eager model call per step, rows tracked by hand."""
    batch = len(max_len)
    seqs, scores, done = [[] for _ in range(batch)], np.zeros(batch), [m <= 0 for m in max_len]
    prev = jnp.full((batch,), BOS, jnp.int32)
    for _ in range(max_steps):
        logits, state = step_fn(state, prev)
        log_probs = np.asarray(jax.nn.log_softmax(logits))
        token = log_probs.argmax(-1)
        for b in range(batch):
            if not done[b]:
                seqs[b].append(int(token[b]))
                scores[b] += log_probs[b, token[b]]
                done[b] = token[b] == EOS or len(seqs[b]) >= max_len[b]
        prev = jnp.asarray(token, jnp.int32)
    return seqs, scores


def run(step_fn, state, max_steps, max_len):
    fn = jax.jit(lambda s, m: greedy(step_fn, s, max_steps, m))
    return jax.tree.map(np.asarray, fn(state, jnp.asarray(max_len, jnp.int32)))


def test_matches_argmax_chain_with_eos_and_limits():
    batch, max_steps = 6, 8
    max_len = [8, 8, 8, 3, 1, 0]
    step_fn, state = toy_model(0, batch)
    tokens, lengths, scores = run(step_fn, state, max_steps, max_len)
    seqs, ref_scores = reference(step_fn, state, max_steps, max_len)

    assert tokens.shape == (batch, max_steps) and tokens.dtype == np.int32
    for b in range(batch):
        assert lengths[b] == len(seqs[b]) <= max_len[b]
        np.testing.assert_array_equal(tokens[b, : lengths[b]], seqs[b])
        assert (tokens[b, lengths[b]:] == PAD).all(), "nothing may follow EOS or the limit"
        assert (tokens[b, : max(lengths[b] - 1, 0)] != EOS).all(), "EOS only as the last token"
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-5)
    # The fixture must cover both ways of stopping, or the test proves little.
    ended = [b for b in range(batch) if lengths[b] and tokens[b, lengths[b] - 1] == EOS]
    assert any(lengths[b] < max_len[b] for b in ended), "some row should stop on EOS early"
    assert lengths[3] == 3 and tokens[3, 2] != EOS, "row 3 should be cut by its max_len"
    assert lengths[4] == 1 and lengths[5] == 0 and scores[5] == 0.0


def test_per_row_limit_gives_prefix_of_unlimited_output():
    step_fn, state = toy_model(1, 4)
    long_tokens, long_lengths, _ = run(step_fn, state, 10, [10] * 4)
    short_tokens, short_lengths, _ = run(step_fn, state, 10, [2, 3, 4, 10])
    np.testing.assert_array_equal(short_lengths, np.minimum(long_lengths, [2, 3, 4, 10]))
    for b in range(4):
        n = short_lengths[b]
        np.testing.assert_array_equal(short_tokens[b, :n], long_tokens[b, :n])


def test_stops_once_every_row_is_finished():
    """The while_loop must exit early instead of running max_steps times."""
    step_fn, state = toy_model(0, 3)
    calls = []

    def counting_step(state, tokens):
        jax.debug.callback(lambda: calls.append(1))
        return step_fn(state, tokens)

    max_steps = 50
    _, lengths, _ = run(counting_step, state, max_steps, [max_steps] * 3)
    assert len(calls) == lengths.max() < max_steps


def test_eager_equals_jit():
    step_fn, state = toy_model(2, 3)
    eager = greedy(step_fn, state, 6, jnp.array([6, 4, 2], jnp.int32))
    for a, b in zip(eager, run(step_fn, state, 6, [6, 4, 2])):
        np.testing.assert_array_equal(np.asarray(a), b)
