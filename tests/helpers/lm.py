"""Tiny language models on the shipped ddtp_summ_en sample's documents, and reference computations for them.

The training set-up (`trainer`, `batches`) is the classifier tests' (tests/helpers/classification.py): both
build the task's model and loss through its hooks, as a run does.
"""
from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from research.config import resolve
from research.data import corpus
from research.data.batch import BOS, EOS, fill_rows
from tests.conftest import compose_config
from tests.helpers.classification import batches, trainer  # noqa: F401 (shared: re-exported for the LM tests)

DECODERS = ("rnn", "cnn", "transformer")
# Sizes that compile in seconds on a busy 2-core CPU; dropout off so that losses and logits compare.
TINY = {
    "rnn": ["decoder.hidden_size=16", "decoder.num_layers=2"],
    "cnn": ["decoder.channels=16", "decoder.num_layers=2", "decoder.max_len=64"],
    "transformer": ["decoder.d_ff=32", "decoder.num_heads=2", "decoder.num_layers=2"],
}
# Short rows, one batch shape of 16 rows: real batches of the sample, cut to 32 pieces.
SHORT = ["data.max_target_len=32", "data.max_source_len=2", "data.tokens_per_batch=512", "data.max_shapes=1",
         "tokenizer.vocab_size=400"]
OPTIM = ["optim.schedule=constant", "optim.warmup_steps=1", "optim.learning_rate=0.01"]


def run_config(decoder: str, tmp: Path, *extra: str):
    overrides = ["data=ddtp_summ_en_lm_sample", f"decoder={decoder}", "model.d_model=16", "decoder.dropout=0",
                 *TINY[decoder], *SHORT, *OPTIM, f"tokenizer.cache_dir={tmp}/spm", f"data.tfds_dir={tmp}/tfds", *extra]
    return resolve(compose_config(overrides))


def sample_corpus(tmp: Path) -> corpus.Corpus:
    """The sample's documents read and tokenized as a run does it (the tokenizer does not depend on the decoder)."""
    cfg = run_config("transformer", tmp)
    return corpus.prepare(cfg.data, cfg.tokenizer)


def text_batch(texts: list[list[int]], length: int, packed: bool = False) -> dict:
    """Token ids (no BOS/EOS) -> an LM batch [B, length]: one text per row, or all of them in one packed row."""
    rows = [[([], t) for t in texts]] if packed else [[([], t)] for t in texts]
    return {k: jnp.asarray(v) for k, v in fill_rows(rows, len(rows), max(len(texts), 2), length).items()}


def init(model, batch, seed: int = 0):
    return jax.jit(lambda r, b: model.init({"params": r}, b)["params"])(jax.random.PRNGKey(seed), batch)


def full_logits(model, params, ids: list[int]) -> np.ndarray:
    """The teacher-forced logits [len(ids), V] of one row fed exactly `ids` (BOS first), recomputed whole."""
    t = len(ids)
    batch = {"target_in": jnp.asarray([ids], jnp.int32), "target_segments": jnp.ones((1, t), jnp.int32),
             "target_positions": jnp.arange(t, dtype=jnp.int32)[None]}
    return np.asarray(model.apply({"params": params}, batch))[0]


def greedy_by_recomputing(model, params, prompt: list[int], steps: int) -> list[int]:
    """Greedy continuation of `prompt` (ids): at every step the whole prefix BOS + prompt + chosen so far runs
    through the full forward pass and its last position's arg-max is appended, until EOS or `steps` tokens."""
    out: list[int] = []
    while len(out) < steps:
        token = int(np.argmax(full_logits(model, params, [BOS, *prompt, *out])[-1]))
        out.append(token)
        if token == EOS:
            break
    return out


def numpy_perplexity(model, params, texts: list[list[int]]) -> tuple[float, float]:
    """(perplexity, token accuracy) of texts (ids), each predicted as text + EOS after BOS, in float64 NumPy
    from the model's logits of each text alone: exp(sum of -log softmax at the targets / number of targets)."""
    nll, hits, count = 0.0, 0, 0
    for ids in texts:
        logits = full_logits(model, params, [BOS, *ids]).astype(np.float64)  # [T, V]
        targets = np.asarray([*ids, EOS])
        top = logits.max(-1, keepdims=True)
        logp = logits - top - np.log(np.exp(logits - top).sum(-1, keepdims=True))
        nll -= logp[np.arange(len(targets)), targets].sum()
        hits += int((logits.argmax(-1) == targets).sum())
        count += len(targets)
    return float(np.exp(nll / count)), hits / count
