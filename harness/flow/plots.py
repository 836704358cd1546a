"""Plots of a run (matplotlib, PNG): win rate per iteration with 95% CI error bars against each baseline,
MI per iteration (both scorers), and mean response length per iteration."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def _series(rows: list[dict], key) -> dict:
    series: dict = {}
    for row in rows:
        series.setdefault(key(row), []).append(row)
    return {name: sorted(points, key=lambda r: r["iteration"]) for name, points in sorted(series.items())}


def plot_win_rates(rows: list[dict], path: Path, title: str) -> Path:
    figure, axis = plt.subplots(figsize=(6, 4))
    for (trainer, baseline), points in _series(rows, lambda r: (r["trainer"], r["baseline"])).items():
        x = [p["iteration"] for p in points]
        y = [100 * p["win_rate"] for p in points]
        errors = [[100 * (p["win_rate"] - p["ci_low"]) for p in points], [100 * (p["ci_high"] - p["win_rate"]) for p in points]]
        axis.errorbar(x, y, yerr=errors, marker="o", capsize=4, label=f"{trainer} vs {baseline}")
    axis.axhline(50, color="grey", linestyle="--", linewidth=1)
    axis.set(xlabel="iteration", ylabel="win rate (%) with 95% CI", title=title, ylim=(0, 100))
    axis.legend(fontsize=8)
    return _save(figure, path)


def plot_mutual_information(metrics: list[dict], path: Path, title: str) -> Path:
    figure, axis = plt.subplots(figsize=(6, 4))
    trainers = sorted({m["trainer"] for m in metrics if m["iteration"] > 0})
    # Iteration 0 (the base model) starts every trainer's curve.
    expanded = [{**m, "trainer": t} for m in metrics for t in (trainers if m["iteration"] == 0 else [m["trainer"]])]
    for (trainer, scorer), points in _series(expanded, lambda r: (r["trainer"], r["scorer"])).items():
        x = [p["iteration"] for p in points]
        y = [p["mi_nats"] for p in points]
        errors = [[p["mi_nats"] - p["ci95_nats"][0] for p in points], [p["ci95_nats"][1] - p["mi_nats"] for p in points]]
        axis.errorbar(x, y, yerr=errors, marker="o", capsize=4, label=f"{trainer}, {scorer} scorer")
    axis.set(xlabel="iteration", ylabel="I(Y;C|X) lower bound (nats)", title=title)
    axis.legend(fontsize=8)
    return _save(figure, path)


def plot_lengths(points: list[dict], path: Path, title: str) -> Path:
    figure, axis = plt.subplots(figsize=(6, 4))
    for trainer, series in _series(points, lambda r: r["trainer"]).items():
        axis.plot([p["iteration"] for p in series], [p["mean_length"] for p in series], marker="o", label=trainer)
    axis.set(xlabel="iteration", ylabel="mean response length (words)", title=title)
    axis.legend(fontsize=8)
    return _save(figure, path)


def _save(figure, path: Path) -> Path:
    for axis in figure.axes:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
