"""`python -m research.evaluate run_dir=PATH [split=test] [checkpoint=best] [decode=beam decode.beam_size=5 ...]`.

Decodes a split of a finished run's data with its best checkpoint (the last
one, with a warning, if it has none) and writes, next to the run:

  hyps_<split>.txt    one hypothesis per line, in corpus order
  nbest_<split>.txt   with decode.n_best > 1: index, rank, score, log-prob, hypothesis (tab-separated)
  eval_<split>.json   loss, perplexity, accuracy; BLEU and chrF with their sacreBLEU
                      signatures (translation) or ROUGE-1/2/L/Lsum (summarization)

Other `key=value` arguments override the run's saved config: `decode.*`
keys, `decode=beam`, or `data.*` / `data=NAME` to score another test set.
Logs go to stderr; the metrics are printed on stdout.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import jax

from research import console
from research.data import corpus
from research.data.config import DataConfig
from research.decoding.corpus import one_line
from research.decoding.generate import jit_generate_nbest
from research.registry import ConfigError
from research.training.checkpoint import CheckpointError
from research.run_dir import Run, load, parse_args
from research.training import evaluation
from research.training.steps import eval_step

log = logging.getLogger("research.evaluate")

OPTIONS = {"run_dir": None, "split": "test", "checkpoint": "best"}


def split_name(d: DataConfig, split: str) -> str:
    """`test`, `validation` (or `valid`) and `train` name the data config's splits; other names pass through."""
    return {"test": d.test_split, "validation": d.valid_split, "valid": d.valid_split, "train": d.train_split}.get(split, split)


def read_split(d: DataConfig, split: str) -> Any:
    """The one place a split is read: random access to {"source": str, "target": str}."""
    name = split_name(d, split)
    with contextlib.redirect_stdout(sys.stderr):  # tfds prints its preparation messages
        return corpus.load(d, (name,))[name]


def evaluate(run: Run, split: str) -> tuple[dict, list[list]]:
    """Scores `run` on a split; -> (results, n-best outputs per example in corpus order)."""
    start = time.time()
    cfg = run.cfg
    examples = read_split(cfg.data, split)
    eval_fn = jax.jit(functools.partial(eval_step, model=run.model))
    scores = evaluation.evaluate_split(examples, run.tokenizer, cfg.data, run.params, eval_fn,
                                       jit_generate_nbest(run.model, cfg.decode), description=f"decoding {split}")
    results = {
        "run_dir": str(run.path), "split": split_name(cfg.data, split), "data": cfg.data.name,
        "examples": len(examples), "checkpoint": run.checkpoint, "step": run.step,
        **scores.metrics, "decode": dataclasses.asdict(cfg.decode), "wall_s": time.time() - start,
    }
    return results, scores.outputs


def write(run_dir: Path, split: str, results: dict, outputs: list[list]) -> dict[str, Path]:
    """Writes the files listed in the module docstring; -> their paths."""
    paths = {"hyps": run_dir / f"hyps_{split}.txt", "eval": run_dir / f"eval_{split}.json"}
    paths["hyps"].write_text("".join(one_line(o[0].text) + "\n" for o in outputs), encoding="utf-8")
    if any(len(o) > 1 for o in outputs):
        paths["nbest"] = run_dir / f"nbest_{split}.txt"
        lines = (f"{i}\t{r}\t{h.score:.4f}\t{h.log_prob:.4f}\t{one_line(h.text)}\n"
                 for i, o in enumerate(outputs) for r, h in enumerate(o))
        paths["nbest"].write_text("".join(lines), encoding="utf-8")
    paths["eval"].write_text(json.dumps(results, indent=2) + "\n")
    return paths


def report(results: dict) -> str:
    numbers = ", ".join(f"{k} {v:.2f}" for k, v in results.items()
                        if isinstance(v, float) and k != "wall_s")
    lines = [f"{results['data']}/{results['split']}: {results['examples']} examples, "
             f"{results['checkpoint']} checkpoint (step {results['step']}), {results['wall_s']:.0f} s", numbers]
    lines += [f"{k}: {v}" for k, v in results.items() if k.endswith("_signature")]
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    console.setup_logging()
    try:
        opts, overrides = parse_args(argv, OPTIONS)
        run = load(opts["run_dir"], overrides, opts["checkpoint"])
    except (ConfigError, CheckpointError, FileNotFoundError) as e:
        log.error("%s", e)
        return 2
    results, outputs = evaluate(run, opts["split"])
    paths = write(run.path, opts["split"], results, outputs)
    print(report(results))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
