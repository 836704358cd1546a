"""Build the static leaderboard site: collect rows, items and provenance from run folders, render the templates.

Layout of the output folder::

    index.html                      all rows of all runs (sortable, filterable)
    <task>.html                     one page per task: its rows, notes and plots (PNG as data URIs)
    items/<run>/<pair>.html         one item browser per row: query, constitution, both responses, verdicts
    runs/<run>/...                  copies of config.yaml, manifest.json and the judgment's done.json
    assets/site.css, assets/site.js

Everything is relative links and local files: no network, works from ``file://`` and any static server.
"""

from __future__ import annotations

import base64
import json
import math
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from harness.core.artifacts import atomic_write_text, read_jsonl
from harness.core.errors import HarnessError
from harness.flow.leaderboard import read_results
from harness.stats.warnings import compute_warnings

TEMPLATES = Path(__file__).resolve().parent / "templates"
ASSETS = ("site.css", "site.js")
MARKER = ".leaderboard-site"        # marks a folder this module wrote, so a rebuild may clear its subfolders

# Headline columns on the index and task pages. Each consumes the row keys it shows; every other key of any
# row becomes an "extra" column behind the "Show all columns" toggle, so new keys appear without code changes.
# (id, label, kind, value key, CI low key, CI high key, always shown)
HEADLINE = [
    ("rank", "Rank", "rank", "rank", None, None, False),
    ("system", "System", "system", "system", None, None, True),
    ("task", "Task", "task", "task", None, None, True),
    ("principle_split", "Split", "text", "principle_split", None, None, True),
    ("baseline", "Baseline", "text", "baseline", None, None, True),
    ("win_rate", "Win rate", "rate_ci", "win_rate", "ci_low", "ci_high", True),
    ("soft_win_rate", "Soft win rate", "rate_ci", "soft_win_rate", "soft_ci_low", "soft_ci_high", True),
    ("adherence", "Adherence", "rate_ci", "adherence", "adherence_ci_low", "adherence_ci_high", False),
    ("mi_nats", "MI self", "num_ci", "mi_nats", "mi_ci_low", "mi_ci_high", False),
    ("mi_nats_base_scorer", "MI base", "num_ci", "mi_nats_base_scorer", "mi_base_ci_low",
     "mi_base_ci_high", False),
    ("n", "n", "int", "n", None, None, True),
    ("warnings", "Warnings", "warnings", "warnings", None, None, True),
]
HEADLINE_TITLES = {
    "rank": "1 + rows whose CI lies entirely above this row's CI (same task, split, baseline); = marks a shared rank",
    "win_rate": "candidate win rate vs baseline (ties count 0.5), %, with its 95% CI",
    "soft_win_rate": "judge's probability that the candidate is better, averaged over both orders, %, 95% CI",
    "adherence": "fraction of responses that follow the principles (verifier judge), %, 95% CI",
    "mi_nats": "InfoNCE MI lower bound (log C - L_SAMI), nats, candidate as scorer",
    "mi_nats_base_scorer": "the same MI estimate with the fixed base model as scorer",
    "n": "items scored",
    "warnings": "position bias (first-position preference ≥ 90%), CI containing 50%, n < 50, parse failures > 5%",
}
CONSUMED = {"tied", "warnings"} | {key for column in HEADLINE for key in column[3:6] if key}
FILTERS = [("task", "Task"), ("principle_split", "Split"), ("baseline", "Baseline"), ("trainer", "Trainer"),
           ("judge", "Judge")]
PERCENT_KEYS = {"win_rate", "ci_low", "ci_high", "lc_win_rate", "lc_ci_low", "lc_ci_high", "soft_win_rate",
                "soft_ci_low", "soft_ci_high", "balanced_win_rate", "first_position_preference", "tie_rate",
                "parse_failure_rate", "position_consistency", "adherence", "adherence_ci_low", "adherence_ci_high"}
HASH_KEYS = {"config_hash", "judge_hash", "commit", "responses_sha", "verdicts_sha", "checkpoint_hash"}
PROVENANCE = [("run_id", "Run"), ("config_hash", "Config hash"), ("judge", "Judge"), ("judge_hash", "Judge hash"),
              ("protocol", "Protocol"), ("commit", "Commit"), ("responses_sha", "Responses sha"),
              ("verdicts_sha", "Verdicts sha"), ("checkpoint_hash", "Checkpoint hash")]
STATS = [("win_rate", "Win rate", "ci_low", "ci_high"), ("soft_win_rate", "Soft win rate", "soft_ci_low",
         "soft_ci_high"), ("adherence", "Adherence", "adherence_ci_low", "adherence_ci_high"),
         ("lc_win_rate", "Length-controlled", None, None), ("n", "Items", None, None),
         ("first_position_preference", "First-position preference", None, None),
         ("position_consistency", "Position consistency", None, None), ("tie_rate", "Tie rate", None, None),
         ("parse_failure_rate", "Parse failures", None, None), ("mean_length", "Mean length", None, None),
         ("baseline_mean_length", "Baseline mean length", None, None),
         ("mi_nats", "MI self (nats)", "mi_ci_low", "mi_ci_high"),
         ("mi_nats_base_scorer", "MI base (nats)", "mi_base_ci_low", "mi_base_ci_high")]
VERDICT_KNOWN = {"item", "order", "winner", "p_candidate", "candidate_length", "baseline_length", "candidate",
                 "baseline", "judge", "judge_hash", "attempts", "raw", "checks"}
ORDER_LABELS = {"candidate_first": "candidate shown first (A = candidate)",
                "baseline_first": "baseline shown first (A = baseline)"}


# ---------------------------------------------------------------------------------------------- formatting

def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def fmt_value(key: str, value: Any) -> str:
    """A cell's text: rates as percentages, floats to 3 significant digits, hashes shortened, None as a dash."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if _is_number(value) and (key in PERCENT_KEYS or key.endswith("_win_rate")):
        return f"{100 * value:.1f}%"
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, str) and key in HASH_KEYS:
        return value[:10] + ("…" if len(value) > 10 else "")
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt_value(key, v) for v in value) or "–"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def sort_value(value: Any) -> str:
    """The ``data-sort`` attribute: numbers as plain decimals (the script sorts numerically), else text."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if _is_number(value):
        return repr(float(value))
    if isinstance(value, (list, tuple, dict)):
        return fmt_value("", value)
    return str(value)


def _pct(value) -> str:
    return f"{100 * value:.1f}" if _is_number(value) else "–"


def _num(value) -> str:
    return f"{value:.3f}" if _is_number(value) else "–"


def fmt_ci(value, low, high, percent: bool = True) -> dict:
    """{"value", "ci"} strings, e.g. "50.0" and "[41.2, 58.8]"; ci is "" when either end is missing."""
    one = _pct if percent else _num
    ci = f"[{one(low)}, {one(high)}]" if _is_number(low) and _is_number(high) else ""
    return {"value": one(value), "ci": ci}


def ci_bar(low, high) -> dict | None:
    """Left offset and width (percent of a 0–100% track) of a rate's CI, for the small inline bar."""
    if not (_is_number(low) and _is_number(high)):
        return None
    lo, hi = max(0.0, min(1.0, low)), max(0.0, min(1.0, high))
    return {"left": f"{100 * lo:.1f}", "width": f"{max(100 * (hi - lo), 1.5):.1f}",
            "side": "above" if lo > 0.5 else "below" if hi < 0.5 else "across"}


_CODE = re.compile(r"`([^`]+)`")


def inline_markdown(text: str) -> Markup:
    """Escape a note, then render its `code` spans (the only markup the harness's notes use)."""
    return Markup(_CODE.sub(lambda m: f"<code>{m.group(1)}</code>", str(escape(text))))


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: Any, limit: int = 120) -> str:
    """A file-name-safe form of ``text``: only letters, digits, dot, dash, underscore; no leading dot."""
    name = _UNSAFE.sub("_", str(text)).strip("._") or "x"
    return name[:limit]


def _unique(name: str, taken: set[str]) -> str:
    candidate, k = name, 2
    while candidate.lower() in taken:
        candidate, k = f"{name}-{k}", k + 1
    taken.add(candidate.lower())
    return candidate


# ---------------------------------------------------------------------------------------------- data model

@dataclass
class Run:
    path: Path
    key: str                      # folder name under runs/ and items/
    results: dict
    copies: dict[str, str | None] = field(default_factory=dict)   # "config.yaml" -> site-relative path or None
    plots: list[Path] = field(default_factory=list)


@dataclass
class Entry:
    """One leaderboard row with everything its pages need."""
    row: dict
    run: Run
    page: str                     # site-relative path of its item page
    warnings: list
    pair_dir: str                 # judgments/<pair> relative to the run folder
    done_copy: str | None = None  # site-relative path of the copied done.json


def _split(row: dict) -> str:
    return str(row.get("principle_split") or "train")


def _verdicts_rel(row: dict) -> str:
    if row.get("verdicts_path"):
        return str(row["verdicts_path"])
    pair = f"{row.get('system')}--vs--{row.get('baseline')}"
    if _split(row) != "train":
        pair += f"--{_split(row)}"
    return f"judgments/{pair}/verdicts.jsonl"


def _inside(base: Path, relative: str) -> Path | None:
    """``base / relative`` when it stays inside ``base`` (row paths come from files, so check)."""
    try:
        path = (base / relative).resolve()
        path.relative_to(base.resolve())
    except (ValueError, OSError):
        return None
    return path


def _copy(source: Path, out_dir: Path, relative: str) -> str | None:
    if not source.is_file():
        return None
    target = out_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return relative


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


# ---------------------------------------------------------------------------------------------- items

def _load_jsonl(path: Path | None, what: str, shown: str, notes: list[str]) -> list[dict]:
    if path is None or not path.is_file():
        notes.append(f"{what} not found ({shown}); shown as unavailable.")
        return []
    try:
        return read_jsonl(path)
    except (OSError, ValueError, HarnessError) as exc:  # show what is readable, say what is not
        notes.append(f"{what} could not be read ({shown}): {exc}")
        return []


def _responses_path(run_dir: Path, system: str, split: str) -> tuple[Path | None, str]:
    """``eval/<system>/<split>/responses.jsonl``, else a flat ``eval/<system>/responses.jsonl``."""
    nested = f"eval/{system}/{split}/responses.jsonl"
    for relative in (nested, f"eval/{system}/responses.jsonl"):
        path = _inside(run_dir, relative)
        if path is not None and path.is_file():
            return path, relative
    return None, nested


def _winner_label(winner) -> str:
    if winner in ("candidate", "baseline", "tie"):
        return winner
    return "no verdict" if winner is None else str(winner)


def _checks_table(checks) -> dict | None:
    """{"sides": [...], "rows": [(principle, [value per side])]} for a {side: {principle: bool}} mapping."""
    if not isinstance(checks, dict) or not checks or not all(isinstance(v, dict) for v in checks.values()):
        return None
    sides = list(checks)
    principles: list[str] = []
    for side in sides:
        principles += [p for p in checks[side] if p not in principles]
    return {"sides": sides, "rows": [(p, [checks[side].get(p) for side in sides]) for p in principles]}


def _verdict_view(line: dict) -> dict:
    order = line.get("order")
    winner = line.get("winner")
    first = {"candidate_first": "candidate", "baseline_first": "baseline"}.get(order)
    checks = line.get("checks")
    return {
        "order": order or "–",
        "order_label": ORDER_LABELS.get(order, str(order) if order else "single call"),
        "winner": _winner_label(winner),
        "winner_class": winner if winner in ("candidate", "baseline", "tie") else "none",
        "picked_first": first is not None and winner == first,
        "p_candidate": _pct(line.get("p_candidate")),
        "attempts": line.get("attempts"),
        "raw": line.get("raw"),
        "checks": _checks_table(checks),
        "checks_raw": None if checks is None or _checks_table(checks) else json.dumps(checks, indent=1,
                                                                                       ensure_ascii=False,
                                                                                       default=str),
        "extra": [(k, fmt_value(k, v)) for k, v in line.items() if k not in VERDICT_KNOWN],
    }


def load_items(run_dir: Path, row: dict) -> tuple[list[dict], list[str]]:
    """The evaluation items behind one row and the notes on anything missing.

    Each item: {"id", "anchor", "query", "constitution", "principles", "subset", "candidate", "baseline",
    "verdicts": [verdict views], "mean_p", "outcome"}; a missing response is None.
    """
    notes: list[str] = []
    split = _split(row)
    cand_path, cand_rel = _responses_path(run_dir, str(row.get("system")), split)
    base_path, base_rel = _responses_path(run_dir, str(row.get("baseline")), split)
    verdicts_rel = _verdicts_rel(row)
    candidate = _load_jsonl(cand_path, "Candidate responses", cand_rel, notes)
    baseline = _load_jsonl(base_path, "Baseline responses", base_rel, notes)
    verdicts = _load_jsonl(_inside(run_dir, verdicts_rel), "Judge verdicts", verdicts_rel, notes)

    order: list[str] = []
    by_cand: dict[str, dict] = {}
    by_base: dict[str, dict] = {}
    by_verdict: dict[str, list[dict]] = {}
    for source, target in ((candidate, by_cand), (baseline, by_base)):
        for line in source:
            key = str(line.get("item"))
            target.setdefault(key, line)
            if key not in order:
                order.append(key)
    for line in verdicts:
        key = str(line.get("item"))
        by_verdict.setdefault(key, []).append(line)
        if key not in order:
            order.append(key)

    rank = {"candidate_first": 0, "baseline_first": 1}
    items, anchors = [], set()
    for key in order:
        cand, base = by_cand.get(key), by_base.get(key)
        first = cand or base or {}
        lines = sorted(by_verdict.get(key, []), key=lambda v: rank.get(v.get("order"), 2))
        ps = [v["p_candidate"] for v in lines if _is_number(v.get("p_candidate"))]
        winners = {v.get("winner") for v in lines}
        if not lines:
            outcome = "not judged"
        elif None in winners and len(winners) == 1:
            outcome = "no verdict"
        elif len(winners) == 1:
            outcome = f"{next(iter(winners))} (both orders)" if len(lines) > 1 else str(next(iter(winners)))
        else:
            outcome = "inconsistent across orders"
        principles = first.get("principles")
        items.append({
            "id": key,
            "anchor": _unique("item-" + safe_name(key, 80), anchors),
            "query": first.get("query"),
            "constitution": first.get("constitution"),
            "principles": principles if isinstance(principles, list) else None,
            "subset": first.get("subset"),
            "candidate": None if cand is None else cand.get("response"),
            "baseline": None if base is None else base.get("response"),
            "verdicts": [_verdict_view(v) for v in lines],
            "mean_p": _pct(sum(ps) / len(ps)) if ps else "–",
            "outcome": outcome,
        })
    if not items:
        notes.append("No evaluation items were found for this row.")
    return items, notes


# ---------------------------------------------------------------------------------------------- site

def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["fmt"] = lambda value, key="": fmt_value(key, value)
    env.filters["sortval"] = sort_value
    env.filters["md"] = inline_markdown
    env.globals.update(fmt_ci=fmt_ci, ci_bar=ci_bar, pct=_pct, num=_num, PERCENT_KEYS=PERCENT_KEYS,
                       HASH_KEYS=HASH_KEYS, HEADLINE_TITLES=HEADLINE_TITLES)
    return env


def _columns(rows: Sequence[dict]) -> tuple[list[dict], list[str]]:
    """Headline columns present in these rows, and the extra keys (first-seen order)."""
    headline = []
    for cid, label, kind, key, low, high, always in HEADLINE:
        if always or any(r.get(key) is not None for r in rows):
            headline.append({"id": cid, "label": label, "kind": kind, "key": key, "low": low, "high": high,
                             "title": HEADLINE_TITLES.get(cid, "")})
    extra: list[str] = []
    for row in rows:
        extra += [k for k in row if k not in CONSUMED and k not in extra]
    return headline, extra


def _filters(entries: Sequence[Entry], skip: Iterable[str] = ()) -> list[dict]:
    filters = []
    for key, label in FILTERS:
        if key in skip:
            continue
        values = sorted({str(e.row.get(key)) for e in entries if e.row.get(key) not in (None, "")})
        if values:
            filters.append({"key": key, "label": label, "options": values})
    return filters


def _clear(out_dir: Path) -> None:
    """Remove the subfolders a previous build wrote (only where this module's marker file is present)."""
    if (out_dir / MARKER).is_file():
        for sub in ("items", "runs", "assets"):
            if (out_dir / sub).is_dir():
                shutil.rmtree(out_dir / sub)
        for page in out_dir.glob("*.html"):
            page.unlink()


def write_site(out_dir: Path, run_dirs: list[Path], title: str = "Leaderboards", *,
               plots: Mapping[str, Sequence[Path]] | None = None) -> Path:
    """Render the static site for ``run_dirs`` into ``out_dir`` and return the path of ``index.html``.

    ``plots`` optionally adds PNG files per task (task -> paths) to those found in each run's ``leaderboard/``
    folder; all are embedded as data URIs.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear(out_dir)
    (out_dir / MARKER).write_text("written by harness.site.write_site; a rebuild replaces this folder's pages\n",
                                  encoding="utf-8")
    for asset in ASSETS:
        _copy(TEMPLATES / asset, out_dir, f"assets/{asset}")
    runs = _collect_runs(run_dirs, out_dir)
    entries = _collect_entries(runs, out_dir)
    task_pages = _task_page_names(entries)
    env = _environment()
    tasks = [{"name": t, "page": p, "rows": sum(_task_of(e) == t for e in entries)} for t, p in sorted(task_pages.items())]
    common = {"site_title": title, "tasks": tasks, "task_pages": task_pages}

    def render(template: str, path: str, **context) -> None:
        depth = path.count("/")
        html = env.get_template(template).render(root="../" * depth, page_path=path, **common, **context)
        atomic_write_text(out_dir / path, html)

    headline, extra = _columns([e.row for e in entries])
    render("index.html.j2", "index.html", title=title, entries=entries, headline=headline, extra=extra,
           filters=_filters(entries), runs=runs)
    for task, page in task_pages.items():
        task_entries = [e for e in entries if _task_of(e) == task]
        task_runs = [r for r in runs if any(e.run is r for e in task_entries)]
        notes: list[str] = []
        for run in task_runs:
            notes += [n for n in run.results.get("notes") or [] if n not in notes]
        t_headline, t_extra = _columns([e.row for e in task_entries])
        render("task.html.j2", page, title=f"{title}: {task}", task=task, entries=task_entries,
               headline=t_headline, extra=t_extra, filters=_filters(task_entries, skip=("task",)), notes=notes,
               images=_task_images(task, task_runs, (plots or {}).get(task, [])), runs=task_runs)
    for entry in entries:
        _render_item(render, entry)
    return out_dir / "index.html"


def _task_of(entry: Entry) -> str:
    return str(entry.row.get("task") or "unknown")


def _collect_runs(run_dirs: list[Path], out_dir: Path) -> list[Run]:
    """Each run folder's results, with copies of its config and manifest in the site and its plots."""
    runs: list[Run] = []
    run_keys: set[str] = set()
    for run_dir in run_dirs:
        run_dir = Path(run_dir)
        results = read_results(run_dir)
        key = _unique(safe_name(results.get("run_id") or run_dir.name), run_keys)
        run = Run(run_dir, key, results)
        for name in ("config.yaml", "manifest.json"):
            run.copies[name] = _copy(run_dir / name, out_dir, f"runs/{key}/{name}")
        leaderboard = run_dir / "leaderboard"
        run.plots = sorted(leaderboard.glob("*.png")) if leaderboard.is_dir() else []
        runs.append(run)
    return runs


def _collect_entries(runs: list[Run], out_dir: Path) -> list[Entry]:
    """One entry per result row: its item page, warnings and a copy of its judgment's done.json."""
    entries: list[Entry] = []
    pages: dict[str, set[str]] = {}
    for run in runs:
        for row in run.results["rows"]:
            if not isinstance(row, dict):
                continue
            name = safe_name(f"{row.get('system')}--vs--{row.get('baseline')}--{_split(row)}")
            page = f"items/{run.key}/{_unique(name, pages.setdefault(run.key, set()))}.html"
            pair_dir = str(Path(_verdicts_rel(row)).parent)
            entry = Entry(row, run, page, compute_warnings(row), pair_dir)
            done = _inside(run.path, f"{pair_dir}/done.json")
            if done is not None:
                parts = "/".join(safe_name(part) for part in Path(pair_dir).parts if part not in ("", ".", ".."))
                entry.done_copy = _copy(done, out_dir, f"runs/{run.key}/{parts or 'judgment'}/done.json")
            entries.append(entry)
    return entries


def _task_page_names(entries: list[Entry]) -> dict[str, str]:
    task_pages: dict[str, str] = {}
    taken = {"index"}
    for entry in entries:
        if _task_of(entry) not in task_pages:
            task_pages[_task_of(entry)] = _unique(safe_name(_task_of(entry)), taken) + ".html"
    return task_pages


def _task_images(task: str, task_runs: list[Run], extra: Sequence[Path]) -> list[dict]:
    """The task's plots from its runs' leaderboard folders (and ``extra``), each once, as data URIs."""
    images, seen = [], set()
    candidates = []
    for run in task_runs:
        own = [p for p in run.plots if p.name.startswith(f"{task}-")]
        tasks_of_run = {str(r.get("task")) for r in run.results["rows"] if isinstance(r, dict)}
        candidates += [(path, run.key) for path in (own if own or len(tasks_of_run) > 1 else run.plots)]
    candidates += [(Path(path), None) for path in extra if Path(path).is_file()]
    for path, run_key in candidates:
        uri = _data_uri(path)
        if uri not in seen:
            seen.add(uri)
            images.append({"name": path.stem, "run": run_key, "uri": uri})
    return images


def _render_item(render, entry: Entry) -> None:
    """The item browser of one row: its numbers, provenance and every item's responses and verdicts."""
    items, notes = load_items(entry.run.path, entry.row)
    for name in ("config.yaml", "manifest.json"):
        if entry.run.copies.get(name) is None:
            notes.append(f"{name} not found in the run folder; no copy linked.")
    if entry.done_copy is None:
        notes.append(f"{entry.pair_dir}/done.json not found in the run folder; no copy linked.")
    row = entry.row
    heading = f"{row.get('system')} vs {row.get('baseline')}"
    render("item.html.j2", entry.page, title=f"{heading} ({row.get('task')}, {_split(row)} principles)",
           heading=heading, entry=entry, row=row, items=items, notes=notes, stats=_item_stats(row),
           provenance=[(k, label, row.get(k)) for k, label in PROVENANCE],
           all_fields=[(k, fmt_value(k, v), v) for k, v in row.items()])


def _item_stats(row: dict) -> list[dict]:
    stats = []
    for key, label, low, high in STATS:
        if row.get(key) is None:
            continue
        if low and _is_number(row.get(low)):
            shown = fmt_ci(row[key], row.get(low), row.get(high), percent=key in PERCENT_KEYS)
            value = shown["value"] + ("%" if key in PERCENT_KEYS else "")
            stats.append({"label": label, "value": value, "ci": shown["ci"], "key": key})
        else:
            stats.append({"label": label, "value": fmt_value(key, row[key]), "ci": "", "key": key})
    return stats
