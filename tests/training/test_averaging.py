"""Checkpoint averaging against NumPy, `python -m research.average`, and the end-of-run test evaluation.

The references are independent of the code under test: NumPy's float64
mean of the arrays as read back by orbax, sacreBLEU on the written
hypotheses, and step folders listed by hand.
"""
from __future__ import annotations

import dataclasses
import gzip
import json
import logging
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from omegaconf import OmegaConf
from sacrebleu.metrics import BLEU

from research import average as average_cli
from research.config import TrainerConfig, resolve
from research.data import corpus
from research.data import tokenizer as tokenizers
from research.data.batch import KEYS
from research.models.seq2seq import Seq2Seq, architecture
from research.registry import ConfigError
from research.run_dir import load, load_config
from research.training import averaging, checkpoint
from research.training.checkpoint import CheckpointError, Checkpoints
from research.training.final_eval import evaluate_test, parameters
from research.training import state as train_state
from research.training.state import TrainState
from tests.conftest import SAMPLE, compose_config, tiny_overrides

ARCH = {"encoder": "rnn", "model": {"d_model": 64}, "target_vocab": 800}
STEPS = (2, 4, 6)  # the checkpoints of the run directory
N_TEST = 16


def _tree(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {"dense": {"kernel": rng.normal(size=(8, 5)).astype(np.float32), "bias": rng.normal(size=5).astype(np.float32)},
            "embed": jnp.asarray(rng.normal(size=(7, 3)), jnp.bfloat16)}


def _numpy_mean(trees: list) -> dict:
    return jax.tree.map(lambda *xs: np.mean(np.stack([np.asarray(x, np.float64) for x in xs]), axis=0)
                        .astype(np.asarray(xs[0]).dtype), *trees)


def _assert_same_bits(a, b) -> None:
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    assert jax.tree.structure(a) == jax.tree.structure(b) and len(leaves_a) == len(leaves_b)
    for x, y in zip(leaves_a, leaves_b):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()


def test_k_identical_trees_average_to_themselves_bit_for_bit():
    tree = _tree(0)
    for k in (1, 3, 7):
        _assert_same_bits(averaging.mean([tree] * k, [f"c{i}" for i in range(k)]), tree)


def test_two_known_trees_average_to_their_numpy_mean():
    a, b = _tree(1), _tree(2)
    got = averaging.mean([a, b], ["a", "b"])
    _assert_same_bits(got, _numpy_mean([a, b]))
    assert not np.array_equal(got["dense"]["kernel"], a["dense"]["kernel"])
    np.testing.assert_allclose(got["dense"]["kernel"], (a["dense"]["kernel"] + b["dense"]["kernel"]) / 2, rtol=1e-6)


def test_trees_of_another_structure_or_shape_are_refused_naming_the_checkpoint():
    a = _tree(1)
    extra = {**_tree(2), "head": np.zeros(3, np.float32)}
    with pytest.raises(CheckpointError, match=r"ckpt/6: its parameters have another structure.*\['head'\]"):
        averaging.mean([a, extra], ["ckpt/4", "ckpt/6"])
    wide = {**_tree(2), "dense": {"kernel": np.zeros((8, 6), np.float32), "bias": np.zeros(5, np.float32)}}
    with pytest.raises(CheckpointError, match=r"ckpt/6: parameter \['dense'\]\['kernel'\] is float32\[8, 6\]"):
        averaging.mean([a, wide], ["ckpt/4", "ckpt/6"])


def test_config_refuses_more_checkpoints_than_the_run_keeps_or_saves():
    with pytest.raises(ConfigError, match=r"average: last:3 needs the last 3 checkpoints, but trainer.keep_checkpoints=2"):
        TrainerConfig(average="last:3", keep_checkpoints=2)
    with pytest.raises(ConfigError, match=r"average: best:4 needs 4 checkpoints, but the run saves 3 with a validation"):
        TrainerConfig(average="best:4", max_steps=30, eval_every=10, checkpoint_every=5)
    with pytest.raises(ConfigError, match=r"average: needs trainer.checkpoint=true"):
        TrainerConfig(average="best:1", checkpoint=False)
    TrainerConfig(average="last:5", keep_checkpoints=5, max_steps=30, eval_every=10, checkpoint_every=5)  # 6 saves


def _state(step: int) -> TrainState:
    params = {"w": np.random.default_rng(step).normal(size=(16, 4)).astype(np.float32)}
    return TrainState(step=jnp.asarray(step, jnp.int32), params=jax.tree.map(jnp.asarray, params),
                      opt_state={"mu": jnp.zeros(3)})


def test_k_identical_checkpoints_average_to_their_parameters_bit_for_bit(tmp_path):
    ckpt = Checkpoints(tmp_path, keep=10, best_metric="bleu")
    for step in (1, 2, 3):
        ckpt.save(step, _state(7), {"step": step, "architecture": ARCH, "tokenizer": "abc"})
    ckpt.close()
    params, meta = averaging.average(averaging.choose(tmp_path, "last", 3, "bleu", "max", "x"))
    _assert_same_bits(params, jax.device_get(_state(7).params))
    assert meta["average"] == {"steps": [1, 2, 3], "checkpoints": ["last/1", "last/2", "last/3"]}


def test_best_k_keeps_and_averages_the_k_best_validations_not_only_the_improvements(tmp_path):
    bleu = {1: 1.0, 2: 5.0, 3: 2.0, 4: 4.0, 5: float("nan"), 6: 3.0}  # the 3 best: steps 2, 4, 6
    ckpt, best = Checkpoints(tmp_path, keep=10, best_metric="bleu", keep_best=3), -1.0
    for step, value in bleu.items():
        meta = {"step": step, "architecture": ARCH, "tokenizer": "abc", "validation": {"bleu": value}}
        ckpt.save(step, _state(step), meta, {"bleu": value}, improved=value > best)
        best = max(best, value)
    assert ckpt.close() == 2
    chosen = averaging.choose(tmp_path, "best", 3, "bleu", "max", "trainer.average=best:3")
    assert [int(p.name) for p in chosen] == [2, 4, 6]
    params, meta = averaging.average(chosen)
    _assert_same_bits(params, _numpy_mean([_state(s).params for s in (2, 4, 6)]))
    assert meta["average"]["steps"] == [2, 4, 6] and meta["step"] == 6 and meta["architecture"] == ARCH
    assert meta["digest"]["params"] == checkpoint.digest(params)
    # By loss (lower is better) the same folder ranks the other way round.
    assert [int(p.name) for p in averaging.choose(tmp_path, "best", 2, "bleu", "min", "x")] == [4, 6]
    with pytest.raises(ConfigError, match=r"trainer.average=best:5: needs 5 best checkpoints, but .* has 3 complete"):
        averaging.choose(tmp_path, "best", 5, "bleu", "max", "trainer.average=best:5")


def test_one_best_checkpoint_is_still_only_the_improvements(tmp_path):
    ckpt = Checkpoints(tmp_path, keep=10, best_metric="bleu")
    for step, (value, improved) in {1: (3.0, True), 2: (4.0, False)}.items():  # a caller that judged 2 no better
        ckpt.save(step, _state(step), {"step": step, "validation": {"bleu": value}}, {"bleu": value}, improved=improved)
    assert ckpt.close() == 1
    assert averaging.steps(tmp_path / "checkpoints" / "best") == [1]


def test_checkpoints_of_another_model_are_not_averaged(tmp_path):
    ckpt = Checkpoints(tmp_path, keep=10, best_metric="bleu")
    for step, arch in ((1, ARCH), (2, {**ARCH, "target_vocab": 900})):
        ckpt.save(step, _state(step), {"step": step, "architecture": arch, "tokenizer": "abc"})
    ckpt.close()
    with pytest.raises(checkpoint.IncompatibleCheckpoint, match=r"last/2: another architecture than .*last/1"):
        averaging.average(averaging.choose(tmp_path, "last", 2, "bleu", "max", "x"))


# --- on a run directory ------------------------------------------------------------------------

def _small_corpus(folder: Path) -> Path:
    """Short pairs of the shipped sample (300 / 12 / N_TEST), so that decoding the test split takes a second."""
    folder.mkdir(parents=True)
    for split, n in (("train", 300), ("validation", 12), ("test", N_TEST)):
        with gzip.open(SAMPLE / f"{split}.jsonl.gz", "rt", encoding="utf-8") as f:
            rows = [line for line in f if line.strip() and max(len(v.split()) for v in json.loads(line).values()) <= 12]
        with gzip.open(folder / f"{split}.jsonl.gz", "wt", encoding="utf-8") as f:
            f.writelines(rows[:n])
    return folder


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run directory as research.train leaves it, made once for the module without training:
    the composed config in .hydra/, the real tokenizer, and checkpoints at STEPS written by the
    run's own `Checkpoints`, each with other (untrained) parameters and a validation BLEU,
    the best at step 4. Training would add a compilation of the train step and nothing that
    averaging reads."""
    root = tmp_path_factory.mktemp("averaging")
    run = root / "run"
    composed = compose_config(tiny_overrides(
        "transformer", "transformer", f"data.dir={_small_corpus(root / 'avg_corpus')}", "data.name=avg_corpus",
        f"data.tfds_dir={root}/tfds", f"tokenizer.cache_dir={root}/spm", "trainer.max_steps=6", "trainer.eval_every=2",
        "trainer.keep_checkpoints=3", "encoder.num_layers=1", "decoder.num_layers=1"))
    (run / ".hydra").mkdir(parents=True)
    OmegaConf.save(composed, run / ".hydra" / "config.yaml")
    cfg = resolve(composed)
    tok = corpus.prepare(cfg.data, cfg.tokenizer).tokenizer
    tokenizers.save(tok, run / "tokenizer")
    arch = architecture(cfg, tok.source_vocab, tok.target_vocab)
    state = train_state.create(Seq2Seq(arch), optax.sgd(0.1), {k: np.zeros((2, 8), np.int32) for k in KEYS},
                               jax.random.PRNGKey(0))
    ckpt = Checkpoints(run, cfg.trainer.keep_checkpoints, "bleu")
    for step, bleu, improved in zip(STEPS, (1.0, 3.0, 2.0), (True, True, False)):
        rng = np.random.default_rng(step)
        params = jax.tree.map(lambda p: p + 0.01 * rng.normal(size=p.shape).astype(np.float32), state.params)
        meta = {"architecture": arch.meta(), "tokenizer": tok.fingerprint(), "step": step, "validation": {"bleu": bleu}}
        ckpt.save(step, state.replace(step=jnp.asarray(step, jnp.int32), params=params), meta, {"bleu": bleu}, improved)
    assert ckpt.close() == 4
    return run


def _saved_params(run: Path, step: int):
    return jax.device_get(checkpoint.restore_params(run / "checkpoints" / "last" / str(step)))


def test_cli_writes_an_average_that_load_reads_back(run_dir, monkeypatch, capsys, caplog):
    monkeypatch.setattr(average_cli.console, "setup_logging", lambda **kw: None)  # keep pytest's log capture
    assert average_cli.main([str(run_dir), "--last", "2"]) == 0
    target = run_dir / "checkpoints" / "average" / "last2"
    assert f"wrote {target}" in capsys.readouterr().out
    expected = _numpy_mean([_saved_params(run_dir, 4), _saved_params(run_dir, 6)])
    run = load(run_dir, checkpoint="last:2")
    assert (run.checkpoint, run.step, run.meta["average"]["steps"]) == ("last:2", 6, [4, 6])
    _assert_same_bits(jax.device_get(run.params), expected)
    assert any(not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(expected), jax.tree.leaves(_saved_params(run_dir, 6))))
    # An average that no longer covers the run's last K (a resumed run trained on) loads with a warning.
    meta_file = target / "meta" / "metadata"
    stale = json.loads(meta_file.read_text())
    stale["average"]["steps"] = [2, 4]
    meta_file.write_text(json.dumps(stale))
    with caplog.at_level(logging.WARNING, logger="research.run_dir"):
        load(run_dir, checkpoint="last:2")
    assert "averages steps [2, 4], but the run's last 2 are now [4, 6]" in caplog.text


def test_cli_refuses_more_checkpoints_than_there_are(run_dir, monkeypatch, caplog):
    monkeypatch.setattr(average_cli.console, "setup_logging", lambda **kw: None)
    assert average_cli.main([str(run_dir), "--last", "5"]) == 2
    assert "--last 5: needs 5 last checkpoints" in caplog.text and "has 3 complete" in caplog.text
    assert not (run_dir / "checkpoints" / "average" / "last5").exists()
    with pytest.raises(FileNotFoundError, match="no averaged checkpoint; write it with python -m research.average .* --best 2"):
        load(run_dir, checkpoint="best:2")
    with pytest.raises(ConfigError, match="checkpoint: 'latest' is not one of best, last, last:K, best:K"):
        load(run_dir, checkpoint="latest")


def test_an_interrupted_write_leaves_no_average_and_keeps_the_previous_one(run_dir, monkeypatch):
    real = averaging._write_folder

    def crash_after_writing(path, params, meta):
        real(path, params, meta)  # the temporary folder is complete...
        raise KeyboardInterrupt("killed before the rename")  # ...and then the process is stopped

    monkeypatch.setattr(averaging, "_write_folder", crash_after_writing)
    with pytest.raises(KeyboardInterrupt):
        averaging.build(run_dir, "last", 1, "bleu", "max", "--last 1")
    root = run_dir / "checkpoints" / "average"
    assert not (root / "last1").exists() and not list(root.glob(".last1*")), "nothing half-written, no temporary left"
    with pytest.raises(FileNotFoundError):
        load(run_dir, checkpoint="last:1")
    # Over an existing average, a failed rewrite leaves that one in place, intact.
    monkeypatch.setattr(averaging, "_write_folder", real)
    averaging.build(run_dir, "last", 1, "bleu", "max", "--last 1")
    before = jax.device_get(load(run_dir, checkpoint="last:1").params)
    _assert_same_bits(before, _saved_params(run_dir, 6))  # the mean of one checkpoint is that checkpoint
    monkeypatch.setattr(averaging, "_write_folder", crash_after_writing)
    with pytest.raises(KeyboardInterrupt):
        averaging.build(run_dir, "last", 1, "bleu", "max", "--last 1")
    _assert_same_bits(jax.device_get(load(run_dir, checkpoint="last:1").params), before)
    assert not list(root.glob(".last1*"))


def test_end_of_run_test_evaluation_of_an_average(run_dir):
    saved = load_config(run_dir)
    cfg = dataclasses.replace(saved, trainer=dataclasses.replace(saved.trainer, test=True, average="last:3"))
    assert evaluate_test(run_dir, dataclasses.replace(saved, trainer=dataclasses.replace(saved.trainer, test=False)),
                         main=True) is None
    results = evaluate_test(run_dir, cfg, main=True)
    hyps = (run_dir / "hyps_test.txt").read_text(encoding="utf-8").split("\n")
    assert hyps[-1] == "" and len(hyps) - 1 == N_TEST, "one line per test example"
    with gzip.open(Path(saved.data.dir) / "test.jsonl.gz", "rt", encoding="utf-8") as f:
        refs = [json.loads(line)["en"] for line in f if line.strip()]
    written = json.loads((run_dir / "eval_test.json").read_text())
    bleu = BLEU()
    assert written["bleu"] == pytest.approx(bleu.corpus_score(hyps[:-1], [refs]).score, abs=1e-9)
    assert written["bleu_signature"] == str(bleu.get_signature()) and written["examples"] == N_TEST
    assert (written["checkpoint"], written["step"], written["averaged_steps"]) == ("last:3", 6, list(STEPS))
    assert results["bleu"] == written["bleu"]
    # The average was written once, as research.average would, and evaluates the same parameters.
    expected = _numpy_mean([_saved_params(run_dir, s) for s in STEPS])
    _assert_same_bits(jax.device_get(load(run_dir, checkpoint="last:3").params), expected)
    # Without averaging: the best checkpoint, not the last.
    best = parameters(run_dir, dataclasses.replace(cfg, trainer=dataclasses.replace(cfg.trainer, average="none")), True)
    assert (best.checkpoint, best.step) == ("best", 4)
    _assert_same_bits(jax.device_get(best.params), _saved_params(run_dir, 4))
    with pytest.raises(ConfigError, match=r"trainer.average=last:4: needs 4 last checkpoints, but .* has 3"):
        parameters(run_dir, dataclasses.replace(cfg, trainer=dataclasses.replace(  # a config that could save 4
            cfg.trainer, average="last:4", keep_checkpoints=4, max_steps=8)), True)


@pytest.mark.slow  # a real training run, about 30 s: `make test-slow`
def test_a_real_run_ends_with_its_averaged_test_evaluation(tmp_path):
    """`research.train trainer.test=true trainer.average=last:2`, end to end: the loop averages the
    checkpoints of steps 2 and 4 and decodes the test split with them, as research.evaluate would."""
    import subprocess
    import sys

    from research.config import REPO

    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "research.train", *tiny_overrides(
        "transformer", "transformer", f"data.dir={_small_corpus(tmp_path / 'avg_corpus')}", "data.name=avg_corpus",
        f"data.tfds_dir={tmp_path}/tfds", f"tokenizer.cache_dir={tmp_path}/spm", "trainer.max_steps=4",
        "trainer.eval_every=2", "trainer.eval_examples=2", "trainer.test=true", "trainer.average=last:2",
        "encoder.num_layers=1", "decoder.num_layers=1", "data.max_shapes=1", f"hydra.run.dir={run}")]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    written = json.loads((run / "eval_test.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    assert (written["checkpoint"], written["step"], written["averaged_steps"], written["examples"]) == ("last:2", 4, [2, 4], N_TEST)
    assert summary["test"]["bleu"] == written["bleu"] and summary["test"]["averaged_steps"] == [2, 4]
    assert len((run / "hyps_test.txt").read_text(encoding="utf-8").splitlines()) == N_TEST
    expected = _numpy_mean([_saved_params(run, s) for s in (2, 4)])
    _assert_same_bits(jax.device_get(load(run, checkpoint="last:2").params), expected)
    assert "test (last:2 checkpoint, step 4): " in out.stdout
