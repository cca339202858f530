"""TensorBoard inspection of a run: scalars, samples and attention images, read back from a real server."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import jax
import numpy as np
import pytest

from research.config import REPO
from research.data import corpus
from research.models.seq2seq import Seq2Seq, architecture
from research.training.attention_images import AttentionImages
from tests.conftest import tiny_overrides, tiny_run_config
from tests.helpers.runs import SHORT


class Images:
    """A MetricsLog's image interface, recording what it is given."""

    def __init__(self, enabled=True):
        self.enabled, self.added = enabled, []

    def image(self, step, tag, image):
        self.added.append((tag, image.shape, image.dtype, step))


@pytest.mark.parametrize("decoder", ["rnn", "cnn", "transformer"])
@pytest.mark.slow  # `make test-slow`: 2026-12-03 durations, 30-380 s each
def test_attention_images_for_every_decoder(tmp_path, decoder):
    cfg = tiny_run_config("transformer", decoder, tmp_path, "model.d_model=16", "data.max_train_examples=100")
    splits = corpus.load(cfg.data, (cfg.data.train_split, cfg.data.valid_split))
    pairs = corpus.pairs(splits["train"])
    tok = corpus.tokenizer(cfg.tokenizer, pairs, corpus.fingerprint(pairs))
    model = Seq2Seq(architecture(cfg, tok.source_vocab, tok.target_vocab))
    images = AttentionImages(model, tok, splits["validation"], cfg.data, n=2)
    params = model.init({"params": jax.random.PRNGKey(0)}, images.batch)["params"]
    layers = images.weights(params)
    src, tgt = images.pieces[0]
    heads = 1 if decoder == "rnn" else (4 if decoder == "transformer" else 1)
    assert len(layers) == 2 and len(layers[0]) == (1 if decoder == "rnn" else 2)
    assert layers[0][0].shape == (heads, len(tgt), len(src))
    np.testing.assert_allclose(layers[0][0].sum(-1), 1.0, rtol=1e-4)  # attention over the real source only
    writer = Images()
    assert images.log(writer, 7, params) == 2
    assert [a[0] for a in writer.added] == ["attention/example_0", "attention/example_1"]
    assert all(len(shape) == 3 and shape[-1] == 3 and dtype == np.uint8 and step == 7 for _, shape, dtype, step in writer.added)
    follower = Images(enabled=False)  # a process that does not write: weights computed, nothing drawn
    assert images.log(follower, 7, params) == 0 and follower.added == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, deadline: float):
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return json.loads(r.read())
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.5)


@pytest.mark.slow  # a real run and a TensorBoard server: about 45 s; `make test-slow`
def test_tensorboard_server_shows_the_run(tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "research.train", *tiny_overrides("cnn", "rnn"), *SHORT,
           f"tokenizer.cache_dir={tmp_path}/spm", f"hydra.run.dir={run}"]
    subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, check=True)
    port = _free_port()
    server = subprocess.Popen([str(Path(sys.executable).parent / "tensorboard"), "--logdir", str(run / "tb"),
                               "--host", "127.0.0.1", "--port", str(port), "--reload_interval", "0"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base, deadline = f"http://127.0.0.1:{port}/data/plugin", time.time() + 60
        scalars = _get(f"{base}/scalars/tags", deadline)
        tags = set().union(*(set(t) for t in scalars.values()))
        assert {"train/loss", "train/learning_rate", "train/grad_norm", "train/tokens_per_s",
                "validation/loss", "validation/perplexity", "validation/bleu", "validation/chrf"} <= tags, tags
        images = set().union(*(set(t) for t in _get(f"{base}/images/tags", deadline).values()))
        assert {"attention/example_0", "attention/example_1"} <= images
        text = set().union(*(set(t) for t in _get(f"{base}/text/tags", deadline).values()))
        assert any(t.startswith("validation/samples") for t in text), text
    finally:
        server.terminate()
        server.wait(timeout=20)
