"""The verifier judge: exact pairwise verdicts from the principles' checks, adherence rates, and the same
pipeline, statistics and leaderboards as the LLM judges."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from harness.cli import main
from harness.core.artifacts import read_json, read_jsonl
from harness.judging import load_judge
from harness.judging.files import judge_files

PRINCIPLES = {
    "task": "tldr", "description": "test", "writer": {"model": "human"},
    "sampling": {"scheme": "contrastive", "negate": [[0], [1]]},
    "principles": [
        {"name": "brief", "definition": "Summaries should be brief, at most 10 words.",
         "antithesis": "Summaries should be long, at least 20 words.",
         "check": {"name": "max_words", "n": 10}, "antithesis_check": {"name": "min_words", "n": 20}},
        {"name": "nodigits", "definition": "Summaries should contain no digits.",
         "antithesis": "Summaries should include numbers.",
         "check": {"name": "no_digits"}, "antithesis_check": {"name": "has_digits"}}]}
CONSTITUTION = "1. Summaries should be brief, at most 10 words.\n2. Summaries should contain no digits."
CANDIDATE = ["The post asks for advice.", "The post has 3 cats.", "The post is long " + "word " * 20, "The post asks."]
BASELINE = ["The post is long " + "word " * 20, "The post asks for advice.", "The post has 2 dogs and " + "x " * 20,
            "The post, 1."]


def write_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    principles = tmp_path / "principles.yaml"
    principles.write_text(yaml.safe_dump(PRINCIPLES))
    paths = []
    for name, responses in (("a", CANDIDATE), ("b", BASELINE)):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"item": str(i), "query": f"post {i}", "constitution": CONSTITUTION,
                                            "response": r, "model": name}) + "\n" for i, r in enumerate(responses)))
        paths.append(path)
    return principles, *paths


def test_verdicts_are_exact_and_carry_the_checks(tmp_path):
    principles, candidate, baseline = write_files(tmp_path)
    result = judge_files("tldr", candidate, baseline, load_judge("verifier"), tmp_path / "out",
                         principles_file=str(principles), progress=False, log=lambda _: None)
    by_item = {line["item"]: line for line in result.verdicts if line["order"] == "candidate_first"}
    # 2/2 vs 1/2, 1/2 vs 2/2, 1/2 vs 0/2, 2/2 vs 1/2
    assert [by_item[str(i)]["winner"] for i in range(4)] == ["candidate", "baseline", "candidate", "candidate"]
    assert by_item["1"]["checks"] == {"candidate": {"brief": True, "nodigits": False},
                                      "baseline": {"brief": True, "nodigits": True}}
    summary = result.summary
    assert summary["win_rate"] == 0.75 and summary["n"] == 4
    assert summary["position_consistency"] == 1.0 and summary["first_position_preference"] == 0.5
    assert summary["adherence"] == 0.75 and summary["baseline_adherence"] == 0.5
    assert summary["adherence_by_principle"] == {"brief": 0.75, "nodigits": 0.75}
    assert summary["adherence_ci_low"] <= 0.75 <= summary["adherence_ci_high"]


def test_negated_principles_are_checked_with_the_antithesis(tmp_path):
    principles, candidate, baseline = write_files(tmp_path)
    negated = "1. Summaries should be long, at least 20 words.\n2. Summaries should contain no digits."
    for path in (candidate, baseline):
        rows = [{**row, "constitution": negated} for row in read_jsonl(path)]
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = judge_files("tldr", candidate, baseline, load_judge("verifier"), tmp_path / "out",
                         principles_file=str(principles), progress=False, log=lambda _: None)
    first = [line for line in result.verdicts if line["item"] == "0"][0]
    assert first["checks"]["candidate"] == {"not-brief": False, "nodigits": True}
    assert first["checks"]["baseline"] == {"not-brief": True, "nodigits": True}
    assert first["winner"] == "baseline"


def test_cli_gives_the_exact_win_rate_and_unverifiable_principles_are_a_clear_error(tmp_path, capsys):
    principles, candidate, baseline = write_files(tmp_path)
    assert main(["judge", "--judge", "verifier", "--task", "tldr", "--principles", str(principles),
                 "--candidate", str(candidate), "--baseline", str(baseline), "--out", str(tmp_path / "cli"),
                 "--format", "json", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["win_rate"] == 0.75
    assert read_json(tmp_path / "cli" / "manifest.json")["judge_backend"]["name"] == "verifier"
    # the task's shipped paper-style principles carry no checks: the verifier says so instead of guessing
    assert main(["judge", "--judge", "verifier", "--task", "dialogue", "--candidate", str(candidate),
                 "--baseline", str(baseline), "--out", str(tmp_path / "none"), "--no-progress"]) == 2
    assert "no principle of its constitution has a check" in capsys.readouterr().err


def test_verifier_is_listed_as_a_judge():
    from harness.judging import list_judges

    assert "verifier" in dict(list_judges())


class AlwaysA:
    """A stand-in judge backend that always answers A (a pure position-bias judge)."""

    def identity(self):
        return {"backend": "always-a"}

    def full_text(self, prompt, noun):
        return prompt

    def run(self, calls, noun, on_done):
        for index, _ in enumerate(calls):
            on_done(index, {"choice": "A", "p_a": None, "attempts": 1, "raw": "Verdict: A"})

    def counts(self):
        return {}


def test_audit_flags_a_judge_that_always_answers_a(tmp_path):
    from harness.judging.audit import audit, render_audit

    principles, candidate, baseline = write_files(tmp_path)
    result = audit(load_judge("robust"), "tldr", candidate, baseline, tmp_path / "audit",
                   principles_file=str(principles), backend=AlwaysA(), progress=False, log=lambda _: None)
    assert result["n_verifier_decisive_items"] == 4 and result["n_accuracy_calls"] == 8
    assert result["accuracy"] == 0.5 == result["always_first_accuracy"]  # right exactly when the winner came first
    assert result["first_position_preference"] == 1.0 and result["position_consistency"] == 0.0
    assert result["item_accuracy"] == 0.0  # its two orders always cancel into a tie
    assert result["agreement"]["cohen_kappa"] <= 0.0
    assert result["warnings"] and "artifact of position" in result["warnings"][0]
    assert "warning: position bias" in render_audit(result)
    assert read_json(tmp_path / "audit" / "audit.json")["accuracy"] == 0.5
