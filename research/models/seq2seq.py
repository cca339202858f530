"""The encoder-decoder model: embeddings + ENCODERS[name] + DECODERS[name] + output layer.

Nothing here knows a concrete encoder or decoder; they meet only through
the contract in `interfaces.py`.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Optional

import jax.numpy as jnp
from flax import linen as nn

from research.models.decoders import DECODERS
from research.models.encoders import ENCODERS
from research.models.interfaces import EncoderOutput, WithAuxiliary
from research.models.layers import coverage, pointer_generator
from research.models.layers.output import tied_logits
from research.models.layers.pooling import POOLINGS
from research.registry import ConfigError, check


EMBEDDING_SIDES = ("both", "source", "target")


@dataclasses.dataclass(frozen=True)
class EmbeddingsConfig:
    """How the embeddings start and whether they train (research/training/pretrained.py); not the architecture."""

    pretrained: Optional[str] = None  # GloVe or word2vec text file (.gz too): rows for the tokenizer's pieces
    side: str = "both"  # both | source | target: the embedding(s) that take the vectors and `freeze`
    freeze: bool = False  # the optimizer leaves them as they are (with tie_output, the output layer too)

    def __post_init__(self):
        check(self.side in EMBEDDING_SIDES, "embeddings.side", f"'{self.side}' is not one of {', '.join(EMBEDDING_SIDES)}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    d_model: int = 256  # embedding width, shared by every encoder and decoder
    tie_output: bool = True  # output layer = target embedding transposed (Press & Wolf 2017)
    share_embeddings: bool = True  # one source/target embedding; needs a joint vocabulary
    embeddings: EmbeddingsConfig = dataclasses.field(default_factory=EmbeddingsConfig)
    # task=classification | multilabel: how the classifier summarises the encoder's memory (layers/pooling.py)
    pooling: str = "mean"  # mean | max | first | attention
    pointer_generator: bool = False  # copy attention (layers/pointer_generator.py); needs tokenizer.joint=true

    def __post_init__(self):
        check(self.d_model > 0, "d_model", "must be positive")
        check(self.pooling in POOLINGS, "pooling", f"'{self.pooling}' is not one of {', '.join(POOLINGS)}")
        e = self.embeddings
        check(not (self.share_embeddings and e.side != "both"), "embeddings.side",
              f"'{e.side}' with model.share_embeddings=true: there is one embedding for both sides, so it cannot "
              f"be {'frozen' if e.freeze else 'pretrained'} on one side only; set model.share_embeddings=false or "
              "embeddings.side=both")


@dataclasses.dataclass(frozen=True)
class Architecture:
    """Everything needed to rebuild the model: names, frozen configs, vocabulary sizes."""

    encoder: str
    encoder_config: Any
    decoder: str
    decoder_config: Any
    model: ModelConfig
    source_vocab: int
    target_vocab: int
    dtype: str = "float32"  # compute dtype (trainer.precision); parameters stay float32

    def meta(self) -> dict:
        """As JSON types: what a checkpoint records and is checked against on load.

        `model.embeddings` is left out: how the embeddings started and whether
        they trained do not change the model, and checkpoints made before the
        key existed keep loading. So is `model.pooling`, which only a
        classifier has (research/models/classifier.py), and `model.pointer_generator`
        and the RNN decoder's `coverage` when they are off, their defaults, for the same reason.
        """
        meta = json.loads(json.dumps(dataclasses.asdict(self)))
        meta["model"].pop("embeddings")
        meta["model"].pop("pooling")
        if not meta["model"]["pointer_generator"]:  # checkpoints made before copy attention existed keep loading
            meta["model"].pop("pointer_generator")
        if meta["decoder_config"].get("coverage") is False:  # nor before coverage did
            meta["decoder_config"].pop("coverage")
        return meta


def architecture(cfg: Any, source_vocab: int, target_vocab: int) -> Architecture:
    """The Architecture a run config (`research.config.RunConfig`) builds for these vocabulary sizes.

    The one builder: training, loading a finished run and the benchmarks all
    call it, so a model trained is the model loaded is the model timed.
    """
    return Architecture(
        encoder=cfg.encoder, encoder_config=cfg.encoder_config,
        decoder=cfg.decoder, decoder_config=cfg.decoder_config,
        model=cfg.model, source_vocab=source_vocab, target_vocab=target_vocab,
        dtype="bfloat16" if cfg.trainer.precision == "bf16" else "float32",
    )


class Seq2Seq(nn.Module):
    """Attributes beside the architecture change what the model returns, never its parameters:

      lambda_coverage: > 0 (trainer.lambda_coverage): the training forward pass (deterministic=False)
        returns `WithAuxiliary(logits, lambda_coverage x coverage loss [B, T])` (layers/coverage.py); every
        deterministic call returns the logits alone, so evaluation and decoding do not see it.
      track_coverage: the decoding cache is {"decoder": ..., "coverage": [B, S]}, the summed attention of the
        steps so far, which the beam search's coverage penalty reads (research/decoding/coverage_penalty.py).
    """

    arch: Architecture
    lambda_coverage: float = 0.0
    track_coverage: bool = False

    @property
    def returns_attention(self) -> bool:
        """Whether the decoder is built to return its attention with its features (interfaces.py)."""
        return self.arch.model.pointer_generator or self.lambda_coverage > 0 or self.track_coverage

    def setup(self):
        a = self.arch
        m = a.model
        dtype = jnp.dtype(a.dtype)
        init = nn.initializers.normal(m.d_model ** -0.5)
        self.target_embed = nn.Embed(a.target_vocab, m.d_model, embedding_init=init, dtype=dtype, name="target_embed")
        if m.share_embeddings:
            check(a.source_vocab == a.target_vocab, "model.share_embeddings",
                  f"needs one joint vocabulary, got {a.source_vocab} source and {a.target_vocab} target pieces")
            self.source_embed = self.target_embed
        else:
            self.source_embed = nn.Embed(a.source_vocab, m.d_model, embedding_init=init, dtype=dtype, name="source_embed")
        self.encoder = ENCODERS.get(a.encoder).component(config=a.encoder_config, dtype=dtype, name="encoder")
        decoder = DECODERS.get(a.decoder).component
        self.decoder = decoder(config=a.decoder_config, dtype=dtype, name="decoder",
                               **({"return_attention": True} if self.returns_attention else {}))
        self.output = None if m.tie_output else nn.Dense(a.target_vocab, dtype=dtype, name="output")
        if m.pointer_generator:
            check(a.source_vocab == a.target_vocab, "model.pointer_generator",
                  f"needs one joint vocabulary, got {a.source_vocab} source and {a.target_vocab} target pieces")
            self.copy_gate = nn.Dense(1, dtype=dtype, name="copy_gate")  # p_gen from [features; context; input]

    def _logits(self, features):
        if self.output is not None:
            return self.output(features).astype(jnp.float32)
        dtype = jnp.dtype(self.arch.dtype)  # what nn.Embed.attend would compute in
        return tied_logits(features.astype(dtype), self.target_embed.embedding.astype(dtype)).astype(jnp.float32)

    def _output(self, out, enc: EncoderOutput, y):
        """The decoder's output -> (logits, attention or None); with copy, the logits are the pointer-generator's
        log-probabilities (research/models/layers/pointer_generator.py), which every loss and search takes as
        logits."""
        features, attention = out if self.returns_attention else (out, None)
        if not self.arch.model.pointer_generator:
            return self._logits(features), attention
        ctx = pointer_generator.context(attention, enc.memory)
        gate = self.copy_gate(jnp.concatenate([features, ctx.astype(features.dtype), y.astype(features.dtype)], -1))
        return pointer_generator.mix(self._logits(features), attention, enc.tokens, gate[..., 0]), attention

    def encode(self, batch, deterministic=True) -> EncoderOutput:
        x = self.source_embed(batch["source"])
        enc = self.encoder(x, batch["source_segments"], batch["source_positions"], deterministic=deterministic)
        return enc.replace(tokens=batch["source"]) if self.arch.model.pointer_generator else enc

    def decode(self, enc: EncoderOutput, batch, deterministic=True):
        """-> logits [B, T, V] for the shifted targets in `batch` (log-probabilities with copy; in training with
        lambda_coverage, `WithAuxiliary`: see the class docstring)."""
        y = self.target_embed(batch["target_in"])
        out = self.decoder(enc, y, batch["target_segments"], batch["target_positions"], deterministic=deterministic)
        logits, attention = self._output(out, enc, y)
        if self.lambda_coverage > 0 and not deterministic:
            return WithAuxiliary(logits, self.lambda_coverage * coverage.loss(attention))
        return logits

    def __call__(self, batch, deterministic=True):
        return self.decode(self.encode(batch, deterministic), batch, deterministic)

    def init_cache(self, enc: EncoderOutput, max_len: int):
        cache = self.decoder.init_cache(enc, max_len)
        if not self.track_coverage:
            return cache
        return {"decoder": cache, "coverage": jnp.zeros(enc.mask.shape, jnp.float32)}

    def decode_step(self, enc: EncoderOutput, cache, tokens):
        """tokens [B] -> (logits [B, V], cache)."""
        y = self.target_embed(tokens)
        if not self.track_coverage:
            out, cache = self.decoder.step(enc, cache, y)
            return self._output(out, enc, y)[0], cache
        out, inner = self.decoder.step(enc, cache["decoder"], y)
        logits, attention = self._output(out, enc, y)
        return logits, {"decoder": inner, "coverage": cache["coverage"] + attention.astype(jnp.float32)}


def check_packing(arch: Architecture) -> None:
    """Packing needs every component to restart at segment starts; refuse it clearly otherwise."""
    for kind, name, registry in (("encoder", arch.encoder, ENCODERS), ("decoder", arch.decoder, DECODERS)):
        if not getattr(registry.get(name).component, "supports_packing", True):
            raise ConfigError(
                f"data.pack: packing is not supported by {kind}={name}: it starts each row from one "
                f"bridged encoder state, so packed rows would share it; set data.pack=false"
            )
