"""The evaluation set of a task: its queries, each with its evaluation constitution (seeded per item)."""

from __future__ import annotations

import random

from harness.config import RunConfig
from harness.hashing import derived_seed
from harness.loaders import Query
from harness.principles import Constitution, ConstitutionSampler
from harness.tasks import Task


def evaluation_items(task: Task, config: RunConfig, heldout: bool = False) -> list[tuple[Query, Constitution]]:
    """(query, all-positive constitution) pairs; for ``heldout`` principles, a random positive pair from the
    held-out split (else from the training split)."""
    principles = task.principles(config.principles.file)
    sampler = ConstitutionSampler(principles)
    queries = task.load_queries(config.data, "eval")
    tag = "eval-heldout" if heldout else "eval"
    return [(q, sampler.evaluation(random.Random(derived_seed(q.id, config.seed, tag)), heldout)) for q in queries]
