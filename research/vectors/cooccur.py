"""Windowed co-occurrence counts, as GloVe's `cooccur.c` defines them.

Two tokens of one document at distance d (1 <= d <= window) add 1/d to
X[i, j] and to X[j, i]: near neighbours count more than far ones, and the
matrix is symmetric. A token and another occurrence of itself count too
(X[i, i] gets 2/d), as in cooccur.c. Documents never share a window.

The counting is vectorised: the documents are concatenated once, and for
each distance d the pairs (t[k], t[k + d]) whose two ends lie in the same
document are summed by scipy.sparse (duplicates added). The Python loop is
over the `window` distances only, never over tokens.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp


def cooccurrence(docs: Sequence[Sequence[int]], vocab_size: int, window: int = 10) -> sp.coo_matrix:
    """The co-occurrence matrix of `docs`.

    Args:
      docs: documents as token ids in [0, vocab_size).
      vocab_size: V, the matrix's side.
      window: the largest distance counted, left and right (10 as in cooccur.c).

    Returns:
      float64 [V, V] in COO format with one entry per nonzero (i, j), summed.
    """
    if window < 1:
        raise ValueError(f"window: {window} must be at least 1")
    if vocab_size < 1:
        raise ValueError(f"vocab_size: {vocab_size} must be at least 1")
    lengths = np.fromiter((len(d) for d in docs), dtype=np.int64, count=len(docs))
    tokens = np.concatenate([np.asarray(d, dtype=np.int64) for d in docs]) if len(docs) else np.zeros(0, np.int64)
    if tokens.size and (tokens.min() < 0 or tokens.max() >= vocab_size):
        raise ValueError(f"docs: token ids must lie in [0, {vocab_size}), found {tokens.min()}..{tokens.max()}")
    doc = np.repeat(np.arange(len(lengths)), lengths)  # [N] the document of each token
    # One direction only (left token -> right token), summed per distance so memory stays O(N);
    # the transpose adds the other direction at the end.
    upper = sp.csr_matrix((vocab_size, vocab_size), dtype=np.float64)
    for d in range(1, min(window, tokens.size - 1) + 1):
        same = doc[:-d] == doc[d:]  # [N - d] both ends in one document
        left, right = tokens[:-d][same], tokens[d:][same]
        upper = upper + sp.csr_matrix((np.full(left.size, 1.0 / d), (left, right)), shape=(vocab_size, vocab_size))
    return (upper + upper.T).tocoo()
