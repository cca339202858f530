"""Tasks: what a run reads, which model it builds, what its loss sums, how a split is scored and compared.

A task is one module here that registers a `Task` (translation, summarization,
sequence; classification and multilabel; tagging and span_tagging; lm);
`data.task` names it. The data
layer, the training loop, evaluation and the report ask the task instead of
branching on its name, so adding one is a module plus the data configs that
name it.

Every field under `# --- hooks` is one whose default is what the
seq2seq tasks always did (research/tasks/seq2seq.py wraps today's functions:
the text-pair reader, SentencePiece, Seq2Seq, the token cross-entropy,
decoding, attention images), so translation, summarization and sequence set
none of them. research/tasks/classification.py sets them all: a labelled-text
reader, a tokenizer whose target side is the label vocabulary, an encoder +
pooling + linear model, a per-example loss, one forward pass for predictions,
scikit-learn metrics, a confusion-matrix image and a TF-IDF baseline.

Two kinds of baseline: `baselines`, systems that need no training, which the
report scores on the test set and tests against the best architecture
(summarization's leads); and `fitted_baseline`, a reference model fitted on
the run's own training split when the run starts (classification's TF-IDF +
logistic regression), whose scores per split are written once to the run's
`baseline.json` (`run_baseline`) and appear, prefixed `baseline_`, beside
the network's in summary.json and eval_<split>.json, so each report row
carries them; their predictions stay in baseline.json, where the report
finds them (`baseline_hypotheses`) to test the best architecture against.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any, Callable, Sequence

from research.registry import ConfigError
from research.tasks import seq2seq

log = logging.getLogger(__name__)

Hypotheses = Sequence[str]
BASELINE = "baseline.json"  # in a run directory: {"data", "fingerprint", "splits": {split: {name: score}}}


def _nothing(*args, **kwargs) -> dict:
    return {}


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    metric: str  # the score that selects checkpoints and decides reports
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
    lower_is_better: bool = False  # `metric`'s better direction: True for perplexity (research/tasks/lm.py)
    # True: hypotheses are free text, where a repeated phrase is a fault (translation, summarization): reports
    # count the hypotheses that repeat one (research/analysis/repetition.py)
    writes_text: bool = False

    # --- hooks (defaults: the seq2seq tasks', research/tasks/seq2seq.py) ---
    # (data config, split names) -> {split: random access to {"source": str, "target": str, ...}}
    read: Callable[[Any, Sequence[str]], dict] = seq2seq.read
    # (tokenizer config, training (source, target) pairs, data fingerprint) -> the run's tokenizer
    tokenizer: Callable[[Any, list, str], Any] = seq2seq.tokenizer
    # (tokenizer, examples, split name, data config) -> None; raises what the run cannot score (unseen labels)
    check_split: Callable[[Any, Any, str, Any], None] = seq2seq.check_split
    save_tokenizer: Callable[[Any, Path], None] = seq2seq.save_tokenizer  # (tokenizer, run_dir/tokenizer)
    load_tokenizer: Callable[[Path], Any] = seq2seq.load_tokenizer  # run_dir/tokenizer -> tokenizer
    # (run config, tokenizer) -> (flax module, architecture: `.meta()` is what a checkpoint must match)
    build_model: Callable[[Any, Any], tuple[Any, Any]] = seq2seq.build_model
    check_packing: Callable[[Any], None] = seq2seq.check_packing  # (architecture); raises ConfigError
    train_flops: Callable[[Any, int, int, int], int] = seq2seq.train_flops  # (architecture, B, S, T)
    # (model outputs, batch, label smoothing) -> {"loss", "nll", "correct", "tokens"}: sums a step averages
    sums: Callable[[Any, dict, float], dict] = seq2seq.sums
    # (model, decode config) -> jitted (params, batch) -> what evaluate_split turns into hypotheses
    predictor: Callable[[Any, Any], Any] = seq2seq.predictor
    # (examples, tokenizer, data config, params, eval_fn, predict_fn, *, decode_examples, shapes, description,
    #  split) -> training.evaluation.SplitScores: the one path of validation and research.evaluate
    evaluate_split: Callable[..., Any] = seq2seq.evaluate_split
    # (model, tokenizer, validation examples, data config, n) -> an object whose
    # `log(logger, step, params, scores)` adds TensorBoard images after each validation
    images: Callable[..., Any] = seq2seq.images
    # (run config, corpus.Corpus) -> {"scores": {split: {"baseline_<name>": score}}, "hyps": {split: {name:
    # predictions}}} of a reference model fitted on the training split (run_baseline); {}: none
    fitted_baseline: Callable[[Any, Any], dict] = _nothing
    ensembles: bool = True  # research.evaluate may combine several runs of this task (research/decoding/ensemble.py)


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


def refuse_seq2seq_options(cfg: Any) -> None:
    """A ConfigError for the model options only a seq2seq model has, on a task whose model has none of them:
    `model.pointer_generator` and `trainer.lambda_coverage` (copy attention and coverage need a source and a
    decoder) and `model.embeddings.pretrained` or `.freeze`
    (research/training/pretrained.py fills and freezes seq2seq embeddings only)."""
    if cfg.model.pointer_generator:
        raise ConfigError(f"model.pointer_generator: copy attention copies from a source into a decoder's output, which "
                          f"task={cfg.data.task} does not have; set model.pointer_generator=false")
    if cfg.trainer.lambda_coverage:
        raise ConfigError(f"trainer.lambda_coverage: the coverage loss is over a decoder's attention to a source, "
                          f"which task={cfg.data.task} does not have; set trainer.lambda_coverage=0")
    e = cfg.model.embeddings
    if e.pretrained or e.freeze:
        raise ConfigError("model.embeddings: pretrained or frozen embeddings are for seq2seq models so far "
                          f"(research/training/pretrained.py); leave them at their defaults for task={cfg.data.task}")


def by_metric(metric: str) -> Task:
    """The task whose deciding score is `metric` (what a finished run's summary.json records)."""
    for task in TASKS.values():
        if task.metric == metric:
            return task
    raise ConfigError(f"no task decides by {metric!r} (tasks: {', '.join(f'{t.name}: {t.metric}' for t in TASKS.values())})")


def run_baseline(task: Task, cfg: Any, corpus: Any, run_dir: Path, write: bool = True) -> dict:
    """The task's fitted baseline's scores for this run: {split: {"baseline_<name>": value}}; {} without one.

    Read back from the run's baseline.json when that was made from the same
    data (name and training fingerprint), so a resumed run does not train the
    baseline again; otherwise computed and, with `write`, saved there.
    """
    path = Path(run_dir) / BASELINE
    if path.exists():
        saved = json.loads(path.read_text())
        if saved.get("data") == cfg.data.name and saved.get("fingerprint") == corpus.fingerprint and "hyps" in saved:
            return saved["splits"]
    fitted = task.fitted_baseline(cfg, corpus)
    if fitted and write:
        path.write_text(json.dumps({"data": cfg.data.name, "fingerprint": corpus.fingerprint,
                                    "splits": fitted["scores"], "hyps": fitted["hyps"]}, indent=2) + "\n")
    return fitted["scores"] if fitted else {}


def baseline_scores(run_dir: Path, data_name: str, split: str) -> dict:
    """The fitted baseline's scores of one split of the run's own data (baseline.json), or {} (none, other data)."""
    path = Path(run_dir) / BASELINE
    if not path.exists():
        return {}
    saved = json.loads(path.read_text())
    return dict(saved["splits"].get(split, {})) if saved.get("data") == data_name else {}


def baseline_hypotheses(run_dir: Path, split: str) -> dict[str, list[str]]:
    """{baseline name: its predictions on `split`, one per example in corpus order} from the run's
    baseline.json; {} when the run has no fitted baseline (research/analysis/decide.py's `baselines`)."""
    path = Path(run_dir) / BASELINE
    if not path.exists():
        return {}
    return dict(json.loads(path.read_text()).get("hyps", {}).get(split, {}))


from research.tasks import translation, summarization, sequence, classification, tagging, lm  # noqa: E402,F401  (each registers itself)
