"""Sequence accuracy by target length: where each architecture stops generalising.

The diagnostic tasks train on short sequences and test on longer ones (or on
SCAN's longer action sequences), so the question is not one accuracy but the
curve: exact-match accuracy per target-length bucket, averaged over seeds,
with the longest training target marked. The buckets are the evaluation's own
(`sequence_accuracy_len_{lo}_{hi}` in eval_test.json or the last validation);
this module only gathers them across runs, so the report and its plot agree.
"""
from __future__ import annotations

import statistics


def by_length(rows: list[dict]) -> dict | None:
    """{"split", "buckets": [(lo, hi)], "mean": {arch: [float | None]}, "std": {...}, "boundary": int | None}.

    Test buckets where any run has them, else the validation ones; None when no
    run reports accuracy by length (not a sequence task). `boundary` is the
    longest training target (summary's `train_target_len_max`) over the runs.
    """
    for split in ("test", "validation"):
        prefix = f"{split}_sequence_accuracy_len_"
        buckets = sorted({tuple(int(x) for x in k[len(prefix):].split("_")) for r in rows for k in r
                          if k.startswith(prefix)})
        if buckets:
            break
    else:
        return None
    archs = sorted({r["architecture"] for r in rows})
    mean, std = {}, {}
    for arch in archs:
        mean[arch], std[arch] = [], []
        for lo, hi in buckets:
            vals = [r[f"{prefix}{lo}_{hi}"] for r in rows if r["architecture"] == arch and f"{prefix}{lo}_{hi}" in r]
            mean[arch].append(statistics.fmean(vals) if vals else None)
            std[arch].append(statistics.stdev(vals) if len(vals) > 1 else None)
    lengths = [r["train_target_len_max"] for r in rows if r.get("train_target_len_max") is not None]
    return {"split": split, "buckets": buckets, "mean": mean, "std": std, "boundary": max(lengths) if lengths else None}
