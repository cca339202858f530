"""Copy attention, the pointer-generator of See et al. (2017) in its shared-vocabulary form.

At each target position the model mixes two distributions over the one
joint vocabulary:

    P(w) = p_gen * P_vocab(w) + (1 - p_gen) * sum_{i: source_i = w} a_i

P_vocab is the softmax of the output layer, a the decoder's attention over
the source (research/models/interfaces.py: decoders built with
`return_attention=True` return it), and p_gen = sigmoid(w . [h; c; y] + b) a
gate from the decoder's features h, the attention context c = sum_i a_i
m_i over the encoder memory and the embedded input token y. A word of the
source can then be produced by pointing at it, even one the output layer
has never learnt to give (a package name seen once).

The mix is computed in log space, log P = logaddexp(log p_gen + log_softmax,
log(1 - p_gen) + log copy), with both gate terms from log_sigmoid, so:
  * the result is a normalised log-distribution that the token loss, label
    smoothing, greedy and beam search take as they take logits (their
    log_softmax of it changes it by rounding only);
  * with p_gen = 1 it is the no-copy log_softmax exactly (logaddexp(x, -inf)
    is x), the test of the issue;
  * a word no source position holds has copy probability 0, whose log is
    -inf without a NaN gradient (the log is taken where the mass is
    positive only).
Why the shared-vocabulary form, not See et al.'s extended vocabulary of
per-document out-of-vocabulary words: SentencePiece leaves no word out of
the vocabulary, it splits it into pieces, and the pieces are copied one by
one; fairseq's pointer-generator makes the same choice.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def scatter(attention, source_ids, vocab: int):
    """attention [B, ..., S] onto the vocabulary: [B, ..., V], the mass of every source position added at its
    token id (repeated tokens add up; pads carry no attention, so they add 0)."""
    def one(a, ids):
        return jnp.zeros(a.shape[:-1] + (vocab,), jnp.float32).at[..., ids].add(a.astype(jnp.float32))

    return jax.vmap(one)(attention, source_ids)


def mix(logits, attention, source_ids, gate_logit):
    """The pointer-generator's log-distribution.

    Args:
      logits: [B, ..., V] of the output layer.
      attention: [B, ..., S] the decoder's attention over the source, each row summing to 1 (or 0 for a query
        that sees no source: then all the mass is the vocabulary's once renormalised by the caller's softmax).
      source_ids: [B, S] the source tokens, ids of the same joint vocabulary.
      gate_logit: [B, ...] the pre-sigmoid p_gen.
    Returns:
      [B, ..., V] float32 log P (see the module docstring).
    """
    logits = logits.astype(jnp.float32)
    copy = scatter(attention, source_ids, logits.shape[-1])
    positive = copy > 0
    log_copy = jnp.where(positive, jnp.log(jnp.where(positive, copy, 1.0)), -jnp.inf)
    z = gate_logit.astype(jnp.float32)[..., None]
    return jnp.logaddexp(jax.nn.log_sigmoid(z) + jax.nn.log_softmax(logits, -1), jax.nn.log_sigmoid(-z) + log_copy)


def context(attention, memory):
    """sum_i a_i m_i: [B, ..., S] x [B, S, D] -> [B, ..., D]."""
    return jnp.einsum("b...s,bsd->b...d", attention.astype(memory.dtype), memory)
