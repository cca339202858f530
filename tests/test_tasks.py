"""The task registry: each data.task names one module of research/tasks, which the loop, evaluation and report ask."""
from __future__ import annotations

import pytest

from research import tasks
from research.analysis import significance
from research.registry import ConfigError
from research.training import evaluation


def test_every_task_decides_by_its_metric_and_compares_with_its_test():
    assert tasks.names() == ["translation", "summarization", "sequence", "classification", "multilabel", "tagging",
                             "span_tagging", "lm"]
    expected = {"translation": ("bleu", significance.translation), "summarization": ("rougeL", significance.summarization),
                "sequence": ("sequence_accuracy", significance.sequence)}
    for name, (metric, test) in expected.items():
        task = tasks.get(name)
        assert (task.metric, task.paired_test) == (metric, test)
        assert tasks.by_metric(metric) is task and evaluation.task_metric_name(name) == metric
    metrics = {"classification": "accuracy", "multilabel": "micro_f1", "tagging": "macro_f1", "span_tagging": "span_f1",
               "lm": "perplexity"}
    for name, metric in metrics.items():
        assert tasks.get(name).metric == metric and tasks.by_metric(metric) is tasks.get(name)


def test_only_perplexity_is_lower_is_better_and_checkpoints_follow_it():
    assert [t.name for t in tasks.TASKS.values() if t.lower_is_better] == ["lm"]
    assert evaluation.selection("lm", "metric") == ("perplexity", "min")
    assert evaluation.selection("translation", "metric") == ("bleu", "max")
    assert evaluation.selection("lm", "loss") == ("loss", "min")


def test_scores_come_from_the_task():
    class Data:
        length_bucket = 2
    got = tasks.get("sequence").score(["a b", "c"], ["a b", "d"], Data())
    assert got["sequence_accuracy"] == 50.0 and got["examples_len_1_2"] == 2
    assert tasks.get("translation").score(["a b c d"], ["a b c d"], Data())["bleu"] == pytest.approx(100.0)
    assert tasks.get("sequence").summary_extras(lambda: [("x", "a b c"), ("y", "a")]) == {"train_target_len_max": 3}
    unread = lambda: pytest.fail("translation read the training split for its summary")
    assert tasks.get("translation").summary_extras(unread) == {}


def test_unknown_tasks_and_metrics_are_named():
    with pytest.raises(ConfigError, match="data.task: 'parsing' is not one of translation, summarization, sequence, "
                                          "classification, multilabel, tagging, span_tagging, lm"):
        tasks.get("parsing")
    with pytest.raises(ConfigError, match="no task decides by 'meteor'"):
        tasks.by_metric("meteor")
