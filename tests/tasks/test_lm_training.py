"""A language model of every decoder learns on real batches; its perplexity is exp(mean token NLL), falls on
its own training texts, and selects the lowest checkpoint; the paired test compares perplexities."""
from __future__ import annotations

import numpy as np
import pytest

from research import tasks
from research.data import corpus
from research.tasks import lm
from research.training import evaluation
from tests.helpers.lm import DECODERS, batches, numpy_perplexity, run_config, sample_corpus, trainer

STEPS = 8


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    return sample_corpus(tmp_path_factory.mktemp("lm"))


def _train(cfg, texts, data: list[dict], steps: int):
    """(model, initial params, final params, losses) of `steps` updates cycling through `data`."""
    model, init, step = trainer(cfg, texts.tokenizer)
    state = init(data[0])
    first, losses = state.params, []
    for i in range(steps):
        state, metrics = step(state, data[i % len(data)])
        assert float(metrics["skipped"]) == 0.0
        losses.append(float(metrics["loss"]))  # the loss before this update
    assert all(np.isfinite(losses))
    return model, first, state.params, losses


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.slow  # `make test-slow`: 2026-12-03 durations, 30-380 s each
def test_every_decoder_trains_as_a_language_model(texts, tmp_path, decoder):
    cfg = run_config(decoder, tmp_path)
    data = batches(cfg, texts, 2)
    assert all(int((b["target_segments"] > 0).sum()) > 100 for b in data)  # real texts, not padding
    *_, losses = _train(cfg, texts, data, STEPS)
    assert losses[-2] < losses[0] - 0.1, losses  # the first batch again, after 6 updates (from ln V, uniform)


@pytest.mark.slow  # minutes on 2 cores: `make test-slow` (measured in the 2026-12-03 durations)
def test_perplexity_is_exp_mean_token_nll_and_falls_on_its_training_texts(texts, tmp_path):
    """Trains on 32 real training texts short enough to be trained on whole, scores them with the task's
    evaluate_split before and after, and recomputes both perplexities (and token accuracies) with NumPy from
    the logits of each text alone."""
    cfg = run_config("transformer", tmp_path, "data.max_target_len=128", "data.tokens_per_batch=2048")
    tok = texts.tokenizer
    rows = [texts.train[i] for i in range(600)]
    short = [r for r in rows if len(tok.encode_target(r["target"])) < 100][:32]
    assert len(short) == 32
    data = batches(cfg, corpus.Corpus(tok, short, texts.valid, "short"), 2)  # the 32 texts, each once
    assert sum(int((b["target_segments"] > 0).sum()) for b in data) == sum(len(tok.encode_target(r["target"])) + 1
                                                                           for r in short)
    model, before, after, _ = _train(cfg, texts, data, 30)
    task = tasks.get("lm")
    predict = task.predictor(model, cfg.decode)
    ids = [tok.encode_target(r["target"]) for r in short]
    found = []
    for params in (before, after):
        scores = task.evaluate_split(short, tok, cfg.data, params, None, predict, description="")
        ppl, accuracy = numpy_perplexity(model, params, ids)
        np.testing.assert_allclose(scores.metrics["perplexity"], ppl, rtol=1e-5)
        np.testing.assert_allclose(scores.metrics["loss"], np.log(ppl), rtol=1e-5)
        # float32 against float64 logits: at most a near-tie may flip one token's arg-max
        assert scores.metrics["accuracy"] == pytest.approx(accuracy, abs=1.01 / sum(len(i) + 1 for i in ids))
        assert scores.metrics["truncated_to_model"] == 0 and len(scores.hyps) == 32
        assert lm.score(scores.hyps) == {k: scores.metrics[k] for k in ("loss", "perplexity", "accuracy")}
        found.append(scores.metrics["perplexity"])
    assert found[1] < 0.7 * found[0], found


def test_perplexity_selects_the_lowest_checkpoint():
    assert tasks.get("lm").metric == "perplexity" and tasks.by_metric("perplexity") is tasks.get("lm")
    assert evaluation.selection("lm", "metric") == ("perplexity", "min")
    assert evaluation.selection("lm", "loss") == ("loss", "min")
    for task in ("translation", "summarization", "sequence", "classification", "multilabel"):
        assert evaluation.selection(task, "metric") == (tasks.get(task).metric, "max")


def test_split_scores_and_the_paired_test_come_from_per_example_lines():
    rng = np.random.default_rng(0)
    tokens = rng.integers(5, 40, size=200)
    a = rng.gamma(4.0, 1.0, size=200) * tokens / 4  # about 1 nat per token
    lines = lambda nll: [lm.example_line(x, n, n // 3) for x, n in zip(nll, tokens)]
    got = lm.score(lines(a))
    assert got["perplexity"] == pytest.approx(np.exp(a.sum() / tokens.sum()), rel=1e-12)
    assert got["accuracy"] == pytest.approx((tokens // 3).sum() / tokens.sum(), rel=1e-12)

    worse, same, noisy = a * 1.3, a.copy(), a * rng.normal(1.0, 0.3, size=200).clip(0.1)
    p = lm.perplexity_test(lines(a), {"worse": lines(worse), "same": lines(same), "noisy": lines(noisy)}, None)
    assert p["same"] == {"perplexity_bootstrap": 1.0}
    assert p["worse"]["perplexity_bootstrap"] < 0.01 < 0.05 < p["noisy"]["perplexity_bootstrap"]
    # Recomputed by hand: resample examples, compare the two perplexities of each resample.
    idx = np.random.default_rng(12345).choice(200, size=(1000, 200), replace=True)
    ppl = lambda nll: np.exp(nll[idx].sum(1) / tokens[idx].sum(1))
    diffs = np.abs(ppl(a) - ppl(noisy))
    observed = abs(np.exp(a.sum() / tokens.sum()) - np.exp(noisy.sum() / tokens.sum()))
    assert p["noisy"]["perplexity_bootstrap"] == pytest.approx((np.sum(diffs - diffs.mean() > observed) + 1) / 1001)

    other_tokenizer = [lm.example_line(x, n + 1, 0) for x, n in zip(a, tokens)]
    with pytest.raises(ValueError, match="token counts differ"):
        lm.perplexity_test(lines(a), {"other": other_tokenizer}, None)
