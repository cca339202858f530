"""The contracts that let any encoder work with any decoder.

Encoder contract
  `encoder(embedded [B, S, E], segments [B, S] int, positions [B, S] int,
  deterministic) -> EncoderOutput`.
  `segments` is 0 at pads and k >= 1 for tokens of the k-th packed example of
  a row (1 for every real token when nothing is packed); `positions` restart
  at 0 at each segment start.

Decoder contract
  `decoder(enc, embedded_targets [B, T, E], segments, positions,
  deterministic) -> features [B, T, d_model]`; the Seq2Seq wrapper turns the
  features into logits (optionally through the tied embedding).
  Built with `return_attention=True` (model.pointer_generator) a decoder returns
  (features, attention [B, T, S]) instead, the distribution over source
  positions a copy is made from, and its `step` ((features, attention [B, S]),
  cache).
  For incremental decoding every decoder also provides
  `init_cache(enc, max_len) -> cache` and
  `step(enc, cache, embedded_token [B, E]) -> (features [B, d_model], cache)`.
  Every leaf of `enc` and of `cache` has the batch as its leading axis, so a
  search can tile them for beams and reorder them with one gather; leaves
  wrapped in `Stationary` are tiled along their beam axis, or not at all when
  every beam of a row reads the same, and never reordered (see there).

Decoders without a memory
  Every decoder also builds with `memory=False` (a module attribute, default
  True), the decoder-only language model's (research/models/language_model.py):
  then it has no parameter that reads a memory (no cross-attention, no bridge
  from an encoder state, no attention over a source; they are absent from the
  parameter tree, not fed zeros), it is called with `enc=None`, and
  `init_cache(None, max_len, batch=B)` takes the batch size the memory would
  have given. Packed segments restart the decoder's state, as in a packed
  target: attention and convolution windows stop at segment boundaries and a
  recurrent state restarts from zeros at each segment's first token.
  With the default `memory=True` a decoder computes exactly what it did
  before the attribute existed, with the same parameter tree.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
from flax import struct


@struct.dataclass
class EncoderOutput:
    """What every encoder hands to every decoder.

    Attributes:
      memory: [B, S, D_mem] one vector per source position (D_mem may differ
        from d_model, e.g. 2*hidden for a bidirectional RNN).
      segments: [B, S] int32, 0 at pads; the padding mask is `segments > 0`.
      final_state: [B, D_final] a summary of each source sequence: the RNN's
        state at the last real token, or the masked mean of the memory for
        encoders without a recurrent state. Decoders bridge it to their
        own initial state.
      tokens: [B, S] the source token ids, kept only by a model with copy
        attention (research/models/layers/pointer_generator.py scatters onto them); None
        otherwise. Encoders leave it None; the Seq2Seq model fills it in.
    """

    memory: jax.Array
    segments: jax.Array
    final_state: jax.Array
    tokens: Optional[jax.Array] = None

    @property
    def mask(self) -> jax.Array:
        """[B, S] bool, True at real tokens."""
        return self.segments > 0


class WithAuxiliary(NamedTuple):
    """A model's training output that carries a loss of its own per target position, already weighted: the
    Seq2Seq model's lambda_coverage x coverage loss (research/models/layers/coverage.py).
    research/training/losses.py's `token_sums` adds it at the real tokens; only the training forward pass
    returns it, so evaluation scores the token loss alone."""

    logits: jax.Array  # [B, T, V]
    per_token: jax.Array  # [B, T] float32


@struct.dataclass
class Stationary:
    """Cache leaves that hold every beam of a source row side by side and are never reordered.

    Beam search moves every hypothesis to its parent's row after each step. For a
    key/value buffer over the whole output that gather copies the buffer at every
    step, the most memory traffic a decoding step makes. A `Stationary` leaf
    instead has one row per source row and its beams along `beam_axis`, an axis
    of size 1 until a search tiles it (`beam.tile_beams` repeats that axis, not
    the rows). Each beam writes its own slot in place, and the decoder keeps
    beside the buffers, reordered like any other leaf, a small table of which
    slot holds each position of a hypothesis's history (the transformer's
    `history` [N, L] int32). The decoder must never write a position twice in
    one slot: a child hypothesis still reads its parent's positions there.

    `beam_axis=None` marks a leaf that every beam of a source row reads alike and
    no step writes, such as the transformer's cross-attention keys and values of
    the memory: it keeps one row per source row and is neither tiled nor
    reordered, so a search step reads it once per row instead of once per beam.
    """

    value: Any
    beam_axis: int | None = struct.field(pytree_node=False, default=1)


def is_stationary(node: Any) -> bool:
    """For `jax.tree.map(..., is_leaf=is_stationary)`: stop at a `Stationary` so it can be treated whole."""
    return isinstance(node, Stationary)
