"""`python -m research.evaluate run_dir=PATH [split=test] [checkpoint=best] [decode=beam decode.beam_size=5 ...]`.

Decodes a split of a finished run's data with its best checkpoint (the last
one, with a warning, if it has none) and writes, next to the run:

  hyps_<split>.txt    one hypothesis per line, in corpus order (classification: the predicted
                      label, or the JSON list of labels)
  nbest_<split>.txt   with decode.n_best > 1: index, rank, score, log-prob, hypothesis (tab-separated)
  eval_<split>.json   loss, perplexity, accuracy; BLEU and chrF with their sacreBLEU
                      signatures (translation) or ROUGE-1/2/L/Lsum (summarization);
                      accuracy, macro-F1 and the confusion matrix (classification), micro-
                      and macro-F1 (multilabel); the run's fitted baseline on this split
                      (`baseline_*`, from its baseline.json) where it has one

How a split is scored is the run's task's (`research.tasks`, `data.task`):
decoding for seq2seq tasks, one forward pass for a classifier.

`checkpoint=best|last|last:K|best:K`: `last:K` / `best:K` is the average of
the last or best K checkpoints written by `python -m research.average RUN
--last K` (or at the end of a run with `trainer.average`), in
`checkpoints/average/lastK`; eval_<split>.json then lists the averaged steps.
Other `key=value` arguments override the run's saved config: `decode.*`
keys, `decode=beam`, or `data.*` / `data=NAME` to score another test set.
Logs go to stderr; the metrics are printed on stdout.

Ensembles: `run_dir=A,B,C out=DIR [ensemble=prob|logprob]` decodes with all
the runs at once (`research.decoding.ensemble`: their next-token
probabilities averaged at every step, or with `ensemble=logprob` their
log-probabilities), and writes the same files into DIR, which is required
and may not be one of the runs, so no run's own results are overwritten.
The runs must share one tokenizer and be of a task that can be ensembled
(`Task.ensembles`: not classification). The overrides apply to every run; the
data and decode configs are the first run's. eval_<split>.json records the
runs, the checkpoint and step of each, and the rule; its loss, perplexity
and accuracy are those of the combined distribution (teacher forcing).
`out=DIR` also works with one run, to leave the run directory untouched.
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

from research import console, tasks
from research.data import corpus
from research.data import tokenizer as tokenizers
from research.data.config import DataConfig
from research.decoding import ensemble
from research.decoding.corpus import one_line
from research.registry import ConfigError
from research.training.checkpoint import CheckpointError
from research.run_dir import Run, load, parse_args
from research.training import evaluation
from research.training.steps import eval_step

log = logging.getLogger("research.evaluate")

OPTIONS = {"run_dir": None, "split": "test", "checkpoint": "best", "ensemble": "prob", "out": ""}


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
    params, eval_fn, generate_fn = bind([run])
    name = split_name(cfg.data, split)
    scores = tasks.get(cfg.data.task).evaluate_split(examples, run.tokenizer, cfg.data, params, eval_fn, generate_fn,
                                                     description=f"decoding {split}", split=name)
    results = {
        "run_dir": str(run.path), "split": name, "data": cfg.data.name,
        "examples": len(examples), "checkpoint": run.checkpoint, "step": run.step,
        **scores.metrics, **tasks.baseline_scores(run.path, cfg.data.name, name),
        "decode": dataclasses.asdict(cfg.decode), "wall_s": time.time() - start,
    }
    if "average" in run.meta:  # an averaged checkpoint (research.average, trainer.average)
        results["averaged_steps"] = run.meta["average"]["steps"]
    return results, scores.outputs


def run_dirs(spec: str) -> list[Path]:
    """`A,B,C` -> the run directories; one for a plain run, several for an ensemble. A spec that is itself a
    directory is one run, commas and all: a sweep's job folders are named by their overrides, commas between
    them (research/sweep.py), so `run_dir=multirun/<time>/<job>` must not read as an ensemble."""
    if Path(spec).is_dir():
        return [Path(spec)]
    dirs = [Path(p) for p in spec.split(",") if p.strip()]
    if not dirs:
        raise ConfigError("run_dir: required (e.g. run_dir=outputs/x, or run_dir=A,B for an ensemble)")
    return dirs


def load_runs(dirs: Sequence[Path], overrides: Sequence[str] = (), checkpoint: str = "best") -> list[Run]:
    """Loads every run, with the same overrides and checkpoint choice.

    With several runs their tokenizers are compared first, from the files
    alone, so a mismatch is refused before any checkpoint is read; and their
    task must allow ensembles (`Task.ensembles`).
    """
    if len(dirs) > 1:
        ensemble.check_tokenizers([(str(d), tokenizers.from_folder(Path(d) / "tokenizer")) for d in dirs])
    runs = [load(d, overrides, checkpoint) for d in dirs]
    for run in runs if len(runs) > 1 else ():
        task = tasks.get(run.cfg.data.task)
        if not task.ensembles:
            raise ConfigError(f"run_dir: {run.path} is a {task.name} run, which cannot be ensembled; "
                              "evaluate it alone (run_dir=ONE)")
    for run in runs[1:]:
        for group in ("data", "decode"):
            if getattr(run.cfg, group) != getattr(runs[0].cfg, group):
                log.warning("%s: its %s config differs from that of %s, which the ensemble uses",
                            run.path, group, runs[0].path)
    return runs


def bind(runs: Sequence[Run], rule: str = "prob"):
    """-> (params, eval_fn, generate_fn) that decode with one run, or with all of them as an ensemble."""
    if len(runs) == 1:
        run = runs[0]
        task = tasks.get(run.cfg.data.task)
        return (run.params, jax.jit(functools.partial(eval_step, model=run.model, sums=task.sums)),
                task.predictor(run.model, run.cfg.decode))
    ens = ensemble.Ensemble(tuple(r.model for r in runs), rule)
    return (tuple(r.params for r in runs), ensemble.jit_eval_step(ens),
            ensemble.jit_generate_nbest(ens, runs[0].cfg.decode))


def evaluate_ensemble(runs: Sequence[Run], split: str, rule: str = "prob") -> tuple[dict, list[list]]:
    """Scores the runs as one ensemble on a split of the first run's data; -> as `evaluate`."""
    start = time.time()
    cfg = runs[0].cfg
    examples = read_split(cfg.data, split)
    params, eval_fn, generate_fn = bind(runs, rule)
    scores = evaluation.evaluate_split(examples, runs[0].tokenizer, cfg.data, params, eval_fn, generate_fn,
                                       description=f"decoding {split} ({len(runs)} runs)")
    results = {
        "ensemble": {"rule": rule, "members": [{"run_dir": str(r.path), "checkpoint": r.checkpoint, "step": r.step}
                                               for r in runs]},
        "split": split_name(cfg.data, split), "data": cfg.data.name, "examples": len(examples),
        **scores.metrics, "loss_of": "the combined distribution, teacher-forced through every member",
        "decode": dataclasses.asdict(cfg.decode), "wall_s": time.time() - start,
    }
    return results, scores.outputs


def output_dir(dirs: Sequence[Path], out: str) -> Path:
    """Where the files go: `out`, or the run's own directory; an ensemble must name a folder of its own."""
    if not out:
        if len(dirs) > 1:
            raise ConfigError("out: required with several runs (the folder for hyps_<split>.txt and "
                              "eval_<split>.json, e.g. out=outputs/ensemble)")
        return dirs[0]
    path = Path(out)
    if len(dirs) > 1 and any(path.resolve() == Path(d).resolve() for d in dirs):
        raise ConfigError(f"out={out}: is one of the runs, whose own results it would overwrite; choose another folder")
    return path


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
    if "ensemble" in results:
        members = results["ensemble"]["members"]
        what = (f"ensemble of {len(members)} ({results['ensemble']['rule']}): "
                + ", ".join(f"{m['run_dir']} {m['checkpoint']} step {m['step']}" for m in members))
    else:
        what = f"{results['checkpoint']} checkpoint (step {results['step']})"
    lines = [f"{results['data']}/{results['split']}: {results['examples']} examples, {what}, {results['wall_s']:.0f} s",
             numbers]
    lines += [f"{k}: {v}" for k, v in results.items() if k.endswith("_signature")]
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    console.setup_logging()
    try:
        opts, overrides = parse_args(argv, OPTIONS)
        dirs = run_dirs(opts["run_dir"])
        ensemble.check_rule(opts["ensemble"])
        out = output_dir(dirs, opts["out"])
        runs = load_runs(dirs, overrides, opts["checkpoint"])
    except (ConfigError, CheckpointError, FileNotFoundError) as e:
        log.error("%s", e)
        return 2
    if len(runs) == 1:
        results, outputs = evaluate(runs[0], opts["split"])
    else:
        results, outputs = evaluate_ensemble(runs, opts["split"], opts["ensemble"])
    out.mkdir(parents=True, exist_ok=True)
    paths = write(out, opts["split"], results, outputs)
    print(report(results))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
