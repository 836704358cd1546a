"""Adherence to verifiable principles: the fraction of a system's responses that pass each principle's exact
check, with seeded bootstrap CIs over items (the item is the resampling unit; SPEC section 4)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from harness.stats.bootstrap import DEFAULT_RESAMPLES, bootstrap_mean_ci


def _per_item(lines: Sequence[dict], side: str) -> dict[str, dict[str, bool]]:
    """Item -> {principle label: passed} for ``side`` ('candidate' or 'baseline'), one entry per item."""
    return {str(line["item"]): line["checks"][side] for line in lines if line.get("checks")}


def adherence(lines: Sequence[dict], seed: int = 0, n_resamples: int = DEFAULT_RESAMPLES) -> dict[str, Any]:
    """Mean per-item adherence (share of the item's checkable principles passed) of candidate and baseline, with
    95% percentile bootstrap CIs over items, and the per-principle pass rates; empty when no line has checks."""
    result: dict[str, Any] = {}
    for side, prefix in (("candidate", ""), ("baseline", "baseline_")):
        items = _per_item(lines, side)
        if not items:
            return {}
        scores = [float(np.mean(list(checks.values()))) for checks in items.values()]
        low, high, _ = bootstrap_mean_ci(scores, seed, n_resamples, method="percentile")
        labels = sorted({label for checks in items.values() for label in checks})
        result.update({
            f"{prefix}adherence": float(np.mean(scores)), f"{prefix}adherence_ci_low": low,
            f"{prefix}adherence_ci_high": high,
            f"{prefix}adherence_by_principle": {
                label: float(np.mean([checks[label] for checks in items.values() if label in checks]))
                for label in labels}})
    return result
