"""The generate stage of expert iteration (SAMI paper, section 3): the previous iterate answers the training
queries under freshly sampled contrastive constitutions, and the task's filters drop bad groups.

Responses are generated with the task's generation prompt through the cached backend, with seeds derived from
content (query id, seed, constitution index). The stage writes ``data.jsonl`` (the kept groups),
``data_manifest.json`` (filter counts, generator identity, provenance) and its marker; a marker whose inputs
changed (data, constitutions, generator weights, decoding) is stale and the stage reruns.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from harness.config import ModelConfig, RunConfig
from harness.core.cache import ContentCache
from harness.core.artifacts import write_json, write_jsonl
from harness.core.errors import HarnessError
from harness.core.hashing import content_hash, derived_seed, file_hash
from harness.core.provenance import manifest
from harness.core.run_layout import RunLayout
from harness.core.stages import Stage
from harness.flow.filters import apply_filters
from harness.models.backends import Backend, create_backend
from harness.models.loading import model_identity
from harness.tasks import Task
from harness.tasks.loaders import Query, fingerprint
from harness.tasks.principles import Constitution, ConstitutionSampler, PrincipleSet


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


def groups_from_rows(rows: list[dict], principles: PrincipleSet) -> list[QueryGroup]:
    """Rebuild QueryGroups from ``data.jsonl`` lines (constitutions from their identifiers, checked by text)."""
    groups = []
    for row in rows:
        constitutions = []
        for stored in row["constitutions"]:
            entries = []
            for identifier in stored["identifiers"]:
                sign, name = identifier.split(" ", 1)
                entries.append((principles.by_name(name), sign == "pos"))
            constitution = Constitution(tuple(entries))
            if constitution.text != stored["text"]:
                raise HarnessError(f"data.jsonl item {row['item']}: constitution text does not match the principles "
                                   "file (the principles changed since generation; rerun the generation stage)")
            constitutions.append(constitution)
        groups.append(QueryGroup(Query(row["item"], row["query"], row.get("subset")), constitutions,
                                 list(row["responses"])))
    return groups


def generation_inputs(config: RunConfig, task: Task, iteration: int, queries: list[Query],
                      constitutions: list[list[Constitution]], generator: dict, filters: list[str]) -> dict:
    return {"iteration": iteration, "task": task.name, "queries": fingerprint(queries),
            "constitutions": content_hash([[c.text for c in group] for group in constitutions]),
            "generator": generator, "model": config.model.model_dump(mode="json", exclude={"name", "revision"}),
            "generation": config.generation.model_dump(mode="json"), "filters": filters}


def generate_stage(config: RunConfig, task: Task, layout: RunLayout, iteration: int, cache: ContentCache | None,
                   generator_model: ModelConfig) -> tuple[Stage, bool]:
    """Generate and filter iteration ``iteration``'s training data with ``generator_model``; returns the stage
    and whether it was already done. Runs on the main process only."""
    folder = layout.iteration(iteration)
    queries = task.load_queries(config.data, "train")
    if not queries:
        raise HarnessError(f"task '{task.name}' has no training queries with data.source={config.data.source!r}")
    principles = task.principles(config.principles.file)
    sampler = ConstitutionSampler(principles, config.principles.constitutions_per_query)
    constitutions = sample_constitutions(sampler, queries, config.seed, f"train-iteration-{iteration}")
    filters = list(config.filters or task.default_filters)
    generator = model_identity(generator_model)
    stage = Stage(folder, "generate", generation_inputs(config, task, iteration, queries, constitutions, generator,
                                                        filters))
    if stage.done():
        return stage, True
    backend = create_backend(generator_model, config.generation)
    try:
        groups = generate_groups(task, backend, queries, constitutions, config.generation.seed, cache,
                                 desc=f"iteration {iteration}: generating")
        prompt_format = backend.prompt_format
    finally:
        backend.unload()
    kept, dropped = filter_groups(groups, filters)
    write_jsonl(folder / "data.jsonl", [g.to_json() for g in kept])
    counts = {"queries": len(groups), "kept": len(kept), "dropped": dropped, "filters": filters}
    write_json(folder / "data_manifest.json", manifest(
        config, stage="generate", iteration=iteration, generator=generator, backend=config.generation.backend,
        prompt_format=prompt_format, data_fingerprint=fingerprint(queries), **counts))
    stage.finish(iteration=iteration, generator=generator, data_sha=file_hash(folder / "data.jsonl"), **counts)
    return stage, False
