"""The Markdown pieces that research.report and research.scaling write their tables with, so both format
numbers, p-values and intervals alike."""
from __future__ import annotations

from research.analysis import decide


def places(values) -> int:
    """Decimal places for a metric's scores and their differences: 3 where every value lies on [-1, 1] (accuracy,
    F1 as fractions), where a difference of 0.005 matters and 2 places would round it away; else 2 (BLEU, ROUGE,
    perplexity). Values that are not numbers (a run without the score) are left out."""
    found = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return 3 if found and all(abs(v) <= 1 for v in found) else 2


def number(v, digits: int = 2) -> str:
    """A cell: floats to `digits` places with thousands separators, ints with separators, None and "" empty."""
    if v is None or v == "":
        return ""
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def p_value(p: float | None) -> str:
    """A p-value to 4 places, "< 0.0001" below them (where 0.0000 would read as impossible); empty for none."""
    return "" if p is None else ("< 0.0001" if p < 0.0001 else f"{p:.4f}")


def holm_cells(ps: list[float | None]) -> list[str]:
    """A table's p-values adjusted as one family (`decide.holm`), each as `p_value` writes it; "" where p is None."""
    adjusted = decide.holm({k: p for k, p in enumerate(ps) if p is not None})
    return [p_value(adjusted[k]) if k in adjusted else "" for k in range(len(ps))]


def interval(low: float | None, high: float | None, digits: int = 2) -> str:
    return "" if low is None else f"[{low:.{digits}f}, {high:.{digits}f}]"


def table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    return "\n".join(out + ["| " + " | ".join(r) + " |" for r in rows])
