"""Judging two response files end to end, for ``harness judge`` and the run pipeline.

    result = judge_files("tldr", "sami/responses.jsonl", "base/responses.jsonl", load_judge("robust"), out_dir)

writes ``out_dir/verdicts.jsonl`` (one line per judge call), ``out_dir/manifest.json`` (judge config and hash,
inputs' file hashes, counts, seeds, code version) and ``out_dir/summary.json`` (the statistics of the judge's
protocol), and returns the three.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness import stats
from harness.core.artifacts import write_json, write_jsonl
from harness.core.cache import ContentCache
from harness.core.errors import HarnessError
from harness.core.hashing import content_hash, derived_seed
from harness.judging.config import Judge
from harness.judging.engine import JudgeRunner, RunCounts, verdict_line
from harness.judging.verifier import verdict_lines as verifier_lines
from harness.stats.adherence import adherence
from harness.judging.responses import Pair, load_responses, pair_responses
from harness.stats.verdicts import parse_verdicts


def default_constitution(task, item: str, seed: int) -> str:
    """The task's all-positive evaluation constitution, for items whose response file carries none."""
    from harness.tasks.principles import ConstitutionSampler

    sampler = ConstitutionSampler(task.principles())
    return sampler.evaluation(random.Random(derived_seed(item, seed, "eval"))).text


def provenance() -> dict:
    from harness.core.provenance import git_commit, package_versions

    return {"git_commit": git_commit(), "packages": package_versions(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}


@dataclass
class JudgeResult:
    out: Path
    verdicts: list[dict]
    summary: dict
    manifest: dict


def judge_files(task_name: str, candidate_path: str | Path, baseline_path: str | Path, judge: Judge,
                out: str | Path | None = None, *, limit: int | None = None, seed: int = 0,
                cache: ContentCache | None = None, candidate_name: str | None = None,
                baseline_name: str | None = None, retry_failures: bool = False, backend=None,
                max_parse_failure_rate: float = stats.DEFAULT_MAX_PARSE_FAILURE_RATE, progress: bool = True,
                n_resamples: int = stats.DEFAULT_RESAMPLES, principles_file: str | None = None,
                log=print) -> JudgeResult:
    from harness.tasks import get_task

    task = get_task(task_name)
    candidate = load_responses(candidate_path, candidate_name)
    baseline = load_responses(baseline_path, baseline_name)
    if candidate.system == baseline.system:
        raise HarnessError(f"both response files are named '{candidate.system}'; name them apart "
                           "(--candidate-name / --baseline-name)")
    pairing = pair_responses(candidate, baseline, limit)
    if pairing.constitution_note:
        log(f"note: {pairing.constitution_note}")
    if pairing.only_candidate or pairing.only_baseline:
        log(f"note: judging {len(pairing.pairs)} shared items; "
            f"{pairing.only_candidate} only in the candidate file, {pairing.only_baseline} only in the baseline file")
    pairs = [pair if pair.constitution is not None else
             Pair(pair.item, pair.query, default_constitution(task, pair.item, seed), pair.candidate, pair.baseline)
             for pair in pairing.pairs]
    n_default = sum(pair.constitution is None for pair in pairing.pairs)
    if n_default:
        log(f"note: {n_default} items carry no constitution; judging them under the {task.name} task's "
            "evaluation principles (all positive)")
    out = Path(out) if out else Path("runs") / (
        f"judge-{task.name}-{content_hash([candidate.describe()['sha256'], baseline.describe()['sha256'], judge.hash, seed, limit], 10)}")
    started = time.time()
    if judge.config.backend == "verifier":
        lines, backend_identity, counts = _verifier_verdicts(task, pairs, judge, candidate.system, baseline.system,
                                                             principles_file)
    else:
        runner = JudgeRunner(judge, cache, noun=task.response_noun, query_label=task.judge_query_label,
                             seed=seed, backend=backend, progress=progress)
        calls = runner.build_calls(pairs)
        outcomes = runner.run(calls, retry_failures=retry_failures)
        lines = [verdict_line(call, outcome, judge, candidate.system, baseline.system)
                 for call, outcome in zip(calls, outcomes)]
        backend_identity, counts = runner.backend.identity(), _counts(runner.counts)
    write_jsonl(out / "verdicts.jsonl", lines)
    summary = summarize(lines, judge.protocol, seed, max_parse_failure_rate, n_resamples)
    write_json(out / "summary.json", summary)
    manifest = {
        "stage": "judge",
        "task": task.name,
        "judge": judge.describe(),
        "judge_hash": judge.hash,
        "judge_backend": backend_identity,
        "protocol": judge.protocol,
        "seed": seed,
        "limit": limit,
        "candidate": candidate.describe(),
        "baseline": baseline.describe(),
        "pairing": {"n_items": len(pairs), "only_candidate": pairing.only_candidate,
                    "only_baseline": pairing.only_baseline, "constitution_differs": pairing.constitution_differs,
                    "default_constitution": n_default},
        "counts": {**counts, "lines": len(lines)},
        "seconds": round(time.time() - started, 2),
        "outputs": {"verdicts": "verdicts.jsonl", "summary": "summary.json"},
        **provenance(),
    }
    write_json(out / "manifest.json", manifest)
    return JudgeResult(out, lines, summary, manifest)


def _counts(counts: RunCounts) -> dict:
    return {k: v for k, v in asdict(counts).items() if k != "extra"}


def _verifier_verdicts(task, pairs: list[Pair], judge: Judge, candidate: str, baseline: str,
                       principles_file: str | None) -> tuple[list[dict], dict, dict]:
    """The verifier judge's lines for every pair (exact checks, no model), its identity and its counts."""
    started = time.time()
    principles = task.principles(principles_file)
    lines = [line for pair in pairs for line in verifier_lines(pair, principles, judge, candidate, baseline)]
    identity = {"name": "verifier", "principles": str(principles_file or task.principles_file)}
    return lines, identity, _counts(RunCounts(calls=len(lines), judged=len(lines),
                                              seconds=round(time.time() - started, 3)))


def summarize(lines: list[dict], protocol: str, seed: int,
              max_parse_failure_rate: float = stats.DEFAULT_MAX_PARSE_FAILURE_RATE,
              n_resamples: int = stats.DEFAULT_RESAMPLES) -> dict[str, Any]:
    """Statistics of the verdict lines under ``protocol`` (``harness.stats.winrates.win_rates``); the robust
    protocol's bootstrap takes ``n_resamples`` resamples."""
    verdicts = parse_verdicts(lines, "verdicts")
    if protocol == "robust":
        summary = stats.win_rates(verdicts, "robust", seed=seed, max_parse_failure_rate=max_parse_failure_rate,
                                  n_resamples=n_resamples)
    else:
        summary = stats.win_rates(verdicts, "sami-paper", seed=seed)
    return {**summary, **adherence(lines, seed, n_resamples)}
