"""End to end: the whole `harness run` pipeline on a tiny random model with a local judge.

An uninterrupted run and a run killed with SIGKILL mid-training and again mid-judging (then resumed with the
same command) must publish identical leaderboards; rerunning a finished run must do no model work.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.tiny_models import build_tiny_model

REPO = Path(__file__).resolve().parents[1]
VOLATILE = {"run_id", "verdicts_path"}  # the run directory's name differs between the two runs


def write_config(tmp: Path, model_dir: Path, name: str) -> Path:
    judge = {"name": "tiny-local", "description": "tiny random judge for tests", "backend": "local",
             "model": str(model_dir), "prompt": str(REPO / "harness" / "judging" / "judges" / "local" / "prompt.txt"),
             "parser": {"name": "verdict-token-probs", "version": 1}, "protocol": "robust",
             "shuffle_principles": True, "max_reasks": 0,
             "local": {"a_tokens": ["A"], "b_tokens": ["B"], "tie_margin": 0.0, "chat_template": False,
                       "answer_prefix": "Preferred {noun}:", "dtype": "float32", "max_prompt_tokens": 1024},
             "runtime": {"batch_size": 4}}
    judge_path = tmp / "judge.yaml"
    judge_path.write_text(yaml.safe_dump(judge))
    config = {
        "task": "tldr", "trainer": "sami", "compare_trainers": ["sft"],
        "model": {"name": str(model_dir), "prompt_format": "base"},
        "data": {"train_limit": 6, "eval_limit": 4},
        "generation": {"max_new_tokens": 12, "batch_size": 4},
        "filters": ["non_empty"],
        "train": {"iterations": 2, "steps_per_iteration": [2, 2], "queries_per_step": 2, "learning_rate": 1e-3,
                  "max_prompt_tokens": 1024, "mi_constitutions": 2, "mi_resamples": 2000},
        "eval": {"judge": str(judge_path), "mi_queries": 2, "mi_every_iteration": True, "bootstrap_resamples": 1000},
        "out": str(tmp / name),
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def harness(config: Path, cache: Path) -> subprocess.Popen:
    env = {**os.environ, "SAMI_HARNESS_CACHE": str(cache), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "harness.cli", "run", "--config", str(config)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def kill_when(process: subprocess.Popen, path_glob: tuple[Path, str], timeout: float = 300) -> bool:
    """SIGKILL the run as soon as a file matching the glob appears; False if the run ended first."""
    folder, pattern = path_glob
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            return False
        if any(folder.glob(pattern)):
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.02)
    process.kill()
    raise AssertionError("the run neither reached the kill point nor finished in time")


def finish(process: subprocess.Popen) -> str:
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-3000:]
    return output


def leaderboard(run_dir: Path) -> list[dict]:
    rows = json.loads((run_dir / "leaderboard" / "leaderboard.json").read_text())["rows"]
    return [{k: v for k, v in row.items() if k not in VOLATILE} for row in rows]


@pytest.mark.slow
def test_killed_and_resumed_run_publishes_the_same_leaderboard(tmp_path):
    model_dir = build_tiny_model(tmp_path / "tiny")
    straight = write_config(tmp_path, model_dir, "straight")
    killed = write_config(tmp_path, model_dir, "killed")

    finish(harness(straight, tmp_path / "cache-straight"))

    cache = tmp_path / "cache-killed"  # its own cache: the resumed run cannot borrow the straight run's work
    run_dir = tmp_path / "killed"
    assert kill_when(harness(killed, cache), (run_dir / "iterations", "iter-*/sami/telemetry.jsonl")), \
        "run finished before it could be killed mid-training"
    assert not (run_dir / "results.json").exists()
    assert kill_when(harness(killed, cache), (run_dir / "judgments", "*/verdicts.jsonl")), \
        "run finished before it could be killed mid-judging"
    finish(harness(killed, cache))

    straight_rows, resumed_rows = leaderboard(tmp_path / "straight"), leaderboard(run_dir)
    differences = [(a["system"], a["baseline"], key, a[key], b[key])
                   for a, b in zip(straight_rows, resumed_rows) for key in a if a[key] != b[key]]
    assert not differences and len(straight_rows) == len(resumed_rows)
    rows = leaderboard(run_dir)
    systems = {r["system"] for r in rows}
    assert {"sami-iter1", "sami-iter2", "sft-iter1", "sft-iter2"} <= systems
    reference = [r for r in rows if r["win_rate"] is None]
    assert [(r["system"], r["iteration"], r["rank"]) for r in reference] == [("base", 0, None)]  # iteration-0 row
    for row in rows:
        if row["win_rate"] is None:
            continue
        assert 0 <= row["ci_low"] <= row["win_rate"] <= row["ci_high"] <= 1
        assert row["config_hash"] and row["judge_hash"] and row["verdicts_sha"] and row["responses_sha"]
    markdown = (run_dir / "leaderboard" / "leaderboard.md").read_text()
    assert "Judge: `tiny-local` (robust protocol) with model `" in markdown  # which judge, and which model behind it
    assert list((run_dir / "leaderboard").glob("*.png"))
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {(m["iteration"], m["scorer"]) for m in metrics} >= {(0, "policy"), (1, "base"), (2, "policy")}


@pytest.mark.slow
def test_rerun_of_a_finished_run_does_no_model_work(tmp_path, monkeypatch):
    from harness.models import loading as models
    from harness.config import load_config
    from harness.pipeline import run_pipeline

    model_dir = build_tiny_model(tmp_path / "tiny")
    monkeypatch.setenv("SAMI_HARNESS_CACHE", str(tmp_path / "cache"))
    config = load_config(write_config(tmp_path, model_dir, "run"))
    run_dir = run_pipeline(config)
    first = leaderboard(run_dir)

    def no_model(*args, **kwargs):
        raise AssertionError("a finished run loaded a model")

    monkeypatch.setattr(models, "load_causal_lm", no_model)
    monkeypatch.setattr("trainers.common.load_causal_lm", no_model)
    assert leaderboard(run_pipeline(config)) == first
    first_run, rerun = json.loads((run_dir / "timings.json").read_text())["invocations"]
    assert rerun["seconds"]["total"] < first_run["seconds"]["total"]
