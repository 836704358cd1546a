"""The MI metric: InfoNCE estimate in nats and bits with a bootstrap CI, both scorers, per iteration, cached."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from tiny_models import build_tiny_model, tiny_config  # noqa: I001

from harness.core.artifacts import read_json, read_jsonl
from harness.models.backends.hf import HFBackend
from harness.core.cache import ContentCache
from harness.core.run_layout import RunLayout
from harness.pipeline import run_expert_iteration
from harness.flow.score import (ESTIMATOR, infonce_summary, iteration_mutual_information,
                                        paired_change, record_mutual_information)

torch.set_num_threads(1)


def test_summary_nats_bits_and_interval():
    rng = np.random.default_rng(0)
    losses = rng.uniform(0.5, 1.3, size=40)
    summary = infonce_summary(losses, 4, resamples=2000, seed=7)
    assert summary["estimator"] == ESTIMATOR == "InfoNCE lower bound on I(Y;C|X), log C - L_SAMI"
    assert summary["mi_nats"] == pytest.approx(math.log(4) - losses.mean())
    assert summary["mi_bits"] == pytest.approx(summary["mi_nats"] / math.log(2))
    low, high = summary["ci95_nats"]
    assert low < summary["mi_nats"] < high
    assert summary["ci95_bits"] == pytest.approx([low / math.log(2), high / math.log(2)])
    assert "percentile bootstrap over queries, 2000 resamples" in summary["interval"]
    assert infonce_summary(losses, 4, resamples=2000, seed=7) == summary  # seeded
    # the interval shrinks roughly like 1/sqrt(n)
    wide = infonce_summary(losses[:10], 4, resamples=2000, seed=7)
    assert wide["ci95_nats"][1] - wide["ci95_nats"][0] > high - low


def test_paired_change():
    before = np.array([0.7, 0.69, 0.71, 0.68] * 5)
    after = before - 0.1
    change = paired_change(before, after, resamples=2000, seed=1)
    assert change["nats"] == pytest.approx(0.1) and change["ci95_nats"] == pytest.approx([0.1, 0.1])
    assert change["bits"] == pytest.approx(0.1 / math.log(2))


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("mi")
    tiny = build_tiny_model(root / "model")
    config = tiny_config(tiny, iterations=1, queries_per_step=2, steps_per_iteration=[2], learning_rate=5e-3,
                         max_prompt_tokens=2048, mi_resamples=2000)
    config.data.train_limit = 2
    config.eval.mi_queries = 3
    config.generation.max_new_tokens = 8
    config.filters = ["non_empty"]
    cache = ContentCache(root / "cache.sqlite")
    run_expert_iteration(config, RunLayout(root / "run"), cache)
    return config, root / "run", cache


def test_records_both_scorers_per_iteration(trained_run, monkeypatch):
    config, run_dir, cache = trained_run
    records = record_mutual_information(config, RunLayout(run_dir), cache)
    lines = read_jsonl(run_dir / "metrics.jsonl")
    assert [(r["iteration"], r["scorer"]) for r in lines] == [(0, "base"), (0, "policy"), (1, "base"), (1, "policy")]
    for row in lines:
        assert row["estimator"] == ESTIMATOR and row["C"] == 4 and row["n_queries"] == 3
        assert row["mi_bits"] == pytest.approx(row["mi_nats"] / math.log(2))
        assert row["ci95_nats"][0] <= row["mi_nats"] <= row["ci95_nats"][1]
        assert row["mi_nats"] <= math.log(4)
    zero = {r["scorer"]: r for r in lines if r["iteration"] == 0}
    one = {r["scorer"]: r for r in lines if r["iteration"] == 1}
    assert zero["base"]["mi_nats"] == zero["policy"]["mi_nats"]  # iteration 0: the policy is the base model
    assert one["base"]["scorer_model"] == zero["base"]["scorer_model"] != one["policy"]["scorer_model"]
    assert one["policy"]["policy_model"] == one["policy"]["scorer_model"]
    for scorer in ("policy", "base"):
        change = one[scorer]["change_vs_iteration_0"]
        assert change["nats"] == pytest.approx(one[scorer]["mi_nats"] - zero[scorer]["mi_nats"], abs=1e-9)
        assert change["ci95_nats"][0] <= change["nats"] <= change["ci95_nats"][1]
    assert len(records) >= 4

    # a rerun does no model work and does not duplicate lines
    def refuse(*args, **kwargs):
        raise AssertionError("the model was called on a finished stage")

    monkeypatch.setattr(HFBackend, "score", refuse)
    monkeypatch.setattr(HFBackend, "_generate", refuse)
    record_mutual_information(config, RunLayout(run_dir), cache)
    assert read_jsonl(run_dir / "metrics.jsonl") == lines
    # without the stage marker, every generation and log-prob comes from the content cache
    (RunLayout(run_dir).mutual_information(1, "sami") / "done.json").unlink()
    again = iteration_mutual_information(config, RunLayout(run_dir), 1, cache)
    assert [r["mi_nats"] for r in again] == [one["policy"]["mi_nats"], one["base"]["mi_nats"]]


def test_score_matrix_matches_the_training_loss(trained_run):
    """The metric scores exactly the matrix the trainer optimises: recompute iteration 0 with trainers.sami."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.core.artifacts import read_jsonl as rows_of
    from harness.flow.generate import groups_from_rows
    from harness.tasks import get_task
    from trainers.sami import SamiBatcher, logprob_matrix, sami_loss_per_query

    config, run_dir, cache = trained_run
    record_mutual_information(config, RunLayout(run_dir), cache)
    task = get_task("tldr")
    groups = groups_from_rows(rows_of(RunLayout(run_dir).mutual_information(0, "sami") / "generations.jsonl"), task.principles())
    model = AutoModelForCausalLM.from_pretrained(Path(config.model.name))
    tokenizer = AutoTokenizer.from_pretrained(Path(config.model.name))
    batcher = SamiBatcher(task, tokenizer, "base", max_prompt_tokens=4096, max_response_tokens=4096)
    with torch.no_grad():
        L, _ = logprob_matrix(model, batcher.encode(groups), len(groups), 4)
    stored = read_json(RunLayout(run_dir).mutual_information(0, "sami") / "per_query.json")["loss"]["policy"]
    assert sami_loss_per_query(L).tolist() == pytest.approx(stored, abs=1e-4)
