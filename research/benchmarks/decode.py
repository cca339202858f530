"""The `decode` section: our searches against CTranslate2 and a PyTorch peer on the same model.

Rows, all at `DECODE_SHAPE` (the benchmark shape with batch 32, the batch of
CTranslate2's published benchmark; BENCH_SHAPE's own batch is 64), every one
decoding exactly `OUTPUT_LEN` tokens per row and reporting tokens per second
= batch x OUTPUT_LEN / median seconds of one whole search (encoder included):

  per decoder kind (pairs transformer-transformer, rnn-rnn, cnn-cnn)
    cached / uncached  our greedy search under one `jax.jit`, with the decoder
                       cache (`generate.prepare`) and with full recomputation
                       of the prefix (`uncached.prepare`); speedup = their ratio
    beam4              our cached beam search, beam 4, GNMT alpha 0.6
    vs_torch           our beam-4 tokens/s over the PyTorch peer's beam-4. The
                       peer is a transformer (`torch_decode.py` over
                       `torch_transformer.py`, our weights), so
                       the rnn and cnn rows leave it empty: a ratio against
                       another model's decoder would compare architectures, not
                       implementations.
    vs_ctranslate2(_int8)  transformer only: our beam-4 over CTranslate2's
                       beam-4, fp32 and int8.
  peers (the transformer-transformer model, ONE set of random weights)
    ours               our cached greedy and beam-4, timed in turns with the
                       others (ours, torch, CTranslate2, ..., ours, ...) so that a
                       slow stretch of a shared machine lands on every side of a
                       ratio; the transformer's beam4 and ratios come from here
    torch              `torch_decode` greedy and beam-4, torch threads = cores
    ctranslate2(_int8) the model exported through `research.export.ctranslate2.
                       build_spec` (int8: `spec.optimize("int8")`, as `export`),
                       `Translator.translate_batch` with token lists, beam 1 and
                       4, intra_threads = cores
  A peer that is not installed keeps its row with a status saying so.
  positions (the same transformer-transformer model, each variant its own
                       random weights at one seed)
    sinusoidal         our cached greedy and beam-4 as configured
    relative_decoder   decoder.positions=relative: each step adds the one-sided
                       relative bias over the hypothesis's history
    relative           both sides relative (T5's layout)
                       timed in turns, as the peers; vs_sinusoidal = the
                       variant's beam-4 tokens/s over the sinusoidal model's

Equal work: our searches and the PyTorch peer take an EOS id that no token
equals (`NEVER`), so no row ends early, whatever the untrained model emits.
CTranslate2 has no such id, so it gets min_decoding_length =
max_decoding_length = OUTPUT_LEN: EOS is forbidden until the cap (its logit
masked, the softmax still over the whole vocabulary), which leaves the same
number of decoder steps and output tokens; every engine's output lengths are
checked before timing.
"""
from __future__ import annotations

import dataclasses
import gc
import importlib.util
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from research.benchmarks import models, torch_decode, torch_peer
from research.benchmarks.shape import BENCH_SHAPE, Shape
from research.benchmarks.timing import time_alternating, time_fn
from research.data.batch import PAD
from research.decoding import generate, uncached
from research.decoding.beam import beam_search
from research.decoding.config import DecodeConfig
from research.decoding.greedy import greedy

OUTPUT_LEN = 64
PAIRS = ("transformer-transformer", "rnn-rnn", "cnn-cnn")
NEVER = -1  # an EOS id no token equals: every row runs to OUTPUT_LEN
BEAM = 4  # as CTranslate2's published benchmark
DECODE_BATCH = 32
DECODE_SHAPE = dataclasses.replace(BENCH_SHAPE, batch=DECODE_BATCH)
PEER_PAIR = "transformer-transformer"  # the one model CTranslate2 and the PyTorch peer can run
ENGINES = ("ours", "torch", "ctranslate2", "ctranslate2_int8")
SEARCHES = {"greedy": 1, "beam4": BEAM}  # row prefix -> beam size
INSTALL = {"torch": "pip install -e '.[bench]'", "ctranslate2": "pip install -e '.[serve]'"}


def _search(prepare, model, cfg, beam_size: int = 1):
    """jit((params, batch) -> (tokens, lengths, ...)): greedy for beam_size 1, else beam search."""
    def run(params, batch):
        step_fn, state, steps, max_len = prepare(model, params, batch, cfg)
        max_len = jnp.full_like(max_len, OUTPUT_LEN)
        if beam_size == 1:
            return greedy(step_fn, state, steps, max_len, eos=NEVER)
        tokens, lengths, scores, _ = beam_search(step_fn, state, beam_size, steps, max_len, eos=NEVER)
        return tokens[:, 0], lengths[:, 0], scores[:, 0]

    return jax.jit(run)


def _model(pair: str, shape: Shape, precision: str = "fp32", extra=()):
    """(Setup, batch, params): the pair's random model at `shape`, one fixed seed for every engine.

    `precision` bf16 computes in bf16 over fp32 parameters, as `trainer.precision` does in training;
    `extra` are more Hydra overrides (the positions rows).
    """
    encoder, decoder = pair.split("-")
    s = models.setup(encoder, decoder, shape, precision=precision, extra=extra)
    batch = {k: jnp.asarray(v) for k, v in models.random_batch(shape).items()}
    params = jax.jit(lambda r: s.model.init({"params": r}, batch)["params"])(jax.random.PRNGKey(0))
    return s, batch, params


# Output buffer = OUTPUT_LEN whatever the source length: max_len_a = 0, max_len_b = OUTPUT_LEN.
OUTPUT_ONLY = DecodeConfig(search="greedy", max_len_a=0.0, max_len_b=OUTPUT_LEN)


def _compiled(prepare, s, params, batch, beam_size: int = 1):
    """(blocking fn -> per-row output lengths, compile seconds) of one of our searches."""
    start = time.perf_counter()
    compiled = _search(prepare, s.model, OUTPUT_ONLY, beam_size).lower(params, batch).compile()
    compile_s = time.perf_counter() - start
    return (lambda: np.asarray(compiled(params, batch)[1])), compile_s


def _check(name: str, fn) -> None:
    lengths = np.asarray(fn())
    if not (lengths == OUTPUT_LEN).all():
        raise AssertionError(f"{name}: every row must decode {OUTPUT_LEN} tokens, got {sorted(set(lengths.tolist()))}")


def _rate(prefix: str, t: dict, batch: int) -> dict:
    return {f"{prefix}_ms": 1e3 * t["median_s"], f"{prefix}_tokens_per_s": batch * OUTPUT_LEN / t["median_s"]}


def time_pair(pair: str, shape: Shape = DECODE_SHAPE, *, repeats: int = 3, warmup: int = 1,
              precision: str = "fp32") -> dict:
    """Our greedy search with the decoder cache against full recomputation of the prefix."""
    s, batch, params = _model(pair, shape, precision)
    row = {}
    for name, prepare in (("cached", generate.prepare), ("uncached", uncached.prepare)):
        fn, row[f"{name}_compile_s"] = _compiled(prepare, s, params, batch)
        t = time_fn(fn, warmup=warmup, repeats=repeats)
        _check(f"{pair} {name}", fn)
        row.update(_rate(name, t, shape.batch))
    row["speedup"] = row["uncached_ms"] / row["cached_ms"]
    del params
    gc.collect()
    return row


def time_beam(pair: str, shape: Shape = DECODE_SHAPE, *, repeats: int = 3, warmup: int = 1,
              precision: str = "fp32") -> dict:
    """Our cached beam-4 search alone (the pairs without peers)."""
    s, batch, params = _model(pair, shape, precision)
    fn, compile_s = _compiled(generate.prepare, s, params, batch, BEAM)
    _check(f"{pair} beam{BEAM}", fn)
    return {**_rate("beam4", time_fn(fn, warmup=warmup, repeats=repeats), shape.batch), "beam4_compile_s": compile_s}


def _pieces(vocab: int) -> list[str]:
    """A vocabulary for CTranslate2 of a random model: our special pieces, then placeholders."""
    from research.export.ctranslate2 import SPECIAL

    return [*SPECIAL, *(f"p{i}" for i in range(len(SPECIAL), vocab))]


def _ctranslate2_searches(run, params, source: np.ndarray, vocab: int, quantization: str | None):
    """({"greedy", "beam4"} -> blocking fn, info) for the exported model (module docstring)."""
    import ctranslate2

    from research.export.ctranslate2 import build_spec

    pieces = _pieces(vocab)
    spec = build_spec(run, params, pieces, pieces)
    spec.validate()
    if quantization:
        spec.optimize(quantization=quantization)
    with tempfile.TemporaryDirectory(prefix="bench-ct2-") as folder:
        spec.save(folder)
        translator = ctranslate2.Translator(folder, device="cpu", intra_threads=torch_peer.cores(), inter_threads=1)
    # Each source row already ends in our EOS id, which is "</s>", as `Engine` feeds CTranslate2.
    tokens = [[pieces[i] for i in row if i != PAD] for row in np.asarray(source).tolist()]

    def search(beam_size):
        def run_batch():
            results = translator.translate_batch(tokens, beam_size=beam_size, max_decoding_length=OUTPUT_LEN,
                                                 min_decoding_length=OUTPUT_LEN)
            return np.array([len(r.hypotheses[0]) for r in results])
        return run_batch

    info = {"threads": torch_peer.cores(), "compute_type": translator.compute_type}
    return {name: search(k) for name, k in SEARCHES.items()}, info


def _torch_searches(run, params, source: np.ndarray):
    searches, threads = torch_decode.bench_searches(run, params, source, OUTPUT_LEN, BEAM, NEVER)
    return {"greedy": searches["greedy"], "beam4": searches["beam"]}, {"threads": threads}


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _engines(s, batch, params, with_torch: bool, with_ctranslate2: bool):
    """{engine: (searches, info) or a status string}, ours first."""
    source = np.asarray(batch["source"])
    ours, info = {}, {}
    for name, k in SEARCHES.items():
        ours[name], info[f"{name}_compile_s"] = _compiled(generate.prepare, s, params, batch, k)
    engines = {"ours": (ours, info)}
    if not with_torch:
        engines["torch"] = "skipped (--no-torch, or not the fp32 benchmark shape)"
    elif not _installed("torch"):
        engines["torch"] = f"not installed: {INSTALL['torch']}"
    else:
        engines["torch"] = _torch_searches(s.run, params, source)
    for name, quantization in (("ctranslate2", None), ("ctranslate2_int8", "int8")):
        if not with_ctranslate2:
            engines[name] = "skipped (not the fp32 benchmark shape)"
        elif not _installed("ctranslate2"):
            engines[name] = f"not installed: {INSTALL['ctranslate2']}"
        else:
            engines[name] = _ctranslate2_searches(s.run, params, source, s.model.arch.target_vocab, quantization)
    return engines


def _time_in_turns(searches: dict[str, dict], rows: dict[str, dict], batch: int, *, warmup: int, repeats: int) -> None:
    """Checks every search's output lengths, then times each search kind across the `searches` ({name: {search:
    blocking fn}}) in turns, so that a slow stretch of a shared machine lands on every side of a ratio; adds
    the rates to `rows[name]`."""
    for search in SEARCHES:
        fns = [by_kind[search] for by_kind in searches.values()]
        for name, fn in zip(searches, fns):
            _check(f"{name} {search}", fn)
        for name, t in zip(searches, time_alternating(fns, warmup=warmup, repeats=repeats)):
            rows[name].update(_rate(search, t, batch))


def time_peers(shape: Shape = DECODE_SHAPE, *, repeats: int = 3, warmup: int = 1, with_torch: bool = True,
               with_ctranslate2: bool = True, precision: str = "fp32") -> dict:
    """{engine: row} for the transformer-transformer model; greedy and beam-4 each timed in turns."""
    s, batch, params = _model(PEER_PAIR, shape, precision)
    engines = _engines(s, batch, params, with_torch, with_ctranslate2)
    running = {name: e for name, e in engines.items() if not isinstance(e, str)}
    rows = {name: {"status": e} for name, e in engines.items() if isinstance(e, str)}
    for name, (_, info) in running.items():
        rows[name] = {"status": "ok", **info}
    _time_in_turns({name: searches for name, (searches, _) in running.items()}, rows, shape.batch,
                   warmup=warmup, repeats=repeats)
    del params, engines, running
    gc.collect()
    return {name: rows[name] for name in ENGINES}


POSITIONS = {"sinusoidal": (), "relative_decoder": ("decoder.positions=relative",),
             "relative": ("encoder.positions=relative", "decoder.positions=relative")}


def time_positions(shape: Shape = DECODE_SHAPE, *, repeats: int = 3, warmup: int = 1, precision: str = "fp32") -> dict:
    """{variant: row}: what relative positions cost our searches on the transformer-transformer model.

    The variants' greedy searches are timed in turns, then their beam-4 searches (`_time_in_turns`).
    """
    searches, rows = {}, {}
    for name, extra in POSITIONS.items():
        s, batch, params = _model(PEER_PAIR, shape, precision, extra)
        searches[name], rows[name] = {}, {"overrides": " ".join(extra) or "(as configured)"}
        for search, k in SEARCHES.items():
            searches[name][search], rows[name][f"{search}_compile_s"] = _compiled(generate.prepare, s, params, batch, k)
    _time_in_turns(searches, rows, shape.batch, warmup=warmup, repeats=repeats)
    for row in rows.values():
        row["vs_sinusoidal"] = row["beam4_tokens_per_s"] / rows["sinusoidal"]["beam4_tokens_per_s"]
    del searches
    gc.collect()
    return rows


def _ratio(ours: dict, peer: dict | None) -> float | None:
    theirs = (peer or {}).get("beam4_tokens_per_s")
    return ours["beam4_tokens_per_s"] / theirs if theirs else None


def decode_section(pairs=PAIRS, *, repeats: int = 3, shape: Shape = DECODE_SHAPE, with_torch: bool = True,
                   with_ctranslate2: bool = True, precision: str = "fp32") -> dict:
    """-> {"settings": ..., <decoder>: row per pair, "peers": {engine: row}, "positions": {variant: row}}.

    "peers" and "positions" come with the transformer-transformer pair (module docstring).
    """
    decoders = [pair.split("-")[1] for pair in pairs]
    if len(set(decoders)) != len(decoders):
        raise ValueError(f"pairs {list(pairs)}: the section has one row per decoder kind, so one pair per decoder")
    out = {"settings": {"batch": shape.batch, "source_len": shape.src_len, "output_len": OUTPUT_LEN, "beam": BEAM,
                        "threads": torch_peer.cores(), "peers_pair": PEER_PAIR, "precision": precision}}
    peers = None
    for pair in pairs:
        decoder = pair.split("-")[1]
        row = {"pair": pair, **time_pair(pair, shape, repeats=repeats, precision=precision)}
        if pair == PEER_PAIR:
            peers = time_peers(shape, repeats=repeats, with_torch=with_torch, with_ctranslate2=with_ctranslate2,
                               precision=precision)
            ours = peers["ours"]
            row.update(beam4_ms=ours["beam4_ms"], beam4_tokens_per_s=ours["beam4_tokens_per_s"],
                       beam4_compile_s=ours["beam4_compile_s"], vs_torch=_ratio(ours, peers["torch"]),
                       vs_ctranslate2=_ratio(ours, peers["ctranslate2"]),
                       vs_ctranslate2_int8=_ratio(ours, peers["ctranslate2_int8"]))
        else:
            row.update(time_beam(pair, shape, repeats=repeats, precision=precision), vs_torch=None)
        out[decoder] = row
    if peers is not None:
        out["peers"] = peers
        out["positions"] = time_positions(shape, repeats=repeats, precision=precision)
    return out
