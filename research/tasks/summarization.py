"""Summarization: mean per-document ROUGE-1/2/L/Lsum (rouge-score, stemmed); ROUGE-L decides.

Reports score the lead baselines beside the architectures (research/analysis/baselines.py).
"""
from __future__ import annotations

from research.analysis import baselines, significance
from research.decoding import metrics
from research.tasks import Task, register

TASK = register(Task(
    name="summarization", metric="rougeL", writes_text=True,
    score=lambda hyps, refs, data: metrics.rouge(hyps, refs),
    paired_test=significance.summarization,
    test_description="a paired bootstrap over per-document ROUGE (1,000 resamples, seed 12345).",
    baselines=baselines.leads,
))
