"""``harness principles headroom``: the table's structure and arithmetic, on a tiny random model and a fake one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import FakeBackend
from tiny_models import build_tiny_model, tiny_config

from harness.cli import main
from harness.config import GenerationConfig, ModelConfig
from harness.tasks import get_task
from harness.tasks.headroom import markdown_table, measure_headroom
from harness.tasks.loaders import Query
from harness.tasks.principles import load_principles

# TL;DR responses begin "The post", so has_lowercase always passes and all_uppercase never does
PRINCIPLES = """
task: tldr
description: Summarize the post.
writer: {model: test}
principles:
  - name: lower
    definition: Summaries should use some lowercase letters.
    antithesis: Summaries should be written in capital letters only.
    check: {name: has_lowercase}
    antithesis_check: {name: all_uppercase}
  - name: brief
    definition: "Summaries should be brief: at most 5 words."
    antithesis: "Summaries should be long: at least 8 words."
    check: {name: max_words, n: 5}
    antithesis_check: {name: min_words, n: 8}
  - name: vague
    definition: Summaries should be vague.
    antithesis: Summaries should be precise.
sampling: {scheme: contrastive, negate: [[0], [1]]}
"""


@pytest.fixture
def principles_file(tmp_path) -> Path:
    path = tmp_path / "principles.yaml"
    path.write_text(PRINCIPLES)
    return path


def test_cli_on_tiny_model(tmp_path, principles_file, monkeypatch, capsys):
    monkeypatch.setenv("SAMI_HARNESS_CACHE", str(tmp_path / "cache"))
    model = build_tiny_model(tmp_path / "model")
    config = tiny_config(model)
    config_file = tmp_path / "config.yaml"
    config_file.write_text(f"model: {{name: {json.dumps(str(model))}, prompt_format: base}}\n"
                           "generation: {max_new_tokens: 6}\n")
    out = tmp_path / "headroom.json"
    code = main(["principles", "headroom", "--principles", str(principles_file), "--config", str(config_file),
                 "--model", str(config.model.name), "--limit", "3", "--resamples", "200", "--out", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["task"] == "tldr" and report["split"] == "train" and report["limit"] == 3
    assert report["skipped_uncheckable"] == ["vague"]
    assert [row["principle"] for row in report["rows"]] == ["lower", "brief"]
    lower, brief = report["rows"]
    # the always-passing check: adherence 1 under both constitutions, no headroom, a degenerate CI at 0
    assert lower["n"] == 3 and lower["check"] == "has_lowercase()" and lower["antithesis_check"] == "all_uppercase()"
    assert (lower["adherence_pos"], lower["adherence_neg"], lower["headroom"]) == (1.0, 1.0, 0.0)
    assert (lower["ci_low"], lower["ci_high"], lower["moves"], lower["antithesis_neg"]) == (0.0, 0.0, False, 0.0)
    assert len(lower["items"]) == 3 and all(item["pos_response"].startswith("The post") for item in lower["items"])
    # arithmetic of the other row, from its own per-query records
    items = brief["items"]
    assert brief["adherence_pos"] == pytest.approx(sum(i["pos_passes"] for i in items) / 3)
    assert brief["adherence_neg"] == pytest.approx(sum(i["neg_passes"] for i in items) / 3)
    assert brief["headroom"] == pytest.approx(brief["adherence_pos"] - brief["adherence_neg"])
    assert brief["ci_low"] <= brief["headroom"] <= brief["ci_high"]
    # training queries only: the measured items are the task's training split
    train_ids = [q.id for q in get_task("tldr").load_queries(config.data.model_copy(update={"train_limit": None}),
                                                              "train")][:3]
    eval_ids = {q.id for q in get_task("tldr").load_queries(config.data, "eval")}
    assert [i["item"] for i in items] == train_ids and not eval_ids & set(train_ids)
    table = capsys.readouterr().out
    assert "| principle | check (definition) |" in table
    assert "| lower | `has_lowercase()` | `all_uppercase()` | 3 | 1.00 | 1.00 | +0.00 | [+0.00, +0.00] | 0.00 | no |" \
        in table
    assert "(skipped, no checks: vague)" in table


def test_headroom_arithmetic_with_a_fake_model(principles_file):
    """The fake model follows 'brief' on even queries only, and always writes at length under its antithesis."""
    task, principles = get_task("tldr"), load_principles(principles_file)
    queries = [Query(f"q{k}", f"POST: story number {k}") for k in range(4)]

    def answer(prompt: str, seed: int) -> str:
        even = any(f"story number {k}" in prompt for k in (0, 2))
        if "at most 5 words" in prompt and even:
            return " is short."
        return " tells a long story about a person and a problem at work."

    backend = FakeBackend(ModelConfig(name="fake"), GenerationConfig(), answers=answer)
    rows, skipped = measure_headroom(task, principles, backend, queries, seed=0, cache=None, limit=None,
                                     n_resamples=500)
    assert skipped == ["vague"]
    brief = rows[1]
    assert brief.n == 4 and [i["pos_passes"] for i in brief.items] == [True, False, True, False]
    assert (brief.adherence_pos, brief.adherence_neg, brief.headroom, brief.antithesis_neg) == (0.5, 0.0, 0.5, 1.0)
    assert 0.0 <= brief.ci_low <= 0.5 <= brief.ci_high <= 1.0
    assert brief.moves == (brief.ci_low > 0)
    lines = markdown_table(rows).splitlines()
    assert len(lines) == 2 + len(rows) and lines[3].startswith("| brief | `max_words(n=5)` | `min_words(n=8)` | 4 |")
