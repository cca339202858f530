"""A PyTorch incremental-decoding peer of our transformer+transformer model, with OUR weights.

The decode benchmark compares our jitted searches with other engines on one
model; for the ratio to mean anything the PyTorch side must be a correct and
reasonably fast decoder, not a strawman. So it is written as a PyTorch user
would serve this model: `torch.nn` Linear / LayerNorm / Embedding loaded from
our Flax parameters, fused projections, `scaled_dot_product_attention`, a
self-attention key/value cache that grows by one position per step, and the
memory's cross-attention keys/values computed once per source (beams of one
row share them, so a reorder never moves them): the model is in
`torch_transformer.py`, the searches here. Eager mode, no `torch.compile`, as
`torch_peer.py`; torch is imported inside functions only, so this module
imports without it.

Searches follow `research/decoding/greedy.py` and `beam.py` step for step:
greedy takes the argmax (ties to the lowest id), rows that ended feed PAD,
lengths count the EOS; beam search starts with beam 0 alone, takes 2K
candidates by top-k over K x V, finalises an EOS (or a candidate at the
length limit) only among the top K, scores with the GNMT penalty
((5 + length) / 6) ** alpha, keeps the n-best finished by top-k and stops a
row at the exact bound of `beam._best_achievable`. Where it differs: a
Python loop over steps (leaving when every row is done, as ours); `torch.topk`
does not promise which of two EQUAL scores comes first, `jax.lax.top_k`
takes the lower index (no exact tie between finite scores occurred in the
tests); no output constraints (decode.min_len and the like: all off in the
benchmark); masks are -inf inside `scaled_dot_product_attention` where ours
add -1e9, the same weights once a row sees at least one key.
"""
from __future__ import annotations

import math

import numpy as np

from research.benchmarks.torch_transformer import Peer, build, encode, reorder, start, step
from research.data.batch import BOS, EOS, PAD


def limits(peer: Peer, source, max_len_a: float, max_len_b: float):
    """(max_steps, max_len [B]) as `research.decoding.generate.encode`: ceil(a * S + b) for the padded
    length S and for each row's own (EOS counted), both capped by a learned position table."""
    import torch

    steps = max(1, math.ceil(max_len_a * source.shape[1] + max_len_b))
    lengths = (source != PAD).sum(1).to(torch.float32)
    max_len = torch.ceil(torch.tensor(max_len_a, dtype=torch.float32) * lengths + max_len_b).to(torch.long)
    if peer.target_rows is not None:
        steps, max_len = min(steps, peer.target_rows), max_len.clamp(max=peer.target_rows)
    return steps, max_len


def _caps(torch, source, max_len, max_steps):
    b = source.shape[0]
    max_len = torch.as_tensor(max_len, dtype=torch.long, device=source.device).expand(b)
    steps = int(max_len.max()) if max_steps is None else max_steps
    return max_len, steps


def greedy(peer: Peer, source, max_len, max_steps: int | None = None, bos: int = BOS, eos: int = EOS):
    """As `research.decoding.greedy.greedy`, end to end from the source ids.

    Args:
      source: [B, S] long ids, each row ending in EOS, PAD after.
      max_len: int or [B] cap on generated tokens, EOS included.
      max_steps: output buffer length; default max(max_len).
    Returns:
      tokens [B, max_steps] (EOS included, PAD after), lengths [B], scores [B] (summed log-probs).
    """
    import torch

    max_len, steps = _caps(torch, source, max_len, max_steps)
    b = source.shape[0]
    with torch.inference_mode():
        cache = start(peer, *encode(peer, source))
        prev = torch.full((b,), bos, dtype=torch.long, device=source.device)
        tokens = torch.full((b, steps), PAD, dtype=torch.long, device=source.device)
        lengths = torch.zeros(b, dtype=torch.long, device=source.device)
        scores = torch.zeros(b, device=source.device)
        done = max_len <= 0
        for i in range(steps):
            if bool(done.all()):
                break
            log_probs = torch.log_softmax(step(peer, cache, prev).float(), -1)
            token = torch.where(done, PAD, log_probs.argmax(-1))
            scores += torch.where(done, 0.0, log_probs.gather(1, token[:, None])[:, 0])
            lengths += (~done).long()
            tokens[:, i] = token
            done = done | (token == eos) | (lengths >= max_len)
            prev = token
    return tokens, lengths, scores


def length_penalty(torch, length, alpha: float):
    """GNMT ((5 + length) / 6) ** alpha in float32, as `beam.length_penalty`."""
    return ((5.0 + torch.as_tensor(length, dtype=torch.float32)) / 6.0) ** alpha


def beam_search(peer: Peer, source, beam_size: int, max_len, max_steps: int | None = None, alpha: float = 0.6,
                n_best: int = 1, bos: int = BOS, eos: int = EOS):
    """As `research.decoding.beam.beam_search` (see the module docstring), end to end from the source ids.

    Returns:
      tokens [B, n_best, max_steps], lengths [B, n_best], scores [B, n_best] (length-normalised, best
      first), log_probs [B, n_best]; empty slots have score -inf and length 0.
    """
    import torch

    if beam_size < 1 or n_best < 1:
        raise ValueError(f"beam_size and n_best must be >= 1, got {beam_size} and {n_best}")
    max_len, t = _caps(torch, source, max_len, max_steps)
    b, k, dev = source.shape[0], beam_size, source.device
    row_max = max_len.clamp(max=t)
    neg_inf = float("-inf")
    with torch.inference_mode():
        cache = start(peer, *encode(peer, source), beam_size=k)
        live_last = torch.full((b, k), bos, dtype=torch.long, device=dev)
        live_tokens = torch.full((b, k, t), PAD, dtype=torch.long, device=dev)
        live_lp = torch.full((b, k), neg_inf, device=dev)
        live_lp[:, 0] = 0.0  # one live beam at first, so the K copies give no duplicates
        fin_tokens = torch.full((b, n_best, t), PAD, dtype=torch.long, device=dev)
        fin_lengths = torch.zeros((b, n_best), dtype=torch.long, device=dev)
        fin_scores = torch.full((b, n_best), neg_inf, device=dev)
        fin_lp = torch.full((b, n_best), neg_inf, device=dev)
        done = row_max <= 0
        offsets = torch.arange(b, device=dev)[:, None] * k
        for i in range(t):
            if bool(done.all()):
                break
            length = i + 1
            log_probs = torch.log_softmax(step(peer, cache, live_last.reshape(-1)).float(), -1)
            v = log_probs.shape[-1]
            flat = (live_lp[:, :, None] + log_probs.view(b, k, v)).view(b, k * v)
            cand_lp, cand_idx = flat.topk(min(2 * k, k * v), dim=1)  # [B, C], best first
            parent, token = cand_idx // v, cand_idx % v
            cand_tokens = live_tokens.gather(1, parent[:, :, None].expand(-1, -1, t)).clone()
            cand_tokens[:, :, i] = token
            at_limit = length >= row_max
            ends = (token == eos) | at_limit[:, None]

            rank = torch.arange(cand_lp.shape[1], device=dev)
            finalise = ends & (rank < k)[None, :] & ~done[:, None]
            new_scores = torch.where(finalise, cand_lp / length_penalty(torch, length, alpha), neg_inf)
            fin_scores, keep = torch.cat([fin_scores, new_scores], 1).topk(n_best, dim=1)
            fin_tokens = torch.cat([fin_tokens, cand_tokens], 1).gather(1, keep[:, :, None].expand(-1, -1, t))
            fin_lp = torch.cat([fin_lp, cand_lp], 1).gather(1, keep)
            fin_lengths = torch.cat([fin_lengths, torch.full_like(parent, length)], 1).gather(1, keep)
            fin_lengths = torch.where(torch.isneginf(fin_scores), 0, fin_lengths)

            live_lp, pos = torch.where(ends, neg_inf, cand_lp).topk(k, dim=1)
            reorder(cache, (offsets + parent.gather(1, pos)).reshape(-1))
            live_last = token.gather(1, pos)
            live_tokens = cand_tokens.gather(1, pos[:, :, None].expand(-1, -1, t))

            penalty = torch.maximum(length_penalty(torch, length + 1, alpha), length_penalty(torch, row_max, alpha))
            bound = live_lp.max(1).values / penalty  # the best any live beam can still reach
            done = done | at_limit | (fin_scores[:, -1] >= bound)
    return fin_tokens, fin_lengths, fin_scores, fin_lp


def bench_searches(cfg, params, source: np.ndarray, output_len: int, beam_size: int, eos: int):
    """The decode benchmark's PyTorch searches over one batch of source ids [B, S].

    Returns ({"greedy": fn, "beam": fn}, threads): each fn encodes and decodes the whole batch
    (torch threads = the cores this process may use) and returns every row's output length [B],
    which the caller checks; `eos` may be an id that never occurs, so that every row decodes
    `output_len` tokens.
    """
    import torch

    from research.benchmarks.torch_peer import set_threads

    threads = set_threads(torch)
    peer = build(cfg, params)
    src = torch.as_tensor(np.array(source), dtype=torch.long)  # a copy: JAX buffers are read-only
    searches = {
        "greedy": lambda: greedy(peer, src, output_len, output_len, eos=eos)[1].numpy(),
        "beam": lambda: beam_search(peer, src, beam_size, output_len, output_len, eos=eos)[1][:, 0].numpy(),
    }
    return searches, threads
