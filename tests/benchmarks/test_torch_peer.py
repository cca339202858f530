"""The PyTorch peers run and learn at a tiny shape (behaviour, not timing)."""
import math

import pytest

torch = pytest.importorskip("torch")

from research.benchmarks.shape import Shape  # noqa: E402
from research.benchmarks import train  # noqa: E402
from research.benchmarks.torch_peer import PEERS, make_train_step  # noqa: E402

TINY = Shape(batch=4, src_len=6, tgt_len=5, d_model=32, d_ff=64, heads=2, layers=2, vocab=50, hidden=32, dropout=0.0)


@pytest.mark.parametrize("kind", sorted(PEERS))
def test_loss_decreases_on_a_fixed_batch(kind):
    step, info = make_train_step(kind, TINY, device="cpu", lr=3e-3)  # high: 20 steps must show progress
    assert info["tokens"] == TINY.batch * TINY.tgt_len and info["params"] > 0
    losses = [step() for _ in range(20)]
    assert math.isfinite(losses[0]) and abs(losses[0] - math.log(TINY.vocab)) < 1.0  # starts near uniform
    assert losses[-1] < losses[0] - 0.5


def test_pair_and_peer_are_timed_together():
    row = train.time_pair("transformer-transformer", TINY, repeats=2, warmup=1, peer="transformer")
    peer = row["torch"]
    assert peer["n"] == 2 and peer["tokens_per_s"] == pytest.approx(peer["tokens"] / peer["median_s"])
    assert peer["compiled"] is False and peer["tokens"] == TINY.batch * TINY.tgt_len
    assert row["tokens_per_s"] > 0
