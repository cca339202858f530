"""The `decode` section: greedy decoding with the decoder cache vs full recomputation.

Both searches run the same `greedy` loop under one `jax.jit`; they differ only
in the step callback: `research.decoding.generate.prepare` feeds one token
per step through `decode_step` and its cache, `research.decoding.uncached.prepare`
reruns the whole decoder over the prefix at every step. Every row decodes
exactly `OUTPUT_LEN` tokens (EOS is set to an id that never occurs), so the
work does not depend on what the untrained model happens to emit.
"""
from __future__ import annotations

import gc
import time

import jax
import jax.numpy as jnp

from research.benchmarks import models
from research.benchmarks.shape import BENCH_SHAPE, Shape
from research.benchmarks.timing import time_fn
from research.decoding import generate, uncached
from research.decoding.config import DecodeConfig
from research.decoding.greedy import greedy

OUTPUT_LEN = 64
PAIRS = ("transformer-transformer", "rnn-rnn", "cnn-cnn")
NEVER = -1  # an EOS id no token equals: every row runs to OUTPUT_LEN


def _search(prepare, model, cfg):
    def run(params, batch):
        step_fn, state, steps, max_len = prepare(model, params, batch, cfg)
        return greedy(step_fn, state, steps, jnp.full_like(max_len, OUTPUT_LEN), eos=NEVER)

    return jax.jit(run)


def time_pair(pair: str, shape: Shape = BENCH_SHAPE, *, repeats: int = 3, warmup: int = 1) -> dict:
    encoder, decoder = pair.split("-")
    s = models.setup(encoder, decoder, shape)
    # Output buffer = OUTPUT_LEN whatever the source length: max_len_a = 0, max_len_b = OUTPUT_LEN.
    cfg = DecodeConfig(search="greedy", max_len_a=0.0, max_len_b=OUTPUT_LEN)
    batch = {k: jnp.asarray(v) for k, v in models.random_batch(shape).items()}
    params = jax.jit(lambda r: s.model.init({"params": r}, batch)["params"])(jax.random.PRNGKey(0))
    row = {}
    for name, prepare in (("cached", generate.prepare), ("uncached", uncached.prepare)):
        fn = _search(prepare, s.model, cfg)
        start = time.perf_counter()
        compiled = fn.lower(params, batch).compile()
        row[f"{name}_compile_s"] = time.perf_counter() - start
        t = time_fn(lambda: jax.block_until_ready(compiled(params, batch)), warmup=warmup, repeats=repeats)
        tokens, lengths, _ = compiled(params, batch)[:3]
        assert int(lengths.min()) == OUTPUT_LEN, "every row must decode OUTPUT_LEN tokens"
        row[f"{name}_ms"] = 1e3 * t["median_s"]
        row[f"{name}_tokens_per_s"] = shape.batch * OUTPUT_LEN / t["median_s"]
    row["speedup"] = row["uncached_ms"] / row["cached_ms"]
    del params
    gc.collect()
    return row


def decode_section(pairs=PAIRS, *, repeats: int = 3) -> dict:
    return {pair: time_pair(pair, repeats=repeats) for pair in pairs}

