"""Co-occurrence counts against a brute-force double loop over token positions."""
from __future__ import annotations

import numpy as np
import pytest

from research.vectors.cooccur import cooccurrence


def brute_force(docs, vocab_size, window):
    """Every ordered pair of positions k < l of one document with l - k <= window adds 1/(l - k) both ways."""
    x = np.zeros((vocab_size, vocab_size))
    for doc in docs:
        for k in range(len(doc)):
            for l in range(k + 1, min(len(doc), k + window + 1)):
                x[doc[k], doc[l]] += 1.0 / (l - k)
                x[doc[l], doc[k]] += 1.0 / (l - k)
    return x


DOCS = [
    [0, 1, 2, 3, 4],
    [2, 2, 2],            # a token beside itself: the diagonal
    [5],                  # too short to pair
    [],
    [4, 0, 4, 1, 4, 6, 6, 0],
]


@pytest.mark.parametrize("window", [1, 2, 5])
def test_equals_the_double_loop(window):
    got = cooccurrence(DOCS, 7, window)
    assert got.format == "coo" and got.dtype == np.float64 and got.shape == (7, 7)
    np.testing.assert_allclose(got.toarray(), brute_force(DOCS, 7, window), rtol=1e-12, atol=0)


def test_random_documents_match_and_are_symmetric():
    rng = np.random.default_rng(0)
    docs = [rng.integers(0, 9, rng.integers(0, 30)).tolist() for _ in range(40)]
    got = cooccurrence(docs, 9, 4).toarray()
    np.testing.assert_allclose(got, brute_force(docs, 9, 4), rtol=1e-12)
    np.testing.assert_array_equal(got, got.T)


def test_documents_do_not_leak_into_each_other():
    # Concatenated, 0 and 1 would be neighbours; as two documents they never meet.
    got = cooccurrence([[0, 0], [1, 1]], 2, 10).toarray()
    np.testing.assert_array_equal(got, [[2.0, 0.0], [0.0, 2.0]])


def test_weights_are_one_over_distance():
    got = cooccurrence([[0, 9, 9, 1]], 10, 3).toarray()
    assert got[0, 1] == got[1, 0] == pytest.approx(1 / 3)
    assert got[0, 9] == pytest.approx(1 + 1 / 2)


def test_entries_are_summed_once():
    got = cooccurrence([[0, 1] * 20], 2, 3)
    assert got.nnz == 4  # no duplicate (i, j) left in the COO arrays
    assert len(set(zip(got.row.tolist(), got.col.tolist()))) == got.nnz


def test_refuses_ids_outside_the_vocabulary_and_bad_windows():
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        cooccurrence([[0, 3]], 3)
    with pytest.raises(ValueError, match="window"):
        cooccurrence([[0, 1]], 3, window=0)
