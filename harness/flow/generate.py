"""Generating a task's responses under constitutions, with filters and seeds derived from content."""

from __future__ import annotations

import random
from dataclasses import dataclass

from harness.models.backends import Backend
from harness.core.cache import ContentCache
from harness.flow.filters import apply_filters
from harness.core.hashing import derived_seed
from harness.tasks.loaders import Query
from harness.tasks.principles import Constitution, ConstitutionSampler
from harness.tasks import Task


@dataclass
class QueryGroup:
    """One query, its C constitutions and the C responses generated under them (matched by index)."""

    query: Query
    constitutions: list[Constitution]
    responses: list[str]

    def to_json(self) -> dict:
        return {"item": self.query.id, "query": self.query.text, "subset": self.query.subset,
                "constitutions": [c.to_json() for c in self.constitutions], "responses": self.responses}


def sample_constitutions(sampler: ConstitutionSampler, queries: list[Query], seed: int, tag: str) -> list[list[Constitution]]:
    """C constitutions per query; each query's draw is seeded by a hash of (query id, seed, tag)."""
    return [sampler.sample(random.Random(derived_seed(q.id, seed, tag)), q.subset) for q in queries]


def generate_groups(task: Task, backend: Backend, queries: list[Query], constitutions: list[list[Constitution]],
                    seed: int, cache: ContentCache | None, desc: str = "generating") -> list[QueryGroup]:
    """One response per (query, constitution), with the task's generation prompt, in one batched call."""
    prompts, seeds = [], []
    for query, group in zip(queries, constitutions, strict=True):
        for index, constitution in enumerate(group):
            prompts.append(task.generation_prompt(query, constitution.text))
            seeds.append(derived_seed(query.id, seed, index))
    responses = backend.generate(prompts, seeds, task.stop_strings, cache=cache, desc=desc)
    groups, cursor = [], 0
    for query, group in zip(queries, constitutions):
        groups.append(QueryGroup(query, group, responses[cursor:cursor + len(group)]))
        cursor += len(group)
    return groups


def filter_groups(groups: list[QueryGroup], filter_names: list[str]) -> tuple[list[QueryGroup], dict[str, int]]:
    kept, dropped = apply_filters([g.responses for g in groups], filter_names)
    return [groups[i] for i in kept], dropped
