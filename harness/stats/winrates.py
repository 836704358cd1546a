"""Win-rate statistics for pairwise LLM-judge verdicts (SPEC section 4).

Protocols:

- ``sami-paper``: the arithmetic of Franken et al. (NeurIPS 2024): one judge call per item,
  tie and parse failure = 0.5, p = mean, SEM = sqrt(p(1-p)/n), 95% CI = p +- 1.96 SEM,
  and the length-balanced win rate.
- ``robust`` (default): item score = mean over the judged orders, parse failures excluded and
  reported (never ties), a seeded bootstrap over items (the prompt is the resampling unit),
  a length-controlled win rate, and position-bias diagnostics.

Every result is a plain, JSON-serialisable dict; fractions are in [0, 1]; undefined quantities are None.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import scipy.optimize
import scipy.special

from harness.core.errors import HarnessError
from harness.core.hashing import derived_seed
from harness.stats.bootstrap import (CI_LEVEL, DEFAULT_RESAMPLES, _float, _fraction, _mean_or_none, bootstrap_mean_ci,
                                     resolution_note)
from harness.stats.verdicts import ORDERS, ItemRecord, Verdict, group_items, split_by_pair

PROTOCOLS = ("robust", "sami-paper")
PAPER_Z = 1.96  # the paper's normal quantile, kept at two decimals to reproduce its arithmetic
# Resamples for the intervals that refit a model on every resample (length-controlled win rate,
# Bradley-Terry): each resample is a maximum-likelihood fit, and 2,000 resamples put the 2.5% and
# 97.5% percentiles within about a quarter of a standard error of their limit.
DEFAULT_FIT_RESAMPLES = 2_000
DEFAULT_MAX_PARSE_FAILURE_RATE = 0.05
# Ridge on the slope / log-strengths (per observation): keeps maximum-likelihood fits finite under
# perfect separation (e.g. a system that wins every comparison); far too small to move other fits.
RIDGE = 1e-4

CALL_SCORE = {"candidate": 1.0, "tie": 0.5, "baseline": 0.0}


# --- sami-paper --------------------------------------------------------------------------------


def paper_call(record: ItemRecord, seed: int) -> Verdict:
    """The one call the ``sami-paper`` protocol scores for an item.

    The paper judged each item once, in a seeded random order. When an item was judged in both
    orders, the order is drawn from a content hash of (item, seed): index
    ``derived_seed(item, seed) % 2`` into ("candidate_first", "baseline_first").
    """
    if len(record.calls) == 1:
        return record.calls[0]
    wanted = ORDERS[derived_seed(record.item, seed) % 2]
    return next(call for call in record.calls if call.order == wanted)


def balanced_win_rate(scores: Sequence[float], records: Sequence[ItemRecord]) -> dict[str, Any]:
    """Length-balanced win rate (the SAMI paper's dialogue metric): the unweighted mean of the win
    rates on the items where the candidate is longer than the baseline and on the items where it
    is not. Items without both lengths are left out; None when either stratum is empty."""
    longer: list[float] = []
    not_longer: list[float] = []
    for score, record in zip(scores, records):
        if record.candidate_length is not None and record.baseline_length is not None:
            (longer if record.candidate_length > record.baseline_length else not_longer).append(score)
    value = (np.mean(longer) + np.mean(not_longer)) / 2 if longer and not_longer else None
    return {"balanced_win_rate": _float(value), "n_candidate_longer": len(longer),
            "n_candidate_not_longer": len(not_longer)}


def _length_means(records: Sequence[ItemRecord]) -> dict[str, float | None]:
    return {
        "mean_candidate_length": _mean_or_none([r.candidate_length for r in records if r.candidate_length is not None]),
        "mean_baseline_length": _mean_or_none([r.baseline_length for r in records if r.baseline_length is not None]),
    }


def first_position_preference(calls: Sequence[Verdict]) -> tuple[float | None, int]:
    """Fraction of decisive calls (not a tie, not a parse failure, order known) won by the response
    shown first; 0.5 means no position bias. Returns (fraction, number of such calls)."""
    decisive = [c for c in calls if c.winner in ("candidate", "baseline") and c.order is not None]
    first_won = sum((c.order == "candidate_first") == (c.winner == "candidate") for c in decisive)
    return _fraction(first_won, len(decisive)), len(decisive)


def sami_paper(verdicts: Sequence[Verdict], seed: int = 0) -> dict[str, Any]:
    """Win rate as in Franken et al. (2024): one call per item (see ``paper_call``), score 1 for a
    candidate win, 0.5 for a tie or an unparseable answer, 0 for a loss; p = mean over n items,
    SEM = sqrt(p(1-p)/n), 95% CI = p +- 1.96 SEM clipped to [0, 1]."""
    records = group_items(verdicts)
    if not records:
        raise HarnessError("no verdicts to score")
    calls = [paper_call(record, seed) for record in records]
    scores = np.array([CALL_SCORE.get(call.winner, 0.5) for call in calls])
    n = len(scores)
    p = float(scores.mean())
    sem = math.sqrt(p * (1 - p) / n)
    first, n_decisive = first_position_preference(calls)
    return {
        "protocol": "sami-paper",
        "n": n,
        "n_calls": n,
        "win_rate": p,
        "sem": sem,
        "ci_low": max(0.0, p - PAPER_Z * sem),
        "ci_high": min(1.0, p + PAPER_Z * sem),
        "ci_level": CI_LEVEL,
        "ci_method": "normal (p ± 1.96·SEM)",
        "seed": seed,
        **balanced_win_rate(scores, records),
        "tie_rate": sum(c.winner == "tie" for c in calls) / n,
        "parse_failure_rate": sum(c.winner is None for c in calls) / n,
        "first_position_preference": first,
        "n_decisive_calls": n_decisive,
        **_length_means(records),
        "note": resolution_note(n),
    }


# --- robust ------------------------------------------------------------------------------------


def fractional_logit(z: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Fractional logit (Papke & Wooldridge 1996): maximise the Bernoulli log-likelihood
    sum y log s(a + b z) + (1 - y) log(1 - s(a + b z)) for outcomes y in [0, 1], with a tiny ridge
    on the slope b. Returns (a, b)."""
    n = len(y)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        eta = theta[0] + theta[1] * z
        residual = scipy.special.expit(eta) - y
        value = np.sum(np.logaddexp(0.0, eta) - y * eta) / n + 0.5 * RIDGE * theta[1] ** 2
        grad = np.array([residual.mean(), (residual * z).mean() + RIDGE * theta[1]])
        return float(value), grad

    start = np.array([scipy.special.logit(np.clip(y.mean(), 1e-3, 1 - 1e-3)), 0.0])
    fit = scipy.optimize.minimize(loss, start, jac=True, method="L-BFGS-B")
    return float(fit.x[0]), float(fit.x[1])


def length_controlled_win_rate(
    scores: Sequence[float], length_differences: Sequence[float], seed: int, n_resamples: int = DEFAULT_FIT_RESAMPLES,
    level: float = CI_LEVEL,
) -> dict[str, Any]:
    """Length-controlled win rate: fit the item score y on the standardised length difference
    z = d / sd(d), d = candidate - baseline length in words, by fractional logit, and read the
    model at zero difference: sigmoid(intercept). z is scaled but not centred, so z = 0 is "equal
    lengths" (centring would read the model at the average difference and undo the control).

    CI: percentile bootstrap over items with ``n_resamples`` refits (BCa would need a jackknife of
    n more fits). None when fewer than two items have lengths, or when every difference is the same
    non-zero number (intercept and slope are then not separable).
    """
    y = np.asarray(scores, dtype=float)
    d = np.asarray(length_differences, dtype=float)
    result: dict[str, Any] = {"lc_win_rate": None, "lc_ci_low": None, "lc_ci_high": None, "lc_length_coef": None,
                              "lc_n": len(y), "lc_resamples": n_resamples, "lc_ci_method": "percentile"}
    sd = d.std() if len(d) else 0.0
    if len(y) < 2 or (sd == 0 and np.any(d != 0)):
        return result
    z = d / sd if sd > 0 else d
    intercept, slope = fractional_logit(z, y)
    interval = scipy.stats.bootstrap(
        (z, y), lambda zs, ys: scipy.special.expit(fractional_logit(zs, ys)[0]), paired=True, vectorized=False,
        n_resamples=n_resamples, method="percentile", confidence_level=level,
        random_state=np.random.default_rng(derived_seed("lc_win_rate", seed)),
    ).confidence_interval
    result.update(lc_win_rate=float(scipy.special.expit(intercept)), lc_ci_low=_float(interval.low),
                  lc_ci_high=_float(interval.high), lc_length_coef=slope)
    return result


def robust_item_scores(records: Sequence[ItemRecord]) -> tuple[list[ItemRecord], np.ndarray]:
    """Item score = mean over the item's parsed calls of 1 (win), 0.5 (tie), 0 (loss). Parse
    failures are dropped, never scored as ties; an item whose calls all failed is left out.
    Returns the scored records and their scores."""
    kept, scores = [], []
    for record in records:
        parsed = [CALL_SCORE[c.winner] for c in record.calls if c.winner is not None]
        if parsed:
            kept.append(record)
            scores.append(float(np.mean(parsed)))
    return kept, np.array(scores)


def position_consistency(records: Sequence[ItemRecord]) -> tuple[float | None, int]:
    """Fraction of items judged in both orders (both calls parsed) whose two verdicts name the same
    winner; a tie agrees only with a tie. Returns (fraction, number of such items)."""
    both = [r for r in records if len(r.calls) == 2 and all(c.winner is not None for c in r.calls)]
    agree = sum(r.calls[0].winner == r.calls[1].winner for r in both)
    return _fraction(agree, len(both)), len(both)


def robust(
    verdicts: Sequence[Verdict],
    seed: int = 0,
    n_resamples: int = DEFAULT_RESAMPLES,
    fit_resamples: int = DEFAULT_FIT_RESAMPLES,
    method: str = "BCa",
    max_parse_failure_rate: float = DEFAULT_MAX_PARSE_FAILURE_RATE,
) -> dict[str, Any]:
    """Robust win rate: mean of the item scores (``robust_item_scores``) with a seeded bootstrap
    CI over items (``bootstrap_mean_ci``: the prompt is the resampling unit, so an item judged in
    two orders counts once); a soft win rate from ``p_candidate`` where the judge gave one;
    the length-controlled win rate; and the diagnostics. ``parse_failure_exceeded`` is True when
    the share of failed judge calls is above ``max_parse_failure_rate``."""
    records = group_items(verdicts)
    if not records:
        raise HarnessError("no verdicts to score")
    calls = [c for r in records for c in r.calls]
    parsed = [c for c in calls if c.winner is not None]
    n_failed = len(calls) - len(parsed)
    kept, scores = robust_item_scores(records)
    n = len(scores)
    low, high, ci_method = bootstrap_mean_ci(scores, seed, n_resamples, method)

    soft_items = [[c.p_candidate for c in r.calls if c.winner is not None and c.p_candidate is not None] for r in kept]
    soft_scores = [float(np.mean(s)) for s in soft_items if s]
    soft_low, soft_high, _ = bootstrap_mean_ci(soft_scores, seed, n_resamples, method)

    with_lengths = [(s, r) for s, r in zip(scores, kept) if None not in (r.candidate_length, r.baseline_length)]
    lc = length_controlled_win_rate(
        [s for s, _ in with_lengths], [r.candidate_length - r.baseline_length for _, r in with_lengths],
        seed, fit_resamples,
    )
    consistency, n_both = position_consistency(kept)
    first, n_decisive = first_position_preference(parsed)
    parse_failure_rate = n_failed / len(calls)
    return {
        "protocol": "robust",
        "n": n,
        "n_calls": len(calls),
        "n_parse_failures": n_failed,
        "n_items_all_failed": len(records) - n,
        "win_rate": _mean_or_none(scores),
        "sem": float(scores.std(ddof=1) / math.sqrt(n)) if n >= 2 else None,
        "ci_low": low,
        "ci_high": high,
        "ci_level": CI_LEVEL,
        "ci_method": ci_method,
        "n_resamples": n_resamples,
        "resampling_unit": "item",
        "seed": seed,
        "soft_win_rate": _mean_or_none(soft_scores),
        "soft_ci_low": soft_low,
        "soft_ci_high": soft_high,
        "n_soft": len(soft_scores),
        **lc,
        **balanced_win_rate(scores, kept),
        "tie_rate": _fraction(sum(c.winner == "tie" for c in parsed), len(parsed)),
        "parse_failure_rate": parse_failure_rate,
        "max_parse_failure_rate": max_parse_failure_rate,
        "parse_failure_exceeded": parse_failure_rate > max_parse_failure_rate,
        "position_consistency": consistency,
        "n_both_orders": n_both,
        "first_position_preference": first,
        "n_decisive_calls": n_decisive,
        **_length_means(kept),
        "note": resolution_note(n),
    }


def win_rates(verdicts: Sequence[Verdict], protocol: str = "robust", **options: Any) -> dict[str, Any]:
    """Score every (candidate, baseline) pair of a verdict set under ``protocol``.

    Returns one dict: ``by_pair`` lists one result per pair (each with ``candidate`` and
    ``baseline``); when there is exactly one pair its keys are also at the top level.
    ``options`` go to ``robust`` or ``sami_paper`` (``seed`` only for the latter).
    """
    if protocol not in PROTOCOLS:
        raise HarnessError(f"unknown protocol '{protocol}'; valid protocols: {', '.join(PROTOCOLS)}")
    by_pair = []
    for (candidate, baseline), pair_verdicts in split_by_pair(verdicts).items():
        if protocol == "robust":
            result = robust(pair_verdicts, **options)
        else:
            result = sami_paper(pair_verdicts, seed=options.get("seed", 0))
        by_pair.append({"candidate": candidate, "baseline": baseline, **result})
    if not by_pair:
        raise HarnessError("no verdicts to score")
    top = dict(by_pair[0]) if len(by_pair) == 1 else {"protocol": protocol, "n_pairs": len(by_pair)}
    top["parse_failure_exceeded"] = any(r.get("parse_failure_exceeded", False) for r in by_pair)
    top["by_pair"] = by_pair
    return top
