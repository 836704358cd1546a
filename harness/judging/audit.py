"""Judge audit against ground truth: any judge's pairwise verdicts scored against the ``verifier`` judge's exact
verdicts on verifiable principles (no human labels needed).

Both judges judge the same two response files (``harness.judging.files.judge_files``; the judge under audit in
both orders). Reported: accuracy on the items the verifier decides (its tie items are left out of accuracy),
Cohen's kappa over {candidate, baseline, tie} call by call, item-level accuracy of the judge's two-order verdict,
the judge's position consistency and first-position preference, and the accuracy a judge that always picks the
first-shown response would get on the same calls. When the judge's first-position preference is at least
``POSITION_BIAS`` its agreement is flagged as an artifact of position bias.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import stats
from harness.core.artifacts import write_json
from harness.core.cache import ContentCache
from harness.core.errors import HarnessError
from harness.judging.config import Judge, load_judge
from harness.judging.files import judge_files
from harness.stats.bootstrap import _fraction
from harness.stats.verdicts import group_items, parse_verdicts

POSITION_BIAS = 0.9


def _first_shown(order: str) -> str:
    return "candidate" if order == "candidate_first" else "baseline"


def audit(judge: Judge, task_name: str, candidate: str | Path, baseline: str | Path, out: str | Path, *,
          principles_file: str | None = None, seed: int = 0, limit: int | None = None,
          cache: ContentCache | None = None, backend=None, progress: bool = True, log=print) -> dict[str, Any]:
    """Judge the pair files with ``judge`` and with the verifier; return (and write ``audit.json``) the scores."""
    if judge.config.backend == "verifier":
        raise HarnessError("auditing the verifier against itself: choose another judge (--judge)")
    out = Path(out)
    truth = judge_files(task_name, candidate, baseline, load_judge("verifier"), out / "verifier", limit=limit,
                        seed=seed, principles_file=principles_file, progress=False, log=log)
    judged = judge_files(task_name, candidate, baseline, judge, out / "judge", limit=limit, seed=seed, cache=cache,
                         backend=backend, progress=progress, log=log)
    labels = {line["item"]: line["winner"] for line in truth.verdicts}
    calls = [line for line in judged.verdicts if line["winner"] is not None]
    decisive = [line for line in calls if labels.get(line["item"]) not in (None, "tie")]
    ours, theirs = parse_verdicts(judged.verdicts, "judge verdicts"), parse_verdicts(truth.verdicts, "verifier")
    diagnostics = stats.robust(ours, seed=seed)
    item_scores = {str(r.item): s for r, s in zip(*stats.robust_item_scores(group_items(ours)))}
    decided_items = [item for item, label in labels.items() if label != "tie" and item in item_scores]
    item_correct = [(item_scores[item] > 0.5) == (labels[item] == "candidate") and item_scores[item] != 0.5
                    for item in decided_items]
    result = {
        "protocol": "audit-against-verifier", "judge": judge.describe(), "judge_hash": judge.hash,
        "task": task_name, "n_items": len(labels), "n_calls": len(judged.verdicts),
        "n_verifier_decisive_items": len(decided_items),
        "accuracy": _fraction(sum(line["winner"] == labels[line["item"]] for line in decisive), len(decisive)),
        "n_accuracy_calls": len(decisive),
        "always_first_accuracy": _fraction(sum(_first_shown(line["order"]) == labels[line["item"]]
                                               for line in decisive), len(decisive)),
        "item_accuracy": _fraction(sum(item_correct), len(item_correct)),
        "agreement": stats.judge_agreement(ours, theirs),
        "position_consistency": diagnostics["position_consistency"],
        "first_position_preference": diagnostics["first_position_preference"],
        "parse_failure_rate": diagnostics["parse_failure_rate"],
        "judge_win_rate": diagnostics["win_rate"], "verifier_win_rate": truth.summary["win_rate"],
        "verifier_adherence": {"candidate": truth.summary.get("adherence"),
                               "baseline": truth.summary.get("baseline_adherence")},
        "warnings": [], "out": str(out),
    }
    first = result["first_position_preference"]
    if first is not None and first >= POSITION_BIAS:
        result["warnings"].append(
            f"position bias: the judge chose the response shown first in {first:.0%} of decisive calls, so its "
            f"agreement with the verifier is an artifact of position (a judge that always picks the first response "
            f"scores {result['always_first_accuracy']:.0%} accuracy on these calls)")
    write_json(out / "audit.json", result)
    return result


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def render_audit(result: dict[str, Any]) -> str:
    kappa = result["agreement"]["cohen_kappa"]
    lines = [
        f"audit of judge {result['judge']['name']} ({result['judge_hash']}) against the verifier's exact verdicts "
        f"on {result['n_items']} {result['task']} items ({result['n_verifier_decisive_items']} decided by the verifier)",
        f"  accuracy on decided items: {_pct(result['accuracy'])} of {result['n_accuracy_calls']} calls "
        f"(always picking the first response: {_pct(result['always_first_accuracy'])}); item level (both orders): "
        f"{_pct(result['item_accuracy'])}",
        f"  Cohen's kappa per call: {'-' if kappa is None else f'{kappa:.3f}'}; position consistency "
        f"{_pct(result['position_consistency'])}; first-position preference {_pct(result['first_position_preference'])}; "
        f"parse failures {_pct(result['parse_failure_rate'])}",
        f"  win rate of the candidate: judge {_pct(result['judge_win_rate'])}, verifier {_pct(result['verifier_win_rate'])}",
    ]
    lines += [f"  warning: {warning}" for warning in result["warnings"]]
    lines.append(f"  (wrote {result['out']})")
    return "\n".join(lines)
