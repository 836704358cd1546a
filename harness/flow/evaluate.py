"""The evaluation set of a task: its queries, each with its evaluation constitution (seeded per item)."""

from __future__ import annotations

import random

from harness.models.backends import Backend
from harness.core.cache import ContentCache
from harness.config import RunConfig
from harness.flow.generate import generate_groups
from harness.core.hashing import derived_seed
from harness.tasks.loaders import Query
from harness.tasks.principles import Constitution, ConstitutionSampler
from harness.tasks import Task


def evaluation_items(task: Task, config: RunConfig, heldout: bool = False) -> list[tuple[Query, Constitution]]:
    """(query, all-positive constitution) pairs; for ``heldout`` principles, a random positive pair from the
    held-out split (else from the training split)."""
    principles = task.principles(config.principles.file)
    sampler = ConstitutionSampler(principles)
    queries = task.load_queries(config.data, "eval")
    tag = "eval-heldout" if heldout else "eval"
    return [(q, sampler.evaluation(random.Random(derived_seed(q.id, config.seed, tag)), heldout)) for q in queries]


def evaluation_responses(task: Task, items: list[tuple[Query, Constitution]], backend: Backend, system: str,
                         seed: int, cache: ContentCache | None) -> list[dict]:
    """One ``responses.jsonl`` row per evaluation item: the item, its query and constitution, the response."""
    groups = generate_groups(task, backend, [q for q, _ in items], [[c] for _, c in items], seed, cache,
                             desc=f"generating {system}")
    return [{"item": g.query.id, "query": g.query.text, "subset": g.query.subset,
             "constitution": g.constitutions[0].text, "principles": g.constitutions[0].identifiers,
             "response": g.responses[0], "model": system} for g in groups]
