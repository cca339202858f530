"""The hooks every seq2seq task (translation, summarization, sequence) uses: today's functions, unchanged.

Each hook is the function that did the job before tasks had hooks, or a thin
call of it, so a seq2seq run computes exactly what it did. Three calls import
their module when called: the data corpus and evaluation modules ask
`research.tasks` for the task themselves, and decoding is only needed by
runs that decode.
"""
from __future__ import annotations

from typing import Any, Sequence

from research.data import tokenizer as tokenizers
from research.models import flops
from research.models.seq2seq import Seq2Seq, architecture, check_packing  # noqa: F401 (check_packing: a hook)
from research.training.attention_images import AttentionImages
from research.training.losses import token_sums as sums  # noqa: F401 (a hook)

tokenizer = tokenizers.load_or_train  # SentencePiece or symbols on both sides of the training pairs, cached
save_tokenizer = tokenizers.save
load_tokenizer = tokenizers.from_folder
train_flops = flops.train_flops


def read(data_cfg, splits: Sequence[str]) -> dict:
    """Text pairs of a local corpus, a tfds catalog dataset or a generated one (research/data/corpus.py)."""
    from research.data import corpus  # noqa: PLC0415

    return corpus.read_pairs(data_cfg, tuple(splits))


def check_split(tok, examples, split: str, data_cfg) -> None:
    """Nothing to refuse: any text can be tokenized and scored."""


def build_model(cfg, tok) -> tuple[Seq2Seq, Any]:
    """(Seq2Seq, Architecture) for the tokenizer's vocabulary sizes (research/models/seq2seq.py); its training
    forward pass adds the coverage loss with trainer.lambda_coverage > 0."""
    arch = architecture(cfg, tok.source_vocab, tok.target_vocab)
    return Seq2Seq(arch, lambda_coverage=cfg.trainer.lambda_coverage), arch


def predictor(model, decode_cfg):
    """The jitted n-best search the decode config chooses (research/decoding/generate.py)."""
    from research.decoding.generate import jit_generate_nbest  # noqa: PLC0415

    return jit_generate_nbest(model, decode_cfg)


def evaluate_split(examples, tokenizer, data_cfg, params, eval_fn, generate_fn, *, decode_examples: int = 0,
                   shapes=None, description: str = "decoding", split: str = ""):
    """The loss over every example, then decoding and the task metric (research/training/evaluation.py);
    `split` names the split for tasks that check it; nothing to check here."""
    from research.training import evaluation  # noqa: PLC0415

    return evaluation.evaluate_split(examples, tokenizer, data_cfg, params, eval_fn, generate_fn,
                                     decode_examples=decode_examples, shapes=shapes, description=description)


class _AttentionImages:
    """research/training/attention_images.py's heatmaps, under the images hook's `log` signature."""

    def __init__(self, model, tok, examples, data_cfg, n: int):
        self.images = AttentionImages(model, tok, examples, data_cfg, n=n)

    def log(self, logger, step: int, params, scores=None) -> int:
        return self.images.log(logger, step, params)


def images(model, tok, examples, data_cfg, n: int) -> _AttentionImages:
    """Cross-attention heatmaps of `n` fixed validation examples after each validation."""
    return _AttentionImages(model, tok, examples, data_cfg, n)


__all__ = ["read", "tokenizer", "check_split", "save_tokenizer", "load_tokenizer", "build_model", "check_packing",
           "train_flops", "sums", "predictor", "evaluate_split", "images"]
