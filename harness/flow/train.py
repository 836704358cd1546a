"""Expert iteration (SAMI paper, section 3), generic over trainers.

For t = 1..``train.iterations``:

1. **generate**: the previous iterate pi_{t-1} (pi_0 = the base model; later, the checkpoint of the PRIMARY
   trainer ``config.trainer`` at t-1) answers the training queries under freshly sampled contrastive
   constitutions (C = ``principles.constitutions_per_query``), through the cached backend; the task's filters
   drop bad groups (counts recorded per filter).
2. **train**: every trainer in ``[config.trainer] + config.compare_trainers`` trains on that same data,
   each starting again from the base weights, for ``train.steps_at(t)`` optimizer steps.

Layout::

    run_dir/iterations/iter-<t>/data.jsonl            QueryGroup.to_json() lines (kept groups)
    run_dir/iterations/iter-<t>/data_manifest.json    filter counts, generator identity, provenance
    run_dir/iterations/iter-<t>/done.json             generation stage marker
    run_dir/iterations/iter-<t>/<trainer>/checkpoint/ safetensors + tokenizer
    run_dir/iterations/iter-<t>/<trainer>/telemetry.jsonl
    run_dir/iterations/iter-<t>/<trainer>/done.json   training stage marker

Each stage writes its marker (``harness.core.stages.Stage``: a content hash of its inputs) atomically and last, so a
rerun skips finished stages, a killed run (even ``kill -9``) resumes at the first unfinished stage, and a marker
whose inputs changed (config, data, generator or base weights) is stale and the stage reruns.

Under ``torchrun``/``accelerate launch`` every process calls ``run_expert_iteration``: the main process
generates and writes markers, all processes train together.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.core.artifacts import read_jsonl, write_json, write_jsonl
from harness.models.backends import create_backend
from harness.core.cache import ContentCache
from harness.config import ModelConfig, RunConfig
from harness.core.errors import HarnessError
from harness.flow.generate import QueryGroup, filter_groups, generate_groups, sample_constitutions
from harness.core.hashing import content_hash, file_hash, folder_hash
from harness.tasks.loaders import Query, fingerprint
from harness.tasks.principles import Constitution, ConstitutionSampler, PrincipleSet
from harness.core.provenance import manifest
from harness.core.stages import Stage
from harness.tasks import Task, get_task

# Settings that never change what a trainer does at one iteration (the schedule enters as ``steps``).
TRAIN_FIELDS_NOT_AFFECTING_TRAINING = {"iterations", "steps_per_iteration", "mi_constitutions", "mi_resamples",
                                       "learning_rate_sweep"}
SECTIONS_NOT_AFFECTING_TRAINING = {"out", "compare_trainers", "trainer", "eval"}
TRAINER_SECTIONS = {"sft", "dpo"}  # sections read by one trainer only: they do not change the others' training


def iteration_dir(run_dir: Path, iteration: int) -> Path:
    return Path(run_dir) / "iterations" / f"iter-{iteration}"


def trainer_dir(run_dir: Path, iteration: int, trainer: str) -> Path:
    return iteration_dir(run_dir, iteration) / trainer


def checkpoint_dir(run_dir: Path, iteration: int, trainer: str) -> Path:
    return trainer_dir(run_dir, iteration, trainer) / "checkpoint"


def checkpoint_model_config(config: RunConfig, folder: Path) -> ModelConfig:
    """The base model's settings (dtype, prompt format, ...) pointed at a checkpoint folder."""
    return config.model.model_copy(update={"name": str(Path(folder).resolve()), "revision": None})


def model_identity(model: ModelConfig) -> dict:
    """Identity of a model's weights (a checkpoint rewritten in place gets a new hash: see harness.models.loading)."""
    from harness.models.loading import resolve_model

    return resolve_model(model).identity


def _state():
    from trainers.common import distributed_state

    return distributed_state()


def _drop_model(backend) -> None:
    """Free the generation model before training (the hf backend caches it on first use)."""
    import gc

    for attribute in ("model", "engine", "llm"):
        backend.__dict__.pop(attribute, None)
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass


# --- data ------------------------------------------------------------------------------------------------

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


def training_inputs(config: RunConfig, trainer: str, iteration: int, steps: int, data_sha: str, base: dict) -> dict:
    from trainers.variants import base_name

    other_trainers = TRAINER_SECTIONS - {base_name(trainer)}
    settings = config.model_dump(mode="json", exclude=SECTIONS_NOT_AFFECTING_TRAINING | other_trainers)
    settings["train"] = {k: v for k, v in settings["train"].items() if k not in TRAIN_FIELDS_NOT_AFFECTING_TRAINING}
    return {"trainer": trainer, "iteration": iteration, "steps": steps, "data": data_sha, "base": base,
            "settings": settings}


def generate_stage(config: RunConfig, task: Task, run_dir: Path, iteration: int, cache: ContentCache | None,
                   generator_model: ModelConfig) -> tuple[Stage, bool]:
    """Generate and filter iteration ``iteration``'s training data with ``generator_model``; returns the stage
    and whether it was already done. Runs on the main process only."""
    folder = iteration_dir(run_dir, iteration)
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
        _drop_model(backend)
    kept, dropped = filter_groups(groups, filters)
    write_jsonl(folder / "data.jsonl", [g.to_json() for g in kept])
    counts = {"queries": len(groups), "kept": len(kept), "dropped": dropped, "filters": filters}
    write_json(folder / "data_manifest.json", manifest(
        config, stage="generate", iteration=iteration, generator=generator, backend=config.generation.backend,
        prompt_format=prompt_format, data_fingerprint=fingerprint(queries), **counts))
    stage.finish(iteration=iteration, generator=generator, data_sha=file_hash(folder / "data.jsonl"), **counts)
    return stage, False


def train_stage(config: RunConfig, task: Task, run_dir: Path, iteration: int, trainer: str, groups: list[QueryGroup],
                data_sha: str, base: dict) -> tuple[Stage, bool]:
    """Train ``trainer`` from the base weights on this iteration's data (all processes take part)."""
    from trainers import TrainingJob, get_trainer
    from trainers.variants import variant_config

    config = variant_config(config, trainer)  # a sweep variant trains with its own settings
    state = _state()
    folder = trainer_dir(run_dir, iteration, trainer)
    steps = config.train.steps_at(iteration)
    stage = Stage(folder, "train", training_inputs(config, trainer, iteration, steps, data_sha, base))
    if stage.done() and checkpoint_dir(run_dir, iteration, trainer).is_dir():
        return stage, True
    state.wait_for_everyone()  # every process has seen the stale/missing marker before anyone rewrites it
    if state.is_main_process:
        stage.marker.unlink(missing_ok=True)
        for debris in folder.glob(".checkpoint.*"):  # a save killed half-way
            shutil.rmtree(debris, ignore_errors=True)
    state.wait_for_everyone()
    job = TrainingJob(config=config, task=task, groups=groups, iteration=iteration, steps=steps,
                      output_dir=checkpoint_dir(run_dir, iteration, trainer),
                      telemetry_path=folder / "telemetry.jsonl")
    output = Path(get_trainer(trainer)(job))
    state.wait_for_everyone()
    if state.is_main_process:
        telemetry = read_jsonl(folder / "telemetry.jsonl") if (folder / "telemetry.jsonl").is_file() else []
        stage.finish(trainer=trainer, iteration=iteration, steps=steps, checkpoint=str(output),
                     checkpoint_sha=folder_hash(output), final=telemetry[-1] if telemetry else None)
    state.wait_for_everyone()
    return stage, False


def run_expert_iteration(config: RunConfig, run_dir: Path, cache: ContentCache | None = None) -> list[dict]:
    """Run (or resume) every iteration; return one summary per iteration."""
    from trainers.variants import trainer_specs

    task = get_task(config.task)
    run_dir = Path(run_dir)
    state = _state()
    base = model_identity(config.model)
    principles = task.principles(config.principles.file)
    trainers = trainer_specs(config)
    summaries = []
    generator_model = config.model
    for t in range(1, config.train.iterations + 1):
        folder = iteration_dir(run_dir, t)
        generated_before = None
        if state.is_main_process:
            _, generated_before = generate_stage(config, task, run_dir, t, cache, generator_model)
        state.wait_for_everyone()
        data_summary = Stage(folder, "generate", None).summary()
        groups = groups_from_rows(read_jsonl(folder / "data.jsonl"), principles)
        summary = {"iteration": t, "generator": data_summary["generator"], "queries": data_summary["queries"],
                   "kept": data_summary["kept"], "dropped": data_summary["dropped"],
                   "generation_skipped": generated_before, "trainers": {}}
        for name in trainers:
            stage, skipped = train_stage(config, task, run_dir, t, name, groups, data_summary["data_sha"], base)
            record = stage.summary()
            summary["trainers"][name] = {"checkpoint": record["checkpoint"], "steps": record["steps"],
                                         "skipped": skipped, "final": record.get("final")}
        summaries.append(summary)
        generator_model = checkpoint_model_config(config, checkpoint_dir(run_dir, t, config.trainer))
    return summaries
