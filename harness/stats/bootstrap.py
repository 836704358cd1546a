"""Bootstrap confidence intervals of a mean over resampling units (items, queries), and the precision a sample
size allows (SPEC section 4: the prompt is the resampling unit, >= 10,000 seeded resamples)."""

from __future__ import annotations

import math
import warnings
from typing import Any, Sequence

import numpy as np
import scipy.stats

CI_LEVEL = 0.95
DEFAULT_RESAMPLES = 10_000


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
