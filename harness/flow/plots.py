"""Plots of a run (matplotlib, PNG): win rate (and soft win rate) per iteration with 95% CI error bars against
each baseline, adherence to verifiable principles per iteration, MI per iteration (both scorers), and mean
response length per iteration (zero-based axis)."""

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
        line = axis.errorbar(x, y, yerr=errors, marker="o", capsize=4, label=f"{trainer} vs {baseline}")
        soft = [p for p in points if p.get("soft_ci_low") is not None]
        if soft:
            axis.errorbar([p["iteration"] + 0.05 for p in soft], [100 * p["soft_win_rate"] for p in soft],
                          yerr=[[100 * (p["soft_win_rate"] - p["soft_ci_low"]) for p in soft],
                                [100 * (p["soft_ci_high"] - p["soft_win_rate"]) for p in soft]],
                          marker="s", capsize=3, linestyle="--", color=line[0].get_color(), alpha=0.7,
                          label=f"{trainer} vs {baseline} (soft)")
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
    axis.set_ylim(bottom=0)
    axis.legend(fontsize=8)
    return _save(figure, path)


def plot_adherence(points: list[dict], path: Path, title: str) -> Path:
    """Adherence (share of checkable principles passed) per iteration with 95% CIs; iteration 0 is the base
    model; a prompted baseline without iterations (instruct) is a horizontal band."""
    figure, axis = plt.subplots(figsize=(6, 4))
    for trainer, series in _series([p for p in points if p["trainer"] != "instruct"], lambda r: r["trainer"]).items():
        x = [p["iteration"] for p in series]
        y = [100 * p["adherence"] for p in series]
        errors = [[100 * (p["adherence"] - p["low"]) for p in series], [100 * (p["high"] - p["adherence"]) for p in series]]
        axis.errorbar(x, y, yerr=errors, marker="o", capsize=4, label=trainer)
    for point in (p for p in points if p["trainer"] == "instruct"):
        axis.axhspan(100 * point["low"], 100 * point["high"], color="grey", alpha=0.15)
        axis.axhline(100 * point["adherence"], color="grey", linestyle="--", linewidth=1, label="instruct")
    axis.set(xlabel="iteration", ylabel="adherence (%) with 95% CI", title=title, ylim=(0, 100))
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
