"""Translation: corpus BLEU and chrF by sacreBLEU; BLEU decides; sacreBLEU's paired tests compare."""
from __future__ import annotations

from research.analysis import significance
from research.decoding import metrics
from research.tasks import Task, register

TASK = register(Task(
    name="translation", metric="bleu", writes_text=True,
    score=lambda hyps, refs, data: metrics.bleu(hyps, refs),
    paired_test=significance.translation,
    test_description="sacreBLEU's paired bootstrap (1,000 resamples) and approximate randomization (10,000 trials), "
                     "seed 12345.",
))
