"""The pipeline's judging stage: one candidate vs one baseline on one principle split, idempotent."""

from __future__ import annotations

from pathlib import Path

from harness.core.artifacts import read_json
from harness.core.cache import ContentCache
from harness.config import RunConfig
from harness.core.hashing import file_hash
from harness.judging import load_judge
from harness.judging.files import judge_files
from harness.core.stages import Stage
from harness.tasks import Task


def judge_pair(config: RunConfig, task: Task, candidate_path: Path, baseline_path: Path, candidate: str,
               baseline: str, split: str, run_dir: Path, cache: ContentCache) -> dict:
    """Judge (or reuse) the pair; return its statistics, judge identity and the files behind them."""
    judge = load_judge(config.eval.judge)
    folder = run_dir / "judgments" / (f"{candidate}--vs--{baseline}" + (f"--{split}" if split != "train" else ""))
    candidate_sha, baseline_sha = file_hash(candidate_path), file_hash(baseline_path)
    stage = Stage(folder, "judge", {"judge": judge.hash, "candidate": candidate_sha, "baseline": baseline_sha,
                                    "protocol": config.eval.protocol, "seed": config.seed,
                                    "max_parse_failure_rate": config.eval.max_parse_failure_rate})
    if not stage.done():
        result = judge_files(task.name, candidate_path, baseline_path, judge, folder, seed=config.seed, cache=cache,
                             candidate_name=candidate, baseline_name=baseline,
                             max_parse_failure_rate=config.eval.max_parse_failure_rate, log=lambda _: None)
        stats = result.summary if config.eval.protocol == judge.protocol else _rescore(result.verdicts, config)
        stage.finish(candidate=candidate, baseline=baseline, split=split, judge=judge.name, judge_hash=judge.hash,
                     stats=stats)
    record = read_json(stage.marker)
    return {"stats": record["stats"], "judge": record["judge"], "judge_hash": record["judge_hash"],
            "verdicts_path": folder / "verdicts.jsonl", "candidate_sha": candidate_sha}


def _rescore(lines: list[dict], config: RunConfig) -> dict:
    from harness.judging.files import summarize

    return summarize(lines, config.eval.protocol, config.seed, config.eval.max_parse_failure_rate)
