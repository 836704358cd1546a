"""Verdict parsers: a judge's text -> "A", "B" or None (a parse failure). None is never turned into a tie.

``final-line`` (version 1): the last non-empty line of the answer must name the letter, alone or after a
label: "A", "B", "Verdict: A", "Final answer: (B)", "**Preferred summary: A**", "Winner - B." Anything else
(an empty answer, a letter buried in a sentence, "Tie", both letters) is a parse failure; the judge re-asks and
records a failure (winner null) when the re-asks run out.

The soft preference p(A) is read from the token log-probs at the verdict letter, where the endpoint returns
them: p(A) = P(A) / (P(A) + P(B)) over the top alternatives at that position.
"""

from __future__ import annotations

import math
import re
from typing import Callable

LABEL = r"(?:final\s+)?(?:verdict|answer|choice|decision|preference|preferred|winner|better|best)(?:\s+(?:summary|response|answer|option))?"
_LABELLED = re.compile(rf"^{LABEL}\s*(?:is)?\s*[:=\-]?\s*(?:(?:summary|response|option)\s+)?[(\[]?([AaBb])[)\]]?$",
                       re.IGNORECASE)
_BARE = re.compile(r"^(?:(?:summary|response|option)\s+)?[(\[]?([AB])[)\]]?$", re.IGNORECASE)
_DECORATION = re.compile(r"[*_`#>\"']")

REASK = ("Your answer did not end with a line naming the better {noun}. Reply with one line only: "
         "'Verdict: A' or 'Verdict: B'.")


def parse_final_line(text: str) -> str | None:
    """'A', 'B' or None from the last non-empty line (see the module docstring)."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return None
    line = _DECORATION.sub("", lines[-1]).strip().rstrip(".!").strip()
    match = _LABELLED.match(line)
    if match:
        return match.group(1).upper()
    match = _BARE.match(line)
    if match and (match.group(1) in "AB" or line.lower().startswith(("summary", "response", "option"))):
        return match.group(1).upper()
    return None


# name -> (version, parse function); the YAML names both, and a version the code does not implement is refused
PARSERS: dict[str, tuple[int, Callable[[str], str | None]]] = {
    "final-line": (1, parse_final_line),
}


# the local judge's "parser": the verdict is read from next-token probabilities (harness.judging.local)
TOKEN_PROBS_PARSER = ("verdict-token-probs", 1)


def get_parser(name: str, version: int) -> Callable[[str], str | None]:
    from harness.core.errors import HarnessError

    if name not in PARSERS:
        raise HarnessError(f"unknown verdict parser '{name}'; known: {', '.join(sorted(PARSERS))}")
    implemented, function = PARSERS[name]
    if implemented != version:
        raise HarnessError(f"verdict parser '{name}' version {version} requested; this harness implements "
                           f"version {implemented}")
    return function


def _letter(token: str) -> str | None:
    stripped = _DECORATION.sub("", token).strip().strip("()[]:.")
    return stripped if stripped in ("A", "B") else None


def soft_preference(logprobs: list[tuple[str, float, dict[str, float]]] | None, letter: str | None) -> float | None:
    """p(A) at the last token of the answer that is the parsed verdict letter, from the top log-probs there;
    None when there are no log-probs, no such token, or neither letter among the alternatives."""
    if not logprobs or letter is None:
        return None
    for token, logprob, alternatives in reversed(logprobs):
        if _letter(token) != letter:
            continue
        candidates = dict(alternatives)
        candidates.setdefault(token, logprob)
        mass = {"A": 0.0, "B": 0.0}
        for alt, alt_logprob in candidates.items():
            which = _letter(alt)
            if which and math.isfinite(alt_logprob):
                mass[which] += math.exp(alt_logprob)
        total = mass["A"] + mass["B"]
        return mass["A"] / total if total > 0 else None
    return None
