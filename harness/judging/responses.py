"""Response files the judge compares, and how two of them are paired item by item.

Accepted formats:

- the harness's ``responses.jsonl`` (``harness generate``): one line per item,
  ``{"item", "query", "constitution", "response", "model", ...}``;
- the SAMI paper's released generations (``sami-responses/tldr/*.json``):
  ``{"constitution": {i: str}, "question": {i: "POST: ..."}, "response": {i: str}}``, item = the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.core.artifacts import read_json, read_jsonl, read_jsonl_numbered
from harness.core.errors import ConfigError, HarnessError
from harness.core.hashing import file_hash
from harness.judging.prompting import principle_lines


@dataclass(frozen=True)
class Response:
    item: str
    query: str
    constitution: str | None
    response: str


@dataclass
class ResponseSet:
    path: Path
    format: str
    system: str
    rows: dict[str, Response]

    def describe(self) -> dict:
        return {"path": str(self.path), "sha256": file_hash(self.path), "format": self.format, "system": self.system,
                "n_items": len(self.rows)}


def words(text: str) -> int:
    return len(text.split())


def _paper_json(path: Path, data: dict) -> dict[str, Response]:
    for key in ("question", "response"):
        if not isinstance(data.get(key), dict):
            raise ConfigError(str(path), key, "expected the SAMI responses format {'question': {id: post}, "
                              "'response': {id: text}, 'constitution': {id: text}}")
    constitutions = data.get("constitution") or {}
    if not isinstance(constitutions, dict):
        raise ConfigError(str(path), "constitution", "expected {id: text}")
    rows = {}
    for item, response in data["response"].items():
        if item not in data["question"]:
            raise ConfigError(str(path), f"question.{item}", "missing (every response needs its question)")
        if not isinstance(response, str):
            raise ConfigError(str(path), f"response.{item}", "must be a string")
        if not isinstance(data["question"][item], str):
            raise ConfigError(str(path), f"question.{item}", "must be a string")
        if not isinstance(constitutions.get(item), (str, type(None))):
            raise ConfigError(str(path), f"constitution.{item}", "must be a string (the numbered principles)")
        rows[str(item)] = Response(str(item), data["question"][item], constitutions.get(item), response)
    return rows


def _jsonl(path: Path) -> dict[str, Response]:
    rows: dict[str, Response] = {}
    for number, row in read_jsonl_numbered(path):
        for field in ("item", "query", "response"):
            if field not in row:
                raise ConfigError(f"{path} line {number}", field, "missing (responses.jsonl needs item, query, response)")
        if not isinstance(row["response"], str) or not isinstance(row["query"], str):
            raise ConfigError(f"{path} line {number}", "response", "query and response must be strings")
        if not isinstance(row.get("constitution"), (str, type(None))):
            raise ConfigError(f"{path} line {number}", "constitution", "must be a string (the numbered principles)")
        item = str(row["item"])
        if item in rows:
            raise ConfigError(f"{path} line {number}", "item", f"item {item!r} appears twice")
        rows[item] = Response(item, row["query"], row.get("constitution"), row["response"])
    return rows


def load_responses(path: str | Path, system: str | None = None) -> ResponseSet:
    """Read a responses file of either format; ``system`` names it in verdicts (default: the file's 'model'
    field when all lines agree, else the file name)."""
    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"responses file not found: {path}")
    if path.suffix == ".json":
        data = read_json(path)
        if not isinstance(data, dict):
            raise ConfigError(str(path), "(top level)", "expected an object")
        rows, fmt, model = _paper_json(path, data), "sami-paper-json", None
    else:
        rows, fmt = _jsonl(path), "responses.jsonl"
        models = {str(r.get("model")) for r in read_jsonl(path) if r.get("model")}
        model = models.pop() if len(models) == 1 else None
    if not rows:
        raise HarnessError(f"{path}: no responses")
    stem = re.sub(r"-constitution-temperature-[0-9.]+$", "", path.stem) if fmt == "sami-paper-json" else path.stem
    name = system or model or stem
    if path.stem == "responses" and not system and not model:
        name = path.parent.name
    return ResponseSet(path=path, format=fmt, system=name, rows=rows)


@dataclass(frozen=True)
class Pair:
    item: str
    query: str
    constitution: str | None
    candidate: str
    baseline: str


@dataclass
class Pairing:
    pairs: list[Pair]
    only_candidate: int
    only_baseline: int
    constitution_differs: int
    constitution_note: str | None


def _normalise(text: str) -> str:
    return " ".join(text.split())


def pair_responses(candidate: ResponseSet, baseline: ResponseSet, limit: int | None = None) -> Pairing:
    """Match items by id (candidate file order). Shared items must have identical queries (whitespace
    normalised): the first mismatch is an error. The judge uses the candidate's constitution of each item; where
    the baseline's holds different principles (not just another order) the pairing counts and reports it."""
    shared = [item for item in candidate.rows if item in baseline.rows]
    if not shared:
        raise HarnessError(f"{candidate.path} and {baseline.path} share no item ids "
                           f"(e.g. {next(iter(candidate.rows))!r} vs {next(iter(baseline.rows))!r})")
    mismatched = [i for i in shared if _normalise(candidate.rows[i].query) != _normalise(baseline.rows[i].query)]
    if mismatched:
        item = mismatched[0]
        raise HarnessError(
            f"{len(mismatched)} shared items have different queries in the two files; first: item {item!r}:\n"
            f"  candidate ({candidate.path}): {candidate.rows[item].query[:120]!r}\n"
            f"  baseline  ({baseline.path}): {baseline.rows[item].query[:120]!r}")
    differs, first = 0, None
    for item in shared:
        a, b = candidate.rows[item].constitution, baseline.rows[item].constitution
        if a is not None and b is not None and sorted(principle_lines(a)) != sorted(principle_lines(b)):
            differs += 1
            first = first or item
    note = None
    if differs:
        note = (f"{differs} items have different principles in the baseline file (first: item {first!r}); "
                "judging under the candidate file's principles")
    items = shared[:limit] if limit else shared
    pairs = [Pair(i, candidate.rows[i].query, candidate.rows[i].constitution or baseline.rows[i].constitution,
                  candidate.rows[i].response, baseline.rows[i].response) for i in items]
    return Pairing(pairs, len(candidate.rows) - len(shared), len(baseline.rows) - len(shared), differs, note)
