"""The tagger: embeddings (+ a predicate indicator) + ENCODERS[name] + each word's first piece + one linear layer.

Any registered encoder (`encoder=rnn|cnn|transformer`) reads the pieces as in
a seq2seq model (same embedding, same contract, `interfaces.py`). A word is
represented by the encoder's state at its FIRST piece (`first_pieces`), and
a dense layer gives that vector one logit per tag, [B, T, K] with T the
batch's target width (one position per word; research/data/tags.py).

Why the first piece: it is the usual choice for sub-word taggers (BERT's
NER recipe, Devlin et al. 2019) and costs one scatter, no parameter; the
bidirectional RNN, the convolution's centred windows and self-attention
all let the first piece's state see the rest of its word. A forward-only
RNN (encoder.bidirectional=false) has not yet read the word's later pieces
there (its last piece would see them), which such runs should keep in mind.

The predicate indicator (semantic role labelling): when the tag vocabulary
says its sentences carry a predicate, a second embedding of the 0/1 flag
`source_predicate` (1 at every piece of the predicate word) is added to the
piece embeddings before the encoder, so every encoder knows which
predicate's arguments to tag. Without predicates there is no such parameter.

What the logits mean (a softmax over tags per word) is the task's:
research/tasks/tagging.py. There is no decoder: the run config's `decoder`
group is not built and not recorded.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any

import jax.numpy as jnp
from flax import linen as nn

from research.models import flops
from research.models.encoders import ENCODERS
from research.models.seq2seq import ModelConfig


@dataclasses.dataclass(frozen=True)
class TaggerArchitecture:
    """Everything needed to rebuild a tagger: encoder name and config, widths, tag count, the indicator."""

    encoder: str
    encoder_config: Any
    model: ModelConfig
    source_vocab: int
    tags: int
    predicate: bool  # the predicate indicator embedding (SRL data)
    dtype: str = "float32"  # compute dtype (trainer.precision); parameters stay float32

    def meta(self) -> dict:
        """As JSON types, what a checkpoint records and is checked against on load: of `model`, only
        d_model (the tagger uses no other key of it, so the seq2seq-only keys can change freely)."""
        meta = json.loads(json.dumps(dataclasses.asdict(self)))
        meta["model"] = {"d_model": meta["model"]["d_model"]}
        return {"kind": "tagger", **meta}


def architecture(cfg: Any, source_vocab: int, tags: int, predicate: bool) -> TaggerArchitecture:
    """The TaggerArchitecture a run config (`research.config.RunConfig`) builds; the one builder."""
    return TaggerArchitecture(
        encoder=cfg.encoder, encoder_config=cfg.encoder_config, model=cfg.model, source_vocab=source_vocab,
        tags=tags, predicate=predicate, dtype="bfloat16" if cfg.trainer.precision == "bf16" else "float32",
    )


def first_pieces(memory, source_words, words: int):
    """Each word's vector: the memory at its first piece.

    Args:
      memory: [B, S, D] the encoder's output.
      source_words: [B, S] int, j + 1 at the first piece of word j, 0 at every other position.
      words: T, the number of word positions (the batch's target width).
    Returns:
      (pooled [B, T, D], present [B, T] float32): pooled[b, j] = memory[b, p] for the p with
      source_words[b, p] = j + 1, zeros where word j has no first piece in the row (EOS, pads, a word cut
      off with its source); present is 1.0 where it has one. Word numbers past T are dropped.
    """
    b, _, d = memory.shape
    index = _word_index(source_words, words)
    pooled = jnp.zeros((b, words, d), memory.dtype).at[jnp.arange(b)[:, None], index].set(memory, mode="drop")
    return pooled, words_present(source_words, words)


def _word_index(source_words, words: int):
    """[B, S] the word position each first piece scatters to; T (out of range, so dropped) elsewhere."""
    return jnp.where(source_words > 0, source_words - 1, words)


def words_present(source_words, words: int):
    """[B, T] float32: 1.0 where word j has its first piece in the row (see `first_pieces`)."""
    b = source_words.shape[0]
    index = _word_index(source_words, words)
    return jnp.zeros((b, words), jnp.float32).at[jnp.arange(b)[:, None], index].set(1.0, mode="drop")


class Tagger(nn.Module):
    arch: TaggerArchitecture

    def setup(self):
        a = self.arch
        dtype = jnp.dtype(a.dtype)
        d = a.model.d_model
        # As Seq2Seq's embeddings (N(0, 1/d)); the encoders add positions themselves.
        init = nn.initializers.normal(d ** -0.5)
        self.source_embed = nn.Embed(a.source_vocab, d, embedding_init=init, dtype=dtype, name="source_embed")
        if a.predicate:
            self.predicate_embed = nn.Embed(2, d, embedding_init=init, dtype=dtype, name="predicate_embed")
        self.encoder = ENCODERS.get(a.encoder).component(config=a.encoder_config, dtype=dtype, name="encoder")
        self.classifier = nn.Dense(a.tags, dtype=dtype, name="classifier")

    def __call__(self, batch, deterministic=True):
        """batch (research/data/batch.py with `source_words`, and `source_predicate` for SRL; of the target keys
        only target_out's width is read) -> logits [B, T, K] float32, one row per word position."""
        x = self.source_embed(batch["source"])  # [B, S, D]
        if self.arch.predicate:
            x = x + self.predicate_embed(batch["source_predicate"])
        enc = self.encoder(x, batch["source_segments"], batch["source_positions"], deterministic=deterministic)
        pooled, _ = first_pieces(enc.memory, batch["source_words"], batch["target_out"].shape[1])  # [B, T, D_mem]
        return self.classifier(pooled).astype(jnp.float32)

    def init(self, rngs, batch, *args, **kwargs):
        """Flax's init, with zeros for the word keys a batch spec may lack: the training loop initialises
        every task's parameters from the standard batch keys' shapes (research/training/loop.py), and a
        tagger's parameters do not depend on the values of its extra keys."""
        extra = ("source_words", "source_predicate") if self.arch.predicate else ("source_words",)
        shape = batch["source"].shape
        batch = {**{k: jnp.zeros(shape, jnp.int32) for k in extra}, **batch}
        return super().init(rngs, batch, *args, **kwargs)


def train_flops(arch: TaggerArchitecture, batch: int, source_len: int, target_len: int) -> int:
    """FLOPs of one train step (research/models/flops.py's convention): the encoder's matmuls and the
    classifier layer over the word positions; the first-piece scatter has no multiply-add."""
    d = arch.model.d_model
    encoder = flops._entry(flops.ENCODER_FLOPS, "encoder", arch.encoder)(arch.encoder_config, d, batch, source_len)
    width = flops.MEMORY_WIDTH[arch.encoder](arch.encoder_config, d)
    return flops.TRAIN_MULTIPLIER * (encoder + flops.dense(batch * target_len, width, arch.tags))
