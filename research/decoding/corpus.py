"""Decoding whole corpora: batches in, n-best strings out in corpus order.

Used by `research.evaluate` (a data split) and `research.translate` (lines
of text). Batches come from the data pipeline's eval iterator, which groups
examples of similar length and says in `batch["index"]` which example each
row holds, so outputs are put back in corpus order here.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable

import jax
import numpy as np

from research import console
from research.data.planning import BatchShape, batch_size
from research.decoding.generate import Hypotheses

SOURCE_KEYS = ("source", "source_segments", "source_positions")


@dataclasses.dataclass(frozen=True)
class Output:
    text: str        # detokenized, cut at the first EOS
    score: float     # what the search ranked by (see generate.Hypotheses)
    log_prob: float  # summed log-probability of the tokens
    length: int      # generated tokens, counting EOS


def decode_batches(generate_fn: Callable[[Any, dict], Hypotheses], params, batches: Iterable[dict], n: int,
                   tokenizer, description: str | None = "decoding") -> list[list[Output]]:
    """Runs `generate_fn` (e.g. `jit_generate_nbest(model, cfg)`) over every batch.

    Only the source arrays are passed in, so batches that differ only in
    their target length share one compilation.

    Args:
      batches: dicts with the source keys and `index` [B] (-1: an empty row).
      n: number of examples; every index in [0, n) must appear once.
      description: what the progress display (examples, rate, ETA; `research.console`) calls
        this, e.g. "decoding validation"; None shows none. Process 0 shows it.

    Returns:
      For each example, in corpus order, its hypotheses best first.
    """
    out: list[list[Output] | None] = [None] * n
    shown = description is not None and jax.process_index() == 0
    with console.progress(n, description or "", "examples", enabled=shown) as bar:
        for batch in batches:
            h = jax.device_get(generate_fn(params, {k: batch[k] for k in SOURCE_KEYS}))
            for row, i in enumerate(batch["index"]):
                if i < 0:
                    continue
                out[i] = [
                    Output(text=tokenizer.decode_target(np.asarray(h.tokens[row, j, : h.lengths[row, j]])),
                           score=float(h.scores[row, j]), log_prob=float(h.log_probs[row, j]),
                           length=int(h.lengths[row, j]))
                    for j in range(h.tokens.shape[1])
                ]
            bar.update(int((np.asarray(batch["index"]) >= 0).sum()))
    missing = [i for i, o in enumerate(out) if o is None]
    if missing:
        raise RuntimeError(f"the batches skipped {len(missing)} of {n} examples, e.g. {missing[:5]}")
    return out


def one_line(text: str) -> str:
    """A hypothesis as one line of a text file (a stray newline would shift every later line)."""
    return " ".join(text.splitlines())


def source_shapes(tokens_per_batch: int, max_source_len: int, target_len: int = 8) -> list[BatchShape]:
    """Fixed batch shapes for decoding raw text, source lengths 16, 24, 32, 48, 64, ... up to the limit.

    Fixed, so that successive chunks of input reuse the same compilations;
    about sqrt(2) apart, so padding stays under ~30%. The target length only
    has to hold the empty target of raw text. Batch size follows the token
    budget as in training (B * S <= tokens_per_batch).
    """
    lengths, s = [], 16
    while s < max_source_len:
        lengths.append(s)
        s = s * 3 // 2 if (s & (s - 1)) == 0 else s * 4 // 3  # 16, 24, 32, 48, 64, 96, 128, ...
    lengths.append(max_source_len)
    return [BatchShape(batch_size(tokens_per_batch, s, s), s, min(target_len, s)) for s in lengths]
