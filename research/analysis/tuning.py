"""Each architecture at its best setting of the hyperparameters a sweep tunes, the setting chosen on validation.

A sweep that crosses architectures with a hyperparameter (three encoders at three learning rates) answers two
questions. The report's decision answers "which of these configurations is best?". Someone choosing an
architecture asks "which is best when each gets its own best setting?", since one learning rate shared by all
can favour one of them. `python -m research.report DIR --tune KEY` answers the second:

- a *family* is an architecture name without the tuned overrides (`cnn` for `cnn optim.learning_rate=0.01`),
  named by the rule that names architectures (`runs.architectures`);
- within each family the setting with the best mean validation score over seeds is chosen;
- the chosen settings are then compared on the test set, with the decision's intervals and paired tests.

The choice never reads the test set, so the chosen settings' test scores carry no selection bias; their
validation scores do (the best of several noisy means), which is why the decision is on test.
"""
from __future__ import annotations

import math

from research import tasks
from research.sweep import override_key
from research.analysis.runs import architectures


class BadTune(ValueError):
    """--tune names a key the sweep does not vary, or a family has no validation score to choose by."""


def varying_keys(rows: list[dict]) -> list[str]:
    """The override keys whose value differs between runs, in first-seen order (seeds included)."""
    common = set.intersection(*(set(r["_overrides"]) for r in rows)) if rows else set()
    seen: dict[str, None] = {}
    for r in rows:
        for o in r["_overrides"]:
            if o not in common:
                seen.setdefault(override_key(o), None)
    return list(seen)


def families(rows: list[dict], keys: list[str]) -> dict[str, str]:
    """run -> family: the architecture name the run would have if the sweep had not varied `keys`.

    Refuses a key that no run varies (a typo would otherwise compare every configuration as its own family)."""
    wanted = [override_key(k) for k in keys]
    varying = varying_keys(rows)
    missing = [k for k in wanted if k not in varying]
    if missing:
        raise BadTune(f"--tune {' '.join(missing)}: not an override that varies between the sweep's runs; those that "
                      f"do: {', '.join(varying) or 'none'}")
    stripped = [{**r, "_overrides": [o for o in r["_overrides"] if override_key(o) not in wanted]} for r in rows]
    architectures(stripped)
    return {r["run"]: s["architecture"] for r, s in zip(rows, stripped)}


def choose(rows: list[dict], groups: list[dict], keys: list[str]) -> list[dict]:
    """For each family (`families`), in order of its chosen setting's validation mean, the better first:
    {"family", "chosen": the architecture chosen, "settings": [{"architecture", "setting", "values": key -> value,
    "runs", "mean"}], "edges": tuned key -> "lowest" or "highest" where the chosen value is at that edge of the
    scored settings' values (`edge`)}.

    The score is the mean over seeds of the task metric's final validation value (`validation_<metric>`);
    the better is the higher, or the lower where the task's metric is lower-is-better (perplexity). A setting
    with no validation score is listed but never chosen; a family with none is refused."""
    family_of = families(rows, keys)
    metric = rows[0]["metric"]
    lower = tasks.by_metric(metric).lower_is_better
    wanted = [override_key(k) for k in keys]
    by_arch = {g["architecture"]: g for g in groups}
    out: dict[str, dict] = {}
    for r in rows:
        fam = out.setdefault(family_of[r["run"]], {"family": family_of[r["run"]], "settings": {}})
        if r["architecture"] not in fam["settings"]:
            mean = by_arch[r["architecture"]].get(f"validation_{metric}_mean")
            tuned = [o.lstrip("+~") for o in r["_overrides"] if override_key(o) in wanted]
            fam["settings"][r["architecture"]] = {"architecture": r["architecture"], "setting": " ".join(tuned),
                                                  "values": {override_key(o): o.partition("=")[2] for o in tuned},
                                                  "runs": by_arch[r["architecture"]]["runs"],
                                                  "mean": mean if mean is not None and math.isfinite(mean) else None}
    for fam in out.values():
        scored = [s for s in fam["settings"].values() if s["mean"] is not None]
        if not scored:
            raise BadTune(f"{fam['family']}: no run of any setting has a validation {metric} to choose by")
        best = (min if lower else max)(scored, key=lambda s: s["mean"])  # the first listed wins a tie
        fam["chosen"], fam["score"] = best["architecture"], best["mean"]
        fam["settings"] = list(fam["settings"].values())  # in the runs' order
        fam["edges"] = {k: found for k in wanted
                        if (found := edge(best["values"].get(k), [s["values"].get(k) for s in scored]))}
    ordered = sorted(out.values(), key=lambda f: f["score"] if lower else -f["score"])
    return [{k: f[k] for k in ("family", "chosen", "settings", "edges")} for f in ordered]


def edge(chosen: str | None, tried: list[str | None]) -> str | None:
    """"lowest" or "highest" where `chosen` is the smallest or largest of two or more numeric values `tried`, else
    None (inside them, one value, or not numbers). Why: a setting chosen at the edge of a grid is not bracketed; the
    best value may lie beyond it, and a ranking of architectures at their best settings says less than it seems."""
    try:
        numbers = sorted({float(v) for v in tried})
        at = float(chosen)
    except (TypeError, ValueError):
        return None
    if len(numbers) < 2:
        return None
    return "lowest" if at == numbers[0] else "highest" if at == numbers[-1] else None
