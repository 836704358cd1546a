"""Verdict files: what is accepted, what is refused (with the line and field named), how items group,
and the loader of the public GPT-4-judged TL;DR set."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from harness.core.errors import ConfigError
from harness.judging.reference_verdicts import read_oai1b_judged
from harness.stats.verdicts import group_items, load_verdicts, parse_verdicts, split_by_pair

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
OAI1B_JUDGED = REFERENCE / "tldr" / "oai1b_judged.csv"


def write_lines(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def test_minimal_lines_are_accepted(tmp_path):
    path = write_lines(tmp_path / "v.jsonl", [{"item": "a", "winner": "candidate"}, {"item": 2, "winner": None}])
    verdicts = load_verdicts(path)
    assert [(v.item, v.winner, v.order, v.candidate_length) for v in verdicts] == [
        ("a", "candidate", None, None), (2, None, None, None)]


def test_full_line_keeps_every_field_and_ignores_extras(tmp_path):
    row = {"item": "q1", "order": "baseline_first", "winner": "tie", "p_candidate": 0.4, "candidate_length": 12,
           "baseline_length": 0, "candidate": "sami", "baseline": "base", "judge_hash": "abc", "raw": "A"}
    (verdict,) = load_verdicts(write_lines(tmp_path / "v.jsonl", [row]))
    assert (verdict.order, verdict.winner, verdict.p_candidate) == ("baseline_first", "tie", 0.4)
    assert (verdict.candidate_length, verdict.baseline_length, verdict.pair) == (12, 0, ("sami", "base"))


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"item": "b", "winner": "cand"}, "winner"),
        ({"item": "b", "winner": "candidate", "order": "left"}, "order"),
        ({"item": "b", "winner": "candidate", "candidate_length": -3}, "candidate_length"),
        ({"item": "b", "winner": "candidate", "baseline_length": 2.5}, "baseline_length"),
        ({"item": "b", "winner": "candidate", "p_candidate": 1.5}, "p_candidate"),
        ({"item": "b", "winner": "candidate", "candidate": ""}, "candidate"),
        ({"winner": "candidate"}, "item"),
        ({"item": True, "winner": "candidate"}, "item"),
        ({"item": "b"}, "winner"),
    ],
)
def test_malformed_line_names_file_line_and_field(tmp_path, bad, field):
    path = write_lines(tmp_path / "v.jsonl", [{"item": "a", "winner": "candidate"}, bad])
    with pytest.raises(ConfigError) as caught:
        load_verdicts(path)
    assert caught.value.field == field
    assert str(path) in str(caught.value) and "line 2" in str(caught.value)


def test_line_numbers_count_blank_lines(tmp_path):
    path = write_lines(tmp_path / "v.jsonl", [{"item": "a", "winner": "tie"}, "", {"item": "b", "winner": "left"}])
    with pytest.raises(ConfigError, match="line 3"):
        load_verdicts(path)


def test_invalid_json_names_the_line(tmp_path):
    path = write_lines(tmp_path / "v.jsonl", [{"item": "a", "winner": "tie"}, "{not json"])
    with pytest.raises(ConfigError, match="line 2"):
        load_verdicts(path)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no such verdict file"):
        load_verdicts(tmp_path / "absent.jsonl")


def test_two_orders_group_into_one_item():
    verdicts = parse_verdicts([
        {"item": "a", "order": "candidate_first", "winner": "candidate", "candidate_length": 5, "baseline_length": 7},
        {"item": "b", "order": "candidate_first", "winner": "baseline"},
        {"item": "a", "order": "baseline_first", "winner": "tie"},
    ], "test")
    records = group_items(verdicts)
    assert [r.item for r in records] == ["a", "b"]
    assert [c.winner for c in records[0].calls] == ["candidate", "tie"]
    assert (records[0].candidate_length, records[0].baseline_length) == (5, 7)


@pytest.mark.parametrize("second_order", ["candidate_first", None])
def test_repeated_item_order_is_refused_with_its_line(second_order):
    rows = [{"item": "a", "order": "candidate_first", "winner": "candidate"},
            {"item": "a", "order": second_order, "winner": "baseline"}]
    with pytest.raises(ConfigError, match="line 2") as caught:
        parse_verdicts(rows, "test")
    assert caught.value.field == "order" and "'a'" in str(caught.value)


def test_same_item_in_different_pairs_is_not_a_repeat():
    verdicts = parse_verdicts([
        {"item": "a", "winner": "candidate", "candidate": "x", "baseline": "base"},
        {"item": "a", "winner": "baseline", "candidate": "y", "baseline": "base"},
    ], "test")
    assert list(split_by_pair(verdicts)) == [("x", "base"), ("y", "base")]


def test_integer_and_string_ids_are_different_items():
    records = group_items(parse_verdicts([{"item": 1, "winner": "tie"}, {"item": "1", "winner": "tie"}], "test"))
    assert len(records) == 2


@pytest.mark.skipif(not OAI1B_JUDGED.is_file(), reason=f"reference data absent: {OAI1B_JUDGED} (../shared/reference)")
def test_oai1b_judged_loader_gives_the_1000_judged_rows():
    rows = read_oai1b_judged(OAI1B_JUDGED)
    verdicts = parse_verdicts(rows, str(OAI1B_JUDGED))
    with open(OAI1B_JUDGED, encoding="utf-8", newline="") as handle:
        table = list(csv.DictReader(handle))
    judged = [(i, r) for i, r in enumerate(table) if r["preferred"]]
    assert len(verdicts) == len(judged) == 1000
    assert [v.item for v in verdicts] == [i for i, _ in judged]
    assert Counter(v.winner for v in verdicts) == {"candidate": 640, "baseline": 360}
    # shuffled_index 0 = policy summary shown first (see harness/reference_verdicts.py for the evidence)
    assert Counter(v.order for v in verdicts) == {"candidate_first": 518, "baseline_first": 482}
    first_row = table[0]
    assert verdicts[0].order == "baseline_first" and first_row["shuffled_index"] == "1"
    assert verdicts[0].candidate_length == len(first_row["postprocessed_response"].split())
    assert {v.pair for v in verdicts} == {("oai1b", "human-reference")}
