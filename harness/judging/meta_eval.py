"""Judge meta-evaluation: how well does a judge agree with reference verdicts?

The reference is the public GPT-4-judged TL;DR set (``oai1b_judged.csv``: a 1B policy's summary vs the human
reference summary, with the position the policy summary was shown in; see ``harness.judging.reference_verdicts``). Our
judge re-judges each pair in the SAME position as the reference (so agreement compares like with like) and, by
default, also in the swapped position (for position consistency). Reported: raw agreement with and without ties
and Cohen's kappa (``harness.stats.winrates.judge_agreement``) on the same-position calls, item-level agreement of the
two-order verdict, and the judge's diagnostics (position consistency, first-position preference, tie and
parse-failure rates, win rate of the policy) next to the reference judge's own.
"""

from __future__ import annotations

import csv
import re
import time
from pathlib import Path
from typing import Any

from harness import stats
from harness.core.artifacts import write_json, write_jsonl
from harness.core.cache import ContentCache
from harness.core.errors import HarnessError
from harness.core.hashing import content_hash, file_hash
from harness.judging.config import Judge
from harness.judging.engine import JudgeRunner, verdict_line
from harness.judging.files import default_constitution, provenance
from harness.judging.responses import Pair
from harness.judging.reference_verdicts import BASELINE, CANDIDATE, read_oai1b_judged
from harness.stats.verdicts import Verdict, group_items, parse_verdicts

DEFAULT_REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "tldr" / "oai1b_judged.csv"
OTHER = {"candidate_first": "baseline_first", "baseline_first": "candidate_first"}


def _strip_tldr(text: str) -> str:
    return re.sub(r"\s*TL;DR:\s*$", "", text.strip())


def reference_pairs(path: Path, limit: int | None) -> tuple[list[Pair], list[dict]]:
    """The judged rows as pairs (candidate = policy, baseline = human) and their reference verdict dicts."""
    reference = read_oai1b_judged(path)
    if limit:
        reference = reference[:limit]
    wanted = {v["item"] for v in reference}
    texts: dict[int, tuple[str, str, str]] = {}
    with open(path, encoding="utf-8", newline="") as handle:
        for index, row in enumerate(csv.DictReader(handle)):
            if index in wanted:
                texts[index] = (_strip_tldr(row["query"]), row["postprocessed_response"].strip(),
                                row["reference_responses"].split("<|endoftext|>")[0].strip())
    pairs = [Pair(v["item"], texts[v["item"]][0], None, texts[v["item"]][1], texts[v["item"]][2]) for v in reference]
    return pairs, reference


def _item_labels(verdicts: list[Verdict]) -> list[Verdict]:
    """One label per item from all its calls: the robust item score > 0.5 candidate, < 0.5 baseline, = 0.5 tie;
    None where every call failed."""
    labels = []
    for record in group_items(verdicts):
        kept, scores = stats.robust_item_scores([record])
        if not kept:
            winner = None
        else:
            score = float(scores[0])
            winner = "candidate" if score > 0.5 else "baseline" if score < 0.5 else "tie"
        labels.append(Verdict(item=record.item, winner=winner, candidate=record.calls[0].candidate,
                              baseline=record.calls[0].baseline))
    return labels


def _soft_item_labels(verdicts: list[Verdict]) -> list[Verdict]:
    """One label per item from the mean p_candidate over its calls (both orders: a position-debiased soft verdict);
    items without a soft preference on every parsed call are left out."""
    labels = []
    for record in group_items(verdicts):
        soft = [c.p_candidate for c in record.calls if c.winner is not None]
        if not soft or any(p is None for p in soft):
            continue
        mean = sum(soft) / len(soft)
        winner = "candidate" if mean > 0.5 else "baseline" if mean < 0.5 else "tie"
        labels.append(Verdict(item=record.item, winner=winner, candidate=record.calls[0].candidate,
                              baseline=record.calls[0].baseline))
    return labels


DIAGNOSTICS = ("n", "win_rate", "ci_low", "ci_high", "soft_win_rate", "position_consistency", "n_both_orders",
               "first_position_preference", "tie_rate", "parse_failure_rate", "mean_candidate_length",
               "mean_baseline_length", "lc_win_rate")


def meta_evaluate(judge: Judge, reference: Path | str | None = None, out: Path | str | None = None, *,
                  task_name: str = "tldr", limit: int | None = None, seed: int = 0, both_orders: bool = True,
                  cache: ContentCache | None = None, backend=None, retry_failures: bool = False,
                  progress: bool = True) -> dict[str, Any]:
    from harness.tasks import get_task

    path = Path(reference) if reference else DEFAULT_REFERENCE
    if not path.is_file():
        raise HarnessError(f"reference verdicts not found: {path} (give --reference PATH to oai1b_judged.csv)")
    task = get_task(task_name)
    pairs, reference_rows = reference_pairs(path, limit)
    if not pairs:
        raise HarnessError(f"{path}: no judged rows")
    pairs = [Pair(p.item, p.query, default_constitution(task, str(p.item), seed), p.candidate, p.baseline) for p in pairs]
    orders = {v["item"]: [v["order"], OTHER[v["order"]]] if both_orders else [v["order"]] for v in reference_rows}
    runner = JudgeRunner(judge, cache, noun=task.response_noun, query_label=task.judge_query_label,
                         seed=seed, backend=backend, progress=progress)
    started = time.time()
    calls = runner.build_calls(pairs, orders)
    outcomes = runner.run(calls, retry_failures=retry_failures)
    lines = [verdict_line(call, outcome, judge, CANDIDATE, BASELINE) for call, outcome in zip(calls, outcomes)]
    seconds = time.time() - started

    ours = parse_verdicts(lines, "judge verdicts")
    theirs = parse_verdicts(reference_rows, str(path))
    reference_order = {v.item: v.order for v in theirs}
    same_position = [v for v in ours if v.order == reference_order[v.item]]
    agreement = stats.judge_agreement(same_position, theirs)
    item_agreement = stats.judge_agreement(_item_labels(ours), _item_labels(theirs)) if both_orders else None
    soft_labels = _soft_item_labels(ours)
    soft_agreement = stats.judge_agreement(soft_labels, _item_labels(theirs)) if soft_labels else None
    ours_stats = stats.robust(ours, seed=seed)
    theirs_stats = stats.robust(theirs, seed=seed)
    result = {
        "protocol": "meta-eval",
        "judge": judge.describe(),
        "judge_hash": judge.hash,
        "judge_backend": runner.backend.identity(),
        "reference": {"path": str(path), "sha256": file_hash(path), "judge": "gpt-4 (vwxyzjn/summarize_from_feedback_details)",
                      "n_items": len(reference_rows)},
        "task": task.name,
        "seed": seed,
        "both_orders": both_orders,
        "n_items": len(pairs),
        "n_calls": len(calls),
        "agreement": agreement,
        "item_agreement": item_agreement,
        "soft_item_agreement": soft_agreement,
        "judge_diagnostics": {k: ours_stats.get(k) for k in DIAGNOSTICS},
        "reference_diagnostics": {k: theirs_stats.get(k) for k in DIAGNOSTICS},
        "counts": {"calls": runner.counts.calls, "cached": runner.counts.cached, "judged": runner.counts.judged,
                   "errors": runner.counts.errors, "parse_failures": runner.counts.parse_failures},
        "seconds": round(seconds, 2),
        "note": stats.resolution_note(len(pairs)),
        **provenance(),
    }
    out = Path(out) if out else Path("runs") / f"meta-eval-{judge.name}-{content_hash([judge.hash, file_hash(path), limit, seed, both_orders], 10)}"
    write_jsonl(out / "verdicts.jsonl", lines)
    write_json(out / "meta_eval.json", result)
    result["out"] = str(out)
    return result


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def render_text(result: dict[str, Any]) -> str:
    a, item = result["agreement"], result["item_agreement"]
    ours, theirs = result["judge_diagnostics"], result["reference_diagnostics"]
    kappa = "-" if a["cohen_kappa"] is None else f"{a['cohen_kappa']:.3f}"
    excluded = a["n_parse_failures_excluded"]
    failures = f"; {excluded} calls with a parse failure excluded" if excluded else ""
    lines = [
        f"meta-evaluation of judge {result['judge']['name']} ({result['judge_hash']}) against "
        f"{result['reference']['judge']} on {result['n_items']} TL;DR pairs (policy vs human reference summary)",
        f"  same-position agreement: raw {_pct(a['raw_agreement'])} ({a['n']} calls), without ties "
        f"{_pct(a['non_tie_agreement'])} ({a['n_non_tie']} calls), Cohen's kappa {kappa}" + failures,
    ]
    if item:
        item_kappa = "-" if item["cohen_kappa"] is None else f"{item['cohen_kappa']:.3f}"
        lines.append(f"  item-level agreement (both orders averaged): raw {_pct(item['raw_agreement'])}, without ties "
                     f"{_pct(item['non_tie_agreement'])} ({item['n_non_tie']} items), Cohen's kappa {item_kappa}")
    soft = result.get("soft_item_agreement")
    if soft:
        soft_kappa = "-" if soft["cohen_kappa"] is None else f"{soft['cohen_kappa']:.3f}"
        lines.append(f"  soft item-level agreement (mean p_candidate over the orders): raw {_pct(soft['raw_agreement'])} "
                     f"({soft['n']} items), Cohen's kappa {soft_kappa}")
    header = f"  {'':32}{'this judge':>14}{'reference':>14}"
    rows = [("policy win rate", "win_rate"), ("  95% CI low", "ci_low"), ("  95% CI high", "ci_high"),
            ("soft win rate (p_candidate)", "soft_win_rate"), ("position consistency", "position_consistency"),
            ("first-position preference", "first_position_preference"), ("tie rate", "tie_rate"),
            ("parse-failure rate", "parse_failure_rate")]
    lines.append(header)
    for label, key in rows:
        lines.append(f"  {label:32}{_pct(ours.get(key)):>14}{_pct(theirs.get(key)):>14}")
    lines.append(f"  ({result['note']}; {result['counts']['judged']} calls judged, {result['counts']['cached']} cached, "
                 f"{result['seconds']:.1f} s; wrote {result['out']})")
    return "\n".join(lines)
