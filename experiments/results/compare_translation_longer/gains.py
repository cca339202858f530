"""Test BLEU per pair and seed at compare_translation_small's budget (8.2e12 FLOPs) against this sweep's (1.64e13).

Both sweeps use seeds 0-2 with the same configs but for the budget, so each pair's runs pair up by seed. Writes the
README's table to gains.md; run from the repository root:

    python experiments/results/compare_translation_longer/gains.py
"""
from __future__ import annotations

import csv
import statistics
from pathlib import Path

from scipy import stats

RESULTS = Path(__file__).resolve().parent.parent


def test_bleu(report_csv: Path) -> dict[tuple[str, int], tuple[float, int]]:
    """(encoder+decoder, seed) -> (test BLEU, steps) from a report.csv of `python -m research.report`."""
    return {(f"{r['encoder']}+{r['decoder']}", int(r["seed"])): (float(r["test_bleu"]), int(r["steps"]))
            for r in csv.DictReader(report_csv.open())}


def table(small: dict, longer: dict) -> list[str]:
    lines = ["| pair | steps, 8.2e12 / 1.64e13 | test BLEU at 8.2e12, seeds 0 / 1 / 2 | at 1.64e13 | gain, mean ± std "
             "| paired t, 3 seeds |", "| --- | --- | --- | --- | --- | --- |"]
    pairs = sorted({p for p, _ in longer}, key=lambda p: -statistics.fmean(v for (q, _), (v, _) in longer.items() if q == p))
    for pair in pairs:
        seeds = sorted(s for q, s in longer if q == pair and (q, s) in small)
        before, after = ([runs[(pair, s)][0] for s in seeds] for runs in (small, longer))
        gain = [b - a for a, b in zip(before, after)]
        p = stats.ttest_rel(after, before).pvalue
        steps = " / ".join(f"{statistics.fmean(runs[(pair, s)][1] for s in seeds):.0f}" for runs in (small, longer))
        lines.append(f"| {pair} | {steps} | {' / '.join(f'{x:.2f}' for x in before)} ({statistics.fmean(before):.2f}) | "
                     f"{' / '.join(f'{x:.2f}' for x in after)} ({statistics.fmean(after):.2f}) | "
                     f"{statistics.fmean(gain):+.2f} ± {statistics.stdev(gain):.2f} | "
                     f"{'p < 0.0001' if p < 0.0001 else f'p = {p:.4f}'} |")
    return lines


if __name__ == "__main__":
    lines = table(test_bleu(RESULTS / "compare_translation_small" / "report.csv"),
                  test_bleu(RESULTS / "compare_translation_longer" / "report.csv"))
    (RESULTS / "compare_translation_longer" / "gains.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
