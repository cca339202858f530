"""`python -m research.glove data=NAME out=vectors.txt [tokenizer=NAME] [units=pieces|words] [dim=128] [epochs=25] [window=10] [key=value ...]`.

Trains GloVe vectors (research/vectors/glove.py) on the training split of a
corpus and writes them in GloVe's text format: one line per unit, the unit
and then `dim` numbers, space-separated, no header.

  units=pieces  (default) the tokenizer's pieces: every source and every target
                text, encoded, is one document. The tokenizer must be joint
                (tokenizer.joint=true), so that one vector table covers both
                sides. The 4 special ids (pad, unk, bos, eos) get no line.
  units=words   whitespace words of the same texts, those seen at least
                `min_count` times (default 1), by frequency and then
                alphabetically; rarer words are dropped before the windows are
                taken, as cooccur.c drops words outside its vocabulary. No
                tokenizer is trained.

Other options: window (co-occurrence distance, default 10), and the GloVe
settings learning_rate, x_max, alpha, batch_size, seed; `data=` / `data.KEY=`
and `tokenizer=` / `tokenizer.KEY=` override the project's Hydra config
(conf/) as for research.train. Anything else is refused.

Logs go to stderr. At the end the 5 nearest neighbours (cosine) of the 8
most frequent units and the timings (co-occurrence seconds and tokens/s,
seconds per GloVe epoch) are printed on stdout.
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from research import console
from research.config import REPO, RunConfig, name_follows_dir, register_schemas, resolve
from research.data import corpus as corpora
from research.data.batch import BOS, EOS, PAD, UNK
from research.data.errors import DataError
from research.registry import ConfigError
from research.run_dir import parse_args
from research.vectors import files, glove
from research.vectors.cooccur import cooccurrence

log = logging.getLogger("research.glove")

GLOVE_OPTIONS = {f.name: f.default for f in dataclasses.fields(glove.GloveConfig)}
OPTIONS = {"out": None, "units": "pieces", "min_count": 1, "window": 10, **GLOVE_OPTIONS}
CONFIG_GROUPS = ("data", "tokenizer")  # the only parts of the run config a GloVe run reads
SPECIAL = (PAD, UNK, BOS, EOS)
FIRST_UNIT = max(SPECIAL) + 1  # pieces below this id get no vector written
NEIGHBOURS, QUERIES = 5, 8


@dataclasses.dataclass(frozen=True)
class Units:
    """Documents as ids of one vocabulary, and which ids are written under which names."""

    docs: list[list[int]]
    size: int  # V: ids are in [0, size)
    ids: np.ndarray  # [U] the ids that get a line
    names: list[str]  # [U] their names in the file


def known_options() -> str:
    return ", ".join(OPTIONS) + ", and the config overrides data=NAME, data.KEY=VALUE, tokenizer=NAME, tokenizer.KEY=VALUE"


def split_args(argv: Sequence[str]) -> tuple[dict, glove.GloveConfig, list[str]]:
    """-> (this command's options, its GloVe config, Hydra overrides of the data and tokenizer groups).

    Every value is checked here, before any data is read; any other key is refused.
    """
    opts, overrides = parse_args(argv, OPTIONS)
    for o in overrides:
        key = o.partition("=")[0].lstrip("+~")
        if key.split(".")[0] not in CONFIG_GROUPS:
            raise ConfigError(f"{key}: unknown option; known: {known_options()}")
        if key in CONFIG_GROUPS:
            value = o.partition("=")[2]
            if not (REPO / "conf" / key / f"{value}.yaml").is_file():
                options = ", ".join(sorted(p.stem for p in (REPO / "conf" / key).glob("*.yaml")))
                raise ConfigError(f"{key}={value}: no such config; options: {options}")
    if not any(o.lstrip("+~").partition("=")[0] == "data" for o in overrides):
        raise ConfigError("data: required (e.g. data=ddtp_de_en_sample)")
    check_options(opts)
    return opts, glove.GloveConfig(**{k: opts[k] for k in GLOVE_OPTIONS}), overrides


def check_options(opts: dict) -> None:
    if opts["units"] not in ("pieces", "words"):
        raise ConfigError(f"units: '{opts['units']}' is not one of pieces, words")
    if opts["min_count"] < 1:
        raise ConfigError(f"min_count: {opts['min_count']} must be at least 1")
    if opts["window"] < 1:
        raise ConfigError(f"window: {opts['window']} must be at least 1")


def run_config(overrides: Sequence[str]) -> RunConfig:
    """The project's config composed with `overrides`, as research.train composes it."""
    register_schemas()
    try:
        with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
            cfg = compose(config_name="config", overrides=name_follows_dir(overrides))
    except (HydraException, OmegaConfBaseException) as e:
        why = [str(x).splitlines()[0] for x in (e, e.__cause__) if x is not None and str(x)]
        raise ConfigError(" ".join(why)) from None  # "Could not override 'data.foo'. Key 'foo' not in ..."
    return resolve(cfg)


def piece_units(run: RunConfig) -> Units:
    """Every source and target text of the training split, encoded by the run's joint tokenizer."""
    if not run.tokenizer.joint:
        raise ConfigError("tokenizer.joint: units=pieces needs a joint tokenizer (one vocabulary for both sides, "
                          "so that the vectors map onto one table); use tokenizer.joint=true or units=words")
    with contextlib.redirect_stdout(sys.stderr):  # tfds prints its preparation messages
        c = corpora.prepare(run.data, run.tokenizer)
    tok = c.tokenizer
    texts = corpora.pairs(c.train)
    docs = [tok.encode_source(s) for s, _ in texts] + [tok.encode_target(t) for _, t in texts]
    size = tok.source_vocab
    ids = np.arange(FIRST_UNIT, size)
    return Units(docs, size, ids, [tok.source.id_to_piece(int(i)) for i in ids])


def word_units(run: RunConfig, min_count: int) -> Units:
    """Whitespace words of the training split's texts; vocabulary: count >= min_count, by frequency then word."""
    split = run.data.train_split
    with contextlib.redirect_stdout(sys.stderr):
        texts = [t for pair in corpora.pairs(corpora.load(run.data, (split,))[split]) for t in pair]
    words = [t.split() for t in texts]
    freq = collections.Counter(w for ws in words for w in ws)
    vocab = sorted((w for w, n in freq.items() if n >= min_count), key=lambda w: (-freq[w], w))
    index = {w: k for k, w in enumerate(vocab)}
    docs = [[index[w] for w in ws if w in index] for ws in words]
    return Units(docs, len(vocab), np.arange(len(vocab)), vocab)


def nearest(matrix: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """-> (rows [Q, k], cosines [Q, k]) of the k rows of `matrix` [N, D] most similar to each query row, itself excluded."""
    unit = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    sims = unit[queries] @ unit.T  # [Q, N]
    sims[np.arange(len(queries)), queries] = -np.inf
    rows = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return rows, np.take_along_axis(sims, rows, axis=1)


def run(opts: dict, cfg: glove.GloveConfig, run_cfg: RunConfig) -> list[str]:
    """Counts, trains and writes; -> the summary lines (neighbours and timings)."""
    units = piece_units(run_cfg) if opts["units"] == "pieces" else word_units(run_cfg, opts["min_count"])
    tokens = sum(len(d) for d in units.docs)
    start = time.perf_counter()
    counts = cooccurrence(units.docs, units.size, opts["window"])
    cooccur_s = time.perf_counter() - start
    log.info("co-occurrence: %d tokens, %d nonzero entries, window %d, %.2f s", tokens, counts.nnz, opts["window"], cooccur_s)
    if counts.nnz == 0:
        raise DataError(f"data={run_cfg.data.name}: no two {opts['units']} share a window; nothing to train on")
    epochs = []
    for epoch in glove.fit(counts, cfg):
        epochs.append(epoch)
        log.info("glove: epoch %d/%d loss %.5f (%.2f s)", epoch.index + 1, cfg.epochs, epoch.loss, epoch.seconds)
    matrix = glove.vectors(epochs[-1].params)[units.ids]  # [U, dim]
    out = Path(opts["out"])
    files.write(out, units.names, matrix)

    freq = np.bincount(np.concatenate([np.asarray(d, np.int64) for d in units.docs]), minlength=units.size)[units.ids]
    queries = np.argsort(-freq, kind="stable")[:min(QUERIES, len(units.ids))]
    rows, sims = nearest(matrix, queries, min(NEIGHBOURS, len(units.ids) - 1))
    lines = [f"wrote {len(units.names)} {opts['units']} x {cfg.dim} to {out}",
             f"nearest neighbours (cosine) of the {len(queries)} most frequent {opts['units']}:"]
    for q, r, s in zip(queries, rows, sims):
        lines.append(f"  {units.names[q]}: " + ", ".join(f"{units.names[k]} {c:.3f}" for k, c in zip(r, s)))
    per_epoch = sum(e.seconds for e in epochs) / len(epochs)
    lines.append(f"co-occurrence: {cooccur_s:.3f} s, {tokens / max(cooccur_s, 1e-9):,.0f} tokens/s "
                 f"({tokens:,} tokens, {counts.nnz:,} nonzero entries, window {opts['window']})")
    lines.append(f"glove: {per_epoch:.3f} s per epoch over {len(epochs)} epochs (batch {cfg.batch_size}, "
                 f"final loss {epochs[-1].loss:.5f})")
    return lines


def main(argv: Sequence[str]) -> int:
    console.setup_logging()
    try:
        opts, cfg, overrides = split_args(argv)
        lines = run(opts, cfg, run_config(overrides))
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for line in lines:
        log.info("%s", line)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
