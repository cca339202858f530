"""The training loop in three phases: `setup`, `run_steps` and `finish`.

`setup` builds everything a run needs from its config (data, model, state
on the mesh, jitted functions, the checkpoint manager and the log); the
step loop only steps and calls the hooks of `hooks.py` (divergence,
timing, logging, validation, checkpoints, preemption); `finish` writes the
summary. The run ends where its budget (`budget.py`: steps, tokens, FLOPs
or seconds) is spent, at `trainer.max_steps`, or earlier by early stopping.
What differs between tasks (data, tokenizer, model, loss sums, evaluation,
TensorBoard images, a fitted baseline) comes from the run's task
(`research.tasks.Task`, chosen by `data.task`); nothing here names one.
Only the first process of a multi-process run writes run files
(manifest, metrics, TensorBoard, tokenizer copy, summary); checkpoints go
through orbax's own multi-process protocol from every process.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import logging
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from research import console, tasks
from research.config import RunConfig
from research.data import corpus
from research.data.batch import KEYS as BATCH_KEYS
from research.training import budget as budgets
from research.training import averaging, checkpoint, distributed, evaluation, final_eval, hooks, manifest, metrics_log
from research.training import optim, pretrained, sharding
from research.training import state as train_state
from research.training.checkpoint import Checkpoints
from research.training.hooks import LoopState
from research.training.metrics_log import MetricsLog
from research.training.preemption import Preemption
from research.training.steps import eval_step, train_step

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Run:
    """What `setup` builds: fixed for the run, except `loop` (the state as it trains)."""

    cfg: RunConfig
    run_dir: Path
    main: bool  # this process writes the run files
    corpus: corpus.Corpus
    model: Any  # the task's flax module (Seq2Seq, Classifier)
    mesh: Any
    batches: Any  # the resumable training iterator (research/data/pipeline.py)
    step_fn: Any  # jitted (state, batch, rng, budget position) -> (state, metrics)
    eval_fn: Any
    generate_fn: Any  # the task's predictor: the n-best search, or a classifier's forward pass
    dropout_key: jax.Array
    identity: dict  # what a checkpoint must match to be resumed
    resumed_meta: dict  # the meta of the checkpoint resumed from ({} for a new run)
    checkpoints: Checkpoints | None
    logger: MetricsLog
    params: int
    loop: LoopState  # its `step` starts where the run starts (0, or the resumed checkpoint's)
    budget: budgets.Budget  # what the run has spent, and where it ends
    flops_of: Any  # (batch, source, target) shape -> train FLOPs of one step
    started: float  # time.time() when setup began
    baseline: dict = dataclasses.field(default_factory=dict)  # {split: {"baseline_<name>": score}}; {}: none
    best_checkpoint: str | None = None  # relative to run_dir, once the checkpoints are closed


def setup(cfg: RunConfig, run_dir: Path) -> Run:
    """Everything the step loop needs; restores the latest checkpoint with `trainer.resume=true`."""
    started = time.time()
    distributed.initialize(cfg.mesh)  # before any JAX array exists
    distributed.detach_file_logs()
    run_dir, t, main = Path(run_dir), cfg.trainer, distributed.is_main()
    task = tasks.get(cfg.data.task)
    texts = corpus.prepare(cfg.data, cfg.tokenizer)
    tok = texts.tokenizer
    fresh = not (t.resume and (run_dir / manifest.NAME).exists())
    model, arch = task.build_model(cfg, tok)  # before reading vectors: a task may refuse them
    vectors = pretrained.prepare(cfg.model, tok) if cfg.model.embeddings.pretrained else []
    if main:
        task.save_tokenizer(tok, run_dir / "tokenizer")  # the run directory is self-contained for evaluation
        if fresh:
            extra = {"pretrained": pretrained.manifest_entry(vectors, cfg.model)} if vectors else {}
            manifest.write(run_dir, cfg, texts, **extra)
    if cfg.data.pack:
        task.check_packing(arch)
    lr = optim.schedule(cfg.optim, t.max_steps)
    tx = optim.optimizer(cfg.optim, frozen=pretrained.frozen(cfg.model))
    init_key, dropout_key = jax.random.split(jax.random.PRNGKey(t.seed))
    batches = corpus.train_batches(texts.train, tok, cfg.data, t.seed)
    mesh = sharding.make_mesh(cfg.mesh)
    shape = batches.shapes[0]  # parameters do not depend on the batch shape
    spec = {k: jax.ShapeDtypeStruct((shape.batch, shape.source if k.startswith("source") else shape.target), "int32")
            for k in BATCH_KEYS}
    replicated = sharding.replicated(mesh)
    # The pipeline state is only valid for the worker count that saved it.
    identity = {"architecture": arch.meta(), "tokenizer": tok.fingerprint(), "pipeline": {"num_workers": cfg.data.num_workers}}
    start_step, state, meta = 0, None, {}
    if t.resume:
        start_step, state, meta = _resume(run_dir, train_state.abstract(model, tx, spec, init_key, replicated),
                                          batches, identity, main)
    if state is None:
        state = train_state.create(model, tx, spec, init_key, replicated)
        if vectors:  # written once into the fresh state; a resumed run has them in its checkpoint
            state = state.replace(params=pretrained.apply(state.params, vectors))
    budget = budgets.for_trainer(t, max(cfg.optim.warmup_steps, 1), meta.get("budget"), start_step)
    log.info("budget: %s", budget.describe())
    n_params = train_state.param_count(state.params)
    log.info("model: %s encoder, %s decoder, %d parameters", encoder_of(identity), decoder_of(identity), n_params)
    step_fn = sharding.jit_train_step(functools.partial(
        train_step, model=model, tx=tx, lr=lr, label_smoothing=t.label_smoothing, grad_accum=t.grad_accum,
        remat=t.remat, sums=task.sums), mesh)
    return Run(
        cfg=cfg, run_dir=run_dir, main=main, corpus=texts, model=model, mesh=mesh, batches=batches, step_fn=step_fn,
        eval_fn=jax.jit(functools.partial(eval_step, model=model, sums=task.sums)),
        generate_fn=task.predictor(model, cfg.decode), dropout_key=dropout_key, identity=identity, resumed_meta=meta,
        checkpoints=Checkpoints(run_dir, t.keep_checkpoints, *evaluation.selection(cfg.data.task, t.select_by),
                                keep_best=averaging.best_to_keep(t.average)) if t.checkpoint else None,
        logger=MetricsLog(run_dir, enabled=main), params=n_params, loop=LoopState(state, start_step),
        budget=budget, flops_of=budgets.flops_counter(functools.partial(task.train_flops, arch)),
        started=started, baseline=tasks.run_baseline(task, cfg, texts, run_dir) if main else {},
    )


def decoder_of(identity: dict) -> str:
    """The decoder a run's architecture holds ("none" for a model without one, e.g. a classifier)."""
    return identity["architecture"].get("decoder", "none")


def encoder_of(identity: dict) -> str:
    """The encoder a run's architecture holds ("none" for a model without one: a language model)."""
    return identity["architecture"].get("encoder", "none")


def _resume(run_dir: Path, abstract_state, batches, identity: dict, main: bool) -> tuple[int, Any, dict]:
    """(step, state, meta) of the latest intact checkpoint, with the data iterator moved to where
    it was; (0, None, {}) when there is none yet."""
    found = checkpoint.latest(run_dir, abstract_state, identity)
    if found is None:
        log.warning("trainer.resume: no complete checkpoint in %s; starting from step 0", run_dir)
        if main:
            metrics_log.truncate(run_dir, 0)  # what a failed attempt logged before its first checkpoint
        return 0, None, {}
    state, meta = found
    batches.set_state(meta["data"])
    step = int(meta["step"])
    if main:
        metrics_log.truncate(run_dir, step)  # the killed run may have logged past its last checkpoint
    log.info("resumed from step %d", step)
    return step, state, meta


def default_hooks(run: Run, stop: Preemption, bar) -> tuple[list, hooks.StepTimer, hooks.TrainLog, hooks.EarlyStopping]:
    """The hooks of a training run, in the order they run after each step (`bar`: a console.progress)."""
    t = run.cfg.trainer
    timer, train_log = hooks.StepTimer(), hooks.TrainLog(run.logger, t.log_every, run.budget.spent.row)
    images = tasks.get(run.cfg.data.task).images(run.model, run.corpus.tokenizer, run.corpus.valid, run.cfg.data,
                                                 min(2, t.samples))
    validate_and_show = functools.partial(validate, run, images=images)

    key, mode = evaluation.selection(run.cfg.data.task, t.select_by)
    early = hooks.EarlyStopping(key, mode, t.patience, run.resumed_meta.get("selection"))
    saver = None
    if run.checkpoints:
        meta = lambda loop: {**run.identity, "step": loop.step, "data": run.batches.get_state(),
                             "validation": loop.last_eval, "selection": early.state(), "budget": run.budget.state()}
        saver = hooks.Checkpointing(run.checkpoints, t.checkpoint_every or t.eval_every, meta)
    out = [hooks.DivergenceGuard(t.max_bad_steps, run.run_dir, run.checkpoints), timer, train_log,
           hooks.Validation(validate_and_show, t.eval_every), early]
    out += [saver] if saver else []
    out.append(hooks.PreemptionStop(stop.requested, lambda: stop.name, saver, run.run_dir))
    done = progress_done(run)
    out.append(hooks.ProgressDisplay(bar, t.log_every, done, shown=done()))
    return out, timer, train_log, early


def progress_total(run: Run) -> tuple[int, str, int]:
    """(total, unit, done so far) of the progress display: steps, or whole percent of another budget."""
    if run.budget.kind == "steps":
        return run.cfg.trainer.max_steps, "steps", run.loop.step
    return 100, f"% of {budgets.UNITS[run.budget.kind]}", budgets.progress_percent(run.budget)


def progress_done(run: Run):
    return (lambda: run.loop.step) if run.budget.kind == "steps" else (lambda: budgets.progress_percent(run.budget))


def run_steps(run: Run, step_hooks: list) -> None:
    """Steps from where `run.loop` stands until the budget is spent (or `trainer.max_steps`), or until
    a hook sets `loop.stopped` or `loop.converged`.

    Each step's cost is counted before its hooks run, so they know whether it is the last
    (`loop.final`): the target tokens its loss counted, the FLOPs of the batch shape it ran
    (padding rows included) and its wall time from fetching the batch to reading its metrics.
    """
    t, loop, budget = run.cfg.trainer, run.loop, run.budget
    if budget.ended_by():
        log.info("the budget was already spent at step %d (%s)", loop.step, budget.describe())
        return
    for step in range(loop.step, t.max_steps):
        tick = time.time()
        batch = sharding.shard_batch(next(run.batches), run.mesh, t.grad_accum)
        position = jnp.float32(budget.position())
        # Keys derive from (seed, step), so a resumed run draws the same dropout masks.
        state, metrics = run.step_fn(loop.state, batch, jax.random.fold_in(run.dropout_key, step), position)
        metrics = jax.device_get(metrics)
        seconds = budgets.agreed_seconds(time.time() - tick) if budget.kind == "seconds" else time.time() - tick
        source, target = batch["source"].shape, batch["target_in"].shape  # global shapes, as computed
        budget.add(float(metrics["tokens"]), run.flops_of((source[0], source[1], target[1])), seconds)
        loop.new_step(state, step + 1)
        loop.final = budget.ended_by() is not None
        hooks.run_hooks(step_hooks, loop, metrics, seconds)
        if loop.stopped or loop.converged or loop.final:
            return


def close(run: Run) -> None:
    """Waits for pending asynchronous checkpoint writes, closes the log and stops the data workers."""
    if run.checkpoints:
        best = run.checkpoints.close()
        run.best_checkpoint = f"checkpoints/best/{best}" if best is not None else None
    run.logger.close()
    run.batches.close()


def finish(run: Run, timer: hooks.StepTimer, train_log: hooks.TrainLog, early: hooks.EarlyStopping) -> dict:
    """The run's summary, written to summary.json (first process).

    `steps` is what the run trained (fewer than `max_steps` after early stopping);
    `best` names the checkpoint `trainer.select_by` chose, as the best manager kept it.
    """
    stats = run.batches.stats
    log.info("input pipeline: %d batches, padding %.1f%%, %.0f tokens/s, %d dropped, %d truncated",
             stats.batches, 100 * stats.padding_fraction, stats.tokens_per_second, stats.dropped, stats.truncated)
    t, budget = run.cfg.trainer, run.budget
    ended_by = "early_stopping" if run.loop.converged else budget.ended_by()
    if ended_by == "max_steps" and budget.kind != "steps":
        log.warning("trainer.max_steps=%d ended the run before its budget (%.1f%% of %s spent); raise trainer.max_steps "
                    "so that runs compared at this budget all spend it", t.max_steps, 100 * budget.fraction(),
                    budget.describe())
    summary = {
        "encoder": encoder_of(run.identity), "decoder": decoder_of(run.identity), "seed": t.seed, "params": run.params,
        "steps": run.loop.step, "max_steps": t.max_steps, "stopped_early": run.loop.converged,
        "budget": {**budgets.manifest_entry(t), "spent": budget.spent.row(), "ended_by": ended_by},
        "compile_s": timer.compile_s, "wall_s": time.time() - run.started,
        "tokens_per_s": train_log.tokens_per_s,
        "validation": {**run.loop.last_eval, **run.baseline.get(run.cfg.data.valid_split, {})},
        "metric": evaluation.task_metric_name(run.cfg.data.task),
        "best": {"select_by": early.key, "value": early.best, "step": early.best_step,
                 "checkpoint": run.best_checkpoint},
    }
    if run.baseline:  # every split it was scored on (research.tasks.run_baseline)
        summary["baseline"] = run.baseline
    summary.update(tasks.get(run.cfg.data.task).summary_extras(lambda: corpus.pairs(run.corpus.train)))
    if run.main:
        (run.run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def train(cfg: RunConfig, run_dir: Path) -> dict:
    """Trains one run into `run_dir`; returns its summary (also written to summary.json).

    With `trainer.test=true` the selected (or averaged, `trainer.average`) parameters are
    then decoded on the test split (`final_eval.py`: hyps_test.txt, eval_test.json) and
    the summary gains `test`.

    Stopped by a stop signal (see `preemption.py`), it checkpoints the step it
    was at and returns {"preempted": step, "signal": name} without a summary;
    `trainer.resume=true` continues from there. Raises Diverged after
    `trainer.max_bad_steps` skipped steps in a row, leaving the checkpoints
    written so far intact.
    """
    run = setup(cfg, run_dir)
    try:
        total, unit, done = progress_total(run)
        with Preemption() as stop, console.progress(total, "train", unit, initial=done, enabled=run.main) as bar:
            step_hooks, timer, train_log, early = default_hooks(run, stop, bar)
            run_steps(run, step_hooks)
    finally:  # also on Diverged and preemption: pending asynchronous writes complete
        close(run)
    if run.loop.stopped:
        return {"preempted": run.loop.step, "signal": run.loop.stopped}
    summary = finish(run, timer, train_log, early)
    # After the summary is written: a test evaluation that cannot run (too few checkpoints to
    # average after early stopping) leaves the trained run complete, and says what to do.
    test = final_eval.evaluate_test(run.run_dir, cfg, run.main, run.loop.state.params, run.loop.step)
    if test is not None:
        summary["test"] = final_eval.short(test)
        if run.main:
            (run.run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def validate(run: Run, params, step: int, images=None) -> dict:
    """Scores the validation split with the task's `evaluate_split` (seq2seq: the loss on all of it, the
    task metric on `trainer.eval_examples`), logs it with a few samples and the task's `images`
    (attention maps, a confusion matrix); -> its numbers and the samples."""
    t, c = run.cfg.trainer, run.corpus
    scores = tasks.get(run.cfg.data.task).evaluate_split(
        c.valid, c.tokenizer, run.cfg.data, params, run.eval_fn, run.generate_fn, decode_examples=t.eval_examples,
        shapes=run.batches.shapes, description=f"validation decoding, step {step}", split=run.cfg.data.valid_split)
    out = evaluation.numbers(scores.metrics)
    run.logger.write(step, "validation", {**out, **run.budget.spent.row()})  # curves against compute
    shown = list(zip(scores.sources, scores.refs, scores.hyps))[:t.samples]
    run.logger.text(step, "validation/samples",
                    "\n\n".join(f"source: {s}\n\nreference: {r}\n\nhypothesis: {h}" for s, r, h in shown))
    log.info("validation @%d: %s", step, " ".join(f"{k} {v:.3f}" for k, v in out.items()))
    if images is not None:
        images.log(run.logger, step, params, scores)
    return {**out, "samples": shown}
