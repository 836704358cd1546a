"""Warnings on a result row (a leaderboard row or a `harness stats` summary): the readings a person should not take
at face value. The leaderboard tables, the site and `harness stats` all show these."""

from __future__ import annotations

from dataclasses import dataclass

POSITION_BIAS_THRESHOLD = 0.9     # first_position_preference at or above this: the judge mostly picks slot A
SMALL_N_THRESHOLD = 50            # fewer items than this: wide CIs
PARSE_FAILURE_THRESHOLD = 0.05    # more judge calls than this without a parseable verdict


@dataclass(frozen=True)
class RowWarning:
    code: str       # stable id, also the badge's CSS class: position-bias, unresolved-ci, small-n, parse-failures, run
    label: str      # short badge text
    detail: str     # one sentence shown as tooltip and on the item page


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _contains_half(low, high) -> bool:
    low, high = _number(low), _number(high)
    return low is not None and high is not None and low <= 0.5 <= high


def compute_warnings(row: dict) -> list[RowWarning]:
    """The warnings that apply to one leaderboard row, computed ones first, then any the harness stored in
    ``row["warnings"]`` (a string or a list of strings)."""
    found: list[RowWarning] = []
    first = _number(row.get("first_position_preference"))
    if first is not None and first >= POSITION_BIAS_THRESHOLD and row.get("protocol") == "sami-paper":
        found.append(RowWarning("position-bias", "position bias",
                             f"the judge chose the response shown first in {100 * first:.0f}% of decisive calls and "
                             "each item was judged in one random order, so this win rate mostly reflects which "
                             "items drew the candidate first; judge both orders (robust protocol)"))
    elif first is not None and first >= POSITION_BIAS_THRESHOLD:
        found.append(RowWarning("position-bias", "position bias",
                             f"the judge chose the response shown first in {100 * first:.0f}% of decisive calls "
                             f"(≥ {100 * POSITION_BIAS_THRESHOLD:.0f}%): hard verdicts cancel across the two "
                             "orders; read the soft win rate and check the judge with `harness meta-eval`"))
    unresolved = []
    if _contains_half(row.get("ci_low"), row.get("ci_high")):
        unresolved.append("win rate")
    if _contains_half(row.get("soft_ci_low"), row.get("soft_ci_high")):
        unresolved.append("soft win rate")
    if unresolved:
        found.append(RowWarning("unresolved-ci", "CI spans 50%",
                             f"the 95% CI of the {' and the '.join(unresolved)} contains 50%: "
                             "no detectable difference from the baseline"))
    n = _number(row.get("n"))
    if n is not None and n < SMALL_N_THRESHOLD:
        found.append(RowWarning("small-n", f"n = {int(n)}",
                             f"only {int(n)} items (< {SMALL_N_THRESHOLD}): the CIs are wide"))
    failures = _number(row.get("parse_failure_rate"))
    if failures is not None and failures > PARSE_FAILURE_THRESHOLD:
        found.append(RowWarning("parse-failures", f"parse fail {100 * failures:.0f}%",
                             f"{100 * failures:.1f}% of judge calls had no parseable verdict "
                             f"(> {100 * PARSE_FAILURE_THRESHOLD:.0f}%); they are excluded, not counted as ties"))
    stored = row.get("warnings")
    if isinstance(stored, str):
        stored = [stored]
    for text in stored or []:
        if isinstance(text, dict):  # tolerate a structured form: {"code"/"label", "detail"/"message"}
            label = str(text.get("label") or text.get("code") or "warning")
            detail = str(text.get("detail") or text.get("message") or label)
        else:
            detail = str(text)
            label = detail if len(detail) <= 32 else detail[:30].rstrip() + "…"
        found.append(RowWarning("run", label, detail))
    return found
