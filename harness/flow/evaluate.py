"""The evaluate stage: every system answers the evaluation queries under the evaluation constitution.

Systems are the trained iterates of every trainer (variant), the untrained base model (iteration 0) and, when
configured, an instruction-tuned model prompted with the principles in its chat template (SPEC section 3). The
evaluation constitution is the all-positive one, seeded per item (diverse principles: a random positive pair from
the training split, or from the held-out split). One ``responses.jsonl`` per (system, principle split).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from harness.config import ModelConfig, RunConfig
from harness.core.artifacts import read_json, write_jsonl
from harness.core.cache import ContentCache
from harness.core.hashing import derived_seed, file_hash
from harness.core.run_layout import RunLayout
from harness.core.stages import Stage
from harness.flow.generate import generate_groups
from harness.flow.train import trainer_specs, variant_config
from harness.models.backends import Backend, create_backend
from harness.tasks import Task
from harness.tasks.loaders import Query, fingerprint
from harness.tasks.principles import Constitution, ConstitutionSampler


@dataclass(frozen=True)
class System:
    """A model that produces evaluation responses: the base model, an instruct baseline, or a trained iterate."""

    id: str
    trainer: str           # sami/sft/dpo (or a variant), or 'base' / 'instruct'
    iteration: int
    model: ModelConfig
    backend: str
    checkpoint: Path | None = None
    learning_rate: float | None = None


def trained_systems(config: RunConfig, layout: RunLayout) -> list[System]:
    systems = []
    for trainer in trainer_specs(config):
        learning_rate = variant_config(config, trainer).train.learning_rate
        for t in range(1, config.train.iterations + 1):
            folder = layout.checkpoint(t, trainer)
            systems.append(System(f"{trainer}-iter{t}", trainer, t, config.model.at_checkpoint(folder),
                                  config.generation.backend, folder, learning_rate))
    return systems


def baseline_systems(config: RunConfig) -> dict[str, System]:
    systems = {"base": System("base", "base", 0, config.model, config.generation.backend)}
    if "instruct" in config.eval.baselines:
        instruct = config.eval.instruct_model or config.model.model_copy(update={"principles_in": "system"})
        systems["instruct"] = System("instruct", "instruct", 0, instruct,
                                     config.eval.instruct_backend or config.generation.backend)
    return systems


def judged_pairs(candidates: list[System], baselines: dict[str, System], wanted: list[str]) -> list[tuple[System, System]]:
    """(candidate, baseline) for every candidate and wanted baseline, plus base vs instruct when both exist."""
    pairs = [(c, baselines[b]) for c in candidates for b in wanted if b in baselines]
    if "instruct" in wanted and "instruct" in baselines:
        pairs.append((baselines["base"], baselines["instruct"]))
    return pairs


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


def evaluate_stage(config: RunConfig, task: Task, system: System, split: str, layout: RunLayout,
                   cache: ContentCache) -> Path:
    """``system``'s responses on the evaluation set under one principle split; returns the responses file."""
    items = evaluation_items(task, config, heldout=split == "heldout")
    folder = layout.evaluation(system.id, split)
    generation = config.generation.model_copy(update={"backend": system.backend})
    stage = Stage(folder, "evaluate", {"items": fingerprint([q for q, _ in items]),
                                       "constitutions": [c.text for _, c in items], "model": system.model.model_dump(),
                                       "weights": _checkpoint_identity(system), "generation": generation.model_dump()})
    if stage.done():
        return folder / "responses.jsonl"
    backend = create_backend(system.model, generation)
    rows = evaluation_responses(task, items, backend, system.id, config.generation.seed, cache)
    write_jsonl(folder / "responses.jsonl", rows)
    stage.finish(system=system.id, model_identity=backend.identity(), n=len(rows),
                 responses_sha=file_hash(folder / "responses.jsonl"))
    backend.unload()
    return folder / "responses.jsonl"


def _checkpoint_identity(system: System) -> str | None:
    """The train stage's input hash of a trained system's checkpoint (None for base and instruct)."""
    if system.checkpoint is None:
        return None
    marker = system.checkpoint.parent / "done.json"
    return read_json(marker).get("inputs_hash") if marker.is_file() else None
