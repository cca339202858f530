"""`python -m research.translate run_dir=PATH [checkpoint=best] [chunk=1000] [decode=beam decode.beam_size=8 ...] < in > out`.

Reads one input per line on stdin and writes one output line per input
line on stdout, in order, so it works in a shell pipe (`paste`, `sacrebleu`).
Empty input lines give empty output lines without reaching the model.

Input is read in chunks of `chunk` lines; each chunk is sorted by length
into batches of fixed shapes (compiled once, reused by every chunk),
decoded, put back in order and flushed. With decode.n_best > 1 each output
line holds the n best hypotheses, best first, separated by tabs; with
scores=true every hypothesis is preceded by its score and a tab.
Other `key=value` arguments override the run's decode (or data) config.
Logs go to stderr, never stdout.

`run_dir=A,B,C [ensemble=prob|logprob]` translates with the runs as one
ensemble, as `research.evaluate` does (see there and
`research.decoding.ensemble`); they must share one tokenizer, and the data
and decode configs are the first run's.

`engine=ctranslate2 model=DIR` translates with a model exported by
`python -m research.export ctranslate2` instead (research/export/ctranslate2.py),
same line contract; it takes `decode.beam_size`, `decode.n_best`, `decode.max_len_a`/`max_len_b`
(the same output cap as ours) and `decode.length_penalty` (CTranslate2's own:
the score divided by length**penalty).
"""
from __future__ import annotations

import io
import itertools
import logging
import sys
from typing import Iterable, Iterator, Sequence, TextIO

from research import console
from research.data import corpus
from research.decoding.corpus import Output, decode_batches, one_line, source_shapes
from research.decoding import ensemble
from research.evaluate import bind, load_runs, run_dirs
from research.registry import ConfigError
from research.training import evaluation
from research.training.checkpoint import CheckpointError
from research.run_dir import Run, parse_args

log = logging.getLogger("research.translate")

OPTIONS = {"run_dir": "", "checkpoint": "best", "chunk": 1000, "scores": False, "ensemble": "prob", "engine": "jax",
           "model": ""}  # run_dir for engine=jax, model for engine=ctranslate2
ENGINES = ("jax", "ctranslate2")
CTRANSLATE2_DECODE = {"decode.beam_size": int, "decode.n_best": int, "decode.length_penalty": float,
                      "decode.max_len_a": float, "decode.max_len_b": float}


class Translator:
    """Decodes lists of raw text lines with a loaded run, or several as an ensemble; compiles each batch shape once.

    With several runs, `rule` combines their distributions (`ensemble.RULES`);
    the first run supplies the tokenizer and the data and decode configs.
    """

    def __init__(self, run: Run, *more: Run, rule: str = "prob"):
        self.run = run
        d = run.cfg.data
        self.shapes = source_shapes(d.tokens_per_batch, d.max_source_len)
        self.params, _, self.generate_fn = bind([run, *more], rule)

    def nbest(self, lines: Sequence[str]) -> list[list[Output]]:
        """For each line, its hypotheses best first; [] for a blank line."""
        keep = [i for i, line in enumerate(lines) if line.strip()]
        out: list[list[Output]] = [[] for _ in lines]
        if keep:
            examples = [{"source": lines[i].strip(), "target": ""} for i in keep]
            batches = corpus.eval_batches(examples, self.run.tokenizer, self.run.cfg.data, self.shapes,
                                          evaluation.model_limits(self.params))
            for i, hyps in zip(keep, decode_batches(self.generate_fn, self.params, batches, len(keep), self.run.tokenizer,
                                                             description=None)):
                out[i] = hyps
            if batches.stats.truncated:  # counted once the batches have been read
                log.warning("%d of %d lines are longer than the model's learned positions and were cut to them",
                            batches.stats.truncated, len(keep))
        return out

    def __call__(self, lines: Sequence[str], scores: bool = False) -> list[str]:
        """One output line (no newline) per input line."""
        fields = lambda h: [f"{h.score:.4f}", one_line(h.text)] if scores else [one_line(h.text)]
        return ["\t".join(f for h in hyps for f in fields(h)) for hyps in self.nbest(lines)]


def chunks(stream: TextIO, size: int) -> Iterator[list[str]]:
    """Lines of `stream` (newline removed) in lists of at most `size`."""
    lines = (line.rstrip("\r\n") for line in stream)
    while chunk := list(itertools.islice(lines, size)):
        yield chunk


def translate_stream(translator, stream: Iterable[str] | TextIO, out: TextIO, chunk: int, scores: bool) -> int:
    """Translates `stream` to `out` chunk by chunk; -> lines written."""
    written = 0
    for lines in chunks(stream, chunk):
        for line in translator(lines, scores):
            out.write(line + "\n")
        out.flush()
        written += len(lines)
        log.info("translated %d lines", written)
    return written


def ctranslate2_engine(opts: dict, overrides: Sequence[str]):
    """The exported model in `model=DIR`, with the decode options CTranslate2 has."""
    from research.export.ctranslate2 import Engine  # noqa: PLC0415  (the optional `serve` extra)

    if not opts["model"] or opts["run_dir"]:
        raise ConfigError("engine=ctranslate2 takes model=DIR (an exported model), not run_dir")
    decode = {}
    for override in overrides:
        key, _, value = override.partition("=")
        if key not in CTRANSLATE2_DECODE:
            raise ConfigError(f"{key}: engine=ctranslate2 takes only {', '.join(CTRANSLATE2_DECODE)}")
        try:
            decode[key.split(".", 1)[1]] = CTRANSLATE2_DECODE[key](value)
        except ValueError:
            raise ConfigError(f"{override}: not a {CTRANSLATE2_DECODE[key].__name__}") from None
    return Engine(opts["model"], **decode)


def main(argv: Sequence[str]) -> int:
    console.setup_logging()
    try:
        opts, overrides = parse_args(argv, OPTIONS)
        if opts["chunk"] < 1:
            raise ConfigError("chunk: must be at least 1")
        if opts["engine"] not in ENGINES:
            raise ConfigError(f"engine={opts['engine']}: not one of {', '.join(ENGINES)}")
        if opts["engine"] == "ctranslate2":
            translator = ctranslate2_engine(opts, overrides)
        else:
            if not opts["run_dir"]:
                raise ConfigError("run_dir: required (e.g. run_dir=...)")
            ensemble.check_rule(opts["ensemble"])
            runs = load_runs(run_dirs(opts["run_dir"]), overrides, opts["checkpoint"])
            translator = Translator(*runs, rule=opts["ensemble"])
    except (ConfigError, CheckpointError, FileNotFoundError) as e:
        log.error("%s", e)
        return 2
    stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
    stdout = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="\n", line_buffering=False)
    translate_stream(translator, stdin, stdout, opts["chunk"], opts["scores"])
    stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
