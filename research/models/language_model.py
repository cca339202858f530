"""The decoder-only language model: an embedding + DECODERS[name] without a memory + the output layer.

Any registered decoder (`decoder=rnn|cnn|transformer`) runs here as it runs
in Seq2Seq, built with `memory=False` (research/models/interfaces.py): it has
no cross-attention, no bridge from an encoder state and no attention over a
source, and those parameters do not exist, so nothing is fed zeros. The
decoder keys that only describe a memory are therefore not read (`UNUSED`).
The embedding, its scale and the tied output layer (`model.tie_output`) are
Seq2Seq's target side, so a decoder computes the same function over its
input in both models.

The model reads the batch's target keys only (research/data/batch.py):
`target_in` (BOS + the text), `target_segments` and `target_positions`; the
loss predicts `target_out` (the text + EOS). Packed rows (several documents
with their segment ids) are supported by every decoder: self-attention and
the convolution windows stop at segment boundaries, and the recurrent state
restarts at each segment's first token.

There is no encoder: the run config's `encoder` group is neither built nor
recorded in the architecture.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any

import jax.numpy as jnp
from flax import linen as nn

from research.models import flops
from research.models.decoders import DECODERS
from research.models.layers.output import tied_logits
from research.models.seq2seq import ModelConfig

# Decoder config keys that describe the attention over a memory, which a language model has not.
UNUSED = {"rnn": ("attention", "score", "num_heads", "input_feeding"), "cnn": ("num_heads",), "transformer": ()}


@dataclasses.dataclass(frozen=True)
class LMArchitecture:
    """Everything needed to rebuild a language model: decoder name and config, width, vocabulary size."""

    decoder: str
    decoder_config: Any
    model: ModelConfig
    vocab: int
    dtype: str = "float32"  # compute dtype (trainer.precision); parameters stay float32

    def meta(self) -> dict:
        """As JSON types, what a checkpoint records and is checked against on load: of `model`, only
        the keys a language model uses (d_model, tie_output); `kind` tells it from a Seq2Seq's."""
        meta = json.loads(json.dumps(dataclasses.asdict(self)))
        meta["model"] = {k: meta["model"][k] for k in ("d_model", "tie_output")}
        return {"kind": "language_model", **meta}


def architecture(cfg: Any, vocab: int) -> LMArchitecture:
    """The LMArchitecture a run config (`research.config.RunConfig`) builds; the one builder."""
    return LMArchitecture(decoder=cfg.decoder, decoder_config=cfg.decoder_config, model=cfg.model, vocab=vocab,
                          dtype="bfloat16" if cfg.trainer.precision == "bf16" else "float32")


class LanguageModel(nn.Module):
    arch: LMArchitecture

    def setup(self):
        a = self.arch
        d = a.model.d_model
        dtype = jnp.dtype(a.dtype)
        # As Seq2Seq's embeddings: N(0, 1/d), so that tying them to the output keeps logits of order 1.
        self.embed = nn.Embed(a.vocab, d, embedding_init=nn.initializers.normal(d ** -0.5), dtype=dtype, name="embed")
        self.decoder = DECODERS.get(a.decoder).component(config=a.decoder_config, dtype=dtype, memory=False,
                                                         name="decoder")
        self.output = None if a.model.tie_output else nn.Dense(a.vocab, dtype=dtype, name="output")

    def _logits(self, features):
        if self.output is not None:
            return self.output(features).astype(jnp.float32)
        dtype = jnp.dtype(self.arch.dtype)
        return tied_logits(features.astype(dtype), self.embed.embedding.astype(dtype)).astype(jnp.float32)

    def __call__(self, batch, deterministic=True):
        """batch (only the target keys are read) -> logits [B, T, V] float32 of the next token at each position."""
        y = self.embed(batch["target_in"])  # [B, T, E]
        features = self.decoder(None, y, batch["target_segments"], batch["target_positions"], deterministic=deterministic)
        return self._logits(features)

    def init_cache(self, batch: int, max_len: int):
        """The decoder's empty cache for `batch` rows of at most `max_len` fed tokens."""
        return self.decoder.init_cache(None, max_len, batch=batch)

    def decode_step(self, cache, tokens):
        """tokens [B] (the last token of each row) -> (logits [B, V] of the next one, cache)."""
        features, cache = self.decoder.step(None, cache, self.embed(tokens))
        return self._logits(features), cache


# (decoder config, d_model, batch, length) -> forward FLOPs of the decoder without a memory, in
# research/models/flops.py's convention. Without cross-attention a transformer decoder layer is an
# encoder layer (causal masking does not change the count) and the ConvS2S decoder is the encoder's
# stack; the recurrent decoder is the seq2seq one with no source, no attention and no input feeding.
DECODER_FLOPS = {
    "rnn": lambda c, d, b, t: flops.rnn_decoder(b, 0, t, d, c.hidden_size, c.num_layers, 0, c.cell, "none", c.score,
                                                False),
    "cnn": lambda c, d, b, t: flops.cnn_encoder(b, t, d, c.channels, c.kernel_size, c.num_layers),
    "transformer": lambda c, d, b, t: c.num_layers * flops.transformer_encoder_layer(b, t, d, c.d_ff),
}


def train_flops(arch: LMArchitecture, batch: int, source_len: int, target_len: int) -> int:
    """FLOPs of one train step on a [batch, target_len] text batch: decoder + output layer, x3 (the source
    length plays no part: a language model reads no source)."""
    del source_len
    d = arch.model.d_model
    if arch.decoder not in DECODER_FLOPS:
        raise KeyError(f"decoder '{arch.decoder}' has no FLOP count without a memory; add one to DECODER_FLOPS in "
                       f"research/models/language_model.py (counted: {', '.join(sorted(DECODER_FLOPS))})")
    decoder = DECODER_FLOPS[arch.decoder](arch.decoder_config, d, batch, target_len)
    return flops.TRAIN_MULTIPLIER * (decoder + flops.output_projection(batch, target_len, d, arch.vocab))
