"""Reading judge verdict files (JSONL) and grouping them into per-item records.

One line is one judge call::

    {"item": "17", "order": "candidate_first", "winner": "candidate",
     "p_candidate": 0.83, "candidate_length": 41, "baseline_length": 57,
     "candidate": "sami-it3", "baseline": "base", "judge_hash": "...", "raw": "..."}

Only ``item`` and ``winner`` are required, so verdicts from other tools can be scored.
``winner`` is ``"candidate"``, ``"baseline"``, ``"tie"`` or ``null`` (the judge's answer could
not be parsed). Other keys (``judge_hash``, ``raw``, ...) are kept out of the statistics.
An item is judged in one or both orders; two calls for the same item must name different orders.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from harness.core.artifacts import read_jsonl_numbered
from harness.core.errors import ConfigError

WINNERS = ("candidate", "baseline", "tie")
ORDERS = ("candidate_first", "baseline_first")

# (candidate name, baseline name); either is None when the verdict file does not say.
Pair = tuple[str | None, str | None]


@dataclass(frozen=True)
class Verdict:
    """One judge call: which response won, in which display order, and the response lengths (words)."""

    item: str | int
    winner: str | None
    order: str | None = None
    p_candidate: float | None = None
    candidate_length: int | None = None
    baseline_length: int | None = None
    candidate: str | None = None
    baseline: str | None = None
    line: int = 0

    @property
    def pair(self) -> Pair:
        return (self.candidate, self.baseline)


@dataclass(frozen=True)
class ItemRecord:
    """All judge calls of one item (prompt) for one (candidate, baseline) pair: 1 or 2 orders."""

    item: str | int
    calls: tuple[Verdict, ...]

    @property
    def candidate_length(self) -> int | None:
        return next((c.candidate_length for c in self.calls if c.candidate_length is not None), None)

    @property
    def baseline_length(self) -> int | None:
        return next((c.baseline_length for c in self.calls if c.baseline_length is not None), None)


def _check(value: Any, ok: bool, where: str, field: str, expected: str) -> Any:
    if not ok:
        raise ConfigError(where, field, f"must be {expected}, got {value!r}")
    return value


def _optional_length(row: dict, field: str, where: str) -> int | None:
    value = row.get(field)
    if value is None:
        return None
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return _check(value, ok, where, field, "a non-negative integer (words) or null")


def _optional_name(row: dict, field: str, where: str) -> str | None:
    value = row.get(field)
    return _check(value, value is None or (isinstance(value, str) and value != ""), where, field,
                  "a non-empty string or null")


def parse_verdict(row: dict, source: str, line: int) -> Verdict:
    """Validate one verdict dict; a bad field raises ConfigError naming the source, line and field."""
    where = f"{source} line {line}"
    if "item" not in row:
        raise ConfigError(where, "item", "missing (every verdict names its item id)")
    item = row["item"]
    _check(item, (isinstance(item, str) and item != "") or (isinstance(item, int) and not isinstance(item, bool)),
           where, "item", "a non-empty string or an integer")
    if "winner" not in row:
        raise ConfigError(where, "winner", "missing (use null for a judge answer that could not be parsed)")
    winner = row["winner"]
    _check(winner, winner is None or winner in WINNERS, where, "winner", f"one of {', '.join(WINNERS)} or null")
    order = row.get("order")
    _check(order, order is None or order in ORDERS, where, "order", f"one of {', '.join(ORDERS)} or null")
    p_candidate = row.get("p_candidate")
    if p_candidate is not None:
        ok = isinstance(p_candidate, (int, float)) and not isinstance(p_candidate, bool) and 0.0 <= p_candidate <= 1.0
        _check(p_candidate, ok, where, "p_candidate", "a number in [0, 1] or null")
        p_candidate = float(p_candidate)
    return Verdict(
        item=item,
        winner=winner,
        order=order,
        p_candidate=p_candidate,
        candidate_length=_optional_length(row, "candidate_length", where),
        baseline_length=_optional_length(row, "baseline_length", where),
        candidate=_optional_name(row, "candidate", where),
        baseline=_optional_name(row, "baseline", where),
        line=line,
    )


def parse_verdicts(rows: Sequence[dict], source: str, line_numbers: Sequence[int] | None = None) -> list[Verdict]:
    """Validate verdict dicts and check that their items group cleanly.

    ``line_numbers`` are the rows' lines in ``source`` for error messages (default: 1, 2, ...).
    """
    numbers = line_numbers if line_numbers is not None else range(1, len(rows) + 1)
    verdicts = [parse_verdict(row, source, number) for number, row in zip(numbers, rows)]
    for pair_verdicts in split_by_pair(verdicts).values():
        group_items(pair_verdicts, source)
    return verdicts


def load_verdicts(path: Path | str) -> list[Verdict]:
    """Read and validate a verdict JSONL file; errors name the file's own line numbers."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(str(path), "path", "no such verdict file")
    numbered = read_jsonl_numbered(path)  # the file's own line numbers (blank lines skipped)
    if not numbered:
        raise ConfigError(str(path), "(file)", "no verdicts in the file (it is empty)")
    return parse_verdicts([row for _, row in numbered], str(path), [number for number, _ in numbered])


def split_by_pair(verdicts: Iterable[Verdict]) -> dict[Pair, list[Verdict]]:
    """Verdicts per (candidate, baseline) pair, in order of first appearance."""
    pairs: dict[Pair, list[Verdict]] = {}
    for verdict in verdicts:
        pairs.setdefault(verdict.pair, []).append(verdict)
    return pairs


def item_key(item: str | int) -> tuple[str, str | int]:
    """A dictionary key for an item id that keeps the integer 1 and the string "1" apart."""
    return (type(item).__name__, item)


def group_items(verdicts: Iterable[Verdict], source: str = "verdicts") -> list[ItemRecord]:
    """Group one pair's verdicts by item, in order of first appearance.

    An item may have one call, or two calls in different orders; a repeated (item, order), or a
    second call without an order, raises ConfigError naming the offending line.
    """
    calls: dict[tuple[str, str | int], list[Verdict]] = {}
    for verdict in verdicts:
        same_item = calls.setdefault(item_key(verdict.item), [])
        if same_item and (verdict.order is None or any(c.order in (None, verdict.order) for c in same_item)):
            raise ConfigError(
                f"{source} line {verdict.line}", "order",
                f"item {verdict.item!r} is already judged in order {same_item[0].order!r} "
                f"(line {same_item[0].line}); a second call must be in the other order",
            )
        same_item.append(verdict)
    return [ItemRecord(item=group[0].item, calls=tuple(group)) for group in calls.values()]
