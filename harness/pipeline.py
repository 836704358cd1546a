"""The full run behind ``harness run``: the iteration loop and the order of the stages, nothing else.

    for t = 1..T:  generate (pi_{t-1} answers under contrastive constitutions, filtered)   flow/generate.py
                   train    (every trainer from the base weights, on the same data)         flow/train.py
    evaluate  (every system answers the evaluation queries)                                 flow/evaluate.py
    judge     (each candidate against each baseline, per principle split)                   flow/judge.py
    score     (the mutual-information estimate per iteration)                               flow/score.py
    publish   (results.json with provenance, leaderboard tables and plots)                  flow/publish.py

Every stage writes its artifacts atomically and a ``done.json`` marker (with a hash of its inputs) last, so a
rerun of a finished run does no model work and a killed run resumes from its last finished stage. Paths inside the
run directory: ``harness/core/run_layout.py``.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

import yaml

from harness.config import RunConfig
from harness.core.artifacts import atomic_write_text, read_json, read_jsonl, write_json
from harness.core.cache import ContentCache
from harness.core.distributed import distributed_state
from harness.core.locks import folder_lock
from harness.core.progress import RunProgress
from harness.core.provenance import git_commit, manifest
from harness.core.run_layout import RunLayout
from harness.core.stages import Stage
from harness.core.urls import redact_url
from harness.flow.evaluate import baseline_systems, evaluate_stage, judged_pairs, trained_systems
from harness.flow.generate import generate_stage, groups_from_rows
from harness.flow.judge import judge_stage, with_default_judge
from harness.flow.publish import publish_run
from harness.flow.score import record_mutual_information
from harness.flow.train import train_stage, trainer_specs
from harness.models.loading import free_memory, model_identity, prune_checkpoint
from harness.tasks import get_task
from harness.tasks.loaders import fingerprint


def run_expert_iteration(config: RunConfig, layout: RunLayout, cache: ContentCache | None = None,
                         progress: RunProgress | None = None) -> list[dict]:
    """Run (or resume) every iteration: the PRIMARY trainer's checkpoint at t-1 generates iteration t's data
    (pi_0 = the base model), and every trainer trains on it from the base weights. Under ``torchrun`` /
    ``accelerate launch`` every process calls this: the main process generates, all processes train together.
    Returns one summary per iteration."""
    task = get_task(config.task)
    state = distributed_state()
    base = model_identity(config.model)
    principles = task.principles(config.principles.file)
    summaries = []
    generator_model = config.model
    for t in range(1, config.train.iterations + 1):
        generated_before = None
        if state.is_main_process:
            if progress:
                progress.stage("generate", f"iteration {t}: {config.data.train_limit or 'all'} training queries x "
                               f"{config.principles.constitutions_per_query} constitutions")
            _, generated_before = generate_stage(config, task, layout, t, cache, generator_model)
        state.wait_for_everyone()
        data = Stage(layout.iteration(t), "generate", None).summary()
        groups = groups_from_rows(read_jsonl(layout.iteration(t) / "data.jsonl"), principles)
        summary = {"iteration": t, "generator": data["generator"], "queries": data["queries"], "kept": data["kept"],
                   "dropped": data["dropped"], "generation_skipped": generated_before, "trainers": {}}
        for name in trainer_specs(config):
            if progress and state.is_main_process:
                progress.stage("train", f"{name}-iter{t}: {config.train.steps_at(t)} optimizer steps from the base")
            stage, skipped = train_stage(config, task, layout, t, name, groups, data["data_sha"], base)
            free_memory()
            record = stage.summary()
            summary["trainers"][name] = {"checkpoint": record["checkpoint"], "steps": record["steps"],
                                         "skipped": skipped, "final": record.get("final")}
        summaries.append(summary)
        generator_model = config.model.at_checkpoint(layout.checkpoint(t, config.trainer))
    return summaries


def run_pipeline(config: RunConfig) -> Path | None:
    """Run (or resume) everything; return the run directory (None on the non-main processes of a multi-process
    launch, which only take part in training). A second process on the same run folder exits at once."""
    config = with_default_judge(config)
    layout = RunLayout.for_config(config)
    layout.root.mkdir(parents=True, exist_ok=True)
    with folder_lock(layout.root, enabled=distributed_state().is_main_process):
        return _run_stages(config, get_task(config.task), layout)


def _run_stages(config: RunConfig, task, layout: RunLayout) -> Path | None:
    saved = config.model_dump(mode="json")
    saved["generation"]["base_url"] = redact_url(saved["generation"]["base_url"])  # never a credential on disk
    atomic_write_text(layout.config_file, yaml.safe_dump(saved, sort_keys=False))
    eval_queries = task.load_queries(config.data, "eval")
    data_fingerprint = fingerprint(task.load_queries(config.data, "train") + eval_queries)
    write_json(layout.manifest_file, manifest(config, stage="run", data_source=config.data.source,
                                              data_fingerprint=data_fingerprint))
    cache = ContentCache()
    timer = StageTimer()
    pairs = judged_pairs(trained_systems(config, layout), baseline_systems(config), config.eval.baselines)
    needed = {s.id: s for pair in pairs for s in pair}
    splits = task.principle_splits
    progress = RunProgress(config.train.iterations * (1 + len(trainer_specs(config))) + len(splits) * (
        len(needed) + len(pairs)) + int(config.eval.mutual_information) + 1)
    with timer("iterations"):
        run_expert_iteration(config, layout, cache, progress)
    if not distributed_state().is_main_process:
        return None  # under torchrun / accelerate launch, evaluation runs on the main process only

    n_eval = len(eval_queries)
    responses = {}
    with timer("evaluation generations"):
        for split in splits:
            for system in needed.values():
                progress.stage("evaluate", f"{system.id} ({split} principles): {n_eval} responses")
                responses[system.id, split] = evaluate_stage(config, task, system, split, layout, cache)
    scored = []
    with timer("judging and scoring"):
        for split in splits:
            for candidate, baseline in pairs:
                progress.stage("judge", f"{candidate.id} vs {baseline.id} ({split} principles): {n_eval} items")
                scored.append((candidate, baseline, split, judge_stage(
                    config.eval, config.seed, task, responses[candidate.id, split], responses[baseline.id, split],
                    candidate.id, baseline.id, split, layout, cache, config.principles.file)))
    with timer("mutual information"):
        if config.eval.mutual_information:
            shown = f"1-{config.train.iterations}" if config.eval.mi_every_iteration else str(config.train.iterations)
            progress.stage("score", f"mutual information, iterations 0 and {shown} of "
                           f"{', '.join(trainer_specs(config))}: {config.eval.mi_queries or n_eval} queries")
            record_mutual_information(config, layout, cache, trainer_specs(config))
    progress.stage("publish", f"results.json, leaderboard and site in {layout.leaderboard_dir}")
    publish_run(config, task, layout, scored, git_commit())
    if config.train.keep_checkpoints == "last":
        prune_checkpoints(config, layout)
    record_timings(layout, timer.started_at, timer.finish())
    return layout.root


class StageTimer:
    """Wall seconds per named part of a run, and the total."""

    def __init__(self):
        self.started = time.time()
        self.started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started))
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        mark = time.time()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.time() - mark, 1)

    def finish(self) -> dict[str, float]:
        return {**self.seconds, "total": round(time.time() - self.started, 1)}


def prune_checkpoints(config: RunConfig, layout: RunLayout) -> int:
    """Delete the weights of every checkpoint before the last iteration (all evaluated, scored and hashed by now);
    returns the bytes freed."""
    return sum(prune_checkpoint(layout.checkpoint(t, trainer)) for trainer in trainer_specs(config)
               for t in range(1, config.train.iterations))


def record_timings(layout: RunLayout, started_at: str, timings: dict[str, float]) -> None:
    """Append this invocation's stage times to ``timings.json``, so the first (working) run's times survive the
    reruns and resumes after it, and a rerun's cost can be compared with the original's."""
    path = layout.timings_file
    history = read_json(path)["invocations"] if path.is_file() else []
    write_json(path, {"invocations": history + [{"started_at": started_at, "seconds": timings}]})
