"""Agreement between two judges on the same calls: raw agreement and Cohen's kappa (SPEC section 4)."""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

from harness.core.errors import HarnessError
from harness.stats.bootstrap import _fraction
from harness.stats.verdicts import Verdict, item_key


def cohen_kappa(labels_a: Sequence[str], labels_b: Sequence[str]) -> float | None:
    """Cohen's kappa = (p_o - p_e) / (1 - p_e): p_o the observed agreement, p_e = sum over labels
    of the product of the two raters' label frequencies. None when p_e = 1 (one label only)."""
    n = len(labels_a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(labels_a, labels_b)) / n
    count_a, count_b = Counter(labels_a), Counter(labels_b)
    expected = sum(count_a[label] * count_b[label] for label in count_a) / n**2
    return (observed - expected) / (1 - expected) if expected < 1 else None


def judge_agreement(verdicts_a: Sequence[Verdict], verdicts_b: Sequence[Verdict]) -> dict[str, Any]:
    """Agreement of two judges on the same calls, matched on (candidate, baseline, item, order).

    Calls where either judge's answer failed to parse are excluded (and counted). Reports the raw
    agreement over {candidate, baseline, tie}, the raw agreement on calls where neither judge said
    tie, and Cohen's kappa over the three labels.
    """
    def key(v: Verdict) -> tuple:
        return (v.pair, item_key(v.item), v.order)

    second = {key(v): v for v in verdicts_b}
    matched = [(v.winner, second[key(v)].winner) for v in verdicts_a if key(v) in second]
    if not matched:
        raise HarnessError("the two verdict sets have no calls in common (matched on candidate, baseline, item, order)")
    parsed = [(x, y) for x, y in matched if x is not None and y is not None]
    non_tie = [(x, y) for x, y in parsed if "tie" not in (x, y)]
    return {
        "protocol": "agreement",
        "n": len(parsed),
        "n_matched_calls": len(matched),
        "n_parse_failures_excluded": len(matched) - len(parsed),
        "n_only_first": len(verdicts_a) - len(matched),
        "n_only_second": len(verdicts_b) - len(matched),
        "raw_agreement": _fraction(sum(x == y for x, y in parsed), len(parsed)),
        "non_tie_agreement": _fraction(sum(x == y for x, y in non_tie), len(non_tie)),
        "n_non_tie": len(non_tie),
        "cohen_kappa": cohen_kappa([x for x, _ in parsed], [y for _, y in parsed]),
        "tie_rate_first": _fraction(sum(x == "tie" for x, _ in parsed), len(parsed)),
        "tie_rate_second": _fraction(sum(y == "tie" for _, y in parsed), len(parsed)),
    }
