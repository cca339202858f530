"""Our models at the benchmark shape, built from the REAL Hydra config.

The benchmark composes `conf/config.yaml` with overrides, exactly as a user's
command line would (`encoder=rnn decoder=rnn model.d_model=256 ...`), so
what is timed is what `python -m research.train` builds, and a config change
shows up in the numbers.

The RNN pairs are set up like the PyTorch LSTM peer (`torch_peer.py`) so
that the comparison is like for like: LSTM cells, a bidirectional encoder
(hidden 256 per direction), Luong attention with the `general` score (the
widths differ: 512-wide memory, 256-wide decoder), and input feeding OFF,
since `torch.nn.LSTM` runs the decoder over the whole target at once and
cannot feed the attentional vector back.
"""
from __future__ import annotations

import dataclasses
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
from hydra import compose, initialize_config_dir

from research.benchmarks.shape import BENCH_SHAPE, Shape
from research.config import REPO, RunConfig, register_schemas, resolve
from research.data.batch import pad_batch
from research.models.seq2seq import Architecture, Seq2Seq, architecture
from research.training import optim, pretrained, state as train_state
from research.training.steps import train_step

KINDS = ("rnn", "cnn", "transformer")
PAIRS = tuple(f"{e}-{d}" for e in KINDS for d in KINDS)
FIRST_TOKEN = 4  # after PAD, UNK, BOS, EOS: random batches hold no special ids


def overrides(encoder: str, decoder: str, shape: Shape = BENCH_SHAPE, precision: str = "fp32") -> list[str]:
    """Hydra overrides that set the benchmark shape for one pair."""
    s = shape
    out = [f"encoder={encoder}", f"decoder={decoder}", f"model.d_model={s.d_model}",
           f"trainer.precision={precision}", "trainer.label_smoothing=0.1", "optim.clip_norm=1.0"]
    per_kind = {
        "transformer": [f"num_layers={s.layers}", f"num_heads={s.heads}", f"d_ff={s.d_ff}", f"dropout={s.dropout}"],
        "cnn": [f"num_layers={s.layers}", f"channels={s.channels}", f"kernel_size={s.kernel}", f"dropout={s.dropout}"],
        "rnn": [f"num_layers={s.layers}", "cell=lstm", f"hidden_size={s.hidden}", f"dropout={s.dropout}"],
    }
    out += [f"encoder.{o}" for o in per_kind[encoder]]
    out += [f"decoder.{o}" for o in per_kind[decoder]]
    if encoder == "rnn":
        out.append("encoder.bidirectional=true")
    if decoder == "rnn":
        out += ["decoder.attention=luong", "decoder.score=general", "decoder.input_feeding=false"]
    return out


def run_config(encoder: str, decoder: str, shape: Shape = BENCH_SHAPE, precision: str = "fp32", extra=()) -> RunConfig:
    register_schemas()
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        cfg = compose(config_name="config", overrides=overrides(encoder, decoder, shape, precision) + list(extra))
    return resolve(cfg)


def random_batch(shape: Shape = BENCH_SHAPE, seed: int = 0) -> dict[str, np.ndarray]:
    """A full batch without padding: S-1 / T-1 random ids, so EOS and BOS fill it exactly."""
    rng = np.random.default_rng(seed)
    src = rng.integers(FIRST_TOKEN, shape.vocab, (shape.batch, shape.src_len - 1)).tolist()
    tgt = rng.integers(FIRST_TOKEN, shape.vocab, (shape.batch, shape.tgt_len - 1)).tolist()
    return pad_batch(src, tgt, shape.src_len, shape.tgt_len)


@dataclasses.dataclass
class CompiledStep:
    """A compiled train step bound to its own state, batch and key.

    `__call__` runs one step (donating the old state) and blocks until done.
    """

    compiled: object
    state: object
    batch: dict
    rng: jax.Array
    compile_s: float
    params: int
    tokens: int
    arch: Architecture  # what `research.models.flops.train_flops` counts

    def __call__(self) -> float:
        self.state, metrics = self.compiled(self.state, self.batch, self.rng)
        return float(metrics["loss"])  # the host read blocks


@dataclasses.dataclass(frozen=True)
class Setup:
    """What a training run builds from its config: the model and the optimizer."""

    run: RunConfig
    model: Seq2Seq
    tx: object  # optax.GradientTransformation
    lr: object  # optax.Schedule

    def step_fn(self, **step_kwargs):
        """`train_step` with everything but (state, batch, rng) bound; not yet jitted."""
        return functools.partial(train_step, model=self.model, tx=self.tx, lr=self.lr,
                                 label_smoothing=self.run.trainer.label_smoothing, **step_kwargs)


def setup(encoder: str, decoder: str, shape: Shape = BENCH_SHAPE, *, precision: str = "fp32", extra=()) -> Setup:
    run = run_config(encoder, decoder, shape, precision, extra)
    lr = optim.schedule(run.optim, run.trainer.max_steps)
    tx = optim.optimizer(run.optim, frozen=pretrained.frozen(run.model))
    return Setup(run, Seq2Seq(architecture(run, shape.vocab, shape.vocab)), tx, lr)


def build_train_step(encoder: str, decoder: str, shape: Shape = BENCH_SHAPE, *, precision: str = "fp32",
                     seed: int = 0, extra=(), step_kwargs=None) -> CompiledStep:
    """Composes the config, initialises the model and AOT-compiles `jax.jit(train_step)`.

    `compile_s` is lowering plus XLA compilation, what the first call of a
    training run waits for. `step_kwargs` go to `train_step` (grad_accum, remat).
    """
    s = setup(encoder, decoder, shape, precision=precision, extra=extra)
    batch = {k: jnp.asarray(v) for k, v in random_batch(shape, seed).items()}
    state = train_state.create(s.model, s.tx, batch, jax.random.PRNGKey(seed))
    fn = s.step_fn(**(step_kwargs or {}))
    rng = jax.random.PRNGKey(seed + 1)
    start = time.perf_counter()
    compiled = jax.jit(fn, donate_argnums=0).lower(state, batch, rng).compile()
    compile_s = time.perf_counter() - start
    return CompiledStep(compiled, state, batch, rng, compile_s, train_state.param_count(state.params),
                        int((batch["target_segments"] > 0).sum()), s.model.arch)
