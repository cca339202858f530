"""Word-vector training speed on ddtp_de_en: co-occurrence counting and GloVe epochs.

What a researcher waits for before a GloVe-initialised run can start
(`python -m research.glove`): the counts (tokens per second, the whole
training split, both sides, window 10) and the seconds per GloVe epoch over
their nonzero entries, at the benchmark's d_model and glove.c's settings
otherwise. The first epoch's compilation is outside the epoch times.
"""
from __future__ import annotations

import logging
import time

from research import glove as entry
from research.benchmarks import models
from research.vectors import glove
from research.vectors.cooccur import cooccurrence

log = logging.getLogger(__name__)

WINDOW, EPOCHS = 10, 2


def vectors_section(epochs: int = EPOCHS) -> dict:
    run = entry.run_config(["data=ddtp_de_en"])
    units = entry.piece_units(run)
    tokens = sum(len(d) for d in units.docs)
    start = time.perf_counter()
    counts = cooccurrence(units.docs, units.size, WINDOW)
    cooccur_s = time.perf_counter() - start
    cfg = glove.GloveConfig(dim=models.BENCH_SHAPE.d_model, epochs=epochs)
    seconds = [e.seconds for e in glove.fit(counts, cfg)]
    out = {
        "dataset": run.data.name, "vocab": units.size, "tokens": tokens, "window": WINDOW, "nonzero": int(counts.nnz),
        "cooccur_s": cooccur_s, "cooccur_tokens_per_s": tokens / cooccur_s,
        "glove_dim": cfg.dim, "glove_batch": cfg.batch_size, "glove_s_per_epoch": sum(seconds) / len(seconds),
    }
    log.info("vectors: co-occurrence %.0f tokens/s (%d tokens, %d nonzero); GloVe %.2f s per epoch at dim %d",
             out["cooccur_tokens_per_s"], tokens, out["nonzero"], out["glove_s_per_epoch"], cfg.dim)
    return out
