"""Checkpoints are data: verified on load, corrupt ones skipped, foreign ones refused, no pickle."""
from __future__ import annotations

import logging
import pickle
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from research.training import checkpoint
from research.training.checkpoint import CheckpointError, Checkpoints, IncompatibleCheckpoint
from research.training.state import TrainState

ARCH = {"encoder": "rnn", "model": {"d_model": 64}, "target_vocab": 800}


def _state(v: float) -> TrainState:
    w = np.random.default_rng(int(v)).normal(size=(64, 64)).astype(np.float32)  # incompressible, like real weights
    return TrainState(step=jnp.asarray(int(v), jnp.int32), params={"w": jnp.asarray(w), "b": jnp.arange(8.0) + v},
                      opt_state={"mu": jnp.asarray(-w)})


def _save(run: Path, steps=(1, 2, 3)) -> None:
    ckpt = Checkpoints(run, keep=10, best_metric="bleu")
    for s in steps:
        ckpt.save(s, _state(s), {"step": s, "architecture": ARCH, "tokenizer": "abc"}, {"bleu": float(s)})
    ckpt.close()


def _files(run: Path, step: int) -> list[Path]:
    """The array data files of a step (orbax's OCDBT store), not its JSON metadata."""
    return sorted(p for p in (run / "checkpoints" / "last" / str(step) / "state").glob("ocdbt.process_*/d/*") if p.is_file())


def _restored_step(run: Path, caplog) -> int:
    with caplog.at_level(logging.WARNING, logger="research.training.checkpoint"):
        state, meta = checkpoint.latest(run, _state(0), {"architecture": ARCH, "tokenizer": "abc"})
    assert float(state.params["b"][0]) == meta["step"]  # the arrays of that very step
    return meta["step"]


def test_intact_checkpoints_restore_the_newest(tmp_path, caplog):
    _save(tmp_path)
    assert _restored_step(tmp_path, caplog) == 3
    assert "skipping" not in caplog.text


@pytest.mark.parametrize("damage", ["flip", "truncate", "meta"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous(tmp_path, caplog, damage):
    _save(tmp_path)
    if damage == "meta":
        (tmp_path / "checkpoints" / "last" / "3" / "meta" / "metadata").write_text('{"step": 3, "archit')
    else:
        for f in _files(tmp_path, 3):
            data = bytearray(f.read_bytes())
            if damage == "truncate":
                data = data[: len(data) // 2]
            else:  # one flipped bit in every byte past the headers: what a bad disk or copy does
                data[len(data) // 2:] = bytes(b ^ 0x10 for b in data[len(data) // 2:])
            f.write_bytes(bytes(data))
    assert _restored_step(tmp_path, caplog) == 2
    assert "skipping checkpoint" in caplog.text and str(tmp_path / "checkpoints" / "last" / "3") in caplog.text
    assert "resuming from step 2, the newest intact checkpoint" in caplog.text


def test_a_digest_mismatch_is_caught_even_when_the_files_read(tmp_path, caplog):
    _save(tmp_path)
    meta = tmp_path / "checkpoints" / "last" / "3" / "meta" / "metadata"
    meta.write_text(meta.read_text().replace('"opt_state": "', '"opt_state": "0'))  # arrays no longer match their digest
    assert _restored_step(tmp_path, caplog) == 2
    assert "digest mismatch" in caplog.text


def test_no_intact_checkpoint_is_an_error_not_a_fresh_start(tmp_path):
    _save(tmp_path, steps=(1,))
    for f in _files(tmp_path, 1):
        f.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"none of the checkpoints \[1\] is intact"):
        checkpoint.latest(tmp_path, _state(0))


def test_a_checkpoint_of_another_model_is_refused_before_reading_arrays(tmp_path, monkeypatch):
    _save(tmp_path)
    monkeypatch.setattr(checkpoint, "restore", lambda *a, **k: pytest.fail("arrays read before the check"))
    other = {"architecture": {**ARCH, "model": {"d_model": 128}}, "tokenizer": "abd"}
    with pytest.raises(IncompatibleCheckpoint) as err:
        checkpoint.latest(tmp_path, _state(0), other)
    assert "architecture.model.d_model: checkpoint 64, config 128" in str(err.value)
    assert "tokenizer: checkpoint 'abc', config 'abd'" in str(err.value)


def test_loading_unpickles_nothing(tmp_path, monkeypatch, caplog):
    _save(tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("a checkpoint load unpickled something")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    plain_load = np.load
    monkeypatch.setattr(np, "load", lambda *a, allow_pickle=False, **k: refuse() if allow_pickle else plain_load(*a, **k))
    assert _restored_step(tmp_path, caplog) == 3
    assert "skipping" not in caplog.text
