"""Exact, offline checks for verifiable principles.

A principle may carry ``check: {name: max_words, n: 25}`` for its definition and
``antithesis_check: {name: min_words, n: 60}`` for its antithesis. ``parse_check`` validates such a mapping
against the registry (names, parameters and their types) and ``verify`` runs it on a response. The checks come
from IFEval (lm-eval's checkers, ``harness.verifiers.ifeval``) and from the harness (``harness.verifiers.surface``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from harness.core.errors import ConfigError, HarnessError
from harness.verifiers import ifeval, surface  # noqa: F401  (registers the checks)
from harness.verifiers.base import Verifier, verifiers
from harness.verifiers.ifeval import OMITTED_IFEVAL

__all__ = ["OMITTED_IFEVAL", "CheckSpec", "list_verifiers", "parse_check", "verifiers", "verify"]


class CheckSpec(BaseModel):
    """A verifier name and its parameters, as validated by ``parse_check``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    params: dict[str, Any] = {}


def _problem(data: object) -> str | None:
    """What is wrong with a YAML check value, or None."""
    if not isinstance(data, dict):
        return f"expected a mapping like {{name: max_words, n: 25}}, got {type(data).__name__}"
    if "name" not in data:
        return "missing 'name' (the verifier)"
    try:
        verifier = verifiers.get(str(data["name"]))
    except HarnessError as exc:
        return str(exc)
    return _params_problem(verifier, {k: v for k, v in data.items() if k != "name"})


def _params_problem(verifier: Verifier, params: dict) -> str | None:
    expected = {p.name: p.kind for p in verifier.params}
    for key in params:
        if key not in expected:
            allowed = ", ".join(expected) or "none"
            return f"'{verifier.name}' has no parameter '{key}' (parameters: {allowed})"
    for key, kind in expected.items():
        if key not in params:
            return f"'{verifier.name}' needs parameter '{key}' ({kind.label})"
        if not kind.accepts(params[key]):
            return f"'{verifier.name}' parameter '{key}' must be {kind.label}, got {params[key]!r}"
    return None


def parse_check(data: object, source: str, principle: str, field: str) -> CheckSpec:
    """The check a principle's YAML ``field`` (``check`` or ``antithesis_check``) gives, or a ``ConfigError``
    naming ``source``, ``principles.<principle>.<field>`` and the problem."""
    problem = _problem(data)
    if problem is not None:
        raise ConfigError(source, f"principles.{principle}.{field}", problem)
    return CheckSpec(name=data["name"], params={k: v for k, v in data.items() if k != "name"})


def verify(spec: CheckSpec, response: str, query: str | None = None) -> bool:
    """Whether ``response`` (to ``query``, for the checks that read it) passes the check."""
    return verifiers.get(spec.name).run(response, query, spec.params)


def list_verifiers() -> list[tuple[str, str]]:
    """(name, description) of every verifier, for ``harness ls verifiers``."""
    return verifiers.describe()
