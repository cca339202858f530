"""decode.min_len and decode.no_repeat_ngram: against brute force, a NumPy reference, and as properties."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.data.batch import BOS, EOS, PAD
from research.decoding import constraints
from research.decoding.beam import beam_search
from research.decoding.greedy import greedy
from research.decoding.sample import sample
from tests.helpers.search import brute_force, teacher_forced_log_probs, toy_model


def repeats(tokens, n: int) -> bool:
    grams = [tuple(tokens[j:j + n]) for j in range(len(tokens) - n + 1)]
    return len(grams) != len(set(grams))


def content(tokens, length) -> list[int]:
    """The generated tokens of one output, its final EOS dropped."""
    out = [int(x) for x in tokens[:length]]
    return out[:-1] if out and out[-1] == EOS else out


def test_banned_tokens_equal_a_python_count():
    rng = np.random.default_rng(0)
    for trial in range(200):
        t, vocab, n = int(rng.integers(1, 9)), 5, int(rng.integers(1, 4))
        generated = int(rng.integers(0, t + 1))
        history = np.full((1, t), PAD, np.int32)
        history[0, :generated] = rng.integers(1, vocab, generated)
        got = np.asarray(constraints.banned_by_ngrams(jnp.asarray(history), jnp.int32(generated), n, vocab))[0]
        h = list(history[0, :generated])
        want = np.zeros(vocab, bool)
        for w in range(vocab):  # w is banned iff appending it repeats an n-gram
            seq = h + [w]
            if len(seq) >= n and tuple(seq[-n:]) in {tuple(seq[j:j + n]) for j in range(len(seq) - n)}:
                want[w] = True
        np.testing.assert_array_equal(got, want, err_msg=f"history {h}, n {n}")


def python_greedy(table, bias, max_len, n, min_len):
    """Step-by-step argmax over the toy model's masked log-probs, one row, in NumPy."""
    out, prev, score = [], BOS, 0.0
    for t in range(max_len):
        logits = np.asarray(table[prev] + bias + 0.5 * t * (np.arange(len(bias)) == EOS), np.float64)
        lp = logits - np.log(np.exp(logits - logits.max()).sum()) - logits.max()
        for w in range(len(lp)):
            seq = out + [w]
            if n and len(seq) >= n and tuple(seq[-n:]) in {tuple(seq[j:j + n]) for j in range(len(seq) - n)}:
                lp[w] = -np.inf
        if len(out) < min_len:
            lp[EOS] = -np.inf
        prev = int(np.argmax(lp))
        out.append(prev)
        score += lp[prev]
        if prev == EOS:
            break
    return out, score


@pytest.mark.parametrize("n,min_len", [(2, 0), (0, 4), (3, 2)])
def test_greedy_follows_the_masked_argmax_and_scores_the_model_log_probs(n, min_len):
    vocab, batch, steps = 7, 4, 10
    step_fn, state = toy_model(4, batch, vocab)
    k_table, _ = jax.random.split(jax.random.key(4))
    table = np.asarray(1.5 * jax.random.normal(k_table, (vocab, vocab)))
    max_len = jnp.full((batch,), steps, jnp.int32)
    tokens, lengths, scores = jax.jit(lambda s: greedy(step_fn, s, steps, max_len,
                                                       process=constraints.processor(min_len, n)))(state)
    for row in range(batch):
        want, score = python_greedy(table, np.asarray(state["bias"][row]), steps, n, min_len)
        assert [int(x) for x in tokens[row, : lengths[row]]] == want
        np.testing.assert_allclose(scores[row], score, rtol=1e-4)
    # Nothing renormalised: the score is what the unconstrained model gives those tokens.
    per_token = teacher_forced_log_probs(step_fn, state, np.asarray(tokens))
    mask = np.arange(steps) < np.asarray(lengths)[:, None]
    np.testing.assert_allclose((per_token * mask).sum(1), scores, rtol=1e-5)


@pytest.mark.parametrize("n,min_len", [(2, 0), (0, 2), (3, 2)])
def test_wide_beam_finds_the_brute_force_optimum_among_allowed_outputs(n, min_len):
    vocab, n_best, alpha = 5, 3, 0.6
    max_len = [4, 3]
    step_fn, state = toy_model(0, 2, vocab, banned=(PAD, BOS))
    fn = jax.jit(lambda s: beam_search(step_fn, s, 32, 5, jnp.asarray(max_len, jnp.int32), alpha, n_best,
                                       process=constraints.processor(min_len, n)))
    tokens, lengths, scores, log_probs = jax.tree.map(np.asarray, fn(state))
    for row in range(2):
        allowed = [(s, lp, h) for s, lp, h in brute_force(step_fn, state, row, vocab, max_len[row], alpha)
                   if not (n and repeats(content(h, len(h)), n))
                   and not (h[-1] == EOS and len(h) - 1 < min_len)]
        for j, (score, lp, hyp) in enumerate(allowed[:n_best]):
            assert tuple(tokens[row, j, : lengths[row, j]]) == hyp
            np.testing.assert_allclose(scores[row, j], score, rtol=1e-5)
            np.testing.assert_allclose(log_probs[row, j], lp, rtol=1e-5)


def looping_model(batch: int, vocab: int):
    """A bigram model that wants the cycle 4 -> 5 -> 4 -> 5 ... and EOS only late: every search repeats."""
    table = jnp.full((vocab, vocab), -4.0).at[:, EOS].set(-6.0)
    table = table.at[BOS, 4].set(3.0).at[4, 5].set(3.0).at[5, 4].set(3.0)
    table = table.at[:, PAD].set(-jnp.inf).at[:, BOS].set(-jnp.inf)  # never, as a trained model would have it

    def step_fn(state, tokens):
        return table[tokens], state

    return step_fn, jnp.zeros((batch,), jnp.int32)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_no_search_emits_a_repeated_ngram(n):
    vocab, batch, steps = 12, 6, 16
    step_fn, state = looping_model(batch, vocab)
    max_len = jnp.full((batch,), steps, jnp.int32)
    process = constraints.processor(0, n)
    free = jax.jit(lambda s: greedy(step_fn, s, steps, max_len))(state)
    assert repeats(content(free[0][0], int(free[1][0])), n), "the unconstrained model must repeat"
    outputs = {
        "greedy": jax.jit(lambda s: greedy(step_fn, s, steps, max_len, process=process))(state)[:2],
        "sample": jax.jit(lambda s: sample(step_fn, s, jax.random.split(jax.random.key(1), batch), steps, max_len,
                                           process=process))(state)[:2],
    }
    tokens, lengths, _, _ = jax.jit(lambda s: beam_search(step_fn, s, 4, steps, max_len, 0.6, 4, process=process))(state)
    outputs["beam"] = (tokens.reshape(batch * 4, steps), lengths.reshape(-1))
    for name, (tokens, lengths) in outputs.items():
        for row in range(tokens.shape[0]):
            if int(lengths[row]):
                assert not repeats(content(tokens[row], int(lengths[row])), n), (name, n, tokens[row])


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_constraints_that_never_bind_change_nothing(seed):
    """Greedy outputs that repeat no 3-gram and outlast min_len decode the same with both constraints on."""
    vocab, batch, steps = 9, 6, 8
    step_fn, state = toy_model(seed, batch, vocab)
    max_len = jnp.full((batch,), steps, jnp.int32)
    free = jax.tree.map(np.asarray, jax.jit(lambda s: greedy(step_fn, s, steps, max_len))(state))
    keep = [r for r in range(batch) if not repeats(content(free[0][r], free[1][r]), 3)]
    assert keep, "some row must be free of repeats for the test to say anything"
    shortest = min(len(content(free[0][r], free[1][r])) for r in keep)
    on = jax.tree.map(np.asarray, jax.jit(lambda s: greedy(step_fn, s, steps, max_len,
                                                           process=constraints.processor(shortest, 3)))(state))
    for a, b in zip(free, on):
        np.testing.assert_array_equal(a[keep], b[keep])


def test_min_len_holds_and_a_row_with_no_allowed_token_may_still_end():
    vocab, batch, steps = 6, 3, 12
    step_fn, state = looping_model(batch, vocab)
    max_len = jnp.full((batch,), steps, jnp.int32)
    # unigram blocking over 4 usable symbols (1, 4, 5 and EOS): after 1, 4, 5 nothing is left but EOS,
    # which min_len 6 forbids; the row ends there rather than emitting a forbidden token.
    tokens, lengths, _ = jax.jit(lambda s: greedy(step_fn, s, steps, max_len, process=constraints.processor(6, 1)))(state)
    for row in range(batch):
        out = [int(x) for x in tokens[row, : lengths[row]]]
        assert out[-1] == EOS and len(set(out[:-1])) == len(out) - 1 and len(out) - 1 == 3, out
    # min_len alone: never an EOS before 5 tokens
    eager = jnp.zeros((vocab, vocab)).at[:, EOS].set(5.0).at[:, PAD].set(-1e9).at[:, BOS].set(-1e9)
    eos_first = lambda s, t: (eager[t], s)
    tokens, lengths, _ = jax.jit(lambda s: greedy(eos_first, s, steps, max_len, process=constraints.processor(5, 0)))(state)
    assert (np.asarray(lengths) == 6).all() and (np.asarray(tokens)[:, 5] == EOS).all()
    assert (np.asarray(tokens)[:, :5] != EOS).all()
