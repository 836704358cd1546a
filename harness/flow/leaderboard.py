"""Leaderboard tables from run results: one row per system (trainer, model, iteration, learning rate) and
baseline, with win rate and CI, diagnostics, MI and provenance. Markdown, CSV and JSON.

Ranking: within a (task, run, principle split, baseline) block (rows of different runs differ in data, settings
or judge, so they are never ranked together), rows are sorted by win rate; a row's rank is 1 +
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
from harness.stats.warnings import compute_warnings

SCHEMA_VERSION = 1

# (column, description) — the documented schema of every leaderboard row.
COLUMNS = [
    ("rank", "1 + rows whose CI is entirely above this row's CI (same block); null for the reference row"),
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
    ("mi_ci_low", "lower end of the 95% CI of mi_nats (percentile bootstrap over queries)"),
    ("mi_ci_high", "upper end of the 95% CI of mi_nats"),
    ("mi_base_ci_low", "lower end of the 95% CI of mi_nats_base_scorer"),
    ("mi_base_ci_high", "upper end of the 95% CI of mi_nats_base_scorer"),
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

def read_results(run_dir: Path) -> dict:
    """A run's ``results.json``; a missing or malformed one is one error naming the run."""
    path = Path(run_dir) / RESULTS_FILE
    if not path.is_file():
        raise HarnessError(f"{run_dir} has no {RESULTS_FILE}: finish the run first (`harness run` resumes it)")
    results = read_json(path)
    if not isinstance(results, dict) or not isinstance(results.get("rows"), list):
        raise HarnessError(f"{path}: expected an object with a 'rows' list")
    return results


def load_rows(run_dirs: list[Path]) -> list[dict]:
    return [row for run_dir in run_dirs for row in read_results(run_dir)["rows"]]


def rank_rows(rows: list[dict]) -> list[dict]:
    """Sort and rank within (task, run, principle split, baseline) blocks; see the module docstring."""
    ranked = []
    blocks: dict[tuple, list[dict]] = {}
    for row in rows:
        blocks.setdefault(_block(row), []).append(row)
    for key in sorted(blocks):
        block = sorted(blocks[key], key=lambda r: (r["win_rate"] is None, -(r["win_rate"] or 0.0), r["system"]))
        for row in block:  # a reference row (no win rate: the baseline itself) has no rank
            rank = None if row["win_rate"] is None else 1 + sum(_clearly_above(other, row) for other in block)
            ranked.append({**row, "rank": rank})
        ranks = [r["rank"] for r in ranked[-len(block):]]
        for row in ranked[-len(block):]:
            row["tied"] = row["rank"] is not None and ranks.count(row["rank"]) > 1
    names = [name for name, _ in columns_of(rows)]
    return [{name: row.get(name) for name in names} for row in ranked]


def _block(row: dict) -> tuple:
    return row["task"], row.get("run_id") or "", row.get("principle_split") or "train", row["baseline"]


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
    return "" if low is None or high is None else f"[{_fmt(low, True)}, {_fmt(high, True)}]"


def _with_ci(row: dict, key: str, low: str, high: str, percent: bool = True) -> str:
    value = _fmt(row.get(key), percent)
    if row.get(low) is None or row.get(high) is None:
        return value
    return f"{value} [{_fmt(row[low], percent)}, {_fmt(row[high], percent)}]"


def _warnings(row: dict) -> str:
    return "; ".join(w.label for w in compute_warnings(row)) or "–"


# The Markdown table's headline columns: (header, description, cell). The full schema is in the JSON and CSV files.
MARKDOWN_COLUMNS = [
    ("rank", "1 + rows whose win-rate CI lies entirely above this row's CI (same block); `=`: shared rank",
     lambda r: "ref" if r["rank"] is None else f"{'=' if r['tied'] else ''}{r['rank']}"),
    ("system", "candidate system (trainer-iteration; base = untrained, instruct = the instruct baseline)",
     lambda r: str(r["system"])),
    ("win rate [95% CI]", "candidate win rate vs the baseline, % (ties 0.5), with its bootstrap CI over items",
     lambda r: _with_ci(r, "win_rate", "ci_low", "ci_high")),
    ("soft [95% CI]", "judge's probability that the candidate is better, averaged over both orders, %",
     lambda r: _with_ci(r, "soft_win_rate", "soft_ci_low", "soft_ci_high")),
    ("adherence [95% CI]", "share of the evaluation principles' exact checks the candidate passes, % (verifier)",
     lambda r: _with_ci(r, "adherence", "adherence_ci_low", "adherence_ci_high")),
    ("baseline adherence", "the same share for the baseline's responses, %",
     lambda r: _fmt(r.get("baseline_adherence"), True)),
    ("n", "items scored", lambda r: _fmt(r["n"])),
    ("MI self [95% CI]", "InfoNCE MI lower bound log C - L_SAMI, nats, scored by the candidate itself",
     lambda r: _with_ci(r, "mi_nats", "mi_ci_low", "mi_ci_high", percent=False)),
    ("MI base [95% CI]", "the same MI estimate scored by the fixed base model",
     lambda r: _with_ci(r, "mi_nats_base_scorer", "mi_base_ci_low", "mi_base_ci_high", percent=False)),
    ("length", "mean candidate response length, words", lambda r: _fmt(r.get("mean_length"))),
    ("warnings", "position bias, CI spanning 50%, small n, parse failures (see the notes)", _warnings),
]
ADHERENCE_HEADERS = {"adherence [95% CI]", "baseline adherence"}


def markdown_columns(rows: list[dict]) -> list[tuple]:
    """The headline columns, without the adherence ones unless a row was judged by the verifier."""
    if any(row.get("adherence") is not None for row in rows):
        return MARKDOWN_COLUMNS
    return [column for column in MARKDOWN_COLUMNS if column[0] not in ADHERENCE_HEADERS]


def to_markdown(rows: list[dict], title: str, notes: list[str] | None = None, plots: list[str] | None = None) -> str:
    lines = [f"# {title}", ""]
    lines += [f"{note}" for note in (notes or [])]
    lines.append("")
    shown = markdown_columns(rows)
    blocks: dict[tuple, list[dict]] = {}
    for row in rows:
        blocks.setdefault(_block(row), []).append(row)
    runs = {run for _, run, _, _ in blocks}
    for (task, run, split, baseline), block in blocks.items():
        heading = f"## {task}: candidates vs `{baseline}`" + (f" ({split} principles)" if task == "heldout" else "")
        if len(runs) > 1:
            heading += f", run `{run}` (judge `{block[0].get('judge')}`)"
        lines += [heading, "", "Percentages; 95% CI in brackets; `=` marks ranks shared by overlapping CIs.", ""]
        lines.append("| " + " | ".join(header for header, _, _ in shown) + " |")
        lines.append("|" + "---|" * len(shown))
        lines += ["| " + " | ".join(cell(row) for _, _, cell in shown) + " |" for row in block]
        lines.append("")
    for plot in plots or []:
        lines += [f"![{Path(plot).stem}]({plot})", ""]
    lines += ["Columns (the JSON and CSV files hold every column with its description, and each row's provenance: "
              "run id, config hash, judge hash, commit, response/verdict/checkpoint hashes):", ""]
    lines += [f"- `{header}`: {description}" for header, description, _ in shown]
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
