"""Budgets (research/training/budget.py): where they end, what the schedule makes of them, and two real
runs of different cost stopped by one FLOPs budget, their counts replayed from the data pipeline."""
from __future__ import annotations

import json
import math

import optax
import pytest

from research.data import corpus
from research.models import flops as model_flops
from research.models.seq2seq import architecture
from research.registry import ConfigError
from research.training import budget as budgets
from research.training import loop, manifest, optim
from tests.conftest import tiny_run_config


def test_a_steps_budget_positions_the_cosine_where_optax_puts_it():
    """lr(count, Budget.position()) against optax's own warm-up + cosine to max_steps, every step."""
    cfg = optim.OptimConfig(learning_rate=0.01, warmup_steps=5, schedule="cosine", min_lr_ratio=0.1)
    max_steps = 40
    lr = optim.schedule(cfg, max_steps)
    reference = optax.join_schedules([optax.linear_schedule(0.0, 0.01, 5),
                                      optax.cosine_decay_schedule(0.01, max_steps - 5, alpha=0.1)], [5])
    b = budgets.Budget("steps", max_steps, max_steps, 5)
    for count in range(max_steps):
        assert float(lr(count, b.position())) == pytest.approx(float(reference(count)), rel=1e-5, abs=1e-9), count
        assert float(lr(count, None)) == pytest.approx(float(reference(count)), rel=1e-5, abs=1e-9), count
        b.add(tokens=7, flops=11, seconds=0.5)
    assert b.ended_by() == "budget" and b.spent == budgets.Spent(40, 280.0, 440.0, 20.0)


def test_a_tokens_budget_decays_to_its_floor_where_the_tokens_run_out():
    b = budgets.Budget("tokens", 1000, 10**6, warmup_steps=2)
    assert b.position() == 0.0
    b.add(100, 0, 0)
    b.add(150, 0, 0)  # warm-up ends at 25% of the budget
    assert b.warm_fraction == 0.25 and b.position() == 0.0
    b.add(375, 0, 0)  # 625 of 1000: half way from 25% to 100%
    assert b.position() == pytest.approx(0.5) and not b.exhausted()
    b.add(375, 0, 0)
    assert b.position() == 1.0 and b.ended_by() == "budget"
    cfg = optim.OptimConfig(learning_rate=0.01, warmup_steps=2, schedule="cosine", min_lr_ratio=0.1)
    assert float(optim.schedule(cfg, 10**6)(4, 1.0)) == pytest.approx(0.001)  # the floor: min_lr_ratio x peak
    assert float(optim.schedule(cfg, 10**6)(4, 0.5)) == pytest.approx(0.01 * (0.1 + 0.9 * 0.5))


def test_max_steps_caps_every_budget_and_says_so():
    b = budgets.Budget("flops", 1e30, max_steps=3, warmup_steps=1)
    for _ in range(3):
        b.add(1, 1, 1)
    assert b.ended_by() == "max_steps"


def test_budget_state_round_trips_and_refuses_another_budget():
    t = tiny_trainer(budget="tokens", budget_amount=500.0)
    first = budgets.for_trainer(t, 2)
    first.add(120, 3, 0.1)
    first.add(130, 3, 0.1)
    again = budgets.for_trainer(t, 2, json.loads(json.dumps(first.state())), start_step=2)
    assert again.spent == first.spent and again.position() == first.position()
    with pytest.raises(ConfigError, match="trainer.budget: the checkpoint was trained under budget tokens=500.0"):
        budgets.for_trainer(tiny_trainer(budget="tokens", budget_amount=600.0), 2, first.state(), start_step=2)
    with pytest.raises(ConfigError, match="records no spent budget"):
        budgets.for_trainer(t, 2, None, start_step=5)


def tiny_trainer(**kw):
    from research.config import TrainerConfig

    return TrainerConfig(max_steps=10**6, **kw)


def test_the_manifest_marks_seconds_budgets_as_not_reproducible():
    assert budgets.manifest_entry(tiny_trainer(budget="seconds", budget_amount=60.0))["reproducible"] is False
    assert budgets.manifest_entry(tiny_trainer(budget="flops", budget_amount=1e12))["reproducible"] is True
    assert budgets.manifest_entry(tiny_trainer())["amount"] == 10**6  # steps: max_steps is the amount


# --- two real runs ---------------------------------------------------------

RUN = ["data.max_train_examples=300", "data.max_shapes=2", "trainer.log_every=1", "trainer.eval_every=1000",
       "trainer.eval_examples=2", "trainer.checkpoint=false", "trainer.max_steps=1000", "optim.schedule=cosine",
       "optim.warmup_steps=2", "optim.min_lr_ratio=0.1"]


def replay(cfg, steps: int) -> tuple[list[float], list[float]]:
    """Cumulative target tokens and train FLOPs after each of the first `steps` batches, from the
    training iterator the run used (same data, seed and shapes) and the analytic count."""
    texts = corpus.prepare(cfg.data, cfg.tokenizer)
    arch = architecture(cfg, texts.tokenizer.source_vocab, texts.tokenizer.target_vocab)
    batches = corpus.train_batches(texts.train, texts.tokenizer, cfg.data, cfg.trainer.seed)
    tokens, flops = [], []
    for _ in range(steps):
        b = next(batches)
        tokens.append((tokens[-1] if tokens else 0) + float((b["target_segments"] > 0).sum()))
        flops.append((flops[-1] if flops else 0) + model_flops.train_flops(arch, *b["source"].shape, b["target_in"].shape[1]))
    batches.close()
    return tokens, flops


# Two real runs (about 90 s on a busy 2-core machine): behind the slow marker, run with `make test-slow`.
@pytest.fixture(scope="module")
def flops_runs(tmp_path_factory):
    """rnn-transformer and the cheaper cnn-rnn under one FLOPs budget (about 6 steps of the first)."""
    root = tmp_path_factory.mktemp("budget")
    cfgs = {pair: tiny_run_config(*pair, root, *RUN) for pair in [("rnn", "transformer"), ("cnn", "rnn")]}
    per_step = {}
    for pair, cfg in cfgs.items():
        texts = corpus.prepare(cfg.data, cfg.tokenizer)
        arch = architecture(cfg, texts.tokenizer.source_vocab, texts.tokenizer.target_vocab)
        per_step[pair] = model_flops.train_flops(arch, 64, 32, 32)
    amount = 6 * replay(cfgs[("rnn", "transformer")], 1)[1][0]  # ~6 steps of the dearer pair
    out = {}
    for pair in cfgs:
        cfg = tiny_run_config(*pair, root, *RUN, "trainer.budget=flops", f"trainer.budget_amount={amount}")
        run_dir = root / "-".join(pair)
        summary = loop.train(cfg, run_dir)
        rows = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]
        out[pair] = (cfg, summary, [r for r in rows if r["split"] == "train"], run_dir)
    return amount, per_step, out


@pytest.mark.slow
def test_a_flops_budget_stops_both_at_the_same_flops_and_the_cheaper_runs_longer(flops_runs):
    amount, per_step, runs = flops_runs
    (_, big, big_rows, _), (_, small, small_rows, _) = runs[("rnn", "transformer")], runs[("cnn", "rnn")]
    assert per_step[("cnn", "rnn")] < 0.7 * per_step[("rnn", "transformer")]  # at one shape
    for summary, rows in ((big, big_rows), (small, small_rows)):
        spent = summary["budget"]["spent"]["flops"]
        last_step = rows[-1]["flops"] - (rows[-2]["flops"] if len(rows) > 1 else 0)
        assert spent >= amount > spent - last_step  # stopped at the first step that spent it
        assert summary["budget"]["ended_by"] == "budget" and summary["steps"] == rows[-1]["step"] == len(rows)
    assert small["steps"] > big["steps"]


@pytest.mark.slow
def test_cumulative_counts_in_metrics_match_the_replayed_pipeline(flops_runs):
    for cfg, summary, rows, _ in flops_runs[2].values():
        tokens, flops = replay(cfg, summary["steps"])
        assert [r["tokens"] for r in rows] == tokens
        assert [r["flops"] for r in rows] == flops
        seconds = [r["train_seconds"] for r in rows]
        assert all(b > a for a, b in zip(seconds, seconds[1:]))


@pytest.mark.slow
def test_the_cosine_follows_the_flops_spent(flops_runs):
    """Each step's learning rate, recomputed from the FLOPs spent before it (the previous row)."""
    amount, _, runs = flops_runs
    for cfg, _, rows, _ in runs.values():
        warm_fraction = rows[1]["flops"] / amount  # warm-up: 2 steps
        for prev, row in zip(rows[1:], rows[2:]):
            position = min(max((prev["flops"] / amount - warm_fraction) / (1 - warm_fraction), 0.0), 1.0)
            want = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * position))
            assert row["learning_rate"] == pytest.approx(cfg.optim.learning_rate * want, rel=1e-5)
        assert rows[-1]["learning_rate"] < 0.35 * cfg.optim.learning_rate  # near the floor by the end


@pytest.mark.slow
def test_the_manifest_and_summary_record_the_budget(flops_runs):
    amount, _, runs = flops_runs
    _, summary, rows, run_dir = runs[("cnn", "rnn")]
    recorded = manifest.read(run_dir)["budget"]
    assert recorded == {"kind": "flops", "amount": amount, "unit": "training FLOPs", "max_steps": 1000,
                        "reproducible": True}
    assert summary["budget"]["kind"] == "flops" and summary["max_steps"] == 1000
    assert summary["budget"]["spent"]["flops"] == rows[-1]["flops"]
