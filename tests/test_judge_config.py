"""Judges as data: loading, hashing and cache keys; the verdict parser; seeded orders and principle shuffles;
the response files the judge reads (harness format and the SAMI paper's released format)."""

from __future__ import annotations

import json
import math
import shutil
from collections import Counter
from pathlib import Path

import pytest

from harness import stats
from harness.core.cache import ContentCache
from harness.core.errors import ConfigError, HarnessError
from harness.judging import JUDGES_DIR, judges, list_judges, load_judge
from harness.judging.engine import JudgeRunner, verdict_line, winner_of
from harness.judging.parsing import parse_final_line, soft_preference
from harness.judging.prompting import orders_for, paper_order, principle_lines, shuffled_principles
from harness.judging.responses import Pair, load_responses, pair_responses
from harness.stats.verdicts import Verdict, group_items, parse_verdicts

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
PAPER = REFERENCE / "sami-responses" / "tldr"
ITERATION_3 = PAPER / "iteration-3-epoch-0.38-from-epoch-0.25-mistral-mistral-constitution-temperature-0.0.json"
BASE = PAPER / "base-mistral-mistral-constitution-temperature-0.0.json"


def copy_judge(tmp_path: Path, name: str = "robust") -> Path:
    folder = tmp_path / "judges"
    folder.mkdir(exist_ok=True)
    text = (JUDGES_DIR / name / "config.yaml").read_text().replace("prompt: prompt.txt", f"prompt: {name}.txt")
    (folder / f"{name}.yaml").write_text(text)
    shutil.copy(JUDGES_DIR / name / "prompt.txt", folder / f"{name}.txt")
    return folder / f"{name}.yaml"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


# --- judges as data ------------------------------------------------------------------------------------------


def test_shipped_judges_load_and_are_listed():
    names = [name for name, _ in list_judges()]
    assert {"sami-paper", "robust", "local"} <= set(names)
    assert load_judge().name == "robust"  # the default
    assert load_judge("sami-paper").protocol == "sami-paper"
    assert load_judge("robust").protocol == "robust" and load_judge("local").config.backend == "local"
    assert len({load_judge(n).hash for n in names}) == len(names)
    with pytest.raises(HarnessError, match="valid judges: .*robust"):
        load_judge("no-such-judge")
    assert "local" in judges


def test_hash_follows_the_content(tmp_path, monkeypatch):
    path = copy_judge(tmp_path)
    original = load_judge(path)
    assert original.hash == load_judge("robust").hash  # same content, other place: same hash
    edit(path, "concurrency: 16", "concurrency: 2")  # transport settings never change an answer
    assert load_judge(path).hash == original.hash
    assert load_judge(path, {"runtime.timeout_s": 5}).hash == original.hash
    edit(path.with_suffix(".txt"), "at most three sentences", "at most two sentences")
    templated = load_judge(path)
    assert templated.hash != original.hash
    assert load_judge(path, {"model": "gpt-4o-mini"}).hash not in (original.hash, templated.hash)
    assert load_judge(path, {"decoding.temperature": 0.7}).hash != templated.hash

    from harness.judging import parsing

    monkeypatch.setitem(parsing.PARSERS, "final-line", (2, parsing.parse_final_line))
    edit(path, "version: 1", "version: 2")
    assert load_judge(path).hash != templated.hash


class CountingBackend:
    """A stand-in judge backend: always prefers A, counts the calls it answers."""

    def __init__(self):
        self.calls = 0

    def identity(self):
        return {"backend": "counting"}

    def full_text(self, prompt, noun):
        return prompt

    def run(self, calls, noun, on_done):
        for index, _ in enumerate(calls):
            self.calls += 1
            on_done(index, {"choice": "A", "p_a": None, "attempts": 1, "raw": "Verdict: A"})

    def counts(self):
        return {}


def pairs(n: int = 3) -> list[Pair]:
    constitution = "1. Be brief.\n2. Be complete.\n3. Be kind."
    return [Pair(str(i), f"POST: story {i}", constitution, f"short {i}.", f"a longer summary {i}.") for i in range(n)]


def test_cache_hits_only_for_the_same_judge(tmp_path):
    path = copy_judge(tmp_path)
    cache = ContentCache(tmp_path / "cache.sqlite")

    def judged(judge, seed=0):
        backend = CountingBackend()
        runner = JudgeRunner(judge, cache, noun="summary", query_label="Forum post", seed=seed, backend=backend,
                             progress=False)
        runner.run(runner.build_calls(pairs()))
        return backend.calls

    assert judged(load_judge(path)) == 6  # 3 items x 2 orders
    assert judged(load_judge(path)) == 0  # identical judge: all from the cache
    assert judged(load_judge(path, {"runtime.concurrency": 1})) == 0
    assert judged(load_judge(path), seed=1) == 6  # another seed
    edit(path.with_suffix(".txt"), "Principles:", "Principles to apply:")
    assert judged(load_judge(path)) == 6  # changed template: misses
    assert judged(load_judge(path, {"model": "another-model"})) == 6


@pytest.mark.parametrize("old,new,field", [
    ("backend: openai", "backend: carrier-pigeon", "backend"),
    ("model: gpt-4o\n", "", "model"),
    ("max_reasks: 2", "max_reask: 2", "max_reask"),
    ("temperature: 0.0", "temperature: -1", "decoding.temperature"),
    ("name: final-line", "name: first-line", "parser.name"),
    ("version: 1", "version: 7", "parser.version"),
    ("prompt: robust.txt", "prompt: missing.txt", "prompt"),
])
def test_malformed_judge_files_name_the_file_and_field(tmp_path, old, new, field):
    path = copy_judge(tmp_path)
    edit(path, old, new)
    with pytest.raises(ConfigError) as caught:
        load_judge(path)
    assert caught.value.field == field and str(path) in caught.value.source


def test_bad_yaml_and_bad_templates_are_config_errors(tmp_path):
    path = copy_judge(tmp_path)
    edit(path, "protocol: robust", "protocol: [robust")
    with pytest.raises(ConfigError, match="line"):
        load_judge(path)
    path = copy_judge(tmp_path)
    edit(path.with_suffix(".txt"), "{principles}", "{principals}")
    with pytest.raises(ConfigError, match="principals"):
        load_judge(path)
    path.with_suffix(".txt").write_text("{response_a} only")
    with pytest.raises(ConfigError, match="response_b"):
        load_judge(path)
    local = copy_judge(tmp_path, "local")
    edit(local, "name: verdict-token-probs", "name: final-line")
    with pytest.raises(ConfigError, match="parser"):
        load_judge(local)


# --- verdict parsing -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,expected", [
    ("A", "A"), ("B", "B"), ("Verdict: A", "A"), ("Summary B is shorter.\nVerdict: B", "B"),
    ("Comparison: A covers more.\n\nFinal answer: (B)\n", "B"), ("**Verdict: A**", "A"), ("verdict: b.", "B"),
    ("Preferred summary: A", "A"), ("Winner - B", "B"), ("Both are fine.\nA", "A"), ("Summary A", "A"),
    ("", None), ("   \n", None), ("I cannot decide.", None), ("Verdict: tie", None), ("Tie", None),
    ("Verdict: A or B", None), ("A is better than B", None), ("Verdict: A\nThanks!", None), ("a", None),
    ("Verdict: C", None),
])
def test_final_line_parser(text, expected):
    assert parse_final_line(text) == expected


def test_soft_preference_reads_the_verdict_token():
    tokens = [("Verdict", -0.2, {}), (":", -0.1, {}), (" B", math.log(0.6), {" B": math.log(0.6), " A": math.log(0.3),
                                                                          "B": math.log(0.05)})]
    assert soft_preference(tokens, "B") == pytest.approx(0.3 / 0.95)
    assert soft_preference(tokens, "A") is None  # no token is the parsed letter
    assert soft_preference(None, "B") is None
    only = [(" A", math.log(0.9), {" A": math.log(0.9), " C": math.log(0.1)})]
    assert soft_preference(only, "A") == 1.0


def test_winners_map_positions_to_systems_and_never_invent_ties():
    assert winner_of("A", "candidate_first") == "candidate" and winner_of("A", "baseline_first") == "baseline"
    assert winner_of("B", "baseline_first") == "candidate" and winner_of(None, "candidate_first") is None
    judge = load_judge("robust")
    pair = pairs(1)[0]
    from harness.judging.engine import JudgeCall

    line = verdict_line(JudgeCall(pair, "baseline_first", "prompt"), {"choice": "A", "p_a": 0.25, "attempts": 1,
                                                                      "raw": "Verdict: A"}, judge, "sami", "base")
    assert line["winner"] == "baseline" and line["p_candidate"] == 0.75 and line["judge_hash"] == judge.hash
    assert (line["candidate_length"], line["baseline_length"]) == (2, 4)
    (verdict,) = parse_verdicts([line], "test")  # exactly the schema harness.stats.verdicts reads
    assert verdict.order == "baseline_first" and verdict.pair == ("sami", "base")


# --- orders and principles -----------------------------------------------------------------------------------


def test_sami_paper_order_is_seeded_balanced_and_matches_stats():
    items = [str(i) for i in range(2000)]
    orders = [orders_for(item, 0, "sami-paper") for item in items]
    assert all(len(o) == 1 for o in orders)
    share = Counter(o[0] for o in orders)["candidate_first"] / len(items)
    assert 0.46 < share < 0.54
    assert orders == [orders_for(item, 0, "sami-paper") for item in items]  # deterministic
    assert [o[0] for o in orders] != [orders_for(item, 1, "sami-paper")[0] for item in items]
    assert orders_for("7", 0, "robust") == ["candidate_first", "baseline_first"]
    # when both orders were judged, the stats pick the same call the judge would have made
    for item in items[:50]:
        record = group_items([Verdict(item, "candidate", "candidate_first"), Verdict(item, "baseline", "baseline_first")])[0]
        assert stats.paper_call(record, 0).order == paper_order(item, 0)


def test_principles_are_shuffled_per_item_and_seeded():
    constitution = "1. Be brief.\n2. Be complete.\n3. Be kind.\n4. Be exact."
    assert principle_lines(constitution) == ["Be brief.", "Be complete.", "Be kind.", "Be exact."]
    shown = {shuffled_principles(constitution, str(i), 0) for i in range(60)}
    assert len(shown) > 6
    assert shuffled_principles(constitution, "3", 0) == shuffled_principles(constitution, "3", 0)
    assert shuffled_principles(constitution, "3", 0, shuffle=False) == constitution
    for text in shown:
        assert sorted(principle_lines(text)) == sorted(principle_lines(constitution))
        assert [line.split(".")[0] for line in text.splitlines()] == ["1", "2", "3", "4"]


def test_both_orders_of_an_item_show_the_same_principle_order():
    runner = JudgeRunner(load_judge("robust"), None, noun="summary", query_label="Forum post", backend=CountingBackend(),
                         progress=False)
    first, second = runner.build_calls(pairs(1))
    assert (first.order, second.order) == ("candidate_first", "baseline_first")
    principles = [call.prompt.split("Forum post:")[0] for call in (first, second)]
    assert principles[0] == principles[1]
    assert first.prompt.index("short 0.") < first.prompt.index("a longer summary 0.")
    assert second.prompt.index("a longer summary 0.") < second.prompt.index("short 0.")


# --- response files ------------------------------------------------------------------------------------------


def write_responses(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_harness_responses_pair_by_id_and_check_queries(tmp_path):
    rows = [{"item": f"q{i}", "query": f"POST: post {i}", "constitution": "1. Be brief.\n2. Be complete.",
             "response": f"summary {i}", "model": "sami"} for i in range(4)]
    candidate = load_responses(write_responses(tmp_path / "c.jsonl", rows))
    assert candidate.system == "sami" and candidate.format == "responses.jsonl"
    base_rows = [dict(r, model="base", response="base " + r["response"]) for r in rows[1:]]
    base_rows[0]["constitution"] = "1. Be complete.\n2. Be brief."  # other order: same principles
    base_rows[1]["constitution"] = "1. Be long."  # other principles: reported
    pairing = pair_responses(candidate, load_responses(write_responses(tmp_path / "b.jsonl", base_rows)))
    assert [p.item for p in pairing.pairs] == ["q1", "q2", "q3"] and pairing.only_candidate == 1
    assert pairing.constitution_differs == 1 and "q2" in pairing.constitution_note
    assert pairing.pairs[1].constitution == rows[2]["constitution"]  # the candidate's principles are used
    base_rows[2]["query"] = "POST: something else"
    baseline = load_responses(write_responses(tmp_path / "b2.jsonl", base_rows))
    with pytest.raises(HarnessError, match="first: item 'q3'"):
        pair_responses(candidate, baseline)
    with pytest.raises(ConfigError, match="item"):
        load_responses(write_responses(tmp_path / "dup.jsonl", rows + rows[:1]))


@pytest.mark.skipif(not ITERATION_3.is_file(), reason="shared/reference (SAMI released responses) not present")
def test_sami_paper_released_responses_load_and_pair():
    candidate, baseline = load_responses(ITERATION_3), load_responses(BASE)
    assert candidate.format == "sami-paper-json" and len(candidate.rows) == 250
    assert candidate.system == "iteration-3-epoch-0.38-from-epoch-0.25-mistral-mistral"
    assert candidate.rows["0"].query.startswith("POST:") and candidate.rows["0"].response.startswith("The post")
    pairing = pair_responses(candidate, baseline, limit=40)
    assert len(pairing.pairs) == 40 and pairing.constitution_differs == 0
    assert len(principle_lines(pairing.pairs[0].constitution)) == 2
