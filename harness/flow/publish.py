"""Results and leaderboard of one run: ``results.json`` rows with provenance, tables and plots.

``harness leaderboard`` merges several runs' ``results.json`` files the same way.
"""

from __future__ import annotations

from pathlib import Path

from harness.config import RunConfig
from harness.core.artifacts import atomic_write_text, read_json, read_jsonl, write_json
from harness.core.hashing import file_hash, folder_hash
from harness.core.run_layout import RunLayout
from harness.flow.leaderboard import rank_rows, to_csv, to_json, to_markdown
from harness.flow.plots import plot_adherence, plot_lengths, plot_mutual_information, plot_win_rates
from harness.models.embedded import EMBEDDED_MODEL_ID, EMBEDDED_NAME
from harness.site import write_site
from harness.tasks import Task, get_task

ADHERENCE_KEYS = ("adherence", "adherence_ci_low", "adherence_ci_high", "adherence_by_principle",
                  "baseline_adherence", "baseline_adherence_ci_low", "baseline_adherence_ci_high",
                  "baseline_adherence_by_principle")
POSITION_BIAS = 0.9  # first-position preference above which a judge's hard verdicts are flagged


def mi_lookup(layout: RunLayout) -> dict[tuple[str, int, str], tuple[float, float, float]]:
    """(trainer, iteration, scorer) -> (MI estimate, CI low, CI high) in nats, from the run's metrics.jsonl."""
    if not layout.metrics_file.is_file():
        return {}
    return {(m["trainer"], m["iteration"], m["scorer"]): (m["mi_nats"], *m["ci95_nats"])
            for m in read_jsonl(layout.metrics_file)}


def mi_columns(mi: dict, trainer: str, iteration: int) -> dict:
    """The MI columns of a system (both scorers, with CIs); iteration 0 (the base model) is recorded under 'base'."""
    owner = "base" if iteration == 0 else trainer
    columns = {}
    for scorer, name, prefix in (("policy", "mi_nats", "mi"), ("base", "mi_nats_base_scorer", "mi_base")):
        value, low, high = mi.get((owner, iteration, scorer), (None, None, None))
        columns.update({name: value, f"{prefix}_ci_low": low, f"{prefix}_ci_high": high})
    return columns


def result_rows(config: RunConfig, task: Task, layout: RunLayout, scored: list, commit: str | None) -> list[dict]:
    """One row per (candidate, baseline, principle split) with its statistics and provenance."""
    mi = mi_lookup(layout)
    rows = []
    for candidate, baseline, split, judged in scored:
        stats = judged["stats"]
        rows.append({
            "task": task.name, "principle_split": split, "baseline": baseline.id, "system": candidate.id,
            "trainer": candidate.trainer, "iteration": candidate.iteration,
            "model": candidate.model.name if candidate.trainer == "instruct" else config.model.name,
            "learning_rate": candidate.learning_rate,
            "win_rate": stats["win_rate"], "ci_low": stats["ci_low"], "ci_high": stats["ci_high"],
            "ci_method": stats.get("ci_method", "normal"), "n": stats["n"], "lc_win_rate": stats.get("lc_win_rate"),
            "soft_win_rate": stats.get("soft_win_rate"), "soft_ci_low": stats.get("soft_ci_low"),
            "soft_ci_high": stats.get("soft_ci_high"),
            "first_position_preference": stats.get("first_position_preference"), "tie_rate": stats.get("tie_rate"),
            "parse_failure_rate": stats.get("parse_failure_rate"),
            "position_consistency": stats.get("position_consistency"),
            "mean_length": stats.get("mean_candidate_length"), "baseline_mean_length": stats.get("mean_baseline_length"),
            **{key: stats[key] for key in ADHERENCE_KEYS if key in stats},
            **mi_columns(mi, candidate.trainer, candidate.iteration),
            "judge": judged["judge"], "judge_hash": judged["judge_hash"], "protocol": config.eval.protocol,
            "run_id": layout.name, "config_hash": config.hash(), "commit": commit,
            "responses_sha": judged["candidate_sha"], "verdicts_sha": file_hash(judged["verdicts_path"]),
            "checkpoint_hash": _checkpoint_hash(candidate.checkpoint),
            "verdicts_path": str(Path(judged["verdicts_path"]).relative_to(layout.root)),
        })
    return rows + reference_rows(rows, mi)


def reference_rows(rows: list[dict], mi: dict) -> list[dict]:
    """The iteration-0 row of each block against the base model: the untrained model itself (no win rate: it is
    the baseline), with its adherence, MI at iteration 0 and length, so every trained row reads against it."""
    references = []
    for split in dict.fromkeys(r["principle_split"] for r in rows if r["baseline"] == "base"):
        first = next(r for r in rows if r["baseline"] == "base" and r["principle_split"] == split)
        references.append({
            **{key: first[key] for key in ("task", "principle_split", "baseline", "model", "judge", "judge_hash",
                                           "protocol", "run_id", "config_hash", "commit", "n")},
            "system": "base", "trainer": "base", "iteration": 0, "learning_rate": None,
            "win_rate": None, "ci_low": None, "ci_high": None, "ci_method": "reference (the baseline itself)",
            "mean_length": first.get("baseline_mean_length"),
            "adherence": first.get("baseline_adherence"), "adherence_ci_low": first.get("baseline_adherence_ci_low"),
            "adherence_ci_high": first.get("baseline_adherence_ci_high"),
            "adherence_by_principle": first.get("baseline_adherence_by_principle"),
            **mi_columns(mi, "base", 0)})
    return references


def _checkpoint_hash(checkpoint: Path | None) -> str | None:
    """The checkpoint's weight hash as the train stage recorded it (the weights may have been pruned since)."""
    if checkpoint is None:
        return None
    marker = checkpoint.parent / "done.json"
    return read_json(marker).get("checkpoint_sha") if marker.is_file() else folder_hash(checkpoint)


def write_leaderboard(rows: list[dict], out_dir: Path, title: str, notes: list[str], metrics: list[dict]) -> list[Path]:
    """Markdown, CSV, JSON and plots into ``out_dir``; returns the written paths. With several runs, the win-rate,
    adherence and length plots are one set per run (runs differ in data, settings or judge); the MI plot labels
    each run's curves."""
    ranked = rank_rows(rows)
    runs = sorted({str(r.get("run_id")) for r in rows})
    plots = []
    for task in sorted({r["task"] for r in rows}):
        for run in runs:
            prefix = task if len(runs) == 1 else f"{task}-{run}"
            label = task if len(runs) == 1 else f"{task} ({run})"
            plots += _run_plots([r for r in rows if r["task"] == task and str(r.get("run_id")) == run], out_dir,
                                prefix, label)
        task_metrics = [m for m in metrics if m.get("task", task) == task]
        if task_metrics:
            plots.append(plot_mutual_information(task_metrics, out_dir / f"{task}-mutual-information.png",
                                                 f"{task}: MI estimate per iteration"))
    markdown = to_markdown(ranked, title, notes, [p.name for p in plots])
    atomic_write_text(out_dir / "leaderboard.md", markdown)
    atomic_write_text(out_dir / "leaderboard.csv", to_csv(ranked))
    atomic_write_text(out_dir / "leaderboard.json", to_json(ranked, notes))
    return [out_dir / "leaderboard.md", out_dir / "leaderboard.csv", out_dir / "leaderboard.json", *plots]


def _run_plots(rows: list[dict], out_dir: Path, prefix: str, label: str) -> list[Path]:
    plots = []
    trained = [r for r in rows if r["trainer"] not in ("base", "instruct")]
    if trained:
        plots.append(plot_win_rates(trained, out_dir / f"{prefix}-win-rate.png", f"{label}: win rate per iteration"))
    adherence = adherence_points(rows)
    if adherence:
        plots.append(plot_adherence(adherence, out_dir / f"{prefix}-adherence.png",
                                    f"{label}: adherence to verifiable principles"))
    lengths = length_points(rows)
    if lengths:
        plots.append(plot_lengths(lengths, out_dir / f"{prefix}-length.png", f"{label}: response length"))
    return plots


def adherence_points(rows: list[dict]) -> list[dict]:
    """Adherence with CI per (task, trainer, iteration) on training principles, from verifier-judged rows: each
    candidate's own, the base model's (iteration 0) and the instruct baseline's from the rows judged against them."""
    points = {}
    for row in rows:
        if row["principle_split"] != "train" or row.get("adherence") is None:
            continue
        points[row["task"], row["trainer"], row["iteration"]] = (
            row["adherence"], row["adherence_ci_low"], row["adherence_ci_high"])
        if row["baseline"] in ("base", "instruct") and row.get("baseline_adherence") is not None:
            points[row["task"], row["baseline"], 0] = (
                row["baseline_adherence"], row["baseline_adherence_ci_low"], row["baseline_adherence_ci_high"])
    base = {task: value for (task, trainer, _), value in points.items() if trainer == "base"}
    out = [{"task": t, "trainer": tr, "iteration": i, "adherence": a, "low": lo, "high": hi}
           for (t, tr, i), (a, lo, hi) in sorted(points.items()) if tr != "base" and a is not None]
    trained = {(p["task"], p["trainer"]) for p in out if p["trainer"] != "instruct"}
    out += [{"task": t, "trainer": tr, "iteration": 0, "adherence": base[t][0], "low": base[t][1], "high": base[t][2]}
            for t, tr in sorted(trained) if t in base and base[t][0] is not None]
    return out


def length_points(rows: list[dict]) -> list[dict]:
    """Mean candidate length per (task, trainer, iteration) from rows judged against the base model, with the
    base model's own length as iteration 0 (training principles only)."""
    points = {}
    for row in rows:
        if row["baseline"] != "base" or row["principle_split"] != "train" or row["trainer"] in ("base", "instruct"):
            continue
        points[row["task"], row["trainer"], row["iteration"]] = row["mean_length"]
        points[row["task"], row["trainer"], 0] = row["baseline_mean_length"]
    return [{"task": t, "trainer": tr, "iteration": i, "mean_length": v}
            for (t, tr, i), v in sorted(points.items()) if v is not None]


def publish_run(config: RunConfig, task: Task, layout: RunLayout, scored: list, commit: str | None) -> list[dict]:
    """The publish stage: ``results.json`` and the run's own leaderboard folder."""
    rows = result_rows(config, task, layout, scored, commit)
    metrics = read_jsonl(layout.metrics_file) if layout.metrics_file.is_file() else []
    notes = run_notes(config, rows)
    write_json(layout.results_file, {"run_id": layout.name, "config_hash": config.hash(), "commit": commit,
                                     "notes": notes, "rows": rows})
    write_leaderboard(rows, layout.leaderboard_dir, f"{task.name}: {config.trainer} run {layout.name}", notes,
                      metrics)
    write_site(layout.leaderboard_dir / "site", [layout.root], f"{task.name}: {config.trainer} run {layout.name}")
    return rows


def plain_model_name(name: str) -> str:
    """A model name a reader of a leaderboard can look up: the embedded default is spelled out."""
    return f"`{name}` = {EMBEDDED_MODEL_ID}" if name == EMBEDDED_NAME else f"`{name}`"


def _demo_file(task: str) -> str:
    demo = get_task(task).demo_file
    return f"{demo.parent.name}/{demo.name}"


def run_notes(config: RunConfig, rows: list[dict]) -> list[str]:
    from harness.judging.config import load_judge
    from harness.stats import resolution_note

    n = min((r["n"] for r in rows), default=0)
    judge = load_judge(config.eval.judge)
    judged_by = ("exact checks of the principles (no model)" if judge.config.backend == "verifier"
                 else f"model {plain_model_name(judge.config.model)}")
    notes = [f"Model: {plain_model_name(config.model.name)}. Judge: `{judge.name}` ({config.eval.protocol} protocol) "
             f"with {judged_by}. Data: `{config.data.source}`"
             + (f" (team-written demo queries shipped in harness/tasks/{_demo_file(config.task)}, not a public dataset)."
                if config.data.source == "demo" else "."),
             f"Sample size: {resolution_note(n)}; rows whose CIs overlap share a rank.",
             "MI columns: InfoNCE lower bound on I(Y;C|X), log C - L_SAMI, in nats, scored by the candidate itself "
             "(`mi_nats`) and by the fixed base model (`mi_nats_base_scorer`)." if config.eval.mutual_information
             else "MI columns are empty: this run set eval.mutual_information=false."]
    biased = [r for r in rows if (r.get("first_position_preference") or 0) >= POSITION_BIAS]
    if biased:
        notes.append(f"Warning: in {len(biased)} of {len(rows)} rows the judge chose the response shown first in at "
                     f"least {POSITION_BIAS:.0%} of decisive calls, so its hard verdicts cancel across the two orders "
                     "and the win rate sits at 50% whatever the responses; `soft_win_rate` (the judge's probability "
                     "averaged over both orders) is the informative column. Use a stronger judge (`--judge robust`) "
                     "and check it with `harness meta-eval`.")
    return notes
