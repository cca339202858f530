"""Pretrained vectors onto the tokenizer's pieces, by value; frozen embeddings stay bit-identical while all else trains."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.config import REPO
from research.models.seq2seq import EmbeddingsConfig, ModelConfig
from research.registry import ConfigError
from research.training import pretrained
from research.training import state as train_state
from research.vectors import files
from tests.conftest import tiny_overrides
from tests.helpers.steps import OVERRIDES, setup

PIECES = ["<pad>", "<unk>", "<s>", "</s>", "▁the", "▁cat", "s", "▁dog", "the"]


def vectors(units, rows) -> files.Vectors:
    return files.Vectors(list(units), np.asarray(rows, np.float32), "glove", "v.txt")


def test_pieces_take_the_exact_unit_first_then_the_unit_without_the_marker():
    v = vectors(["the", "cat", "s", "<s>", "▁the"], [[1, 1], [2, 2], [3, 3], [9, 9], [5, 5]])
    ids, rows, coverage = pretrained.match(v, PIECES)
    # ▁the: exact (5); ▁cat: "cat" (2); s: exact (3); ▁dog: none; the: exact (1); <s> is special: never
    assert ids.tolist() == [4, 5, 6, 8]
    np.testing.assert_array_equal(rows, [[5, 5], [2, 2], [3, 3], [1, 1]])
    assert coverage == {"pieces": 5, "found": 4, "found_exact": 3, "found_without_marker": 1, "not_found": 1}


def test_apply_writes_the_found_rows_and_keeps_the_rest():
    params = {"target_embed": {"embedding": jnp.arange(12, dtype=jnp.float32).reshape(6, 2)}, "decoder": {"w": jnp.ones(3)}}
    rows = [pretrained.Rows("target_embed", np.array([1, 4]), np.array([[-1, -2], [-3, -4]], np.float32), {})]
    out = pretrained.apply(params, rows)
    np.testing.assert_array_equal(out["target_embed"]["embedding"], [[0, 1], [-1, -2], [4, 5], [6, 7], [-3, -4], [10, 11]])
    assert out["decoder"] is params["decoder"]


def test_parameter_names_follow_sharing_and_side():
    base = ModelConfig()
    side = lambda cfg, s: dataclasses.replace(cfg, embeddings=dataclasses.replace(cfg.embeddings, side=s))
    assert pretrained.parameter_names(base) == {"both": "target_embed"}
    separate = dataclasses.replace(base, share_embeddings=False)
    assert pretrained.parameter_names(separate) == {"source": "source_embed", "target": "target_embed"}
    assert pretrained.parameter_names(side(separate, "source")) == {"source": "source_embed"}
    assert pretrained.frozen(separate) == ()


def test_vectors_of_another_width_are_refused(tmp_path):
    files.write(tmp_path / "v.txt", ["the"], np.ones((1, 3)))
    cfg = ModelConfig(d_model=4, embeddings=EmbeddingsConfig(pretrained=str(tmp_path / "v.txt")))
    with pytest.raises(ConfigError, match=r"model.embeddings.pretrained: .*width 3.*model.d_model=4.*research.glove dim=4"):
        pretrained.prepare(cfg, None)  # refused before the tokenizer is looked at


@pytest.mark.slow  # `make test-slow`: 2026-12-03 durations, 30-380 s each
def test_a_frozen_embedding_is_bit_identical_after_20_steps_while_everything_else_moves():
    s, batch = setup(("transformer", "rnn"), overrides=[*OVERRIDES, "model.embeddings.freeze=true"])
    assert pretrained.frozen(s.run.model) == ("target_embed",)
    start = train_state.create(s.model, s.tx, batch, jax.random.PRNGKey(0))
    state, step = start, jax.jit(s.step_fn())
    for i in range(20):
        state, _ = step(state, batch, jax.random.PRNGKey(i))
    before, after = jax.tree_util.tree_flatten_with_path(start.params)[0], jax.tree.leaves(state.params)
    for (path, a), b in zip(before, after):
        name = jax.tree_util.keystr(path)
        if name.startswith("['target_embed']"):
            assert np.array_equal(np.asarray(a), np.asarray(b)), name
        elif np.array_equal(np.asarray(a), np.asarray(b)):
            # the one exception: an attention key bias, whose exact gradient is zero (softmax ignores a constant)
            assert name.endswith("['key']['bias']"), f"{name} did not train"


@pytest.mark.slow  # 40 s on 2 cores: tokenizer, vectors file and a 6-step run
def test_a_training_run_loads_the_vectors_by_value_and_records_their_coverage(tmp_path):
    """The real loop: word vectors for the sample's frequent words land on the pieces that are those words."""
    from collections import Counter

    from research import run_dir
    from research.data import corpus
    from tests.helpers.models import sample_splits
    from tests.conftest import tiny_run_config

    cfg = tiny_run_config("rnn", "rnn", tmp_path)
    words = Counter(w for s, t in corpus.pairs(sample_splits(cfg)["train"]) for w in (s + " " + t).split())
    units = [w for w, _ in words.most_common(300)]
    table = np.random.default_rng(0).normal(size=(len(units), 64)).astype(np.float32)
    files.write(tmp_path / "vectors.txt", units, table)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "research.train", *tiny_overrides("rnn", "rnn"), f"tokenizer.cache_dir={tmp_path}/spm",
           f"model.embeddings.pretrained={tmp_path}/vectors.txt", "model.embeddings.freeze=true", "trainer.max_steps=6",
           "trainer.eval_every=6", "trainer.eval_examples=2", "data.max_train_examples=300", "data.max_shapes=1",
           f"hydra.run.dir={run}"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    loaded = run_dir.load(run, checkpoint="last")
    embedding = np.asarray(loaded.params["target_embed"]["embedding"])
    pieces = [loaded.tokenizer.target.id_to_piece(i) for i in range(loaded.tokenizer.target_vocab)]
    index = {u: i for i, u in enumerate(units)}
    found = 0
    for i, piece in enumerate(pieces[4:], 4):
        unit = piece if piece in index else piece[1:] if piece.startswith("▁") and piece[1:] in index else None
        if unit is not None:
            found += 1
            np.testing.assert_allclose(embedding[i], table[index[unit]], rtol=1e-5)  # frozen: still the vector
    coverage = json.loads((run / "manifest.json").read_text())["pretrained"]
    assert coverage["freeze"] is True
    entry = coverage["embeddings"]["target_embed"]
    assert entry["found"] == found > 50 and entry["pieces"] == len(pieces) - 4
    assert entry["found"] + entry["not_found"] == entry["pieces"]
