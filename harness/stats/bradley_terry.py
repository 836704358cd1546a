"""Bradley-Terry strengths of several systems compared round-robin, with item-bootstrap CIs (SPEC section 4)."""

from __future__ import annotations

from typing import Any, Hashable, Sequence

import numpy as np
import scipy.optimize

from harness.core.errors import HarnessError
from harness.stats.bootstrap import CI_LEVEL, resolution_note
from harness.stats.winrates import DEFAULT_FIT_RESAMPLES, RIDGE


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
