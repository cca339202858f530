"""GloVe: the objective and its AdaGrad step against NumPy, padding, one compilation, a planted corpus; the entry point."""
from __future__ import annotations

import jax
import numpy as np
import pytest
import scipy.sparse as sp

from research import glove as glove_app
from research.config import REPO
from research.data import tokenizer as tokenizers
from research.registry import ConfigError
from research.vectors import glove
from research.vectors.cooccur import cooccurrence

LR, X_MAX, ALPHA = 0.05, 100.0, 0.75


def random_params(vocab, dim, seed=0):
    rng = np.random.default_rng(seed)
    p = {"w": rng.normal(0, 0.3, (vocab, dim)), "c": rng.normal(0, 0.3, (vocab, dim)),
         "b": rng.normal(0, 0.3, vocab), "bc": rng.normal(0, 0.3, vocab)}
    a = {k: 1.0 + rng.random(v.shape) for k, v in p.items()}
    return ({k: v.astype(np.float32) for k, v in p.items()}, {k: v.astype(np.float32) for k, v in a.items()})


def numpy_step(p, a, i, j, x, mask):
    """The objective and glove.c's AdaGrad update, entry by entry, with row gradients summed per row."""
    p = {k: v.astype(np.float64) for k, v in p.items()}
    a = {k: v.astype(np.float64) for k, v in a.items()}
    f = np.where(x >= X_MAX, 1.0, (x / X_MAX) ** ALPHA) * mask
    diff = (p["w"][i] * p["c"][j]).sum(1) + p["b"][i] + p["bc"][j] - np.log(x)
    loss = float((f * diff ** 2).sum())
    g = {k: np.zeros_like(v) for k, v in p.items()}
    for e in range(len(i)):
        g["w"][i[e]] += f[e] * diff[e] * p["c"][j[e]]
        g["c"][j[e]] += f[e] * diff[e] * p["w"][i[e]]
        g["b"][i[e]] += f[e] * diff[e]
        g["bc"][j[e]] += f[e] * diff[e]
    for k in p:
        a[k] += g[k] ** 2
        p[k] -= LR * g[k] / np.sqrt(a[k])
    return p, a, loss


def jax_step(p, a, i, j, x, mask):
    fn = jax.jit(lambda *args: glove.step(*args, learning_rate=LR, x_max=X_MAX, alpha=ALPHA))
    out = fn(p, a, np.asarray(i, np.int32), np.asarray(j, np.int32), np.asarray(x, np.float32),
             np.asarray(mask, np.float32))
    return jax.tree.map(np.asarray, out)


def test_weighting_is_one_from_x_max_and_a_power_below():
    x = np.array([0.5, 1.0, 37.0, 99.9, 100.0, 100.1, 2500.0], np.float32)
    expected = np.where(x >= 100, 1.0, (x / 100.0) ** 0.75)
    np.testing.assert_allclose(np.asarray(glove.weight(x, X_MAX, ALPHA)), expected, rtol=1e-6)
    assert np.asarray(glove.weight(x, X_MAX, ALPHA))[4:].tolist() == [1.0, 1.0, 1.0]


def test_step_matches_numpy_objective_and_adagrad_with_repeated_rows():
    p, a = random_params(vocab=6, dim=4)
    # Rows 2 and 4 repeat within the batch (as word and as context); counts below and above x_max.
    i = np.array([2, 2, 0, 4, 5, 2])
    j = np.array([4, 1, 4, 4, 2, 3])
    x = np.array([0.5, 3.0, 99.0, 100.0, 640.0, 12.5])
    mask = np.array([1, 1, 1, 1, 1, 0.0])  # the last entry is padding
    want_p, want_a, want_loss = numpy_step(p, a, i, j, x, mask)
    got_p, got_a, got_loss = jax_step(p, a, i, j, x, mask)
    assert got_loss == pytest.approx(want_loss, rel=1e-5)
    for k in p:
        np.testing.assert_allclose(got_a[k], want_a[k], rtol=1e-5, atol=1e-6, err_msg=k)
        np.testing.assert_allclose(got_p[k], want_p[k], rtol=1e-5, atol=1e-6, err_msg=k)
    assert got_p["w"].dtype == np.float32 and got_a["c"].dtype == np.float32


def test_a_batch_of_padding_changes_nothing():
    p, a = random_params(vocab=5, dim=3, seed=1)
    i, j = np.array([0, 3, 3, 1]), np.array([2, 2, 0, 4])
    got_p, got_a, loss = jax_step(p, a, i, j, np.ones(4), np.zeros(4))
    assert loss == 0.0
    for k in p:
        np.testing.assert_array_equal(got_p[k], p[k])
        np.testing.assert_array_equal(got_a[k], a[k])


def test_init_follows_glove_c():
    params, accum = glove.init(50, 10, seed=3)
    assert np.abs(np.asarray(params["w"])).max() <= 0.05 and np.abs(np.asarray(params["c"])).max() <= 0.05
    assert np.asarray(params["w"]).std() > 0.02  # spread over the interval, not collapsed
    assert not np.asarray(params["b"]).any() and not np.asarray(params["bc"]).any()
    assert all((np.asarray(v) == 1.0).all() for v in accum.values())


def test_epochs_compile_nothing_after_the_first(monkeypatch):
    """7 entries in batches of 3: the last batch is padded, and one compiled step serves all."""
    counts = sp.coo_matrix((np.arange(1.0, 8.0), (np.arange(7) % 4, np.arange(7) // 2)), shape=(4, 4))
    compiled = []
    real = glove.compile_step
    monkeypatch.setattr(glove, "compile_step", lambda *a: compiled.append(a[-1]) or real(*a))
    events = []  # every lowering to XLA, whether or not the persistent compilation cache then has it

    def listen(name, *_, **__):
        if name == "/jax/core/compile/jaxpr_to_mlir_module_duration":
            events.append(name)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        it = glove.fit(counts, glove.GloveConfig(dim=4, epochs=4, batch_size=3))
        first = next(it)
        before = len(events)
        rest = list(it)
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    assert compiled == [3]  # one batch shape
    assert before >= 1  # the listener sees the step being lowered
    assert len(events) == before  # later epochs, padded batch included, lowered and compiled nothing
    assert [e.index for e in [first, *rest]] == [0, 1, 2, 3]
    assert all(np.isfinite(e.loss) for e in rest)


def test_loss_is_the_mean_weighted_objective_and_falls():
    rng = np.random.default_rng(0)
    docs = [rng.integers(0, 30, 20).tolist() for _ in range(60)]
    counts = cooccurrence(docs, 30, 5)
    vectors, losses = glove.train(counts, glove.GloveConfig(dim=8, epochs=15, batch_size=64))
    assert vectors.shape == (30, 8) and vectors.dtype == np.float32
    assert len(losses) == 15 and losses[-1] < 0.5 * losses[0]
    # The first epoch's loss is at most the objective at the initial point (a loose, independent bound).
    i, j, x = counts.row, counts.col, counts.data
    f = np.minimum(1.0, (x / X_MAX) ** ALPHA)
    assert losses[0] <= (f * np.log(x) ** 2).sum() / len(x) * 1.01


def test_groups_that_only_meet_themselves_are_each_others_neighbours():
    rng = np.random.default_rng(0)
    group = np.arange(10) // 5  # words 0-4 and 5-9
    docs = [(rng.choice(5, 8) + 5 * (k % 2)).tolist() for k in range(300)]
    counts = cooccurrence(docs, 10, window=3)
    assert not counts.toarray()[:5, 5:].any()  # the planted structure
    vectors, _ = glove.train(counts, glove.GloveConfig(dim=16, epochs=300, seed=0))
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    assert (group[sims.argmax(1)] == group).all()


@pytest.mark.parametrize("field,value", [("dim", 0), ("epochs", 0), ("learning_rate", 0.0), ("x_max", -1.0),
                                         ("alpha", 0.0), ("batch_size", 0), ("seed", -1)])
def test_config_names_the_bad_field(field, value):
    with pytest.raises(ValueError, match=field):
        glove.GloveConfig(**{field: value})


# The entry point, in-process on the shipped sample.

def sample_args(tmp_path, *extra):
    return ["data=ddtp_de_en_sample", "tokenizer.vocab_size=800", f"data.tfds_dir={tmp_path}/tfds",
            f"tokenizer.cache_dir={tmp_path}/spm", "dim=16", "epochs=2", f"out={tmp_path}/vectors.txt", *extra]


def test_entry_point_writes_one_line_per_piece(tmp_path, capsys):
    assert glove_app.main(sample_args(tmp_path)) == 0
    lines = (tmp_path / "vectors.txt").read_text(encoding="utf-8").splitlines()
    fields = [line.split(" ") for line in lines]
    assert all(len(f) == 17 for f in fields)
    units = [f[0] for f in fields]
    assert len(set(units)) == len(units) == 800 - 4
    [model] = (tmp_path / "spm").glob("*.joint.model")  # the tokenizer the run trained
    sp_model = tokenizers.from_files(model).source
    assert units == [sp_model.id_to_piece(k) for k in range(4, 800)]
    assert not {"<pad>", "<unk>", "<s>", "</s>"} & set(units)
    assert np.isfinite(np.array([f[1:] for f in fields], float)).all()
    out = capsys.readouterr().out
    assert "nearest neighbours" in out and "tokens/s" in out and "per epoch" in out


def test_entry_point_words(tmp_path):
    assert glove_app.main(sample_args(tmp_path, "units=words", "min_count=3")) == 0
    units = [line.split(" ")[0] for line in (tmp_path / "vectors.txt").read_text(encoding="utf-8").splitlines()]
    assert len(set(units)) == len(units) > 100
    assert not (tmp_path / "spm").exists()  # words need no tokenizer


def test_unknown_option_exits_2_and_names_it(tmp_path, capsys):
    assert glove_app.main(sample_args(tmp_path, "dimension=16")) == 2
    err = capsys.readouterr().err
    assert "error: dimension: unknown option" in err and "window" in err
    assert not (tmp_path / "vectors.txt").exists()


@pytest.mark.parametrize("arg,says", [("data=no_such_corpus", "no_such_corpus"), ("tokenizer.joint=false", "joint"),
                                      ("units=letters", "units"), ("dim=0", "dim"), ("window=x", "window")])
def test_config_errors_exit_2(tmp_path, capsys, arg, says):
    assert glove_app.main(sample_args(tmp_path, arg)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and says in err


def test_missing_corpus_is_a_data_error(tmp_path, capsys):
    assert glove_app.main(sample_args(tmp_path, f"data.dir={tmp_path}/nowhere")) == 2
    assert "error: " in capsys.readouterr().err
