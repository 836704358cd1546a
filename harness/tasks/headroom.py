"""Headroom of checkable principles: how far a principle's wording moves the untrained model.

For each principle with exact verifiers (``check`` and ``antithesis_check``), the model answers N *training*
queries twice, under the single-principle constitutions c+ = [principle] and c- = [antithesis], rendered with the
task's generation prompt. Adherence is the fraction of responses that pass the definition's check; headroom is
adherence under c+ minus adherence under c-, with a 95% paired percentile bootstrap CI over queries (per-query
differences in {-1, 0, 1}). A principle *moves* when that CI excludes 0. The antithesis check's pass rate under
c- says whether the negated wording is followed too.

A principle that does not move (the model already does it, or cannot do it, whatever the constitution says)
gives SAMI no contrast to learn from, so principle sets for verifiable runs keep the ones that move most.
``harness principles headroom`` runs this; the published tables live in ``leaderboards/headroom/``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from harness.core.cache import ContentCache
from harness.core.errors import HarnessError
from harness.flow.generate import generate_groups
from harness.models.backends import Backend
from harness.stats import bootstrap_mean_ci
from harness.tasks import Task
from harness.tasks.loaders import Query
from harness.tasks.principles import Constitution, Principle, PrincipleSet
from harness.verifiers import CheckSpec, verify

RESAMPLES = 10_000


def describe_check(spec: CheckSpec) -> str:
    """``max_words(n=30)``."""
    params = ", ".join(f"{key}={value!r}" if isinstance(value, str) else f"{key}={value}"
                       for key, value in spec.params.items())
    return f"{spec.name}({params})"


@dataclass
class HeadroomRow:
    """One principle's measurement (adherence = fraction passing the definition's check)."""

    principle: str
    check: str
    antithesis_check: str
    n: int
    adherence_pos: float
    adherence_neg: float
    headroom: float
    ci_low: float | None
    ci_high: float | None
    antithesis_neg: float
    moves: bool
    subset: str | None = None
    items: list[dict] = field(default_factory=list, repr=False)

    def to_json(self, with_items: bool = True) -> dict:
        data = asdict(self)
        if not with_items:
            data.pop("items")
        return data


def principle_queries(principle: Principle, queries: list[Query], limit: int | None) -> list[Query]:
    """The queries a principle is measured on: those of its subset, if it has one (dialogue), the first ``limit``."""
    chosen = [q for q in queries if principle.subset is None or q.subset == principle.subset]
    return chosen[:limit] if limit else chosen


def measure_principle(task: Task, principle: Principle, backend: Backend, queries: list[Query], seed: int,
                      cache: ContentCache | None, n_resamples: int = RESAMPLES) -> HeadroomRow:
    """Generate under c+ / c- on ``queries`` and score both with the principle's checks."""
    if not principle.checkable:
        raise HarnessError(f"principle '{principle.name}' has no check and antithesis_check")
    if not queries:
        raise HarnessError(f"no training queries to measure principle '{principle.name}' on"
                           + (f" (subset {principle.subset})" if principle.subset else ""))
    positive, negative = Constitution(((principle, True),)), Constitution(((principle, False),))
    groups = generate_groups(task, backend, queries, [[positive, negative] for _ in queries], seed, cache,
                             desc=f"headroom {principle.name}")
    check, antithesis = principle.check_for(True), principle.check_for(False)
    items, differences = [], []
    for group in groups:
        pos_response, neg_response = group.responses
        pos = verify(check, pos_response, group.query.text)
        neg = verify(check, neg_response, group.query.text)
        anti = verify(antithesis, neg_response, group.query.text)
        differences.append(float(pos) - float(neg))
        items.append({"item": group.query.id, "pos_passes": pos, "neg_passes": neg, "neg_passes_antithesis": anti,
                      "pos_response": pos_response, "neg_response": neg_response})
    n = len(items)
    adherence_pos = sum(i["pos_passes"] for i in items) / n
    adherence_neg = sum(i["neg_passes"] for i in items) / n
    low, high, _ = bootstrap_mean_ci(differences, seed, n_resamples, method="percentile")
    moves = low is not None and (low > 0 or high < 0)
    return HeadroomRow(principle.name, describe_check(check), describe_check(antithesis), n, adherence_pos,
                       adherence_neg, adherence_pos - adherence_neg, low, high,
                       sum(i["neg_passes_antithesis"] for i in items) / n, moves, principle.subset, items)


def measure_headroom(task: Task, principles: PrincipleSet, backend: Backend, queries: list[Query], seed: int,
                     cache: ContentCache | None, limit: int | None = None, n_resamples: int = RESAMPLES,
                     log=None) -> tuple[list[HeadroomRow], list[str]]:
    """Rows for every checkable principle (in file order) and the names of those skipped as uncheckable."""
    checkable = [p for p in principles.principles if p.checkable]
    skipped = [p.name for p in principles.principles if not p.checkable]
    if not checkable:
        raise HarnessError("no principle of the file has both 'check' and 'antithesis_check'")
    rows = []
    for principle in checkable:
        row = measure_principle(task, principle, backend, principle_queries(principle, queries, limit), seed,
                                cache, n_resamples)
        if log:
            log(f"{row.principle}: +{row.adherence_pos:.2f} -{row.adherence_neg:.2f} headroom {row.headroom:+.2f}")
        rows.append(row)
    return rows, skipped


def _ci(row: HeadroomRow) -> str:
    return "n/a" if row.ci_low is None else f"[{row.ci_low:+.2f}, {row.ci_high:+.2f}]"


def markdown_table(rows: list[HeadroomRow]) -> str:
    """The table, sorted as given: one line per principle."""
    header = ("| principle | check (definition) | check (antithesis) | n | adherence c+ | adherence c- | headroom "
              "| 95% CI | antithesis adherence c- | moves |")
    lines = [header, "|---|---|---|---:|---:|---:|---:|---|---:|---|"]
    for row in rows:
        lines.append(f"| {row.principle} | `{row.check}` | `{row.antithesis_check}` | {row.n} | "
                     f"{row.adherence_pos:.2f} | {row.adherence_neg:.2f} | {row.headroom:+.2f} | {_ci(row)} | "
                     f"{row.antithesis_neg:.2f} | {'yes' if row.moves else 'no'} |")
    return "\n".join(lines)
