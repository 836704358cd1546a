"""The ``verifier`` judge: exact pairwise verdicts on verifiable principles, no model.

For an item judged under constitution c, each line of c that is a principle with a check (``check`` for its
definition, ``antithesis_check`` for its negated form; ``harness/verifiers``) is run on both responses. The
response that satisfies more of them wins; equal counts tie. The verdict is the same whichever response is shown
first, so both orders are written (position consistency 1, first-position preference 0.5 on decisive calls), and
the lines carry the per-principle results (``checks``) from which adherence rates are computed
(``harness.stats.adherence``).
"""

from __future__ import annotations

from harness.core.errors import HarnessError
from harness.judging.prompting import principle_lines
from harness.judging.responses import Pair, words
from harness.stats.verdicts import ORDERS
from harness.tasks.principles import PrincipleSet
from harness.verifiers import CheckSpec, verify


def constitution_checks(constitution: str, principles: PrincipleSet) -> dict[str, CheckSpec]:
    """Label -> check for every checkable principle line of ``constitution`` (label: the principle's name, or
    ``not-<name>`` for its antithesis). Lines that are not checkable principles are skipped."""
    forms = {}
    for principle in principles.principles:
        for positive in (True, False):
            spec = principle.check_for(positive)
            if spec is not None:
                forms[principle.text(positive)] = (principle.name if positive else f"not-{principle.name}", spec)
    return dict(forms[line] for line in principle_lines(constitution) if line in forms)


def verdict_lines(pair: Pair, principles: PrincipleSet, judge, candidate: str, baseline: str) -> list[dict]:
    """The two verdict lines (one per order) of one item."""
    checks = constitution_checks(pair.constitution or "", principles)
    if not checks:
        raise HarnessError(f"item {pair.item!r}: no principle of its constitution has a check, so the verifier "
                           "judge cannot decide; use a principles file with `check`/`antithesis_check` fields")
    results = {side: {label: verify(spec, text, pair.query) for label, spec in checks.items()}
               for side, text in (("candidate", pair.candidate), ("baseline", pair.baseline))}
    satisfied = {side: sum(result.values()) for side, result in results.items()}
    if satisfied["candidate"] == satisfied["baseline"]:
        winner, p_candidate = "tie", 0.5
    else:
        winner = "candidate" if satisfied["candidate"] > satisfied["baseline"] else "baseline"
        p_candidate = 1.0 if winner == "candidate" else 0.0
    raw = f"candidate {satisfied['candidate']}/{len(checks)}, baseline {satisfied['baseline']}/{len(checks)}"
    return [{"item": pair.item, "order": order, "winner": winner, "p_candidate": p_candidate,
             "candidate_length": words(pair.candidate), "baseline_length": words(pair.baseline),
             "candidate": candidate, "baseline": baseline, "judge": judge.name, "judge_hash": judge.hash,
             "attempts": 0, "raw": raw, "checks": results} for order in ORDERS]
