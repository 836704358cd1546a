"""The verifier registry and what an entry declares: its parameters (with their kinds), whether it reads the query."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.core.errors import HarnessError
from harness.core.registry import Registry


@dataclass(frozen=True)
class Kind:
    """A parameter type as YAML gives it: ``label`` names it in messages, ``accepts`` tests a value."""

    label: str
    accepts: Callable[[object], bool]


def _is_text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


# ``type(v) is int`` keeps bools (a subclass of int) out.
COUNT = Kind("int >= 0", lambda v: type(v) is int and v >= 0)
POSITIVE = Kind("int >= 1", lambda v: type(v) is int and v >= 1)
TEXT = Kind("non-empty str", _is_text)
LETTER = Kind("a single letter a-z", lambda v: isinstance(v, str) and len(v) == 1 and v.isascii() and v.isalpha())
WORDS = Kind("non-empty list of non-empty str", lambda v: isinstance(v, list) and bool(v) and all(map(_is_text, v)))


@dataclass(frozen=True)
class Param:
    name: str
    kind: Kind


@dataclass(frozen=True)
class Verifier:
    """A named exact check: ``fn(response, **params)``, or ``fn(response, query, **params)`` when it reads the query."""

    name: str
    fn: Callable[..., bool]
    params: tuple[Param, ...] = ()
    needs_query: bool = False

    def run(self, response: str, query: str | None, params: Mapping[str, Any]) -> bool:
        if not self.needs_query:
            return self.fn(response, **params)
        if query is None:
            raise HarnessError(f"verifier '{self.name}' needs the query text")
        return self.fn(response, query, **params)


verifiers: Registry[Verifier] = Registry("verifier")


def register(name: str, fn: Callable[..., bool], source: str, summary: str, *params: Param,
             needs_query: bool = False) -> None:
    """Add a verifier; its description reads '<source>: <summary>; params: n (int >= 0)[; reads the query]'."""
    description = f"{source}: {summary}"
    if params:
        description += "; params: " + ", ".join(f"{p.name} ({p.kind.label})" for p in params)
    if needs_query:
        description += "; reads the query"
    verifiers.add(name, Verifier(name, fn, params, needs_query), description)
