"""PyTorch peers of the benchmark models, timed by the same harness.

The only module of the package that touches PyTorch, and only inside
functions: `import research.benchmarks.torch_peer` works without torch, and
`available()` says whether the peers can run. The model classes are defined
inside builder functions for the same reason (a class deriving from
`torch.nn.Module` needs torch when it is defined).

Peers, at `shape.BENCH_SHAPE`:
  transformer  `torch.nn.Transformer` (post-LN, its default), token
               embeddings scaled by sqrt(d_model) plus learned positions, a
               linear output layer to the vocabulary.
  lstm         a bidirectional 3-layer LSTM encoder with hidden 256 PER
               DIRECTION (memory width 512), which is what our `rnn` encoder
               config does, and a tanh bridge from the top layer's final
               forward/backward states to every decoder layer's (h, c), as
               our decoder does; a 3-layer LSTM decoder of hidden 256 run
               over the whole target at once (input feeding off), Luong dot
               attention of the decoder outputs over the memory (the memory
               is first projected 512 -> 256 so that dot products are
               defined, the same rule as our `luong`/`dot` with unequal
               widths), then tanh(W [h; ctx]) and the vocabulary layer.

Each step: forward, label-smoothed (0.1) cross-entropy ignoring pads,
backward, `clip_grad_norm_(1.0)`, AdamW. Eager mode only: `torch.compile` is
not used (not required by the spec, and its compile time on a small shared
CPU would dwarf a short benchmark).
"""
from __future__ import annotations

import math
import os

from research.benchmarks.shape import BENCH_SHAPE, Shape
from research.benchmarks.timing import time_fn

PAD, BOS = 0, 2  # the ids of research.data.batch; random tokens never hit the specials
FIRST_TOKEN = 4
LEARNING_RATE = 5e-4  # irrelevant for timing; a usual AdamW rate at this size


def available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def cores() -> int:
    """CPUs this process may run on (respects affinity masks, unlike os.cpu_count)."""
    return len(os.sched_getaffinity(0))


def set_threads(torch) -> int:
    torch.set_num_threads(cores())
    return torch.get_num_threads()


def default_device(torch) -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def sync(torch, device: str) -> None:
    """Waits for queued kernels; CPU ops are already synchronous."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _transformer(torch, s: Shape):
    nn = torch.nn

    class TransformerPeer(nn.Module):
        def __init__(self):
            super().__init__()
            self.src_embed = nn.Embedding(s.vocab, s.d_model, padding_idx=PAD)
            self.tgt_embed = nn.Embedding(s.vocab, s.d_model, padding_idx=PAD)
            self.positions = nn.Embedding(max(s.src_len, s.tgt_len), s.d_model)
            self.core = nn.Transformer(
                d_model=s.d_model, nhead=s.heads, num_encoder_layers=s.layers, num_decoder_layers=s.layers,
                dim_feedforward=s.d_ff, dropout=s.dropout, batch_first=True)
            self.out = nn.Linear(s.d_model, s.vocab)
            self.drop = nn.Dropout(s.dropout)

        def embed(self, table, ids):
            pos = torch.arange(ids.shape[1], device=ids.device)
            return self.drop(table(ids) * math.sqrt(s.d_model) + self.positions(pos))

        def forward(self, src, tgt_in):
            """src [B, S], tgt_in [B, T] -> logits [B, T, V]."""
            t = tgt_in.shape[1]
            # Boolean like the padding masks (True = blocked): mixing float and bool masks is deprecated.
            causal = torch.ones(t, t, dtype=torch.bool, device=src.device).triu(1)
            src_pad, tgt_pad = src == PAD, tgt_in == PAD
            h = self.core(self.embed(self.src_embed, src), self.embed(self.tgt_embed, tgt_in),
                          tgt_mask=causal, tgt_is_causal=True, src_key_padding_mask=src_pad,
                          tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=src_pad)
            return self.out(h)

    return TransformerPeer()


def _lstm(torch, s: Shape):
    nn = torch.nn
    h, n = s.hidden, s.layers

    class LSTMPeer(nn.Module):
        def __init__(self):
            super().__init__()
            self.src_embed = nn.Embedding(s.vocab, s.d_model, padding_idx=PAD)
            self.tgt_embed = nn.Embedding(s.vocab, s.d_model, padding_idx=PAD)
            self.encoder = nn.LSTM(s.d_model, h, n, batch_first=True, dropout=s.dropout, bidirectional=True)
            self.bridge_h = nn.Linear(2 * h, n * h)  # one Linear per decoder layer, fused
            self.bridge_c = nn.Linear(2 * h, n * h)
            self.decoder = nn.LSTM(s.d_model, h, n, batch_first=True, dropout=s.dropout)
            self.key = nn.Linear(2 * h, h, bias=False)
            self.combine = nn.Linear(h + 2 * h, h, bias=False)
            self.to_model = nn.Linear(h, s.d_model) if h != s.d_model else nn.Identity()
            self.out = nn.Linear(s.d_model, s.vocab)
            self.drop = nn.Dropout(s.dropout)

        def forward(self, src, tgt_in):
            """src [B, S], tgt_in [B, T] -> logits [B, T, V]. No packing: benchmark batches have no pads."""
            b = src.shape[0]
            memory, (h_n, _) = self.encoder(self.drop(self.src_embed(src)))  # [B, S, 2H]; h_n [2L, B, H]
            final = torch.cat([h_n[-2], h_n[-1]], -1)  # top layer, forward and backward: [B, 2H]
            start = lambda bridge: torch.tanh(bridge(final)).view(b, n, h).transpose(0, 1).contiguous()  # [L, B, H]
            out, _ = self.decoder(self.drop(self.tgt_embed(tgt_in)), (start(self.bridge_h), start(self.bridge_c)))
            scores = torch.bmm(out, self.key(memory).transpose(1, 2))  # [B, T, S]
            scores = scores.masked_fill((src == PAD)[:, None, :], float("-inf"))
            context = torch.bmm(torch.softmax(scores, -1), memory)  # [B, T, 2H]
            att = self.drop(torch.tanh(self.combine(torch.cat([out, context], -1))))
            return self.out(self.to_model(att))

    return LSTMPeer()


PEERS = {"transformer": _transformer, "lstm": _lstm}


def random_batch(torch, s: Shape, generator, device: str):
    """(source [B, S], target_in [B, T], target_out [B, T]) of random non-special ids."""
    ids = lambda *shape: torch.randint(FIRST_TOKEN, s.vocab, shape, generator=generator)
    src, tgt = ids(s.batch, s.src_len), ids(s.batch, s.tgt_len)
    tgt_in = torch.cat([torch.full((s.batch, 1), BOS), tgt[:, :-1]], 1)
    return src.to(device), tgt_in.to(device), tgt.to(device)


def make_train_step(kind: str, shape: Shape = BENCH_SHAPE, *, seed: int = 0, device: str | None = None,
                    lr: float = LEARNING_RATE):
    """Builds a peer and a zero-argument blocking train step on one fixed batch.

    Returns:
      (step, info): `step()` runs one full train step and returns the loss as
      a float (the host read also blocks); info = {"params", "tokens",
      "device", "threads"}, tokens being the non-pad target tokens per step.
    """
    import torch

    torch.manual_seed(seed)
    device = device or default_device(torch)
    threads = set_threads(torch)
    model = PEERS[kind](torch, shape).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.01)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=PAD, label_smoothing=0.1)
    src, tgt_in, tgt_out = random_batch(torch, shape, torch.Generator().manual_seed(seed), device)

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        logits = model(src, tgt_in)
        loss = loss_fn(logits.reshape(-1, shape.vocab), tgt_out.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return loss.item()

    info = {
        "params": sum(p.numel() for p in model.parameters()),
        "tokens": int((tgt_out != PAD).sum()),
        "device": device,
        "threads": threads,
    }
    return step, info


def matmul_peak(sizes=None, *, warmup: int = 2, repeats: int = 5, min_time: float = 0.0) -> dict | None:
    """PyTorch's float32 `torch.mm` peak, like `peak.jax_matmul_peak`; None without torch."""
    if not available():
        return None
    import torch

    from research.benchmarks import peak  # here, not at the top: peak imports this module

    set_threads(torch)
    device = default_device(torch)
    gen = torch.Generator().manual_seed(0)
    per_size = {}
    for n in sizes or peak.SIZES:
        a, b = (torch.randn(n, n, generator=gen).to(device) for _ in range(2))

        def run():
            torch.mm(a, b)
            sync(torch, device)

        with torch.no_grad():
            t = time_fn(run, warmup=warmup, repeats=repeats, min_time=min_time)
        per_size[n] = peak.matmul_flops(n) / t["median_s"]
    return peak.best_of(per_size)
