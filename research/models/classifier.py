"""The text classifier: embeddings + ENCODERS[name] + pooling + one linear layer.

Any registered encoder (`encoder=rnn|cnn|transformer`) reads the text exactly
as in a seq2seq model (same embedding, same contract, `interfaces.py`); its
memory is summarised per row by `model.pooling` (layers/pooling.py: mean,
max, first, attention, each masked by padding) and a dense layer gives one
logit per label, [B, L]. What the logits mean (a softmax over labels, or a
sigmoid per label) is the task's: research/tasks/classification.py. There is
no decoder: the run config's `decoder` group is not built and not recorded.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any

import jax.numpy as jnp
from flax import linen as nn

from research.models import flops
from research.models.encoders import ENCODERS
from research.models.interfaces import EncoderOutput
from research.models.layers.pooling import Pooling
from research.models.seq2seq import ModelConfig


@dataclasses.dataclass(frozen=True)
class ClassifierArchitecture:
    """Everything needed to rebuild a classifier: encoder name and config, widths, label count."""

    encoder: str
    encoder_config: Any
    model: ModelConfig
    source_vocab: int
    labels: int
    multi_label: bool
    dtype: str = "float32"  # compute dtype (trainer.precision); parameters stay float32

    def meta(self) -> dict:
        """As JSON types, what a checkpoint records and is checked against on load: of `model`, only
        the keys a classifier uses (d_model, pooling), so the seq2seq-only keys can change freely."""
        meta = json.loads(json.dumps(dataclasses.asdict(self)))
        meta["model"] = {k: meta["model"][k] for k in ("d_model", "pooling")}
        return {"kind": "classifier", **meta}


def architecture(cfg: Any, source_vocab: int, labels: int, multi_label: bool) -> ClassifierArchitecture:
    """The ClassifierArchitecture a run config (`research.config.RunConfig`) builds; the one builder."""
    return ClassifierArchitecture(
        encoder=cfg.encoder, encoder_config=cfg.encoder_config, model=cfg.model, source_vocab=source_vocab,
        labels=labels, multi_label=multi_label, dtype="bfloat16" if cfg.trainer.precision == "bf16" else "float32",
    )


class Classifier(nn.Module):
    arch: ClassifierArchitecture

    def setup(self):
        a = self.arch
        dtype = jnp.dtype(a.dtype)
        d = a.model.d_model
        # As Seq2Seq's embeddings (N(0, 1/d)); the encoders add positions themselves.
        self.source_embed = nn.Embed(a.source_vocab, d, embedding_init=nn.initializers.normal(d ** -0.5), dtype=dtype,
                                     name="source_embed")
        self.encoder = ENCODERS.get(a.encoder).component(config=a.encoder_config, dtype=dtype, name="encoder")
        self.pooling = Pooling(a.model.pooling, dtype, name="pooling")
        self.classifier = nn.Dense(a.labels, dtype=dtype, name="classifier")

    def encode(self, batch, deterministic=True) -> EncoderOutput:
        x = self.source_embed(batch["source"])
        return self.encoder(x, batch["source_segments"], batch["source_positions"], deterministic=deterministic)

    def __call__(self, batch, deterministic=True):
        """batch (research/data/batch.py; only the source keys are read) -> logits [B, L] float32."""
        enc = self.encode(batch, deterministic)
        pooled = self.pooling(enc.memory, enc.segments)  # [B, D_mem]
        return self.classifier(pooled).astype(jnp.float32)


def train_flops(arch: ClassifierArchitecture, batch: int, source_len: int, target_len: int) -> int:
    """FLOPs of one train step (research/models/flops.py's convention): the encoder's matmuls, the attention
    pooling's key projection and scores, and the classifier layer; the target length plays no part."""
    del target_len
    d = arch.model.d_model
    encoder = flops._entry(flops.ENCODER_FLOPS, "encoder", arch.encoder)(arch.encoder_config, d, batch, source_len)
    width = flops.MEMORY_WIDTH[arch.encoder](arch.encoder_config, d)
    pooling = 0
    if arch.model.pooling == "attention":  # keys, then q . k and the weighted sum (2 FLOPs per multiply-add)
        pooling = flops.dense(batch * source_len, width, width) + 2 * 2 * batch * source_len * width
    return flops.TRAIN_MULTIPLIER * (encoder + pooling + flops.dense(batch, width, arch.labels))
