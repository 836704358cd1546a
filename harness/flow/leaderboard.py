"""Leaderboard tables from run results: one row per system (trainer, model, iteration, learning rate) and
baseline, with win rate and CI, diagnostics, MI and provenance. Markdown, CSV and JSON.

Ranking: within a (task, baseline, principle split) block, rows are sorted by win rate; a row's rank is 1 +
the number of rows whose CI lies entirely above its CI, so rows with overlapping CIs share a rank and are
marked as statistically tied (a conservative, CI-overlap reading, not a multiple-comparison test).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from harness.core.artifacts import read_json
from harness.core.errors import HarnessError
from harness.core.run_layout import RESULTS_FILE

SCHEMA_VERSION = 1

# (column, description) — the documented schema of every leaderboard row.
COLUMNS = [
    ("rank", "1 + rows whose CI is entirely above this row's CI (same block)"),
    ("tied", "true when another row of the block shares this rank (overlapping CIs)"),
    ("task", "task name"),
    ("principle_split", "principles evaluated: 'train' or 'heldout' (heldout task), else 'train'"),
    ("baseline", "system the candidate was judged against"),
    ("system", "candidate system id, e.g. sami-iter2"),
    ("trainer", "trainer (sami, sft, dpo) or prompted baseline (base, instruct)"),
    ("model", "base model of the candidate"),
    ("iteration", "expert-iteration index (0 = untrained)"),
    ("learning_rate", "training learning rate (null for prompted baselines)"),
    ("win_rate", "candidate win rate vs baseline (ties 0.5), fraction"),
    ("ci_low", "lower end of the 95% CI"),
    ("ci_high", "upper end of the 95% CI"),
    ("ci_method", "how the CI was computed (BCa/percentile bootstrap over items, or normal)"),
    ("n", "items scored"),
    ("lc_win_rate", "length-controlled win rate (logistic model at zero length difference)"),
    ("soft_win_rate", "mean over items of the judge's probability that the candidate is better, averaged over both "
                      "orders (balanced position calibration, Wang et al. 2023); judges that expose probabilities"),
    ("soft_ci_low", "lower end of the soft win rate's 95% CI (same bootstrap over items)"),
    ("soft_ci_high", "upper end of the soft win rate's 95% CI"),
    ("first_position_preference", "fraction of decisive judge calls won by the response shown first"),
    ("tie_rate", "fraction of judge calls that were ties"),
    ("parse_failure_rate", "fraction of judge calls with no parseable verdict (excluded, not ties)"),
    ("position_consistency", "fraction of items whose two orders agree"),
    ("mean_length", "mean candidate length (words)"),
    ("baseline_mean_length", "mean baseline length (words)"),
    ("mi_nats", "InfoNCE MI estimate (log C - L_SAMI), nats, candidate as scorer"),
    ("mi_nats_base_scorer", "same estimate with the fixed base model as scorer"),
    ("judge", "judge name"),
    ("judge_hash", "content hash of the judge config and prompt"),
    ("protocol", "statistics protocol (robust or sami-paper)"),
    ("run_id", "run directory name"),
    ("config_hash", "hash of the run's effective config"),
    ("commit", "harness git commit that published the row (each stage's done.json names the commit that ran it)"),
    ("responses_sha", "hash of the candidate's responses.jsonl"),
    ("verdicts_sha", "hash of the verdicts.jsonl behind the row"),
    ("checkpoint_hash", "hash of the candidate checkpoint's weights (null for prompted baselines)"),
]
# Columns of verifier-judged rows (exact checks of verifiable principles); tables show them only where present.
ADHERENCE_COLUMNS = [
    ("adherence", "mean share of the evaluation constitution's checkable principles the candidate's response passes"),
    ("adherence_ci_low", "lower end of the adherence's 95% CI (percentile bootstrap over items)"),
    ("adherence_ci_high", "upper end of the adherence's 95% CI"),
    ("adherence_by_principle", "pass rate of each checkable principle (not-<name>: its antithesis)"),
    ("baseline_adherence", "the same mean share for the baseline's responses"),
    ("baseline_adherence_ci_low", "lower end of the baseline adherence's 95% CI"),
    ("baseline_adherence_ci_high", "upper end of the baseline adherence's 95% CI"),
    ("baseline_adherence_by_principle", "pass rate of each checkable principle for the baseline"),
]


def columns_of(rows: list[dict]) -> list[tuple[str, str]]:
    """The documented columns, plus the adherence columns when a row has them."""
    has_adherence = any(row.get("adherence") is not None for row in rows)
    return COLUMNS + (ADHERENCE_COLUMNS if has_adherence else [])
MARKDOWN_COLUMNS = ["rank", "system", "trainer", "iteration", "learning_rate", "win_rate", "ci", "n",
                    "lc_win_rate", "soft_win_rate", "tie_rate", "parse_failure_rate", "position_consistency",
                    "first_position_preference", "mean_length",
                    "mi_nats", "mi_nats_base_scorer", "run_id", "config_hash", "commit"]


def load_rows(run_dirs: list[Path]) -> list[dict]:
    rows = []
    for run_dir in run_dirs:
        path = Path(run_dir) / RESULTS_FILE
        if not path.is_file():
            raise HarnessError(f"{run_dir} has no {RESULTS_FILE}: finish the run first (`harness run` resumes it)")
        rows += read_json(path)["rows"]
    return rows


def rank_rows(rows: list[dict]) -> list[dict]:
    """Sort and rank within (task, principle split, baseline) blocks; see the module docstring."""
    ranked = []
    blocks: dict[tuple, list[dict]] = {}
    for row in rows:
        blocks.setdefault((row["task"], row.get("principle_split", "train"), row["baseline"]), []).append(row)
    for key in sorted(blocks):
        block = sorted(blocks[key], key=lambda r: (r["win_rate"] is None, -(r["win_rate"] or 0.0), r["system"]))
        for row in block:
            row = {**row, "rank": 1 + sum(_clearly_above(other, row) for other in block)}
            ranked.append(row)
        ranks = [r["rank"] for r in ranked[-len(block):]]
        for row in ranked[-len(block):]:
            row["tied"] = ranks.count(row["rank"]) > 1
    names = [name for name, _ in columns_of(rows)]
    return [{name: row.get(name) for name in names} for row in ranked]


def _clearly_above(other: dict, row: dict) -> bool:
    """``other``'s whole CI lies above ``row``'s (a row without a CI is never clearly above or below)."""
    return None not in (other["ci_low"], row["ci_high"]) and other["ci_low"] > row["ci_high"]


def _fmt(value, percent: bool = False) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{100 * value:.1f}" if percent else f"{value:.3g}"
    return str(value)


def _interval(low, high) -> str:
    return f"[{_fmt(low, True)}, {_fmt(high, True)}]"


def markdown_columns(rows: list[dict]) -> list[str]:
    """MARKDOWN_COLUMNS, with adherence (and its CI) and the baseline's adherence after the win rate columns when
    the rows were judged by the verifier."""
    if not any(row.get("adherence") is not None for row in rows):
        return MARKDOWN_COLUMNS
    at = MARKDOWN_COLUMNS.index("n")
    return MARKDOWN_COLUMNS[:at] + ["adherence", "baseline_adherence"] + MARKDOWN_COLUMNS[at:]


PERCENT_COLUMNS = {"adherence", "baseline_adherence", "win_rate", "lc_win_rate", "soft_win_rate", "tie_rate", "parse_failure_rate",
                   "position_consistency", "first_position_preference"}


def to_markdown(rows: list[dict], title: str, notes: list[str] | None = None, plots: list[str] | None = None) -> str:
    lines = [f"# {title}", ""]
    lines += [f"{note}" for note in (notes or [])]
    lines.append("")
    blocks: dict[tuple, list[dict]] = {}
    for row in rows:
        blocks.setdefault((row["task"], row["principle_split"] or "train", row["baseline"]), []).append(row)
    for (task, split, baseline), block in blocks.items():
        heading = f"## {task}: candidates vs `{baseline}`" + (f" ({split} principles)" if task == "heldout" else "")
        lines += [heading, "", "Percentages; 95% CI in brackets; `=` marks ranks shared by overlapping CIs.", ""]
        shown = markdown_columns(rows)
        lines.append("| " + " | ".join(shown) + " |")
        lines.append("|" + "---|" * len(shown))
        for row in block:
            cells = []
            for column in shown:
                if column == "ci":
                    cells.append(f"{_interval(row['ci_low'], row['ci_high'])} {row['ci_method'] or ''}")
                elif column == "adherence":
                    cells.append(f"{_fmt(row[column], True)} {_interval(row['adherence_ci_low'], row['adherence_ci_high'])}")
                elif column == "soft_win_rate" and row["soft_ci_low"] is not None:
                    cells.append(f"{_fmt(row[column], True)} {_interval(row['soft_ci_low'], row['soft_ci_high'])}")
                elif column == "rank":
                    cells.append(f"{'=' if row['tied'] else ''}{row['rank']}")
                elif column in ("config_hash", "commit"):
                    cells.append(f"`{(row[column] or '–')[:10]}`")
                else:
                    cells.append(_fmt(row[column], column in PERCENT_COLUMNS))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    for plot in plots or []:
        lines += [f"![{Path(plot).stem}]({plot})", ""]
    lines += ["Columns (full schema in the JSON file):", ""]
    lines += [f"- `{name}`: {description}" for name, description in columns_of(rows)]
    return "\n".join(lines) + "\n"


def to_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[name for name, _ in columns_of(rows)], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def to_json(rows: list[dict], notes: list[str]) -> str:
    return json.dumps({"schema_version": SCHEMA_VERSION, "columns": dict(columns_of(rows)), "notes": notes, "rows": rows},
                      indent=2) + "\n"
