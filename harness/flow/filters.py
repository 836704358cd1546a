"""The paper's generation filters (SPEC section 2), as named, configurable checks.

A query's group of C responses is kept only if every response passes every response-level filter and the
group passes every group-level filter; a dropped group is counted once, against the first filter (in the
configured order) that rejected it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable

from harness.core.registry import Registry

TEMPLATE_MARKERS = ("[insert", "]", "Response", "<|im_start|>", "<|im_end|>", "Principles:", "###")


@dataclass(frozen=True)
class Filter:
    """A check on each response of a group, or on the group as a whole; True means keep."""

    keep_response: Callable[[str], bool] | None = None
    keep_group: Callable[[list[str]], bool] | None = None

    def keeps(self, responses: list[str]) -> bool:
        if self.keep_group is not None and not self.keep_group(responses):
            return False
        return self.keep_response is None or all(self.keep_response(r) for r in responses)


filters: Registry[Filter] = Registry("filter")
filters.add("template_leak", Filter(keep_response=lambda r: not any(m in r for m in TEMPLATE_MARKERS)),
            "drop if a response repeats prompt-template text ('[insert', ']', 'Response', chat markers)")
filters.add("full_stop", Filter(keep_response=lambda r: r.rstrip().endswith(".")),
            "drop if a summary does not end with a full stop")
filters.add("sorry_refusal", Filter(keep_response=lambda r: "sorry" not in r.lower()),
            "drop if a dialogue response is an evasive 'sorry' refusal")
filters.add("non_empty", Filter(keep_response=lambda r: bool(r.strip())), "drop if a response is empty")
filters.add("distinct", Filter(keep_group=lambda rs: len(rs) < 2 or len({r.strip() for r in rs}) > 1),
            "drop a query if all of its responses are identical")


def apply_filters(groups: list[list[str]], names: list[str]) -> tuple[list[int], dict[str, int]]:
    """Indices of the kept groups, and how many groups each filter dropped."""
    chosen = [(name, filters.get(name)) for name in names]
    kept, dropped = [], Counter({name: 0 for name in names})
    for index, responses in enumerate(groups):
        reason = next((name for name, check in chosen if not check.keeps(responses)), None)
        if reason is None:
            kept.append(index)
        else:
            dropped[reason] += 1
    return kept, dict(dropped)
