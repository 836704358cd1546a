"""The full run behind ``harness run``: iterations, evaluation generations, judging, scoring, MI, publishing.

Every stage writes its artifacts atomically and a ``done.json`` marker (with a hash of its inputs) last, so a
rerun of a finished run does no model work and a killed run resumes from its last finished stage.

Layout of a run directory::

    config.yaml  manifest.json
    iterations/iter-<t>/data.jsonl, <trainer>/checkpoint/, <trainer>/telemetry.jsonl   (harness.flow.train)
    eval/<system>[/<split>]/responses.jsonl                                             (evaluation generations)
    judgments/<candidate>--vs--<baseline>[--<split>]/verdicts.jsonl, stats.json         (judge + statistics)
    metrics.jsonl                                                                       (MI per iteration)
    results.json  leaderboard/                                                          (rows with provenance)
    timings.json                                                 (wall seconds per stage, one entry per invocation)
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from harness.core.artifacts import atomic_write_text, read_json, write_json, write_jsonl
from harness.models.backends import create_backend
from harness.core.cache import ContentCache
from harness.config import ModelConfig, RunConfig
from harness.flow.evaluate import evaluation_items, evaluation_responses
from harness.core.hashing import file_hash
from harness.tasks.loaders import fingerprint
from harness.core.provenance import git_commit, manifest
from harness.core.stages import Stage
from harness.tasks import Task, get_task


@dataclass(frozen=True)
class System:
    """A model that produces evaluation responses: the base model, an instruct baseline, or a trained iterate."""

    id: str
    trainer: str           # sami/sft/dpo, or 'base' / 'instruct'
    iteration: int
    model: ModelConfig
    backend: str
    checkpoint: Path | None = None
    learning_rate: float | None = None


def run_directory(config: RunConfig) -> Path:
    return Path(config.out or f"runs/{config.task}-{config.trainer}-{config.hash()}")


def trained_systems(config: RunConfig, run_dir: Path) -> list[System]:
    from harness.flow.train import checkpoint_dir
    from trainers.variants import trainer_specs, variant_config

    systems = []
    for trainer in trainer_specs(config):
        learning_rate = variant_config(config, trainer).train.learning_rate
        for t in range(1, config.train.iterations + 1):
            folder = checkpoint_dir(run_dir, t, trainer)
            model = config.model.model_copy(update={"name": str(folder.resolve()), "revision": None})
            systems.append(System(f"{trainer}-iter{t}", trainer, t, model, config.generation.backend, folder,
                                  learning_rate))
    return systems


def baseline_systems(config: RunConfig) -> dict[str, System]:
    systems = {"base": System("base", "base", 0, config.model, config.generation.backend)}
    if config.eval.instruct_model is not None:
        systems["instruct"] = System("instruct", "instruct", 0, config.eval.instruct_model,
                                     config.eval.instruct_backend or config.generation.backend)
    return systems


def principle_splits(task: Task) -> list[str]:
    return ["train", "heldout"] if task.name == "heldout" else ["train"]


def generate_evaluation(config: RunConfig, task: Task, system: System, split: str, run_dir: Path,
                        cache: ContentCache) -> Path:
    """Stage: ``system``'s responses on the evaluation set (one file per principle split)."""
    items = evaluation_items(task, config, heldout=split == "heldout")
    folder = run_dir / "eval" / system.id / split
    generation = config.generation.model_copy(update={"backend": system.backend})
    weights = _checkpoint_identity(system)
    stage = Stage(folder, "evaluate", {"items": fingerprint([q for q, _ in items]),
                                       "constitutions": [c.text for _, c in items], "model": system.model.model_dump(),
                                       "weights": weights, "generation": generation.model_dump()})
    if stage.done():
        return folder / "responses.jsonl"
    backend = create_backend(system.model, generation)
    rows = evaluation_responses(task, items, backend, system.id, config.generation.seed, cache)
    write_jsonl(folder / "responses.jsonl", rows)
    stage.finish(system=system.id, model_identity=backend.identity(), n=len(rows),
                 responses_sha=file_hash(folder / "responses.jsonl"))
    del backend
    gc.collect()
    return folder / "responses.jsonl"


def _checkpoint_identity(system: System) -> str | None:
    if system.checkpoint is None:
        return None
    marker = system.checkpoint.parent / "done.json"
    return read_json(marker).get("inputs_hash") if marker.is_file() else None


def judged_pairs(candidates: list[System], baselines: dict[str, System], config: RunConfig) -> list[tuple[System, System]]:
    pairs = [(c, baselines[b]) for c in candidates for b in config.eval.baselines if b in baselines]
    if "instruct" in config.eval.baselines and "instruct" in baselines:
        pairs.append((baselines["base"], baselines["instruct"]))
    return pairs


def run_pipeline(config: RunConfig) -> Path | None:
    """Run (or resume) everything; return the run directory (None on the non-main processes of a multi-process
    launch, which only take part in training)."""
    from harness.flow.train import run_expert_iteration
    from harness.flow.judge import judge_pair
    from harness.flow.score import record_mutual_information
    from harness.flow.publish import publish_run
    from trainers.common import distributed_state
    from trainers.variants import trainer_specs

    task = get_task(config.task)
    run_dir = run_directory(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    data_fingerprint = fingerprint(task.load_queries(config.data, "train") + task.load_queries(config.data, "eval"))
    write_json(run_dir / "manifest.json", manifest(config, stage="run", data_source=config.data.source,
                                                    data_fingerprint=data_fingerprint))
    cache = ContentCache()
    started = time.time()
    timings: dict[str, float] = {}

    def timed(name: str, since: float) -> None:
        timings[name] = round(timings.get(name, 0.0) + time.time() - since, 1)

    mark = time.time()
    run_expert_iteration(config, run_dir, cache)
    timed("iterations", mark)
    if not distributed_state().is_main_process:
        return None  # under torchrun / accelerate launch, evaluation runs on the main process only

    baselines = baseline_systems(config)
    candidates = trained_systems(config, run_dir)
    pairs = judged_pairs(candidates, baselines, config)
    needed = {s.id: s for pair in pairs for s in pair}
    responses: dict[tuple[str, str], Path] = {}
    mark = time.time()
    for split in principle_splits(task):
        for system in needed.values():
            responses[system.id, split] = generate_evaluation(config, task, system, split, run_dir, cache)
    timed("evaluation generations", mark)

    mark = time.time()
    scored = []
    for split in principle_splits(task):
        for candidate, baseline in pairs:
            scored.append((candidate, baseline, split, judge_pair(
                config, task, responses[candidate.id, split], responses[baseline.id, split], candidate.id,
                baseline.id, split, run_dir, cache)))
    timed("judging and scoring", mark)

    mark = time.time()
    if config.eval.mutual_information:
        record_mutual_information(config, run_dir, cache, trainer_specs(config))
    timed("mutual information", mark)

    publish_run(config, task, run_dir, scored, git_commit())
    timings["total"] = round(time.time() - started, 1)
    record_timings(run_dir, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)), timings)
    return run_dir


def record_timings(run_dir: Path, started_at: str, timings: dict[str, float]) -> None:
    """Append this invocation's stage times to ``timings.json``, so the first (working) run's times survive the
    reruns and resumes after it, and a rerun's cost can be compared with the original's."""
    path = run_dir / "timings.json"
    history = read_json(path)["invocations"] if path.is_file() else []
    write_json(path, {"invocations": history + [{"started_at": started_at, "seconds": timings}]})
