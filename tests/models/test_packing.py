"""Packed rows: attention never crosses a segment, states and positions restart,
so every example's loss is the same packed or alone."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from research.data.batch import fill_rows
from research.models.seq2seq import check_packing
from research.registry import ConfigError
from research.training.losses import cross_entropy
from tests.helpers.marks import slow_after
from tests.helpers.models import build, encode_batch, init, real_pairs

PACKABLE = [(e, d) for e in ("rnn", "cnn", "transformer") for d in ("cnn", "transformer")]


def _per_example_loss(model, params, batch, examples: list[tuple[int, int]]) -> list[float]:
    """Summed token loss of each (row, segment)."""
    logits = model.apply({"params": params}, {k: jnp.asarray(v) for k, v in batch.items()})
    weights = (batch["target_segments"] > 0).astype(np.float32)
    loss, _ = cross_entropy(logits, jnp.asarray(batch["target_out"]), weights)
    loss = np.asarray(loss)
    return [float(loss[r][batch["target_segments"][r] == s].sum()) for r, s in examples]


# With copy attention too: a packed example copies from its own source only. `make test` runs rnn-cnn,
# the other 7 run with `make test-slow` (the 8 took 3 minutes on 2026-12-02).
CASES = ([pytest.param("rnn", "cnn", (), id="rnn-cnn"),
          pytest.param("cnn", "transformer", ("model.pointer_generator=true",), id="cnn-transformer-copy")]
         + [pytest.param(e, d, (), id=f"{e}-{d}") for e, d in PACKABLE if (e, d) != ("rnn", "cnn")]
         + [pytest.param("rnn", "cnn", ("model.pointer_generator=true",), id="rnn-cnn-copy")])


@pytest.mark.parametrize("encoder,decoder,extra", slow_after(1, CASES))
def test_packed_batch_gives_each_example_its_unpacked_loss(encoder, decoder, extra, tmp_path):
    _, tok, model = build(encoder, decoder, tmp_path, *extra)
    pairs = real_pairs(6, max_words=5)
    ids = [(tok.encode_source(s), tok.encode_target(t)) for s, t in pairs]
    packed = fill_rows([ids[:3], ids[3:]], 2, 96, 96)
    assert packed["source_segments"].max() == 3 and packed["target_positions"][0, 0] == 0
    unpacked = encode_batch(tok, pairs, 48, 40)
    params = init(model, unpacked)
    alone = _per_example_loss(model, params, {k: np.asarray(v) for k, v in unpacked.items()}, [(i, 1) for i in range(6)])
    together = _per_example_loss(model, params, packed, [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3)])
    np.testing.assert_allclose(together, alone, rtol=1e-4)


def test_packing_is_refused_for_the_rnn_decoder(tmp_path):
    _, _, model = build("transformer", "rnn", tmp_path)
    with pytest.raises(ConfigError, match=r"data\.pack: packing is not supported by decoder=rnn"):
        check_packing(model.arch)
