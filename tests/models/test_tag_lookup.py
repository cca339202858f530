"""The tagging baseline's lookup (research/models/tag_lookup.py) against hand counts, and as a run fits it."""
from __future__ import annotations

import collections
import gzip
import json

import pytest

from research import tasks
from research.models import tag_lookup
from research.tasks import tagging
from tests.helpers.tagging import run_config, sample_corpus

TRAIN = [
    (["See", "Debian", "now"], ["O", "O", "PERIOD"]),
    (["See", "Debian", "Now"], ["O", "PERIOD", "PERIOD"]),
    (["See", "debian", "now"], ["O", "COMMA", "PERIOD"]),
    (["a", "Debian", "now"], ["O", "COMMA", "PERIOD"]),
]


def test_backs_off_from_the_pair_to_the_next_words_shape_to_the_shape_alone():
    lookup = tag_lookup.fit(TRAIN, fallback="O")
    # ("Debian", "now") was seen 2x: O once, COMMA once; the tie goes to the tag first in sorted order (COMMA).
    # ("Debian", "Now") once: PERIOD. "Debian" before an unseen capitalised word: (Debian, Upper) is PERIOD.
    # "Debian" before an unseen lower-case word: (Debian, lower) is O 1x, COMMA 1x -> COMMA.
    # A word never seen: its next word's shape alone. (END,) is always PERIOD here; (Upper,) O 3x, PERIOD 1x -> O;
    # (lower,) O 2x (Debian now, See debian), COMMA 2x (debian now, Debian now) -> COMMA, sorted first.
    assert lookup.tag(["Debian", "now"]) == ["COMMA", "PERIOD"]
    assert lookup.tag(["Debian", "Now"]) == ["PERIOD", "PERIOD"]
    assert lookup.tag(["Debian", "Else"]) == ["PERIOD", "PERIOD"]
    assert lookup.tag(["Debian", "else"]) == ["COMMA", "PERIOD"]
    assert lookup.tag(["unseen", "Upper", "x"]) == ["O", "COMMA", "PERIOD"]
    # No next word of shape "other" was ever seen: the fallback.
    assert lookup.tag(["unseen", "42"]) == ["O", "PERIOD"]
    assert tag_lookup.fit(TRAIN, fallback="NONE").tag(["unseen", "42"]) == ["NONE", "PERIOD"]


def test_shapes():
    assert [tag_lookup.shape(w) for w in (None, "Apt", "apt", "0ad", "(see", "Élan")] == \
        ["END", "Upper", "lower", "other", "other", "Upper"]


def _by_hand(train, words):
    """The rule of the module docstring, counted again with plain loops."""
    def majority(key_of):
        counts = collections.defaultdict(collections.Counter)
        for ws, ts in train:
            for j, t in enumerate(ts):
                counts[key_of(ws, j)][t] += 1
        return counts

    nxt = lambda ws, j: ws[j + 1] if j + 1 < len(ws) else None
    tables = [majority(lambda ws, j: (ws[j], nxt(ws, j))),
              majority(lambda ws, j: (ws[j], tag_lookup.shape(nxt(ws, j)))),
              majority(lambda ws, j: tag_lookup.shape(nxt(ws, j)))]
    keys = lambda j: [(words[j], nxt(words, j)), (words[j], tag_lookup.shape(nxt(words, j))),
                      tag_lookup.shape(nxt(words, j))]
    out = []
    for j in range(len(words)):
        for table, key in zip(tables, keys(j)):
            if key in table:
                best = max(table[key].values())
                out.append(sorted(t for t, n in table[key].items() if n == best)[0])
                break
        else:
            out.append("O")
    return out


@pytest.mark.slow  # `make test-slow`: 2026-12-03 durations, 30-380 s each
def test_a_tagging_run_fits_the_lookup_on_its_training_split_and_scores_it_as_the_network(tmp_path):
    cfg = run_config("cnn", tmp_path)
    texts = sample_corpus(tmp_path)
    got = tasks.run_baseline(tasks.get("tagging"), cfg, texts, tmp_path, write=True)
    assert set(got) == {"validation", "test"}
    folder = cfg.data.dir
    read = lambda split: [json.loads(line) for line in gzip.open(f"{folder}/{split}.jsonl.gz", "rt", encoding="utf-8")]
    train = [(r["tokens"], r["tags"]) for r in read("train")]
    for split in ("validation", "test"):
        rows = read(split)
        hyps = [" ".join(_by_hand(train, r["tokens"])) for r in rows]
        want = tagging.plain_scores(hyps, [" ".join(r["tags"]) for r in rows])
        assert got[split] == pytest.approx({f"baseline_lookup_{k}": v for k, v in want.items()}), split
        assert tasks.baseline_hypotheses(tmp_path, split) == {"lookup": hyps}
    assert got["test"]["baseline_lookup_f1_PERIOD"] > 0.5  # a sentence's last word: found from the shape END
