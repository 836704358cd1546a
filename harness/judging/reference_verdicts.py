"""Verdicts from a public judged set: GPT-4 comparing a 1B TL;DR policy with the human reference.

The file is ``eval/oai1b.csv_judged.csv`` of vwxyzjn/summarize_from_feedback_details (copied to
``shared/reference/tldr/oai1b_judged.csv``). Columns used: ``postprocessed_response`` (the
policy's summary), ``reference_responses`` (the human summary, cut at ``<|endoftext|>``),
``explanation`` (the judge's one-sentence comparison), ``preferred`` ("ours" = policy,
"reference" = human, blank = row not judged) and ``shuffled_index``.

Meaning of ``shuffled_index``: 0 = the policy summary was shown first (as "Summary A"), 1 = it was
shown second. Evidence:
- the judging script (``eval/oai.py`` in the same repository) sets
  ``summary_a = [policy, reference][shuffled_index]`` and records "ours" for (0, "A") and (1, "B");
- the explanations agree when read against the texts: in row 0 (index 1) the judge faults
  "Summary B's mention of 'been with her for 3 months now'", a phrase of the policy summary; and
  of the 114 explanations saying "Summary X is more concise / shorter / more succinct / briefer"
  or "more detailed / longer / more comprehensive", 93 match the word counts of the texts when
  index 0 means policy-first and only 21 when it means policy-second.

That script turned an unparseable judge answer into a random "A"/"B" with an empty explanation;
such rows would be scored here as parse failures (winner None). The 1,000 judged rows have none.
"""

from __future__ import annotations

import csv
from pathlib import Path

from harness.core.errors import ConfigError

CANDIDATE = "oai1b"
BASELINE = "human-reference"
COLUMNS = ("postprocessed_response", "reference_responses", "explanation", "preferred", "shuffled_index")


def _words(text: str) -> int:
    return len(text.split())


def read_oai1b_judged(path: Path | str) -> list[dict]:
    """Verdict dicts (``harness.stats.verdicts`` schema) for the judged rows, item = 0-based row index."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(str(path), "path", "no such file")
    verdicts = []
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ConfigError(str(path), missing[0], "missing column")
        for index, row in enumerate(reader):
            preferred = row["preferred"].strip()
            if not preferred:
                continue
            if preferred not in ("ours", "reference") or row["shuffled_index"] not in ("0", "1"):
                raise ConfigError(f"{path} row {index}", "preferred/shuffled_index",
                                  f"unexpected values {preferred!r}, {row['shuffled_index']!r}")
            policy = row["postprocessed_response"].strip()
            human = row["reference_responses"].split("<|endoftext|>")[0].strip()
            explanation = row["explanation"].strip()
            verdicts.append({
                "item": index,
                "order": "candidate_first" if row["shuffled_index"] == "0" else "baseline_first",
                "winner": None if not explanation else ("candidate" if preferred == "ours" else "baseline"),
                "candidate_length": _words(policy),
                "baseline_length": _words(human),
                "candidate": CANDIDATE,
                "baseline": BASELINE,
                "raw": explanation,
            })
    return verdicts
