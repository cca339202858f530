"""trainer.precision=bf16: bfloat16 compute, float32 parameters and optimizer
state, and a loss curve that follows the float32 one on real data."""
from __future__ import annotations

import gzip
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.config import resolve
from research.data.batch import pad_batch
from research.data.tokenizer import load_or_train
from research.models.seq2seq import Seq2Seq, architecture
from research.training import optim, state as train_state
from research.training.steps import train_step
from tests.conftest import SAMPLE, compose_config, tiny_overrides

ROWS, LEN = 16, 32
# bf16 keeps 8 significant bits (relative rounding 2^-9 = 0.2%), and the curves drift apart
# slowly as the parameters diverge. Largest relative loss difference, bf16 against fp32
# (2-core x86 CPU, 2026-12; the same figure on every rerun of the same code, XLA's CPU results
# being deterministic): 0.044% (step 5) over the 40 tiny-transformer steps of the fast test.
# Over the 200 demo steps of the slow one: 0.50% (step 193; median 0.03%) at c04930f, 0.41%
# (step 194) for the code just before it, measured the same day, 0.21% and 0.27% for earlier
# versions. Late in that run the curves' own sensitivity sets the scale: two fp32 runs that
# differ only in the last bits (c04930f against the code before it, same masks) are 0.23%
# apart by step 181. The bounds are about twice the measurement, and far below the gap
# between a model that learns and one that does not (the loss falls by > 30%).
REL_TOL = 0.001  # 40 tiny steps: measured 0.044%
REL_TOL_DEMO = 0.01  # 200 demo steps: measured 0.50% (0.41%, 0.21% and 0.27% for earlier code)


def sample_pairs(n: int, max_words: int = 12) -> list[tuple[str, str]]:
    """The first n shipped training pairs with at most max_words words a side."""
    out = []
    with gzip.open(SAMPLE / "train.jsonl.gz", "rt") as f:
        for line in f:
            r = json.loads(line)
            if len(r["de"].split()) <= max_words and len(r["en"].split()) <= max_words:
                out.append((r["de"], r["en"]))
                if len(out) == n:
                    return out
    raise AssertionError("too few short pairs in the shipped sample")


def setup(tmp_path, precision: str, *extra: str, experiment: str | None = None, pairs: int = 4 * ROWS):
    base = tiny_overrides("transformer", "transformer") if experiment is None else []
    cfg = resolve(compose_config(base + [f"tokenizer.cache_dir={tmp_path}/spm", f"trainer.precision={precision}",
                                         "optim.warmup_steps=10", "optim.learning_rate=0.002", *extra], experiment))
    texts = sample_pairs(pairs)
    tok = load_or_train(cfg.tokenizer, texts, "test_precision")
    ids = [(tok.encode_source(s)[: LEN - 1], tok.encode_target(t)[: LEN - 1]) for s, t in texts]
    batches = [{k: jnp.asarray(v) for k, v in pad_batch([s for s, _ in chunk], [t for _, t in chunk], LEN, LEN).items()}
               for chunk in (ids[i:i + ROWS] for i in range(0, len(ids), ROWS))]
    model = Seq2Seq(architecture(cfg, tok.source_vocab, tok.target_vocab))
    lr = optim.schedule(cfg.optim, cfg.trainer.max_steps)
    tx = optim.optimizer(cfg.optim)
    return cfg, model, tx, lr, batches


def losses(tmp_path, precision: str, steps: int, **kw) -> list[float]:
    cfg, model, tx, lr, batches = setup(tmp_path, precision, **kw)
    state = train_state.create(model, tx, batches[0], jax.random.PRNGKey(0))
    step = jax.jit(lambda s, b, r: train_step(s, b, r, model=model, tx=tx, lr=lr,
                                              label_smoothing=cfg.trainer.label_smoothing), donate_argnums=0)
    out = []
    for i in range(steps):
        state, m = step(state, batches[i % len(batches)], jax.random.PRNGKey(i))
        out.append(float(m["loss"]))
    return out


def assert_curves_agree(fp32: list[float], bf16: list[float], tol: float = REL_TOL) -> None:
    rel = np.abs(np.array(bf16) - np.array(fp32)) / np.array(fp32)
    assert rel.max() < tol, f"bf16 strays {rel.max():.3%} from fp32 at step {rel.argmax()}"
    assert fp32[-1] < 0.7 * fp32[0] and bf16[-1] < 0.7 * bf16[0]  # both learn


def test_bf16_computes_in_bf16_and_keeps_float32_state(tmp_path):
    cfg, model, tx, lr, batches = setup(tmp_path, "bf16")
    assert model.arch.dtype == "bfloat16"
    state = train_state.create(model, tx, batches[0], jax.random.PRNGKey(0))
    dtypes = lambda tree: {x.dtype for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)}
    assert dtypes(state.params) == {jnp.dtype(jnp.float32)}
    assert dtypes(state.opt_state) == {jnp.dtype(jnp.float32)}  # Adam moments follow the parameters
    logits, inter = model.apply({"params": state.params}, batches[0], capture_intermediates=True, mutable=["intermediates"])
    assert logits.dtype == jnp.float32  # the loss is computed in float32
    acts = {path: x.dtype for path, x in jax.tree_util.tree_leaves_with_path(inter)
            if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating)}
    encoder = [d for p, d in acts.items() if "encoder" in jax.tree_util.keystr(p)]
    decoder = [d for p, d in acts.items() if "decoder" in jax.tree_util.keystr(p)]
    assert encoder and decoder and set(encoder + decoder) == {jnp.dtype(jnp.bfloat16)}
    new, _ = jax.jit(lambda s, b: train_step(s, b, jax.random.PRNGKey(0), model=model, tx=tx, lr=lr,
                                             label_smoothing=0.1))(state, batches[0])
    assert dtypes(new.params) == dtypes(new.opt_state) == {jnp.dtype(jnp.float32)}


@pytest.mark.slow  # `make test-slow`: 2026-12-03 durations, 30-380 s each
def test_bf16_loss_follows_fp32(tmp_path):
    fp32 = losses(tmp_path, "fp32", 40)
    bf16 = losses(tmp_path, "bf16", 40)
    assert_curves_agree(fp32, bf16)


@pytest.mark.slow
def test_bf16_loss_follows_fp32_on_the_demo_experiment(tmp_path):
    """200 steps of the quick (demo) experiment, as the issue asks."""
    kw = dict(experiment="demo", pairs=16 * ROWS)
    assert_curves_agree(losses(tmp_path, "fp32", 200, **kw), losses(tmp_path, "bf16", 200, **kw), REL_TOL_DEMO)
