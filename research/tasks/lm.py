"""Language modelling (`data.task=lm`): any registered decoder with no encoder, scored by perplexity.

The model is research/models/language_model.py: an embedding, DECODERS[name]
built without a memory (no cross-attention, no bridge, no attention over a
source: those parameters do not exist) and the tied output layer. What each
hook does differently from seq2seq:

  data      one text per example, the field that `data.target` names (a JSONL
            field, a TSV column, a Moses file suffix, a tfds feature), read by
            the seq2seq reader with that field on both sides, so `data.source`
            is not read and an empty text is skipped and counted as there.
            Each example becomes {"source": "", "target": text}: the batch
            pipeline makes the BOS-shifted `target_in` / `target_out` of the text
            as for any target, and the empty source (one EOS, shape [B, 1]
            unpacked) is never read by the model. So the target side of any
            corpus is LM text with one override, `data=ddtp_de_en data.task=lm`
            (English), and its source side with a second, `data.target=de`;
            conf/data/ddtp_summ_en_lm.yaml sets `target: document`.
  tokenizer SentencePiece (or symbols) on the texts alone, one model
            (tokenizer.joint is moot: there is one side).
  packing   supported by every decoder (`data.pack=true`): documents follow each
            other in a row with their own segment ids, attention and
            convolution windows stop at their boundaries and the recurrent
            state restarts at each. A packed row holds at most
            `data.max_source_len` documents (each brings its one-EOS source).
  loss      token cross-entropy over the text's pieces and the final EOS
            (losses.token_sums, as seq2seq targets).
  evaluate  teacher-forced, every example of the split whole, no decoding:
            loss (mean token NLL), perplexity = exp(loss) and token accuracy,
            per piece of the run's tokenizer (EOS counted, BOS not predicted),
            so perplexities compare between runs of one tokenizer only.
  deciding  perplexity, LOWER is better (`Task.lower_is_better`: checkpoint
            selection and the report's best, ordering and frontier take the
            lowest).
  files     hyps_<split>.txt holds one JSON line per example:
            {"nll": summed NLL in nats, "tokens": pieces + EOS, "correct": top-1
            hits}, from which `score` recomputes the split's numbers and
            `perplexity_test` compares two runs.
  compare   paired bootstrap over examples (1,000 resamples, seed 12345) of the
            split's perplexity; runs must share one tokenizer (equal counts).
  sampling  `python -m research.sample` (research/sample.py): `continuations`
            feeds BOS and the prompt through the decoder's incremental cache,
            then runs the decode config's search (greedy, beam, sample with
            temperature / top_k / top_p) through research/decoding/generate.py.

Not supported, each refused with the key to change: pretrained or frozen
embeddings, ensembles.
"""
from __future__ import annotations

import dataclasses
import json
import logging

import jax
import jax.numpy as jnp
import numpy as np

from research import console
from research.analysis import significance
from research.data import tokenizer as tokenizers
from research.data.batch import BOS
from research.data.records import RecordView
from research.decoding import generate
from research.models import language_model
from research.models.layers.positions import learned_max_len
from research.registry import ConfigError
from research.tasks import Task, refuse_seq2seq_options, register
from research.training import losses
from research.training.confusion_images import NoImages

log = logging.getLogger(__name__)
FIELDS = ("nll", "tokens", "correct")  # of one example's line in hyps_<split>.txt


# ---------------------------------------------------------------- data, tokenizer, model


class Texts(RecordView):
    """Random access to a split's texts as {"source": "", "target": text}: a records.RecordView over the
    seq2seq reader's pairs."""

    def _example(self, pair: dict, index: int) -> dict:
        return {"source": "", "target": pair["target"]}


def read(data_cfg, splits) -> dict:
    """The texts of `data.target`'s field (see the module docstring), through the seq2seq reader."""
    from research.data import corpus  # noqa: PLC0415 (the data layer imports research.tasks)

    one_field = dataclasses.replace(data_cfg, source=data_cfg.target)
    return {name: Texts(pairs) for name, pairs in corpus.read_pairs(one_field, tuple(splits)).items()}


def tokenizer(tokenizer_cfg, pairs: list, fingerprint: str) -> tokenizers.Tokenizer:
    """One SentencePiece (or symbol) model trained on the training texts alone."""
    return tokenizers.load_or_train(dataclasses.replace(tokenizer_cfg, joint=True), [(t,) for _, t in pairs],
                                    fingerprint)


def build_model(cfg, tok) -> tuple[language_model.LanguageModel, language_model.LMArchitecture]:
    refuse_seq2seq_options(cfg)
    unused = language_model.UNUSED.get(cfg.decoder, ())
    if unused:
        log.info("decoder=%s as a language model: no memory, so decoder.%s are not used", cfg.decoder,
                 ", decoder.".join(unused))
    arch = language_model.architecture(cfg, tok.target_vocab)
    return language_model.LanguageModel(arch), arch


def check_packing(arch) -> None:
    """Nothing to refuse: without a memory every decoder restarts at each segment (the module docstring)."""


# ---------------------------------------------------------------- per-example sums, scores


def predictor(model, decode_cfg):
    """jitted (params, batch) -> {"nll", "tokens", "correct"}: per-row sums [B] over the real target
    tokens, teacher-forced, no label smoothing (eval batches hold one example per row)."""
    del decode_cfg  # nothing is decoded

    def predict(params, batch):
        logits = model.apply({"params": params}, batch, deterministic=True)
        weights = (batch["target_segments"] > 0).astype(jnp.float32)
        _, nll = losses.cross_entropy(logits, batch["target_out"], weights)
        correct = losses.top1(logits, batch["target_out"]) * weights
        return {"nll": nll.sum(1), "tokens": weights.sum(1), "correct": correct.sum(1)}

    return jax.jit(predict)


def example_line(nll: float, tokens: float, correct: float) -> str:
    """One example's line of hyps_<split>.txt; the float is written in full (it round-trips exactly)."""
    return json.dumps({"nll": float(nll), "tokens": int(tokens), "correct": int(correct)})


def per_example(hyps) -> np.ndarray:
    """hyps_<split>.txt lines -> [N, 3] float64 of FIELDS."""
    try:
        rows = [json.loads(h) for h in hyps]
        return np.array([[r[k] for k in FIELDS] for r in rows], np.float64).reshape(-1, len(FIELDS))
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"not a language model's per-example line ({FIELDS}): {e}") from None


def score(hyps, refs=None, data=None) -> dict:
    """loss (mean NLL per token), perplexity and token accuracy of a split, from its per-example lines."""
    from research.training import evaluation  # noqa: PLC0415 (it imports research.tasks)

    nll, tokens, correct = per_example(hyps).sum(0)
    return evaluation.token_metrics({"loss": nll, "nll": nll, "correct": correct, "tokens": tokens})


def perplexity_test(baseline, systems: dict, refs, seed: int = significance.SEED,
                    samples: int = significance.BOOTSTRAP_SAMPLES) -> dict:
    """Bootstrap p-values of each system against `baseline` on the split's perplexity: resample examples,
    compare exp(sum NLL / sum tokens) of both, as significance.paired_bootstrap does for means."""
    base = per_example(baseline)
    idx = np.random.default_rng(seed).choice(len(base), size=(samples, len(base)), replace=True)
    ppl = lambda rows: np.exp(np.minimum(rows[..., 0].sum(-1) / np.maximum(rows[..., 1].sum(-1), 1.0), 50.0))
    out = {}
    for name, hyps in systems.items():
        other = per_example(hyps)
        if other.shape != base.shape or not np.array_equal(other[:, 1], base[:, 1]):
            raise ValueError(f"{name}: its token counts differ from the baseline's: perplexities per piece compare "
                             "only between runs of one tokenizer on one split")
        if np.array_equal(other[:, 0], base[:, 0]):
            out[name] = {"perplexity_bootstrap": 1.0}
            continue
        diffs = np.abs(ppl(base[idx]) - ppl(other[idx]))
        observed = abs(ppl(base) - ppl(other))
        out[name] = {"perplexity_bootstrap": float((np.sum(diffs - diffs.mean() > observed) + 1) / (samples + 1))}
    return out


# ---------------------------------------------------------------- evaluating a split


def evaluate_split(examples, tok, data_cfg, params, eval_fn, predict_fn, *, decode_examples: int = 0, shapes=None,
                   description: str = "scoring", split: str = ""):
    """Teacher-forced NLL of every example of `examples`, whole (the evaluate_split hook).

    `eval_fn` is not called: `predict_fn` (the predictor hook) gives per-example sums in one pass;
    `decode_examples` does not apply (nothing is decoded). Returns training.evaluation.SplitScores
    whose metrics are `score`'s and `truncated_to_model`; hyps are the per-example lines.
    """
    from research.data import corpus  # noqa: PLC0415 (the data layer imports research.tasks)
    from research.decoding.corpus import Output  # noqa: PLC0415
    from research.training import evaluation  # noqa: PLC0415

    del eval_fn, decode_examples, split
    limits = evaluation.model_limits(params)
    batches = corpus.eval_batches(examples, tok, data_cfg, shapes, limits)
    n = len(examples)
    rows = np.full((n, len(FIELDS)), np.nan)
    with console.progress(n, description or "", "examples", enabled=bool(description) and jax.process_index() == 0) as bar:
        for batch in batches:
            sums = jax.device_get(predict_fn(params, batch))
            index = np.asarray(batch["index"])
            real = index >= 0
            rows[index[real]] = np.stack([np.asarray(sums[k], np.float64) for k in FIELDS], 1)[real]
            bar.update(int(real.sum()))
    if np.isnan(rows).any():
        raise RuntimeError(f"the batches skipped {int(np.isnan(rows[:, 0]).sum())} of {n} examples")
    cut = batches.stats.truncated
    if cut:
        log.warning("%d of %d texts are longer than the model's learned positions (%s pieces, BOS included) and "
                    "were cut to them; the results count them as truncated_to_model", cut, n, limits[1])
    hyps = [example_line(*r) for r in rows]
    texts = examples.__getitems__(range(n)) if hasattr(examples, "__getitems__") else [examples[i] for i in range(n)]
    refs = [t["target"] for t in texts]
    metrics = {**score(hyps), "truncated_to_model": cut}
    outputs = [[Output(text=h, score=-float(r[0]), log_prob=-float(r[0]), length=int(r[1]))] for h, r in zip(hyps, rows)]
    return evaluation.SplitScores(metrics, outputs, hyps, refs, ["" for _ in refs])


# ---------------------------------------------------------------- continuing a prompt


def continuations(model, decode_cfg, prompt_len: int, n: int, table: int | None = None):
    """jitted (params, prompt [P] int32) -> generate.Hypotheses of `n` continuations of one prompt.

    BOS and the prompt's first P - 1 pieces are fed through the decoder's cache (`decode_step`, one
    `lax.scan`), then the decode config's search (generate.search: greedy, beam or sample) runs from
    there, its first step fed the prompt's last piece (BOS for an empty prompt) in place of the BOS a
    search starts with. A continuation has at most ceil(decode.max_len_a * P + decode.max_len_b) pieces
    (EOS included), and no more than the learned positions (`table`) leave after the prompt.
    Sampling keys: fold_in(key(decode.seed), row), so row i draws the same text for any n.
    """
    steps = generate.max_steps(decode_cfg, prompt_len)
    if table is not None:
        if prompt_len >= table:
            raise ConfigError(f"prompt: {prompt_len} pieces, but the model's learned positions hold {table} "
                              "tokens (BOS included); shorten the prompt")
        steps = min(steps, table - prompt_len)
    method = language_model.LanguageModel

    def run(params, prompt):
        step = lambda cache, tokens: model.apply({"params": params}, cache, tokens, method=method.decode_step)
        cache = model.apply({"params": params}, n, prompt_len + steps, method=method.init_cache)
        fed = jnp.concatenate([jnp.array([BOS], jnp.int32), prompt[:-1]]) if prompt_len else jnp.zeros((0,), jnp.int32)
        cache, _ = jax.lax.scan(lambda c, token: (step(c, jnp.full((n,), token))[1], None), cache, fed)
        last = prompt[-1] if prompt_len else jnp.int32(BOS)

        def step_fn(state, tokens):
            cache, first = state
            logits, cache = step(cache, jnp.where(first, last, tokens))
            return logits, (cache, jnp.zeros_like(first))

        keys = None
        if decode_cfg.search == "sample":
            keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(jax.random.key(decode_cfg.seed), jnp.arange(n))
        state = (cache, jnp.ones((n,), bool))
        return generate.search(step_fn, state, steps, jnp.full((n,), steps, jnp.int32), decode_cfg, keys)

    return jax.jit(run)


def sample_texts(model, params, tok, decode_cfg, prompt: str, n: int) -> list[str]:
    """`n` continuations of `prompt` as text, each exactly what follows the prompt: decoded together
    with the prompt's pieces and cut after the prompt's own text, so a continuation that starts a new
    word starts with its space and one that goes on with the last word does not."""
    ids = tok.encode_target(prompt)
    run = continuations(model, decode_cfg, len(ids), n, learned_max_len(params, "decoder"))
    h = jax.device_get(run(params, jnp.asarray(ids, jnp.int32)))
    head = tok.decode_target(ids)
    out = []
    for row in range(n):
        new = [int(t) for t in h.tokens[row, 0, : h.lengths[row, 0]]]
        whole = tok.decode_target(ids + new)
        out.append(whole[len(head):] if whole.startswith(head) else tok.decode_target(new))
    return out


TASK = register(Task(
    name="lm", metric="perplexity", lower_is_better=True, score=score, paired_test=perplexity_test,
    test_description="a paired bootstrap over examples (1,000 resamples, seed 12345) of perplexity.",
    read=read, tokenizer=tokenizer, save_tokenizer=tokenizers.save, load_tokenizer=tokenizers.from_folder,
    build_model=build_model, check_packing=check_packing, train_flops=language_model.train_flops,
    sums=losses.token_sums, predictor=predictor, evaluate_split=evaluate_split,
    images=lambda model, tok, examples, data_cfg, n: NoImages(), ensembles=False,
))
