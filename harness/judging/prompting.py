"""What the judge sees: the evaluation principles in a per-item shuffled order, the query, and the two responses
as A and B in the order the protocol draws. Every draw is seeded by a content hash of (item, seed)."""

from __future__ import annotations

import random
import re

from harness.core.hashing import derived_seed
from harness.stats.verdicts import ORDERS

_NUMBERING = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s*")


def principle_lines(constitution: str) -> list[str]:
    """The principles of a numbered-list constitution ("1. ...\\n2. ..."), without their numbers."""
    return [_NUMBERING.sub("", line).strip() for line in constitution.splitlines() if line.strip()]


def shuffled_principles(constitution: str, item: str, seed: int, shuffle: bool = True) -> str:
    """The principles renumbered in an order drawn per item (the same in both display orders of the item)."""
    lines = principle_lines(constitution)
    if shuffle:
        random.Random(derived_seed("principles", item, seed)).shuffle(lines)
    return "\n".join(f"{i}. {line}" for i, line in enumerate(lines, 1))


def paper_order(item: str, seed: int) -> str:
    """The sami-paper protocol's one display order of an item: ``ORDERS[derived_seed(item, seed) % 2]``, the same
    draw ``harness.stats.winrates.paper_call`` makes when an item was judged in both orders."""
    return ORDERS[derived_seed(item, seed) % 2]


def orders_for(item: str, seed: int, protocol: str) -> list[str]:
    """robust: both orders; sami-paper: one seeded random order."""
    return list(ORDERS) if protocol == "robust" else [paper_order(item, seed)]


def render_prompt(template: str, *, principles: str, query: str, response_a: str, response_b: str, noun: str,
                  query_label: str) -> str:
    return template.format(principles=principles, query=query.strip(), response_a=response_a.strip(),
                           response_b=response_b.strip(), noun=noun, Noun=noun[:1].upper() + noun[1:],
                           query_label=query_label)
