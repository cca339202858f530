"""sacreBLEU's paired significance tests on BLEU and chrF, with every trial scored at once.

Why: `sacrebleu.significance.PairedTest` scores each bootstrap resample and each approximate
randomization (AR) trial in a Python loop, through a score object per trial (~0.4 ms each): a
report's 8 systems x (1,000 + 10,000) x 2 metrics x 2 pseudo-systems are 320,000 calls, more than a
minute. Here the same trials are scored as arrays, and the p-values are sacreBLEU's own, not
approximations of them (tests/analysis/test_significance.py asserts `==` against `PairedTest`).

What is sacreBLEU's: the per-sentence sufficient statistics (`metric._extract_corpus_statistics`),
the observed scores (`metric._aggregate_and_compute`) and, through the same generator calls, the
same random draws: each system's test re-seeds `np.random.default_rng(seed)` (a falsy seed is
None, unseeded, as in sacreBLEU), so every system gets the same AR selector
(`rng.integers(2, size=(trials, n), dtype=bool)`) and the same bootstrap indices
(`rng.choice(n, size=(resamples, n), replace=True)`).

What is ours, and why it is exact:
- Trial statistics. AR: sacreBLEU's `pos_sel @ bl + ~pos_sel @ sys` in int64 is
  `sys + pos_sel @ (bl - sys)`, computed as one float64 matrix product for all systems; every
  partial sum is an integer far below 2**53, so it is exact whatever the order. Bootstrap:
  sacreBLEU sums the float32 statistics of a resample's sentences (`stats_np[idxs][i].sum(0)`);
  here a count matrix (how often each sentence is drawn) times the statistics, exact in float64.
  Integers up to 2**24 are exact in float32 and no partial sum of non-negative integers exceeds
  their total, so wherever a resample's totals are at most 2**24 (checked on the totals
  themselves) float32 summation in any order gives these same integers; otherwise sacreBLEU's
  own float32 summation is repeated.
  (The statistics themselves cost most of the remaining time: sacreBLEU's tokenizers and n-gram
  counting, ~0.3 s (BLEU) and ~0.7 s (chrF) per system of 4,500 sentences, once here, where
  `PairedTest` extracts them again for each test.)
- Scores. `_bleu` and `_chrf` follow `BLEU.compute_bleu` and `CHRF._compute_f_score` line by
  line, in the dtypes sacreBLEU's scalar code computes in: int64 statistics (AR) give float64,
  float32 statistics (bootstrap) give float32 precisions and chrF (NumPy >= 2 promotes a Python
  number with a NumPy scalar and with an array alike, NEP 50). The exactly rounded operations
  (+ - * /) are the same in arrays as in scalars; the rest is done as sacreBLEU does it, value by
  value: `math.log`, `math.exp` and Python's `sum` of the log precisions.
- p = (count(statistic > observed) + 1) / (n + 1), sacreBLEU's `_compute_p_value`, on arrays of
  the dtypes sacreBLEU's own score lists become.
A few trials of every test are also scored by sacreBLEU itself and must agree (`_spot_check`):
a guard against another NumPy or sacreBLEU computing differently.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

EXACT_FLOAT32 = 2 ** 24  # integers up to this are exact in float32
CHUNK = 1000             # AR trials per matrix product (its float64 selector: CHUNK x sentences)
SPOT_CHECKS = 3          # trials of each test re-scored by sacreBLEU itself


def _float_dtype(stats: np.ndarray) -> type:
    """The dtype sacreBLEU's scalar arithmetic on these statistics lands in: float32 stays float32;
    int64 divided (true division) becomes float64."""
    return np.float32 if stats.dtype == np.float32 else np.float64


def _bleu(metric, stats: np.ndarray) -> np.ndarray:
    """`metric._compute_score_from_stats(row).score` for every row of `stats` (trials x statistics):
    `BLEU.compute_bleu` with exp smoothing, no effective order."""
    if metric.smooth_method != "exp" or metric.effective_order:
        raise ValueError("only sacreBLEU's corpus BLEU defaults (exp smoothing, no effective order) are vectorised")
    order = metric.max_ngram_order
    sys_len, ref_len = stats[:, 0].astype(np.int64), stats[:, 1].astype(np.int64)  # int(stats[0]), int(stats[1])
    correct, total = stats[:, 2:2 + order], stats[:, 2 + order:]
    fdt = _float_dtype(stats)
    # bp = math.exp(1 - ref_len / sys_len) if sys_len < ref_len (0.0 for an empty system), else 1.0
    bp = np.ones(len(stats))
    short = sys_len < ref_len
    ratio = 1 - ref_len[short] / np.maximum(sys_len[short], 1)  # int / int: both exact doubles, one rounding
    bp[short] = [math.exp(r) if s > 0 else 0.0 for r, s in zip(ratio.tolist(), sys_len[short].tolist())]
    matched = (correct != 0).any(1)  # else: the early return of 0.0 (#141)
    # The loop over orders: `alive` until the first order without n-grams (break); the precisions of
    # the orders from there on stay 0.0, whose my_log is -9999999999.
    logs = np.full((len(stats), order), -9999999999.0)
    smooth = np.ones(len(stats), fdt)  # smooth_mteval: powers of two, exact in float32
    alive = matched.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        for n in range(order):
            alive &= total[:, n] != 0
            zero = alive & (correct[:, n] == 0)
            smooth = np.where(zero, smooth * 2, smooth)
            smoothed = 100. / (smooth * total[:, n])           # 100. / (smooth_mteval * total[n - 1])
            precise = 100. * correct[:, n] / total[:, n]       # 100. * correct[n - 1] / total[n - 1]
            prec = np.where(zero, smoothed, precise)[alive]
            logs[alive, n] = [math.log(p) for p in prec.astype(np.float64).tolist()]  # my_log (p > 0 here)
    # score = bp * math.exp(sum([my_log(p) for p in precisions]) / eff_order), the sum Python's own
    scores = [b * math.exp(sum(r) / order) for b, r in zip(bp.tolist(), logs.tolist())]
    return np.where(matched, np.array(scores, np.float64), 0.0)


def _chrf(metric, stats: np.ndarray) -> np.ndarray:
    """`metric._compute_score_from_stats(row).score` for every row of `stats`, as the array sacreBLEU's list of
    them becomes: `CHRF._compute_f_score` with effective-order averaging (eps_smoothing False)."""
    if metric.eps_smoothing:
        raise ValueError("only sacreBLEU's default chrF (eps_smoothing=False) is vectorised")
    fdt = _float_dtype(stats)
    factor = metric.beta ** 2
    avg_prec, avg_rec = np.zeros(len(stats), fdt), np.zeros(len(stats), fdt)
    effective = np.zeros(len(stats), np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(metric.order):
            n_hyp, n_ref, n_match = stats[:, 3 * i], stats[:, 3 * i + 1], stats[:, 3 * i + 2]
            ok = (n_hyp > 0) & (n_ref > 0)  # only these orders reach avg_prec/avg_rec; the eps ones do not
            avg_prec = np.where(ok, avg_prec + n_match / n_hyp, avg_prec)
            avg_rec = np.where(ok, avg_rec + n_match / n_ref, avg_rec)
            effective += ok
        # avg /= effective_order: a Python int, which float32 does not widen
        avg_prec = avg_prec / np.maximum(effective, 1).astype(fdt)
        avg_rec = avg_rec / np.maximum(effective, 1).astype(fdt)
        score = (1 + factor) * avg_prec * avg_rec
        score = score / ((factor * avg_prec) + avg_rec)
        score = 100 * score
    # `return 0.0` (a Python float) without an effective order or when avg_prec + avg_rec is 0; a list of
    # float32 scores with any Python float among them becomes a float64 array, without one a float32 array
    python_zero = (effective == 0) | ((avg_prec + avg_rec) == 0)
    if python_zero.any():
        return np.where(python_zero, 0.0, score.astype(np.float64))
    return score


SCORERS = {"BLEU": _bleu, "CHRF": _chrf}


def _scores(metric, stats: np.ndarray) -> np.ndarray:
    return SCORERS[type(metric).__name__](metric, stats)


def _p_value(stats: np.ndarray, real_difference: float) -> float:
    """sacreBLEU's `_compute_p_value`: resamples/trials whose statistic EXCEEDS the observed one, +1."""
    return (np.sum(stats > real_difference).item() + 1) / (len(stats) + 1)


def _spot_check(metric, got: np.ndarray, theirs) -> None:
    """The first trials' scores against sacreBLEU's own scoring of them (`theirs(t)`)."""
    for t in range(min(SPOT_CHECKS, len(got))):
        want = theirs(t)
        # the value; and a float32 array only where sacreBLEU's scores are float32 (its list's dtype)
        if got[t] != want or (got.dtype == np.float32 and not isinstance(want, np.float32)):
            raise RuntimeError(f"vectorised {type(metric).__name__} of trial {t}: {got[t]!r}, sacreBLEU's: {want!r}")


def _bootstrap_sums(idxs: np.ndarray, stats32: list[np.ndarray]) -> list[np.ndarray]:
    """Each float32 statistics matrix (sentences x k) summed over every resample of `idxs`, as sacreBLEU
    (`stats_np[idxs]`, each resample `.sum(0)` in float32)."""
    samples, n = idxs.shape
    counts = np.bincount((idxs + n * np.arange(samples)[:, None]).ravel(), minlength=samples * n)
    sums = counts.reshape(samples, n).astype(np.float64) @ np.hstack(stats32).astype(np.float64)
    out, col = [], 0
    for s in stats32:
        block, col = sums[:, col:col + s.shape[1]], col + s.shape[1]
        if block.max(initial=0) <= EXACT_FLOAT32:
            out.append(block.astype(np.float32))
        else:  # float32 rounding: sacreBLEU's own summation, resample by resample
            out.append(np.stack([s[i].sum(0) for i in idxs]))
    return out


def _ar_shuffles(pos_sel: np.ndarray,
                 pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(pos_sel @ bl + ~pos_sel @ sys, ~pos_sel @ bl + pos_sel @ sys) in int64 for every (bl, sys) pair."""
    diff = np.hstack([bl - sys for bl, sys in pairs]).astype(np.float64)
    moved = np.vstack([pos_sel[i:i + CHUNK].astype(np.float64) @ diff for i in range(0, len(pos_sel), CHUNK)])
    moved = moved.astype(np.int64)
    out, col = [], 0
    for bl, sys in pairs:
        block, col = moved[:, col:col + bl.shape[1]], col + bl.shape[1]
        out.append((sys.sum(0) + block, bl.sum(0) - block))
    return out


def paired_p_values(baseline: Sequence[str], systems: dict[str, Sequence[str]], refs: Sequence[str],
                    bootstrap_samples: int, ar_trials: int, seed: int | None) -> dict[str, dict[str, float]]:
    """sacreBLEU's paired bootstrap and AR p-values of BLEU and chrF for each system against `baseline`,
    as `PairedTest([("baseline", baseline), *systems.items()], {"bleu": BLEU(), "chrf": CHRF()}, [refs],
    test_type=..., n_samples=...)` with SACREBLEU_SEED=seed gives them:
    {name: {"bleu_bootstrap", "chrf_bootstrap", "bleu_ar", "chrf_ar"}}."""
    from sacrebleu.metrics import BLEU, CHRF

    metrics = {"bleu": BLEU(references=[list(refs)]), "chrf": CHRF(references=[list(refs)])}  # refs cached once
    names = list(systems)
    # [metric][system]: sacreBLEU's per-sentence statistics (lists of ints) and corpus scores
    stats = {m: [metric._extract_corpus_statistics(list(h), None) for h in [baseline, *systems.values()]]
             for m, metric in metrics.items()}
    observed = {m: [metrics[m]._aggregate_and_compute(s).score for s in stats[m]] for m in metrics}
    n = len(refs)
    out: dict[str, dict[str, float]] = {name: {} for name in names}

    rng_seed = seed if seed else None  # PairedTest: `self._seed if self._seed else None`
    # Paired bootstrap: float32 statistics, as `_paired_bs_test`.
    idxs = np.random.default_rng(rng_seed).choice(n, size=(bootstrap_samples, n), replace=True)
    for m, metric in metrics.items():
        stats32 = [np.array(s, dtype="float32") for s in stats[m]]
        sums = _bootstrap_sums(idxs, stats32)
        scores = [_scores(metric, s) for s in sums]
        for s32, sc in zip(stats32, scores):
            _spot_check(metric, sc, lambda t: metric._compute_score_from_stats(s32[idxs[t]].sum(0)).score)
        for k, name in enumerate(names, start=1):
            sample_diffs = np.abs(scores[k] - scores[0])
            diff = abs(observed[m][0] - observed[m][k])
            out[name][f"{m}_bootstrap"] = _p_value(sample_diffs - sample_diffs.mean(), diff)
    # Approximate randomization: int64 statistics, as `_paired_ar_test`.
    pos_sel = np.random.default_rng(rng_seed).integers(2, size=(ar_trials, n), dtype=bool)
    for m, metric in metrics.items():
        arrays = [np.array(s, dtype=np.int64) for s in stats[m]]
        shuffles = _ar_shuffles(pos_sel, [(arrays[0], a) for a in arrays[1:]])
        for k, (name, (shuf_a, shuf_b)) in enumerate(zip(names, shuffles), start=1):
            scores_a, scores_b = _scores(metric, shuf_a), _scores(metric, shuf_b)
            _spot_check(metric, scores_a, lambda t: metric._aggregate_and_compute(shuf_a[t][None]).score)
            _spot_check(metric, scores_b, lambda t: metric._aggregate_and_compute(shuf_b[t][None]).score)
            diff = abs(observed[m][0] - observed[m][k])
            out[name][f"{m}_ar"] = _p_value(np.abs(scores_a - scores_b), diff)
    return {name: {key: p[key] for key in ("bleu_bootstrap", "bleu_ar", "chrf_bootstrap", "chrf_ar")}
            for name, p in out.items()}
