"""Paired comparison of two candidates judged against the same baseline on shared items (SPEC section 4):
paired bootstrap CI of the win-rate difference, sign test and permutation test."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import scipy.stats

from harness.core.errors import HarnessError
from harness.core.hashing import derived_seed
from harness.stats.bootstrap import CI_LEVEL, DEFAULT_RESAMPLES, _float, _mean, _mean_or_none, bootstrap_mean_ci
from harness.stats.verdicts import Verdict, group_items, item_key, split_by_pair
from harness.stats.winrates import DEFAULT_MAX_PARSE_FAILURE_RATE, robust_item_scores

DEFAULT_PERMUTATIONS = 10_000


def _single_pair(verdicts: Sequence[Verdict], label: str) -> tuple[str | None, str | None]:
    pairs = list(split_by_pair(verdicts))
    if len(pairs) != 1:
        raise HarnessError(f"{label}: a paired comparison needs one (candidate, baseline) pair, found {len(pairs)}")
    return pairs[0]


def _difference_note(n: int, low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return f"{n} shared items: too few for an interval"
    return f"{n} shared items resolve the difference to about ±{100 * (high - low) / 2:.0f} points at 95%"


def paired_comparison(verdicts_a: Sequence[Verdict], verdicts_b: Sequence[Verdict], *, seed: int = 0,
                      n_resamples: int = DEFAULT_RESAMPLES, n_permutations: int = DEFAULT_PERMUTATIONS,
                      method: str = "BCa", max_parse_failure_rate: float = DEFAULT_MAX_PARSE_FAILURE_RATE
                      ) -> dict[str, Any]:
    """Candidate A vs candidate B, each judged against the same baseline, on their shared items.

    Item scores as in ``robust``; the difference of win rates is the mean of the per-item
    differences d = score_A - score_B. CI: paired bootstrap over shared items (``bootstrap_mean_ci``
    of d). Tests of "no difference": the exact two-sided sign test (binomial, p = 1/2) on the items
    where the scores differ, and a paired permutation test that flips the signs of d
    (``scipy.stats.permutation_test``, seeded; exact when 2^n <= ``n_permutations``).
    """
    candidate_a, baseline_a = _single_pair(verdicts_a, "first verdict set")
    candidate_b, baseline_b = _single_pair(verdicts_b, "second verdict set")
    if None not in (baseline_a, baseline_b) and baseline_a != baseline_b:
        raise HarnessError(f"a paired comparison needs the same baseline, got '{baseline_a}' and '{baseline_b}'")
    scored = []
    failure_rates = []
    for verdicts in (verdicts_a, verdicts_b):
        records = group_items(verdicts)
        kept, scores = robust_item_scores(records)
        scored.append({item_key(r.item): s for r, s in zip(kept, scores)})
        calls = [c for r in records for c in r.calls]
        failure_rates.append(sum(c.winner is None for c in calls) / len(calls) if calls else 0.0)
    shared = [key for key in scored[0] if key in scored[1]]
    a = np.array([scored[0][key] for key in shared])
    b = np.array([scored[1][key] for key in shared])
    d = a - b
    n = len(shared)
    low, high, ci_method = bootstrap_mean_ci(d, seed, n_resamples, method)
    n_a_better, n_b_better = int(np.sum(d > 0)), int(np.sum(d < 0))
    differing = n_a_better + n_b_better
    sign_p = scipy.stats.binomtest(n_a_better, differing).pvalue if differing else 1.0
    permutation_p = None
    if n:
        permutation_p = scipy.stats.permutation_test(
            (d,), _mean, permutation_type="samples", n_resamples=n_permutations,
            random_state=np.random.default_rng(derived_seed("permutation", seed)),
        ).pvalue
    return {
        "protocol": "paired",
        "candidate_a": candidate_a,
        "candidate_b": candidate_b,
        "baseline": baseline_a if baseline_a is not None else baseline_b,
        "n": n,
        "n_shared": n,
        "n_only_a": len(scored[0]) - n,
        "n_only_b": len(scored[1]) - n,
        "win_rate_a": _mean_or_none(a),
        "win_rate_b": _mean_or_none(b),
        "difference": _mean_or_none(d),
        "ci_low": low,
        "ci_high": high,
        "ci_level": CI_LEVEL,
        "ci_method": ci_method,
        "n_resamples": n_resamples,
        "resampling_unit": "shared item",
        "seed": seed,
        "n_a_better": n_a_better,
        "n_b_better": n_b_better,
        "sign_test_p": _float(sign_p),
        "permutation_p": _float(permutation_p),
        "n_permutations": n_permutations,
        "parse_failure_rate_a": failure_rates[0],
        "parse_failure_rate_b": failure_rates[1],
        "max_parse_failure_rate": max_parse_failure_rate,
        "parse_failure_exceeded": max(failure_rates) > max_parse_failure_rate,
        "note": _difference_note(n, low, high),
    }
