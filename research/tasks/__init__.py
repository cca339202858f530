"""Tasks: how a run's outputs are scored, which score decides, and how two systems are compared.

A task is one module here that registers a `Task` (translation, summarization,
sequence); `data.task` names it. The training loop, evaluation and the report
ask the task instead of branching on its name, so adding one is a module plus
the data configs that name it.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

from research.registry import ConfigError

Hypotheses = Sequence[str]


def _nothing(*args, **kwargs) -> dict:
    return {}


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    metric: str  # the score that selects checkpoints and decides reports; higher is better
    score: Callable[[list[str], list[str], Any], dict]  # (hyps, refs, data config) -> scores
    # (baseline, {name: hyps}, refs) -> {name: {test name: p-value}}: research/analysis/significance.py
    paired_test: Callable[[Hypotheses, dict[str, Hypotheses], Hypotheses], dict[str, dict[str, float]]]
    test_description: str  # how the report names that test
    # (tokenizer, sources, refs) -> extra numbers of an evaluated split (e.g. unknown symbols)
    split_extras: Callable[[Any, list[str], list[str]], dict] = _nothing
    # (a function giving the training (source, target) pairs) -> extra entries of summary.json (e.g. the
    # longest training target); a function, so tasks without extras never read the training split again
    summary_extras: Callable[[Callable[[], list[tuple[str, str]]]], dict] = _nothing
    # (test sources, training targets) -> {name: one hypothesis per test source}: systems that need no
    # training (summarization's leads), scored and tested against the best architecture by the report
    # (research/analysis/decide.py); None: the task has none
    baselines: Callable[[list[str], list[str]], dict[str, list[str]]] | None = None


TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    if task.name in TASKS:
        raise ValueError(f"task {task.name!r} is registered twice")
    TASKS[task.name] = task
    return task


def names() -> list[str]:
    return list(TASKS)


def get(name: str) -> Task:
    if name not in TASKS:
        raise ConfigError(f"data.task: '{name}' is not one of {', '.join(TASKS)}")
    return TASKS[name]


def by_metric(metric: str) -> Task:
    """The task whose deciding score is `metric` (what a finished run's summary.json records)."""
    for task in TASKS.values():
        if task.metric == metric:
            return task
    raise ConfigError(f"no task decides by {metric!r} (tasks: {', '.join(f'{t.name}: {t.metric}' for t in TASKS.values())})")


from research.tasks import translation, summarization, sequence  # noqa: E402,F401  (each registers itself)
