"""The training loop: data, model, jitted steps, evaluation, logging, checkpoints."""
from __future__ import annotations

import collections
import dataclasses
import functools
import json
import logging
import shutil
import time
from pathlib import Path

import jax
import numpy as np

from research.config import RunConfig
from research.data import corpus as data
from research.data.tokenizer import Tokenizer
from research.decoding.generate import jit_generate_nbest
from research.models.seq2seq import Architecture, Seq2Seq, check_packing
from research.training import evaluation, optim, state as train_state
from research.training import checkpoint, distributed, manifest, memory, metrics_log, sharding
from research.training import inspect as inspection  # not the standard library's inspect
from research.training.checkpoint import Checkpoints
from research.training.meter import Meter
from research.training.metrics_log import MetricsLog
from research.training.preemption import Preemption
from research.training.steps import eval_step, train_step

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Corpus:
    tokenizer: Tokenizer
    train: object  # random access to {"source", "target"} strings
    valid: object
    fingerprint: str  # of the training examples' text


def load_corpus(cfg: RunConfig, run_dir: Path) -> Corpus:
    d = cfg.data
    splits = data.load(d, (d.train_split, d.valid_split))
    train_pairs = data.pairs(splits[d.train_split])
    fp = data.fingerprint(train_pairs)
    tok = data.tokenizer(cfg.tokenizer, train_pairs, fp)
    (run_dir / "tokenizer").mkdir(parents=True, exist_ok=True)
    for p in tok.paths:  # the run directory is self-contained for evaluation
        shutil.copy(p, run_dir / "tokenizer" / p.name.split(".", 1)[1])
    log.info("data: %d train, %d validation pairs; vocab %d/%d", len(splits[d.train_split]),
             len(splits[d.valid_split]), tok.source_vocab, tok.target_vocab)
    return Corpus(tokenizer=tok, train=splits[d.train_split], valid=splits[d.valid_split], fingerprint=fp)


def architecture(cfg: RunConfig, tok: Tokenizer) -> Architecture:
    return Architecture(
        encoder=cfg.encoder, encoder_config=cfg.encoder_config,
        decoder=cfg.decoder, decoder_config=cfg.decoder_config,
        model=cfg.model, source_vocab=tok.source_vocab, target_vocab=tok.target_vocab,
        dtype="bfloat16" if cfg.trainer.precision == "bf16" else "float32",
    )


class Diverged(RuntimeError):
    """Too many consecutive steps with a non-finite loss or gradient."""


def train(cfg: RunConfig, run_dir: Path) -> dict:
    """Trains one run into `run_dir`; returns its summary (also written to summary.json).

    Stopped by SIGTERM or SIGINT, it checkpoints the step it was at and
    returns {"preempted": step} without a summary; `trainer.resume=true`
    continues from there. Raises Diverged after `trainer.max_bad_steps`
    skipped steps in a row, leaving the checkpoints written so far intact.
    """
    start = time.time()
    distributed.initialize(cfg.mesh)  # before any JAX array exists
    run_dir = Path(run_dir)
    t = cfg.trainer
    corpus = load_corpus(cfg, run_dir)
    if not (t.resume and (run_dir / "manifest.json").exists()):
        manifest.write(run_dir, cfg, corpus)
    arch = architecture(cfg, corpus.tokenizer)
    model = Seq2Seq(arch)
    lr = optim.schedule(cfg.optim, t.max_steps)
    tx = optim.optimizer(cfg.optim, lr)

    key = jax.random.PRNGKey(t.seed)
    init_key, dropout_key = jax.random.split(key)
    if cfg.data.pack:
        check_packing(arch)
    batches = data.train_batches(corpus.train, corpus.tokenizer, cfg.data, t.seed)
    mesh = sharding.make_mesh(cfg.mesh)
    first = sharding.shard_batch(next(batches), mesh, t.grad_accum)
    state = sharding.replicate(train_state.create(model, tx, first, init_key), mesh)
    n_params = train_state.param_count(state.params)
    log.info("model: %s encoder, %s decoder, %d parameters", cfg.encoder, cfg.decoder, n_params)

    step_fn = sharding.jit_train_step(functools.partial(
        train_step, model=model, tx=tx, lr=lr, label_smoothing=t.label_smoothing, grad_accum=t.grad_accum, remat=t.remat), mesh)
    eval_fn = jax.jit(functools.partial(eval_step, model=model))
    generate_fn = jit_generate_nbest(model, cfg.decode)
    attention = inspection.AttentionImages(model, corpus.tokenizer, corpus.valid, cfg.data, n=min(2, t.samples))

    metric = evaluation.task_metric_name(cfg.data.task)
    identity = {"architecture": architecture_meta(arch), "tokenizer": corpus.tokenizer.fingerprint()}
    start_step, pending = 0, first
    if t.resume:
        start_step, state = _resume(run_dir, state, batches, identity)
        pending = None if start_step else first
    ckpt = Checkpoints(run_dir, t.keep_checkpoints, metric) if t.checkpoint else None
    logger = MetricsLog(run_dir)
    save = lambda step, evaluation=None: ckpt.save(
        step, state, {**identity, "step": step, "data": batches.get_state(), "validation": last_eval}, evaluation)
    meter, last_eval, bad = Meter(), {}, 0
    # Bounded: a long run must not grow per step (tests/training/test_soak.py).
    speeds, step_times = collections.deque(maxlen=1000), collections.deque(maxlen=1000)
    first_step_s = None
    save_every = t.checkpoint_every or t.eval_every
    with Preemption() as stop:
        try:
            for step in range(start_step, t.max_steps):
                batch = pending if pending is not None else sharding.shard_batch(next(batches), mesh, t.grad_accum)
                pending = None
                tick = time.time()
                # Keys derive from (seed, step), so a resumed run draws the same dropout masks.
                state, m = step_fn(state, batch, jax.random.fold_in(dropout_key, step))
                m = jax.device_get(m)
                seconds = time.time() - tick
                if first_step_s is None:
                    first_step_s = seconds
                else:
                    step_times.append(seconds)
                meter.add(m, seconds)
                done = step + 1
                bad = bad + 1 if m["skipped"] else 0
                if bad:
                    log.warning("step %d: loss %s, gradient norm %s: update skipped (%d in a row; the limit is trainer.max_bad_steps=%d)",
                                done, m["loss"], m["grad_norm"], bad, t.max_bad_steps)
                    if bad >= t.max_bad_steps:
                        raise Diverged(_diverged_message(run_dir, done, bad, ckpt))
                if done % t.log_every == 0 or done == t.max_steps:
                    avg = meter.flush()
                    avg["memory_mb"] = memory.resident_mb() or 0.0
                    speeds.append(avg["tokens_per_s"])
                    logger.write(done, "train", avg)
                    log.info("step %d loss %.3f acc %.3f lr %.2e %.0f tok/s%s", done, avg.get("loss", float("nan")),
                             avg.get("accuracy", float("nan")), avg.get("learning_rate", float("nan")), avg["tokens_per_s"],
                             f" ({avg['skipped']:.0f} skipped)" if avg["skipped"] else "")
                evaluated = done % t.eval_every == 0 or done == t.max_steps
                if evaluated:
                    last_eval = validate(cfg, corpus, state.params, eval_fn, generate_fn, logger, done, batches.shapes)
                    attention.log(logger.tb, done, state.params)
                saved = ckpt is not None and (evaluated or done % save_every == 0)
                if saved:
                    save(done, last_eval if evaluated else None)
                if done < t.max_steps and stop.requested():
                    if ckpt and not saved:
                        save(done)
                    log.warning("%s at step %d: %s; continue with trainer.resume=true and the same run directory (%s)",
                                stop.name, done, "checkpoint written" if ckpt else "no checkpoint (trainer.checkpoint=false)", run_dir)
                    return {"preempted": done, "signal": stop.name}
        finally:  # also on Diverged and preemption: pending asynchronous writes complete
            if ckpt:
                ckpt.close()
            logger.close()
            batches.close()
    stats = batches.stats
    log.info("input pipeline: %d batches, padding %.1f%%, %.0f tokens/s, %d dropped, %d truncated",
             stats.batches, 100 * stats.padding_fraction, stats.tokens_per_second, stats.dropped, stats.truncated)
    # The first call compiles; what it took beyond a typical step is compile time.
    compile_s = max(first_step_s - float(np.median(step_times)), 0.0) if step_times else 0.0
    summary = {
        "encoder": cfg.encoder, "decoder": cfg.decoder, "seed": t.seed, "params": n_params,
        "steps": t.max_steps, "compile_s": compile_s, "wall_s": time.time() - start,
        "tokens_per_s": float(np.median(list(speeds)[1:] or speeds)) if speeds else 0.0,
        "validation": last_eval, "metric": metric,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _diverged_message(run_dir: Path, step: int, bad: int, ckpt) -> str:
    last = ckpt.last.latest_step() if ckpt else None
    where = (f"The last checkpoint (step {last}) in {run_dir / 'checkpoints' / 'last'} is intact"
             if last is not None else "No checkpoint was written")
    return (f"step {step}: the loss or the gradients were not finite for {bad} steps in a row; stopping. {where}. "
            f"Lower optim.learning_rate or raise optim.warmup_steps, then rerun (or trainer.resume=true)")


def _resume(run_dir: Path, state, batches, identity: dict) -> tuple[int, object]:
    """(step, state) from the latest intact checkpoint, with the data iterator
    moved to where it was; (0, state) when there is none yet."""
    found = checkpoint.latest(run_dir, state, identity)
    if found is None:
        log.warning("trainer.resume: no complete checkpoint in %s; starting from step 0", run_dir)
        return 0, state
    state, meta = found
    batches.set_state(meta["data"])
    step = int(meta["step"])
    metrics_log.truncate(run_dir, step)  # the killed run may have logged past its last checkpoint
    log.info("resumed from step %d", step)
    return step, state


def architecture_meta(arch: Architecture) -> dict:
    """An Architecture as JSON types: what a checkpoint records and is checked against."""
    return json.loads(json.dumps(dataclasses.asdict(arch)))


def validate(cfg: RunConfig, corpus: Corpus, params, eval_fn, generate_fn, logger: MetricsLog, step: int, shapes) -> dict:
    t = cfg.trainer
    out = evaluation.loss_metrics(eval_fn, params, data.eval_batches(corpus.valid, corpus.tokenizer, cfg.data, shapes))
    n = min(t.eval_examples or len(corpus.valid), len(corpus.valid))
    subset = data.Head(corpus.valid, n)
    hyps = evaluation.decode_all(generate_fn, params, data.eval_batches(subset, corpus.tokenizer, cfg.data, shapes), n, corpus.tokenizer)
    refs = [subset[i]["target"] for i in range(n)]
    out.update(evaluation.score(cfg.data.task, hyps, refs))
    logger.write(step, "validation", out)
    shown = [(subset[i]["source"], refs[i], hyps[i]) for i in range(min(t.samples, n))]
    logger.text(step, "validation/samples", "\n\n".join(f"source: {s}\n\nreference: {r}\n\nhypothesis: {h}" for s, r, h in shown))
    log.info("validation @%d: %s", step, " ".join(f"{k} {v:.3f}" for k, v in out.items()))
    return {**out, "samples": shown}
