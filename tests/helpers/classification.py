"""Tiny classifiers on the shipped ddtp_sections_en sample, set up as a run sets them up."""
from __future__ import annotations

import functools
from pathlib import Path

import jax
import jax.numpy as jnp

from research import tasks
from research.config import resolve
from research.data import corpus
from research.training import optim, state as train_state
from research.training.steps import train_step
from tests.conftest import compose_config

# Sizes that compile in a second or two on a busy 2-core CPU; dropout off so that losses compare.
# The RNN runs one direction: half the scans to compile (the bidirectional one is seq2seq's, tests/models).
TINY = {
    "rnn": ["encoder.hidden_size=16", "encoder.num_layers=1", "encoder.bidirectional=false"],
    "cnn": ["encoder.channels=16", "encoder.num_layers=1", "encoder.max_len=64"],
    "transformer": ["encoder.d_ff=32", "encoder.num_heads=2", "encoder.num_layers=1"],
}
DATA = {"classification": "ddtp_sections_en_sample", "multilabel": "ddtp_sections_en_tags_sample"}
# Short rows, one batch shape of 16 rows: real batches of the sample, cut to 32 pieces.
SHORT = ["data.max_source_len=32", "data.tokens_per_batch=512", "data.max_shapes=1", "tokenizer.vocab_size=400"]
OPTIM = ["optim.schedule=constant", "optim.warmup_steps=1", "optim.learning_rate=0.01"]


def run_config(encoder: str, tmp: Path, *extra: str, task: str = "classification"):
    overrides = [f"data={DATA[task]}", f"encoder={encoder}", "model.d_model=16", "encoder.dropout=0",
                 *TINY[encoder], *SHORT, *OPTIM, f"tokenizer.cache_dir={tmp}/spm", f"data.tfds_dir={tmp}/tfds",
                 *extra]
    return resolve(compose_config(overrides))


def sample_corpus(tmp: Path, task: str = "classification") -> corpus.Corpus:
    """The sample read and tokenized as a run does it (the tokenizer does not depend on the encoder)."""
    cfg = run_config("cnn", tmp, task=task)
    return corpus.prepare(cfg.data, cfg.tokenizer)


def trainer(cfg, tok):
    """(model, init(batch) -> TrainState, jitted step(state, batch) -> (state, metrics)).

    `init` is train_state.create's jitted initialisation: cheaper than running it eagerly (measured), and
    the persistent compilation cache of tests/conftest.py serves it again to poolings without parameters.
    """
    task = tasks.get(cfg.data.task)
    model, _ = task.build_model(cfg, tok)
    tx, lr = optim.optimizer(cfg.optim), optim.schedule(cfg.optim, cfg.trainer.max_steps)
    step = jax.jit(functools.partial(train_step, rng=jax.random.PRNGKey(1), model=model, tx=tx, lr=lr,
                                     label_smoothing=0.0, sums=task.sums))

    init = lambda batch: train_state.create(model, tx, batch, jax.random.PRNGKey(0))
    return model, init, step


def batches(cfg, texts: corpus.Corpus, n: int) -> list[dict]:
    """The first n batches of the real training pipeline, as jax arrays."""
    it = corpus.train_batches(texts.train, texts.tokenizer, cfg.data, cfg.trainer.seed)
    try:
        return [{k: jnp.asarray(v) for k, v in next(it).items()} for _ in range(n)]
    finally:
        it.close()
