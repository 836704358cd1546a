"""Win-rate statistics for pairwise LLM-judge verdicts (SPEC section 4).

Protocols:

- ``sami-paper``: the arithmetic of Franken et al. (NeurIPS 2024): one judge call per item,
  tie and parse failure = 0.5, p = mean, SEM = sqrt(p(1-p)/n), 95% CI = p +- 1.96 SEM,
  and the length-balanced win rate.
- ``robust`` (default): item score = mean over the judged orders, parse failures excluded and
  reported (never ties), a seeded bootstrap over items (the prompt is the resampling unit),
  a length-controlled win rate, and position-bias diagnostics.

Also: a paired comparison of two candidates against the same baseline, Bradley-Terry scores
for round-robin comparisons, and agreement between two judges. Every result is a plain,
JSON-serialisable dict; fractions are in [0, 1]; undefined quantities are None.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from typing import Any, Hashable, Sequence

import numpy as np
import scipy.optimize
import scipy.special
import scipy.stats

from harness.core.errors import HarnessError
from harness.core.hashing import derived_seed
from harness.stats.verdicts import ORDERS, ItemRecord, Verdict, group_items, item_key, split_by_pair

PROTOCOLS = ("robust", "sami-paper")
CI_LEVEL = 0.95
PAPER_Z = 1.96  # the paper's normal quantile, kept at two decimals to reproduce its arithmetic
DEFAULT_RESAMPLES = 10_000
# Resamples for the intervals that refit a model on every resample (length-controlled win rate,
# Bradley-Terry): each resample is a maximum-likelihood fit, and 2,000 resamples put the 2.5% and
# 97.5% percentiles within about a quarter of a standard error of their limit.
DEFAULT_FIT_RESAMPLES = 2_000
DEFAULT_PERMUTATIONS = 10_000
DEFAULT_MAX_PARSE_FAILURE_RATE = 0.05
# Ridge on the slope / log-strengths (per observation): keeps maximum-likelihood fits finite under
# perfect separation (e.g. a system that wins every comparison); far too small to move other fits.
RIDGE = 1e-4

CALL_SCORE = {"candidate": 1.0, "tie": 0.5, "baseline": 0.0}


def _float(value: Any) -> float | None:
    """A plain float for JSON, or None for a missing or non-finite value."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _fraction(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _mean_or_none(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def resolution_note(n: int, level: float = CI_LEVEL) -> str:
    """How precise a win rate from ``n`` items can be: the half-width of the normal CI at p = 0.5
    (the widest), z * sqrt(0.25 / n); 250 items resolve about +-6 points at 95% (SPEC section 4)."""
    if n == 0:
        return "no items scored: no win rate"
    z = scipy.stats.norm.ppf(0.5 + level / 2)
    points = 100 * z * math.sqrt(0.25 / n)
    shown = f"{points:.1f}" if points < 1 else f"{points:.0f}"
    return f"{n} items resolve about ±{shown} points at {level:.0%}"


def bootstrap_mean_ci(
    values: Sequence[float],
    seed: int,
    n_resamples: int = DEFAULT_RESAMPLES,
    method: str = "BCa",
    level: float = CI_LEVEL,
) -> tuple[float | None, float | None, str | None]:
    """Bootstrap CI of the mean of ``values`` (one value per resampling unit) with
    ``scipy.stats.bootstrap``, seeded by ``np.random.default_rng(seed)``.

    BCa (bias-corrected and accelerated, Efron 1987) by default. Where BCa is undefined (e.g. all
    values equal: zero jackknife variance gives NaN limits) the percentile interval of the same
    bootstrap distribution is returned instead. Returns (low, high, method actually used);
    (None, None, None) for fewer than two values.
    """
    data = np.asarray(values, dtype=float)
    if data.size < 2:
        return None, None, None
    with warnings.catch_warnings():
        # BCa on degenerate data warns and returns NaN; that case falls back to percentile below
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", scipy.stats.DegenerateDataWarning)
        result = scipy.stats.bootstrap(
            (data,), _mean, n_resamples=n_resamples, method=method, confidence_level=level,
            random_state=np.random.default_rng(seed),
        )
    low, high = result.confidence_interval
    if np.isfinite(low) and np.isfinite(high):
        return float(low), float(high), method
    fallback = scipy.stats.bootstrap(
        (data,), _mean, n_resamples=0, method="percentile", confidence_level=level, bootstrap_result=result,
    )
    low, high = fallback.confidence_interval
    return float(low), float(high), "percentile"


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


# --- paired comparison -------------------------------------------------------------------------


def _single_pair(verdicts: Sequence[Verdict], label: str) -> tuple[str | None, str | None]:
    pairs = list(split_by_pair(verdicts))
    if len(pairs) != 1:
        raise HarnessError(f"{label}: a paired comparison needs one (candidate, baseline) pair, found {len(pairs)}")
    return pairs[0]


def _difference_note(n: int, low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return f"{n} shared items: too few for an interval"
    return f"{n} shared items resolve the difference to about ±{100 * (high - low) / 2:.0f} points at 95%"


def paired_comparison(
    verdicts_a: Sequence[Verdict],
    verdicts_b: Sequence[Verdict],
    seed: int = 0,
    n_resamples: int = DEFAULT_RESAMPLES,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    method: str = "BCa",
    max_parse_failure_rate: float = DEFAULT_MAX_PARSE_FAILURE_RATE,
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


# --- Bradley-Terry -----------------------------------------------------------------------------


def fit_bradley_terry(wins: np.ndarray, games: np.ndarray) -> np.ndarray:
    """Maximum-likelihood Bradley-Terry log-strengths: P(i beats j) = sigmoid(t_i - t_j).

    ``games[i, j]`` comparisons listed as (i, j) with total score ``wins[i, j]`` for i (fractional
    scores allowed). Maximises sum W_ij log s(t_i - t_j) + (G_ij - W_ij) log s(t_j - t_i) minus a
    tiny ridge, which fixes the mean log-strength at 0 (the likelihood ignores a common shift)."""
    total = games.sum()
    k = len(wins)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        diff = theta[:, None] - theta[None, :]
        value = -(wins * scipy.special.log_expit(diff) + (games - wins) * scipy.special.log_expit(-diff)).sum()
        residual = wins - games * scipy.special.expit(diff)  # d value / d diff_ij = -residual_ij
        grad = -(residual.sum(axis=1) - residual.sum(axis=0))
        return float(value / total + 0.5 * RIDGE * theta @ theta), grad / total + RIDGE * theta

    theta = scipy.optimize.minimize(loss, np.zeros(k), jac=True, method="L-BFGS-B").x
    return theta - theta.mean()


def _connected(k: int, edges: set[tuple[int, int]]) -> bool:
    """Whether the comparison graph on systems 0..k-1 is connected (else strengths are not comparable)."""
    reached, frontier = {0}, [0]
    while frontier:
        node = frontier.pop()
        for i, j in edges:
            for nxt in ((j,) if i == node else (i,) if j == node else ()):
                if nxt not in reached:
                    reached.add(nxt)
                    frontier.append(nxt)
    return len(reached) == k


def bradley_terry(
    comparisons: Sequence[tuple[Hashable, str, str, float]],
    seed: int = 0,
    n_resamples: int = DEFAULT_FIT_RESAMPLES,
    level: float = CI_LEVEL,
) -> dict[str, Any]:
    """Bradley-Terry scores of several systems compared round-robin.

    ``comparisons``: (item, system_a, system_b, score_a in [0, 1]) per item and pair, e.g. robust
    item scores. Fit by ``fit_bradley_terry``. CIs: percentile bootstrap over ITEMS: a resample
    draws item ids with replacement and keeps all comparisons of each drawn item (the same prompt
    answered by every system is one unit), then refits. Reported per system: the log-strength
    (mean 0) and the implied win rate against a system of average log-strength, sigmoid(t).
    """
    systems = sorted({s for _, a, b, _ in comparisons for s in (a, b)})
    if len(systems) < 2:
        raise HarnessError("Bradley-Terry needs comparisons between at least two systems")
    index = {s: i for i, s in enumerate(systems)}
    items: dict[Hashable, int] = {}
    for item, *_ in comparisons:
        items.setdefault(item, len(items))
    k = len(systems)
    wins = np.zeros((len(items), k, k))
    games = np.zeros((len(items), k, k))
    for item, a, b, score in comparisons:
        wins[items[item], index[a], index[b]] += score
        games[items[item], index[a], index[b]] += 1
    edges = {(index[a], index[b]) for _, a, b, _ in comparisons}
    if not _connected(k, edges):
        raise HarnessError("Bradley-Terry needs every system linked to the others by comparisons; some are never compared")
    theta = fit_bradley_terry(wins.sum(axis=0), games.sum(axis=0))
    interval = scipy.stats.bootstrap(
        (np.arange(len(items)),), lambda idx: fit_bradley_terry(wins[idx].sum(axis=0), games[idx].sum(axis=0)),
        vectorized=False, n_resamples=n_resamples, method="percentile", confidence_level=level,
        random_state=np.random.default_rng(seed),
    ).confidence_interval
    rows = [
        {
            "system": system,
            "log_strength": float(theta[i]),
            "log_strength_ci_low": float(interval.low[i]),
            "log_strength_ci_high": float(interval.high[i]),
            "win_rate": float(scipy.special.expit(theta[i])),
            "ci_low": float(scipy.special.expit(interval.low[i])),
            "ci_high": float(scipy.special.expit(interval.high[i])),
        }
        for i, system in enumerate(systems)
    ]
    return {
        "protocol": "bradley-terry",
        "n": len(items),
        "n_comparisons": len(comparisons),
        "systems": sorted(rows, key=lambda row: -row["log_strength"]),
        "win_rate_meaning": "P(system beats a system of average log-strength) = sigmoid(log_strength)",
        "ci_level": level,
        "ci_method": "percentile",
        "n_resamples": n_resamples,
        "resampling_unit": "item",
        "seed": seed,
        "note": resolution_note(len(items)),
    }


# --- judge agreement ---------------------------------------------------------------------------


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

