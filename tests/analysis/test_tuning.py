"""research.analysis.tuning: each architecture at its best setting, chosen on validation means counted by hand."""
from __future__ import annotations

import pytest

from research.analysis import sections, tuning
from research.analysis.runs import aggregate, architectures


def _rows(scores: dict, metric: str = "accuracy", extra: tuple = ()) -> list[dict]:
    """Rows as `runs.collect` leaves them: {(encoder, learning rate): [validation score per seed]}."""
    rows = []
    for (enc, lr), values in scores.items():
        for seed, v in enumerate(values):
            rows.append({"run": f"{enc}-{lr}-{seed}", "encoder": enc, "decoder": "none", "seed": seed, "metric": metric,
                         f"validation_{metric}": v, "params": 1,
                         "_overrides": [f"+experiment/budget/params1m/encoder={enc}", f"optim.learning_rate={lr}",
                                        f"trainer.seed={seed}", *extra]})
    architectures(rows)
    return rows


SCORES = {("cnn", 0.001): [0.50, 0.52, 0.51], ("cnn", 0.01): [0.60, 0.58, 0.62],
          ("rnn", 0.001): [0.30, 0.34, 0.32], ("rnn", 0.01): [0.20, 0.10, 0.60]}


def test_each_family_gets_the_setting_with_the_best_mean_and_families_are_ordered_by_it():
    rows = _rows(SCORES)
    choice = tuning.choose(rows, aggregate(rows), ["optim.learning_rate"])
    # By hand: cnn 0.51 against 0.60; rnn 0.32 against 0.30 (one good seed does not make the higher mean).
    assert [c["family"] for c in choice] == ["cnn", "rnn"]
    assert [c["chosen"] for c in choice] == ["cnn optim.learning_rate=0.01", "rnn optim.learning_rate=0.001"]
    rnn = {s["setting"]: s["mean"] for s in choice[1]["settings"]}
    assert rnn == pytest.approx({"optim.learning_rate=0.001": 0.32, "optim.learning_rate=0.01": 0.30})
    assert {s["runs"] for c in choice for s in c["settings"]} == {3}


@pytest.mark.parametrize("chosen, tried, expected", [
    ("0.01", ["0.001", "0.01"], "highest"), ("1e-3", ["0.001", "0.01"], "lowest"),
    ("0.003", ["0.001", "0.003", "0.01"], None), ("0.01", ["0.01"], None), ("mean", ["mean", "max"], None),
    (None, [None, None], None)])
def test_a_chosen_value_is_at_an_edge_where_it_is_the_smallest_or_largest_number_tried(chosen, tried, expected):
    assert tuning.edge(chosen, tried) == expected


def test_each_family_says_which_tuned_numeric_keys_it_was_chosen_at_the_edge_of():
    rows = _rows(SCORES)
    choice = tuning.choose(rows, aggregate(rows), ["optim.learning_rate"])
    assert [c["edges"] for c in choice] == [{"optim.learning_rate": "highest"}, {"optim.learning_rate": "lowest"}]
    # a third rate between the two that beats both: cnn's choice is then bracketed, rnn's still is not
    rows = _rows({**SCORES, ("cnn", 0.003): [0.70, 0.70, 0.70], ("rnn", 0.003): [0.31, 0.31, 0.31]})
    choice = tuning.choose(rows, aggregate(rows), ["optim.learning_rate"])
    assert {c["family"]: c["edges"] for c in choice} == {"cnn": {}, "rnn": {"optim.learning_rate": "lowest"}}
    lines = "\n".join(sections.edge_lines({c["family"]: c["edges"] for c in choice}))
    assert lines.endswith("rnn (the lowest optim.learning_rate tried).\n")
    assert sections.edge_lines({"cnn": {}}) == []


def test_a_lower_is_better_metric_chooses_the_lowest_mean():
    rows = _rows({("rnn", 0.001): [30.0, 32.0], ("rnn", 0.01): [25.0, 27.0], ("cnn", 0.001): [20.0, 20.0],
                  ("cnn", 0.01): [40.0, 10.0]}, metric="perplexity")
    choice = tuning.choose(rows, aggregate(rows), ["optim.learning_rate"])
    assert [(c["family"], c["chosen"]) for c in choice] == [("cnn", "cnn optim.learning_rate=0.001"),
                                                            ("rnn", "rnn optim.learning_rate=0.01")]


def test_two_tuned_keys_and_an_untuned_one_name_the_families_by_the_rest():
    rows = []
    for pooling in ("mean", "max"):
        part = _rows(SCORES, extra=(f"model.pooling={pooling}", "model.d_model=128"))
        rows += [{**r, "run": f"{r['run']}-{pooling}"} for r in part]
    architectures(rows)
    choice = tuning.choose(rows, aggregate(rows), ["optim.learning_rate"])
    assert sorted(c["family"] for c in choice) == ["cnn model.pooling=max", "cnn model.pooling=mean",
                                                   "rnn model.pooling=max", "rnn model.pooling=mean"]
    both = tuning.choose(rows, aggregate(rows), ["optim.learning_rate", "model.pooling"])
    assert [c["family"] for c in both] == ["cnn", "rnn"] and [len(c["settings"]) for c in both] == [4, 4]
    assert both[0]["settings"][0]["setting"] == "optim.learning_rate=0.001 model.pooling=mean"


def test_a_key_the_sweep_does_not_vary_is_refused_with_the_keys_it_does():
    rows = _rows(SCORES, extra=("model.d_model=128",))
    with pytest.raises(tuning.BadTune, match=r"--tune optim.lr: not an override that varies between the sweep's "
                                             r"runs; those that do: experiment/budget/params1m/encoder, "
                                             r"optim.learning_rate, trainer.seed"):
        tuning.choose(rows, aggregate(rows), ["optim.lr"])
    with pytest.raises(tuning.BadTune, match="--tune model.d_model: not an override that varies"):
        tuning.choose(rows, aggregate(rows), ["model.d_model"])  # set, but the same in every run


def test_a_setting_without_a_validation_score_is_listed_not_chosen_and_a_family_without_any_is_refused():
    rows = _rows(SCORES)
    for r in rows:
        if r["architecture"] == "cnn optim.learning_rate=0.01":
            del r["validation_accuracy"]
    choice = tuning.choose(rows, aggregate(rows), ["+optim.learning_rate"])  # a prefix is the same key
    cnn = next(c for c in choice if c["family"] == "cnn")
    assert cnn["chosen"] == "cnn optim.learning_rate=0.001"
    assert [s["mean"] for s in cnn["settings"]][1] is None
    for r in rows:
        if r["encoder"] == "cnn":
            r.pop("validation_accuracy", None)
    with pytest.raises(tuning.BadTune, match="cnn: no run of any setting has a validation accuracy"):
        tuning.choose(rows, aggregate(rows), ["optim.learning_rate"])
