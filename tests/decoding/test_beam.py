"""Beam search: exactness against brute force, greedy equivalence, n-best, penalty."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.data.batch import BOS, EOS, PAD, UNK
from research.decoding.beam import beam_search, length_penalty, reorder, tile_beams
from research.decoding.greedy import greedy
from research.models.interfaces import Stationary
from tests.helpers.search import brute_force, teacher_forced_log_probs, toy_model


def run(step_fn, state, max_len, beam_size, max_steps, alpha, n_best):
    fn = jax.jit(lambda s, m, a: beam_search(step_fn, s, beam_size, max_steps, m, a, n_best))
    return jax.tree.map(np.asarray, fn(state, jnp.asarray(max_len, jnp.int32), jnp.float32(alpha)))


@pytest.mark.parametrize("alpha", [0.0, 0.6, 2.0])
def test_wide_beam_finds_the_brute_force_optimum(alpha):
    """Vocab 5 with PAD and BOS banned: at most 2**3 live prefixes, so beam 32 is exhaustive."""
    vocab, n_best = 5, 4
    max_len = [4, 3]
    step_fn, state = toy_model(0, 2, vocab, banned=(PAD, BOS))
    tokens, lengths, scores, log_probs = run(step_fn, state, max_len, 32, 5, alpha, n_best)
    for row in range(2):
        best = brute_force(step_fn, state, row, vocab, max_len[row], alpha)[:n_best]
        for j, (score, lp, hyp) in enumerate(best):
            assert tuple(tokens[row, j, : lengths[row, j]]) == hyp
            np.testing.assert_allclose(scores[row, j], score, rtol=1e-5)
            np.testing.assert_allclose(log_probs[row, j], lp, rtol=1e-5)


@pytest.mark.parametrize("seed", [0, 1])
def test_beam_one_is_greedy(seed):
    """With alpha = 0 a beam of one follows the argmax chain exactly."""
    step_fn, state = toy_model(seed, 5, 7)
    max_len = jnp.array([9, 9, 4, 1, 9], jnp.int32)
    g_tokens, g_lengths, g_scores = jax.jit(lambda s, m: greedy(step_fn, s, 9, m))(state, max_len)
    tokens, lengths, scores, log_probs = run(step_fn, state, max_len, 1, 9, 0.0, 1)
    np.testing.assert_array_equal(tokens[:, 0], g_tokens)
    np.testing.assert_array_equal(lengths[:, 0], g_lengths)
    np.testing.assert_array_equal(log_probs[:, 0], g_scores)
    np.testing.assert_array_equal(scores[:, 0], g_scores)


def test_n_best_is_sorted_distinct_and_consistent():
    batch, max_steps, n_best = 3, 7, 6
    max_len = [7, 5, 7]
    step_fn, state = toy_model(3, batch, 7)
    tokens, lengths, scores, log_probs = run(step_fn, state, max_len, 8, max_steps, 0.6, n_best)
    assert tokens.shape == (batch, n_best, max_steps)
    assert np.isfinite(scores).all()
    assert (np.diff(scores, axis=1) <= 0).all(), "n-best must be best first"
    np.testing.assert_allclose(scores, log_probs / length_penalty(lengths, 0.6), rtol=1e-5)
    for b in range(batch):
        hyps = [tuple(tokens[b, j, : lengths[b, j]]) for j in range(n_best)]
        assert len(set(hyps)) == n_best, "hypotheses must be distinct"
        for j, h in enumerate(hyps):
            assert (tokens[b, j, lengths[b, j]:] == PAD).all()
            assert EOS not in h[:-1] and (h[-1] == EOS or len(h) == max_len[b])
    # The reported log-probs are what the model gives those exact tokens.
    flat_tokens = tokens.reshape(batch * n_best, max_steps)
    flat_state = jax.tree.map(lambda x: jnp.repeat(x, n_best, axis=0), state)
    per_token = teacher_forced_log_probs(step_fn, flat_state, flat_tokens)
    mask = np.arange(max_steps) < lengths.reshape(-1, 1)
    np.testing.assert_allclose((per_token * mask).sum(1), log_probs.reshape(-1), rtol=1e-5)


def penalty_model():
    """BOS -> EOS (0.6) or A (0.4); A -> B (0.95); B -> EOS (0.95); UNK/PAD/BOS banned.

    "EOS" has log-prob -0.51 at length 1; "A B EOS" has -1.02 at length 3.
    alpha = 0 prefers the short one; at alpha = 3 the penalty (8/6)**3 = 2.37
    lifts the long one to -0.43, above the short one's -0.51 (lp(1) = 1).
    """
    a, b = 4, 5
    probs = np.full((6, 6), 1e-12)
    probs[BOS, [EOS, a]] = [0.6, 0.4]
    probs[a, [b, EOS]] = [0.95, 0.05]
    probs[b, [EOS, b]] = [0.95, 0.05]
    probs[[PAD, UNK, EOS], EOS] = 1.0
    table = jnp.log(jnp.asarray(probs, jnp.float32))
    return (lambda state, tokens: (table[tokens], state)), {"unused": jnp.zeros((1,))}


@pytest.mark.parametrize("alpha, winner, runner_up", [(0.0, [EOS], [4, 5, EOS]), (3.0, [4, 5, EOS], [EOS])])
def test_length_penalty_favours_longer_hypotheses_as_alpha_grows(alpha, winner, runner_up):
    step_fn, state = penalty_model()
    tokens, lengths, scores, log_probs = run(step_fn, state, [6], 4, 6, alpha, 2)
    assert list(tokens[0, 0, : lengths[0, 0]]) == winner
    assert list(tokens[0, 1, : lengths[0, 1]]) == runner_up
    np.testing.assert_allclose(scores[0], log_probs[0] / ((5.0 + lengths[0]) / 6.0) ** alpha, rtol=1e-6)
    # With a single slot the search must not stop once "EOS" is finished: the
    # live "A" (-0.92) could still win after the penalty at full length.
    tokens, lengths, _, _ = run(step_fn, state, [6], 4, 6, alpha, 1)
    assert list(tokens[0, 0, : lengths[0, 0]]) == winner


def test_row_with_no_budget_returns_empty_slots():
    step_fn, state = toy_model(0, 2, 5)
    tokens, lengths, scores, _ = run(step_fn, state, [0, 3], 2, 3, 0.6, 1)
    assert lengths[0, 0] == 0 and np.isneginf(scores[0, 0]) and (tokens[0] == PAD).all()
    assert 1 <= lengths[1, 0] <= 3 and np.isfinite(scores[1, 0])


def test_stops_as_soon_as_no_live_beam_can_win():
    """alpha = 0: after step 1, "EOS" (-0.51) beats the live "A" (-0.92) forever."""
    step_fn, state = penalty_model()
    calls = []

    def counting_step(state, tokens):
        jax.debug.callback(lambda: calls.append(1))
        return step_fn(state, tokens)

    tokens, lengths, _, _ = run(counting_step, state, [6], 4, 6, 0.0, 1)
    assert list(tokens[0, 0, : lengths[0, 0]]) == [EOS]
    assert len(calls) == 1


def _gathers_of(fn, *args, shape):
    """How many `gather` equations anywhere in fn's jaxpr (loop bodies included) return an array of `shape`."""
    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "gather" and tuple(eqn.outvars[0].aval.shape) == shape:
                yield eqn
            for sub in jax.core.jaxprs_in_params(eqn.params):
                yield from walk(sub)
    return sum(1 for _ in walk(jax.make_jaxpr(fn)(*args).jaxpr))


def test_a_leaf_the_step_passes_through_is_not_reordered_and_the_search_is_unchanged():
    """A per-row memory [B, 5, 3] that the step reads and returns untouched, against the same model whose step
    returns memory + 0 (a new array, which the search must gather every step): the same hypotheses, and only the
    second one's jaxpr gathers [B*K, 5, 3]."""
    batch, vocab, beam = 3, 7, 4
    toy_step, toy_state = toy_model(5, batch, vocab)
    state = {**toy_state, "memory": jax.random.normal(jax.random.key(1), (batch, 5, 3))}

    def passing(state, tokens):
        logits, new = toy_step({k: state[k] for k in toy_state}, tokens)
        return logits + state["memory"].sum((1, 2))[:, None] * jnp.arange(vocab), {**new, "memory": state["memory"]}

    def changing(state, tokens):
        logits, new = passing(state, tokens)
        return logits, {**new, "memory": new["memory"] + 0.0}

    max_len = jnp.array([6, 3, 6], jnp.int32)
    search = lambda fn: (lambda s, m: beam_search(fn, s, beam, 6, m, 0.6, 2))
    got, want = run(passing, state, max_len, beam, 6, 0.6, 2), run(changing, state, max_len, beam, 6, 0.6, 2)
    np.testing.assert_array_equal(got[0], want[0])  # tokens
    np.testing.assert_array_equal(got[1], want[1])  # lengths
    # Scores and log-probs agree to float rounding: the two programs fuse the memory's sum differently
    # (measured: 2.3e-6 relative at most).
    np.testing.assert_allclose(got[2], want[2], rtol=1e-5)
    np.testing.assert_allclose(got[3], want[3], rtol=1e-5)
    assert _gathers_of(search(passing), state, max_len, shape=(batch * beam, 5, 3)) == 0
    assert _gathers_of(search(changing), state, max_len, shape=(batch * beam, 5, 3)) == 1


def test_a_stationary_leaf_is_tiled_along_its_beam_axis_or_not_at_all_and_never_reordered():
    """Rows [B, ...] repeat to [B * K, ...]; a Stationary leaf keeps its B rows and repeats its beam axis,
    one without a beam axis (shared by a row's beams) is left as it is, and `reorder` gathers the other
    leaves to the given rows (checked against NumPy) but neither of them."""
    rows_leaf = np.arange(6, dtype=np.float32).reshape(2, 3)  # B = 2
    buffer = np.arange(2 * 5, dtype=np.float32).reshape(2, 1, 5)  # [B, beams = 1, L]
    shared = np.arange(2 * 4, dtype=np.float32).reshape(2, 4)  # [B, S]
    state = {"rows": jnp.asarray(rows_leaf), "kv": Stationary(jnp.asarray(buffer), beam_axis=1),
             "memory": Stationary(jnp.asarray(shared), beam_axis=None)}
    tiled = tile_beams(state, 3)
    np.testing.assert_array_equal(tiled["rows"], np.repeat(rows_leaf, 3, axis=0))
    np.testing.assert_array_equal(tiled["kv"].value, np.repeat(buffer, 3, axis=1))
    np.testing.assert_array_equal(tiled["memory"].value, shared)
    after = {"rows": tiled["rows"] + 1, "kv": tiled["kv"].replace(value=tiled["kv"].value * 2),
             "memory": tiled["memory"]}
    parents = jnp.asarray([2, 2, 0, 4, 3, 3])
    out = reorder(tiled, after, parents)
    np.testing.assert_array_equal(out["rows"], (np.repeat(rows_leaf, 3, axis=0) + 1)[[2, 2, 0, 4, 3, 3]])
    np.testing.assert_array_equal(out["kv"].value, np.repeat(buffer, 3, axis=1) * 2)
    np.testing.assert_array_equal(out["memory"].value, shared)
