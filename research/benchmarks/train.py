"""The `train` and `scaling` sections: jitted train steps of every pair, and the targets.

Each row: tokens per second (target tokens, the median step), the ratio to
the PyTorch peer of the same architecture where one exists, model FLOPs
utilisation against the matmul peak measured in the same run (in the run's
precision: fp32, or bf16 on an accelerator), and the compile time of the step.
"""
from __future__ import annotations

import dataclasses
import gc
import logging
import statistics

from research.benchmarks import models, torch_peer
from research.benchmarks.shape import BENCH_SHAPE, Shape
from research.models.flops import train_flops
from research.benchmarks.timing import time_alternating, time_fn

log = logging.getLogger(__name__)

PEERS = {"transformer-transformer": "transformer", "rnn-rnn": "lstm"}  # pair -> torch_peer kind
ROUNDS = 3  # rounds of a pair with a peer, each after its own peak measurement
# The targets. Those of the CPU benchmark hold for BENCH_SHAPE in fp32 on the machine it runs on;
# the accelerator's for LARGE_SHAPE in bf16 (`targets` keeps the ones whose `when` matches the run).
CPU = {"shape": "bench", "precision": "fp32"}
TARGETS = (
    {"name": "transformer-transformer tokens/s vs torch", "pair": "transformer-transformer", "metric": "vs_torch", "min": 1.2,
     "when": CPU},
    {"name": "transformer-transformer MFU (against the run's highest peak)", "pair": "transformer-transformer",
     "metric": "mfu_best_peak", "min": 0.55, "when": CPU},
    {"name": "rnn-rnn (LSTM, bi, Luong) tokens/s vs torch LSTM", "pair": "rnn-rnn", "metric": "vs_torch", "min": 1.0,
     "when": CPU},
    {"name": "compile time of every train step", "pair": "*", "metric": "compile_s", "max": 30.0, "when": CPU},
    {"name": "transformer-transformer bf16 MFU (against the run's highest bf16 peak)", "pair": "transformer-transformer",
     "metric": "mfu_best_peak", "min": 0.40, "when": {"shape": "large", "precision": "bf16"}},
)


def time_pair(pair: str, shape: Shape = BENCH_SHAPE, *, repeats: int = 5, warmup: int = 2, precision: str = "fp32",
              peer: str | None = None, rounds: int = 1, peak_flops=None) -> dict:
    """Builds, compiles and times one pair's train step -> a row without the ratios.

    With `peer` (a torch_peer kind) the PyTorch step is timed in turns with
    ours, in `rounds` rounds, each after its own call of `peak_flops` (a
    function measuring the matmul peak, or None); the row gives the median
    round (`step_ms`, and the peer's figures in row["torch"]) and each round's
    figures as lists (`rounds_step_ms`, `rounds_vs_torch`, `rounds_peak_gflop_per_s`).
    Why rounds: a verdict from one round moved with a slow stretch of some
    seconds on the shared machine (README "Benchmarks").
    """
    encoder, decoder = pair.split("-")
    step = models.build_train_step(encoder, decoder, shape, precision=precision)
    flops = train_flops(step.arch, shape.batch, shape.src_len, shape.tgt_len)
    theirs = None
    if peer is None:
        t = time_fn(step, warmup=warmup, repeats=repeats)
        row = {}
    else:
        torch_step, info = torch_peer.make_train_step(peer, shape)
        ours, peers, peaks = [], [], []
        for _ in range(rounds):
            peaks.append(peak_flops() if peak_flops is not None else None)
            t, tp = time_alternating([step, torch_step], warmup=warmup, repeats=repeats)
            ours.append(t)
            peers.append(tp)
        middle = sorted(range(rounds), key=lambda i: ours[i]["median_s"] / peers[i]["median_s"])[rounds // 2]
        t, tp = ours[middle], peers[middle]  # the round with the median ratio
        theirs = {"tokens_per_s": info["tokens"] / tp["median_s"], **tp, **info, "compiled": False}
        row = {"rounds_step_ms": [1e3 * o["median_s"] for o in ours],
               "rounds_vs_torch": [p["median_s"] / o["median_s"] for o, p in zip(ours, peers)]}
        if peak_flops is not None:
            row["rounds_peak_gflop_per_s"] = [p / 1e9 for p in peaks]
            row["peak_gflop_per_s"] = peaks[middle] / 1e9
    row = {"tokens_per_s": step.tokens / t["median_s"], "compile_s": step.compile_s, "step_ms": 1e3 * t["median_s"],
           "p10_ms": 1e3 * t["p10_s"], "p90_ms": 1e3 * t["p90_s"], "gflop_per_step": flops / 1e9,
           "gflop_per_s": flops / t["median_s"] / 1e9, "params": step.params, **row}
    if theirs is not None:
        row["torch"] = theirs
    del step
    gc.collect()  # one pair's state and executable at a time
    return row


def train_section(pairs=models.PAIRS, *, peak_flops, with_torch: bool, repeats: int = 5, warmup: int = 2,
                  rounds: int = ROUNDS, shape: Shape = BENCH_SHAPE, precision: str = "fp32") -> dict:
    """{pair: row} with `vs_torch` (None without a peer) and `mfu` filled in;
    a pair with a PyTorch peer carries the peer's own figures in row["torch"].

    `peak_flops`: a number, or a function measuring the matmul peak, called right before each pair (and
    each round of a pair with a peer) so that its MFU is against the machine's speed of that moment
    (row["peak_gflop_per_s"]; research/benchmarks/busy.py).
    `mfu_best_peak` is against the highest of those peaks (`rescore`): a peak that happened to be
    measured in a slow second cannot inflate it, so the MFU target is checked on it.
    A pair with a peer is timed in `rounds` rounds and its row is the round with the median ratio.
    """
    out, peaks = {}, []
    measure = peak_flops if callable(peak_flops) else (lambda: peak_flops)
    for pair in pairs:
        peer = PEERS.get(pair) if with_torch else None
        if peer is None:
            peaks.append(measure())
            row = time_pair(pair, shape=shape, repeats=repeats, warmup=warmup, precision=precision)
            row["peak_gflop_per_s"] = peaks[-1] / 1e9
        else:
            row = time_pair(pair, shape=shape, repeats=repeats, warmup=warmup, precision=precision, peer=peer, rounds=rounds,
                            peak_flops=measure)
            peaks += [p * 1e9 for p in row["rounds_peak_gflop_per_s"]]
        their = row.get("torch")
        row["vs_torch"] = row["tokens_per_s"] / their["tokens_per_s"] if their else None
        row["mfu"] = row["gflop_per_s"] / row["peak_gflop_per_s"]
        log.info("train %s: %.0f tokens/s, MFU %.1f%%, compile %.1f s", pair, row["tokens_per_s"], 100 * row["mfu"], row["compile_s"])
        out[pair] = row
    return rescore(out, max(peaks, default=0.0))


def rescore(train: dict, best_peak: float) -> dict:
    """Sets each row's `mfu_best_peak` (MFU against `best_peak`, FLOP/s) in place; returns `train`.

    The suite calls it again with the highest peak of the whole run (before the first pair and
    after the last one too). Found necessary on 2026-12-06: one pair's peak, measured at 182.6
    GFLOP/s where the rest of the run measured up to 210.1, made its MFU 68.8% instead of 59.8%.
    """
    for row in train.values():
        row["mfu_best_peak"] = row["gflop_per_s"] * 1e9 / best_peak if best_peak > 0 else None
        if "rounds_step_ms" in row:
            row["rounds_mfu_best_peak"] = ([row["gflop_per_step"] / (ms / 1e3) * 1e9 / best_peak for ms in row["rounds_step_ms"]]
                                           if best_peak > 0 else None)
    return train


def targets(train: dict, shape: str = "bench", precision: str = "fp32") -> dict:
    """{name: {"metric", "min"/"max", "value", "met"}}; value None (met None) when not measured.

    Only the targets set for this shape (a name of `shape.SHAPES`) and precision. A pair timed in
    rounds is judged on the median of its rounds' values.
    """
    out = {}
    for t in TARGETS:
        if t["when"] != {"shape": shape, "precision": precision}:
            continue
        bound = {k: t[k] for k in ("min", "max") if k in t}
        if t["pair"] == "*":
            values = [r[t["metric"]] for r in train.values() if r.get(t["metric"]) is not None]
            value = (max(values) if "max" in t else min(values)) if values else None  # the worst pair
        else:
            row = train.get(t["pair"], {})
            rounds = row.get("rounds_" + t["metric"])
            value = statistics.median(rounds) if rounds else row.get(t["metric"])  # the median round's
        met = None if value is None else bool(t.get("min", value) <= value <= t.get("max", value))
        out[t["name"]] = {"metric": t["metric"], **bound, "value": value, "met": met}
    return out


# Step time as the sequences get longer (batch fixed) and as the batch grows (length fixed).
SCALING_PAIRS = ("transformer-transformer", "rnn-rnn")
SCALING_LENGTHS = (32, 64, 128, 256, 512)
SCALING_BATCHES = (16, 32, 64, 128)
SCALING_BATCH = 16  # rows while the length grows: 16 x 512 = 8192 tokens, 4x the benchmark batch


def scaling_section(pairs=SCALING_PAIRS, lengths=SCALING_LENGTHS, batches=SCALING_BATCHES, *, repeats: int = 2,
                    warmup: int = 1) -> dict:
    """{"<pair> B=<b> L=<l>": {"step_ms", "tokens_per_s", "compile_s", ...}} for both sweeps."""
    grid = [(SCALING_BATCH, n) for n in lengths] + [(b, BENCH_SHAPE.src_len) for b in batches]
    out = {}
    for pair in pairs:
        for b, n in dict.fromkeys(grid):
            shape = dataclasses.replace(BENCH_SHAPE, batch=b, src_len=n, tgt_len=n)
            row = time_pair(pair, shape, repeats=repeats, warmup=warmup)
            out[f"{pair} B={b} L={n}"] = {k: row[k] for k in ("step_ms", "tokens_per_s", "gflop_per_s", "compile_s")}
            log.info("scaling %s B=%d L=%d: %.0f ms", pair, b, n, row["step_ms"])
    return out
