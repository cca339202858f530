"""grain pipeline: determinism, resumption, token budget, bucketing, packing, eval coverage."""
import collections
import dataclasses
import json
import logging

import numpy as np
import pytest
import tensorflow_datasets as tfds

from research.data import pipeline as P
from research.data.batch import BOS, EOS, KEYS
from tests.conftest import compose_config
from tests.helpers.corpus import shared_corpus

tfds.disable_progress_bar()


def make_corpus(n=400, seed=0, longest=30):
    """Random sentences of 1..longest-1 words "w<id>", all within CONFIG's max lengths."""
    rng = np.random.default_rng(seed)
    def sentence():
        return " ".join(f"w{x}" for x in rng.integers(0, 500, int(rng.integers(1, longest))))
    return [{"source": sentence(), "target": sentence()} for _ in range(n)]


def tokenize(text):
    """Word "w<k>" -> id k + 4 (above the special ids); invertible, so tests can check contents."""
    return [int(w[1:]) + 4 for w in text.split()]


CORPUS = make_corpus()
CONFIG = P.PipelineConfig(tokens_per_batch=512, max_source_len=32, max_target_len=32, num_workers=0,
                          seed=1, max_shapes=6, log_every=0)


def take(it, n):
    return [next(it) for _ in range(n)]


def same(a, b):
    return len(a) == len(b) and all(x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)
                                    for x, y in zip(a, b))


def segments_of(batch, row):
    """The (source ids, target ids) of each example packed in a row, checking ends and positions."""
    out = []
    for seg in range(1, batch["source_segments"][row].max() + 1):
        s = batch["source"][row][batch["source_segments"][row] == seg]
        t_in = batch["target_in"][row][batch["target_segments"][row] == seg]
        t_out = batch["target_out"][row][batch["target_segments"][row] == seg]
        assert s[-1] == EOS and t_in[0] == BOS and t_out[-1] == EOS
        assert list(t_in[1:]) == list(t_out[:-1])
        assert list(batch["source_positions"][row][batch["source_segments"][row] == seg]) == list(range(len(s)))
        assert list(batch["target_positions"][row][batch["target_segments"][row] == seg]) == list(range(len(t_in)))
        out.append((tuple(s[:-1]), tuple(t_out[:-1])))
    return out


def test_same_seed_same_batches_other_seed_other_batches():
    a = take(P.train_iterator(CORPUS, tokenize, tokenize, CONFIG), 12)
    b = take(P.train_iterator(CORPUS, tokenize, tokenize, CONFIG), 12)
    c = take(P.train_iterator(CORPUS, tokenize, tokenize, dataclasses.replace(CONFIG, seed=2)), 12)
    assert same(a, b)
    assert not same(a, c)


def test_worker_processes_do_not_change_the_batches():
    it = P.train_iterator(CORPUS, tokenize, tokenize, dataclasses.replace(CONFIG, num_workers=2))
    try:
        with_workers = take(it, 10)
    finally:
        it.close()
    assert same(with_workers, take(P.train_iterator(CORPUS, tokenize, tokenize, CONFIG), 10))


@pytest.mark.parametrize("pack", [False, True])
def test_restored_state_continues_with_the_next_batch(pack):
    config = dataclasses.replace(CONFIG, pack=pack)
    it = P.train_iterator(CORPUS, tokenize, tokenize, config)
    take(it, 7)
    state = json.loads(json.dumps(it.get_state()))  # what a checkpoint keeps
    expected = take(it, 3)
    restored = P.train_iterator(CORPUS, tokenize, tokenize, config)
    restored.set_state(state)
    assert same(take(restored, 3), expected)


def test_token_budget_few_static_shapes_and_epochs_cover_all():
    it = P.train_iterator(CORPUS, tokenize, tokenize, CONFIG)
    assert 1 < len(it.shapes) <= CONFIG.max_shapes
    seen = collections.Counter()
    while sum(seen.values()) < 2 * len(CORPUS):  # two epochs
        batch = next(it)
        b, s, t = batch["source"].shape[0], batch["source"].shape[1], batch["target_in"].shape[1]
        assert (b, s, t) in it.shapes and b * max(s, t) <= CONFIG.tokens_per_batch
        assert all(batch[k].dtype == np.int32 and batch[k].shape[0] == b for k in KEYS)
        for row in range(b):
            seen.update(segments_of(batch, row))
    expected = collections.Counter((tuple(tokenize(e["source"])), tuple(tokenize(e["target"]))) for e in CORPUS)
    assert seen == expected + expected  # every example once per epoch, no empty rows but in the last batch


def test_length_filter_and_truncation_are_counted_and_logged(caplog):
    long = CORPUS + [{"source": " ".join(["w1"] * 50), "target": "w2"}, {"source": "w3", "target": "w4 " * 40}]
    with caplog.at_level(logging.INFO, logger="research.data.pipeline"):
        dropped = P.train_iterator(long, tokenize, tokenize, CONFIG).stats
        cut = P.train_iterator(long, tokenize, tokenize, dataclasses.replace(CONFIG, length_policy="truncate")).stats
    n_long = sum(len(tokenize(e["source"])) >= 32 or len(tokenize(e["target"])) >= 32 for e in long)
    assert (dropped.dropped, dropped.truncated, dropped.examples) == (n_long, 0, len(long) - n_long)
    assert (cut.dropped, cut.truncated, cut.examples) == (0, n_long, len(long))
    assert f"{n_long} dropped" in caplog.text and f"{n_long} truncated" in caplog.text


def test_packing_rows_hold_whole_examples_each_once_per_epoch():
    config = dataclasses.replace(CONFIG, pack=True)
    it = P.train_iterator(CORPUS, tokenize, tokenize, config)
    (shape,) = it.shapes
    seen, rows_with_many = collections.Counter(), 0
    while sum(seen.values()) < len(CORPUS):
        batch = next(it)
        assert (batch["source"].shape, batch["target_in"].shape) == ((shape.batch, 32), (shape.batch, 32))
        for row in range(shape.batch):
            found = segments_of(batch, row)
            rows_with_many += len(found) > 1
            seen.update(found)
    expected = collections.Counter((tuple(tokenize(e["source"])), tuple(tokenize(e["target"]))) for e in CORPUS)
    assert seen == expected
    assert rows_with_many > 0 and it.stats.padding_fraction < 0.15


def test_eval_covers_every_example_once_with_its_index():
    train = P.train_iterator(CORPUS, tokenize, tokenize, CONFIG)
    long = CORPUS + [{"source": " ".join(["w1"] * 50), "target": "w2"}]
    it = P.eval_iterator(long, tokenize, tokenize, CONFIG, shapes=train.shapes)
    batches = list(it)
    assert same(batches, list(P.eval_iterator(long, tokenize, tokenize, CONFIG, shapes=train.shapes)))
    # the training shapes come first; the long example gets an added one instead of a cut
    assert it.shapes[:len(train.shapes)] == train.shapes and len(it.shapes) == len(train.shapes) + 1
    assert it.stats.truncated == 0
    index = np.concatenate([b["index"] for b in batches])
    assert sorted(index[index >= 0]) == list(range(len(long)))
    for batch in batches:
        empty = batch["index"] < 0
        assert (batch["source_segments"][empty] == 0).all() and (batch["target_segments"][empty] == 0).all()
        assert list(batch["index"][~empty]) == sorted(batch["index"][~empty])  # corpus order within a shape
        assert (batch["source"].shape[0], batch["source"].shape[1], batch["target_in"].shape[1]) in it.shapes
        for row in np.flatnonzero(~empty):
            ex = long[batch["index"][row]]
            assert segments_of(batch, row) == [(tuple(tokenize(ex["source"])), tuple(tokenize(ex["target"])))]


@pytest.fixture(scope="module")
def ddtp(tmp_path_factory):
    from research.data.builders import load_splits

    corpus = str(shared_corpus("ddtp_de_en"))
    return load_splits("jsonl", corpus, "de", "en", ("train",), str(tmp_path_factory.mktemp("tfds")))["train"]


class Words:
    """Whitespace words -> ids of a vocabulary grown on the fly (enough for lengths and speed)."""

    def __init__(self):
        self.vocab = {}

    def __call__(self, text):
        return [self.vocab.setdefault(w, len(self.vocab) + 4) for w in text.split()]


def test_ddtp_bucketing_pads_under_15_percent_at_the_shipped_settings(ddtp):
    """The README's bucketing target (padding < 15%) at conf/data/ddtp_de_en.yaml's token budget
    and shape count, over about one epoch (180 batches of 4,096 positions).

    Lengths are whitespace words, not the benchmark's sentencepiece pieces. Measured
    (2026-12, seeds 0-2): 13.4-14.1% with the shipped 14 shapes; 12 shapes give 14.0-14.7%,
    10 shapes 16.9%. The benchmark's pieces at 2,048 positions gave 13.8%.
    """
    shipped = compose_config(["data=ddtp_de_en"]).data
    config = P.PipelineConfig(tokens_per_batch=shipped.tokens_per_batch, max_shapes=shipped.max_shapes,
                              max_source_len=shipped.max_source_len, max_target_len=shipped.max_target_len,
                              num_workers=0, log_every=0)
    assert (config.tokens_per_batch, config.max_shapes) == (4096, 14)  # the settings the figures above are for
    words = Words()
    it = P.train_iterator(ddtp, words, words, config)
    take(it, 180)
    stats = it.stats
    print(f"ddtp_de_en, {len(stats.shapes)} shapes: padding {stats.padding_fraction:.3f}, "
          f"{stats.tokens_per_second:.0f} tokens/s")
    assert len(stats.shapes) <= config.max_shapes and stats.padding_fraction < 0.15
