"""The judge over an OpenAI-compatible endpoint (a fake server on 127.0.0.1): garbage is re-asked then recorded as
a parse failure (never a tie), log-prob soft preferences, the key never written, and `harness judge` end to end
with caching and resume."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from test_openai_backend import FakeOpenAI, completion, error

from harness.core.cache import ContentCache
from harness.cli import main
from harness.judging import JUDGES_DIR, load_judge
from harness.judging.files import judge_files

KEY = "sk-judge-secret-abcdef0123456789"


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path):
    monkeypatch.setenv("FAKE_JUDGE_KEY", KEY)
    monkeypatch.setenv("SAMI_HARNESS_CACHE", str(tmp_path / "harness-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def judge_yaml(tmp_path: Path, url: str, name: str = "robust", **changes) -> Path:
    """A copy of a shipped judge pointed at the fake server, with fast retries."""
    text = (JUDGES_DIR / name / "config.yaml").read_text().replace("prompt: prompt.txt", f"prompt: {name}.txt")
    text = text.replace("base_url: null", f"base_url: {url}").replace("OPENAI_API_KEY", "FAKE_JUDGE_KEY")
    text = text.replace("backoff_s: 1.0", "backoff_s: 0.01").replace("backoff_max_s: 60", "backoff_max_s: 0.05")
    for old, new in changes.items():
        text = text.replace(old, new)
    folder = tmp_path / "judge"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.yaml").write_text(text)
    (folder / f"{name}.txt").write_text((JUDGES_DIR / name / "prompt.txt").read_text())
    return folder / f"{name}.yaml"


def shown(body: dict) -> tuple[str, str]:
    """The texts shown as A and B in the first user message."""
    prompt = next(m["content"] for m in body["messages"] if m["role"] == "user")
    a = re.search(r"Summary A:\n(.*?)\n\nSummary B:", prompt, re.S).group(1)
    b = re.search(r"Summary B:\n(.*?)\n\n", prompt, re.S).group(1)
    return a, b


def smart(body: dict, index: int) -> dict:
    """Prefers the text containing GOOD, with P = 0.8 on its letter; GARBAGE-ONCE answers garbage on the first
    ask; GARBAGE-ALWAYS always does."""
    a, b = shown(body)
    first_ask = len(body["messages"]) == 1
    if "GARBAGE-ALWAYS" in a + b or ("GARBAGE-ONCE" in a + b and first_ask):
        return completion("Both summaries have merits and I would rather not choose.")
    letter = "A" if "GOOD" in a else "B"
    other = "B" if letter == "A" else "A"
    tokens = [("Verdict", -0.01, {}), (":", -0.01, {}),
              (f" {letter}", math.log(0.8), {f" {letter}": math.log(0.8), f" {other}": math.log(0.2)})]
    return completion(f"Summary {letter} follows the principles.\nVerdict: {letter}", tokens)


def responses(tmp_path: Path, name: str, texts: list[str], model: str) -> Path:
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps({
        "item": f"q{i}", "query": f"POST: my story number {i}", "constitution": "1. Be brief.\n2. Be complete.",
        "response": text, "model": model}) + "\n" for i, text in enumerate(texts)))
    return path


def files_under(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob("*") if p.is_file()]


def test_reask_soft_preference_and_failures(tmp_path):
    candidate = responses(tmp_path, "cand", ["GOOD one.", "GOOD two GARBAGE-ONCE.", "plain three GARBAGE-ALWAYS."], "sami")
    baseline = responses(tmp_path, "base", ["meh one.", "meh two.", "meh three."], "base")
    with FakeOpenAI(smart) as server:
        judge = load_judge(judge_yaml(tmp_path, server.url))
        result = judge_files("tldr", candidate, baseline, judge, tmp_path / "out", cache=ContentCache(tmp_path / "c.sqlite"),
                             progress=False, log=lambda m: None)
    lines = {(v["item"], v["order"]): v for v in result.verdicts}
    assert len(lines) == 6
    for order in ("candidate_first", "baseline_first"):
        assert lines[("q0", order)]["winner"] == "candidate" and lines[("q0", order)]["attempts"] == 1
        assert lines[("q0", order)]["p_candidate"] == pytest.approx(0.8)
        assert lines[("q1", order)]["winner"] == "candidate" and lines[("q1", order)]["attempts"] == 2
        assert "rather not choose" in lines[("q1", order)]["raw_attempts"][0]
        failed = lines[("q2", order)]
        assert failed["winner"] is None and failed["attempts"] == 3 and failed["p_candidate"] is None
    # re-asks carry the garbage answer and a follow-up, not the same prompt again
    reasks = [b for b in server.bodies if len(b["messages"]) == 3]
    assert reasks and reasks[0]["messages"][1]["role"] == "assistant" and "Verdict: A" in reasks[0]["messages"][2]["content"]
    summary = result.summary
    assert summary["n"] == 2 and summary["n_parse_failures"] == 2 and summary["tie_rate"] == 0
    assert summary["win_rate"] == 1.0 and summary["parse_failure_exceeded"]
    assert summary["position_consistency"] == 1.0
    assert server.count == 2 * 1 + 2 * 2 + 2 * 3


def test_without_logprobs_the_parsed_verdict_is_kept(tmp_path):
    candidate = responses(tmp_path, "cand", ["GOOD one."], "sami")
    baseline = responses(tmp_path, "base", ["meh one."], "base")
    with FakeOpenAI(lambda body, i: completion(smart(body, i)["choices"][0]["message"]["content"])) as server:
        judge = load_judge(judge_yaml(tmp_path, server.url, name="sami-paper"))
        result = judge_files("tldr", candidate, baseline, judge, tmp_path / "out", progress=False, log=lambda m: None)
    (line,) = result.verdicts  # sami-paper: one order per item
    assert line["winner"] == "candidate" and line["p_candidate"] is None
    assert result.summary["protocol"] == "sami-paper" and result.summary["win_rate"] == 1.0


def test_api_key_never_written(tmp_path):
    candidate = responses(tmp_path, "cand", ["GOOD a.", "GOOD b."], "sami")
    baseline = responses(tmp_path, "base", ["x a.", "x b."], "base")
    cache_dir = tmp_path / "cache"
    with FakeOpenAI(smart) as server:
        judge = load_judge(judge_yaml(tmp_path, server.url))
        cache = ContentCache(cache_dir / "cache.sqlite")
        judge_files("tldr", candidate, baseline, judge, tmp_path / "out", cache=cache, progress=False, log=lambda m: None)
        cache.close()
    assert set(server.auth) == {f"Bearer {KEY}"}  # the key was used...
    written = files_under(tmp_path / "out", cache_dir)
    assert {p.name for p in written} >= {"verdicts.jsonl", "manifest.json", "summary.json", "cache.sqlite"}
    for path in written:  # ...and appears in no file written
        assert KEY.encode() not in path.read_bytes(), path
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["judge"]["config"]["runtime"]["api_key_env"] == "FAKE_JUDGE_KEY"
    assert manifest["judge_hash"] == judge.hash and manifest["counts"]["judged"] == 4


def test_cli_judge_caches_resumes_and_prints_stats(tmp_path, capsys):
    n = 5
    candidate = responses(tmp_path, "cand", [f"GOOD summary {i}." for i in range(n)], "sami-it3")
    baseline = responses(tmp_path, "base", [f"weak summary {i}." for i in range(n)], "base")
    state = {"answered": 0, "revoked_after": 4}

    def endpoint(body, index):  # first run: the key is revoked after 4 answers
        if state["revoked_after"] is not None and state["answered"] >= state["revoked_after"]:
            return error(401, "key revoked")
        state["answered"] += 1
        return smart(body, index)

    with FakeOpenAI(endpoint) as server:
        path = judge_yaml(tmp_path, server.url)
        args = ["judge", "--task", "tldr", "--candidate", str(candidate), "--baseline", str(baseline),
                "--judge", str(path), "--no-progress", "--judge-set", "runtime.concurrency=1"]
        assert main(args + ["--out", str(tmp_path / "out")]) == 2  # interrupted
        assert "401" in capsys.readouterr().err and state["answered"] == 4
        assert not (tmp_path / "out" / "verdicts.jsonl").exists()
        state["revoked_after"] = None
        assert main(args + ["--out", str(tmp_path / "out")]) == 0  # resumes
        assert state["answered"] == 2 * n  # only the calls the first run did not finish were asked
        output = capsys.readouterr().out
        assert "protocol robust" in output and "sami-it3" in output and "100.0%" in output
        lines = [json.loads(line) for line in (tmp_path / "out" / "verdicts.jsonl").read_text().splitlines()]
        assert len(lines) == 2 * n and all(line["winner"] == "candidate" for line in lines)
        assert main(args + ["--out", str(tmp_path / "out2"), "--format", "json"]) == 0  # a rerun is free
        assert state["answered"] == 2 * n
        summary = json.loads(capsys.readouterr().out)
        assert summary["n"] == n and summary["win_rate"] == 1.0
        manifest = json.loads((tmp_path / "out2" / "manifest.json").read_text())
        assert manifest["counts"]["cached"] == 2 * n and manifest["counts"]["judged"] == 0
    # harness stats reads the same file
    assert main(["stats", str(tmp_path / "out" / "verdicts.jsonl"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == n
