"""The judge stage: one candidate against one baseline on one principle split, idempotent.

The judge (``harness/judging``) compares the two responses files item by item under the judge's protocol; the
statistics are recomputed under ``eval.protocol`` when it differs from the judge's own. The marker records the
judge's content hash and the statistics, so a rerun with the same judge, files and settings does no judge call.
"""

from __future__ import annotations

from pathlib import Path

from harness.config import EvalConfig, RunConfig
from harness.core.artifacts import read_json
from harness.core.cache import ContentCache
from harness.core.hashing import file_hash
from harness.core.run_layout import RunLayout
from harness.core.stages import Stage
from harness.judging import load_judge
from harness.judging.files import judge_files, summarize
from harness.tasks import Task, get_task


def with_default_judge(config: RunConfig) -> RunConfig:
    """``config`` with ``eval.judge`` set: as given, else the exact ``verifier`` when every principle of the run's
    principles file has a check and an antithesis check, else the offline ``local`` judge."""
    if config.eval.judge is not None:
        return config
    principles = get_task(config.task).principles(config.principles.file)
    judge = "verifier" if all(p.checkable for p in principles.principles) else "local"
    return config.model_copy(update={"eval": config.eval.model_copy(update={"judge": judge})})


def judge_stage(settings: EvalConfig, seed: int, task: Task, candidate_path: Path, baseline_path: Path, candidate: str,
                baseline: str, split: str, layout: RunLayout, cache: ContentCache,
                principles_file: str | None = None) -> dict:
    """Judge (or reuse) the pair; return its statistics, judge identity and the files behind them."""
    judge = load_judge(settings.judge)
    folder = layout.judgment(candidate, baseline, split)
    candidate_sha, baseline_sha = file_hash(candidate_path), file_hash(baseline_path)
    stage = Stage(folder, "judge", {"judge": judge.hash, "candidate": candidate_sha, "baseline": baseline_sha,
                                    "protocol": settings.protocol, "seed": seed,
                                    "max_parse_failure_rate": settings.max_parse_failure_rate,
                                    "bootstrap_resamples": settings.bootstrap_resamples,
                                    **({"principles": principles_file} if principles_file else {})})
    if not stage.done():
        result = judge_files(task.name, candidate_path, baseline_path, judge, folder, seed=seed, cache=cache,
                             candidate_name=candidate, baseline_name=baseline,
                             max_parse_failure_rate=settings.max_parse_failure_rate,
                             n_resamples=settings.bootstrap_resamples, principles_file=principles_file,
                             log=lambda _: None)
        stats = result.summary if settings.protocol == judge.protocol else summarize(
            result.verdicts, settings.protocol, seed, settings.max_parse_failure_rate, settings.bootstrap_resamples)
        stage.finish(candidate=candidate, baseline=baseline, split=split, judge=judge.name, judge_hash=judge.hash,
                     stats=stats)
    record = read_json(stage.marker)
    return {"stats": record["stats"], "judge": record["judge"], "judge_hash": record["judge_hash"],
            "verdicts_path": folder / "verdicts.jsonl", "candidate_sha": candidate_sha}
