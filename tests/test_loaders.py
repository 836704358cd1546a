"""Every query loader against the real files in ../shared/reference (skipped where absent) and the demo sets."""

from __future__ import annotations

import gzip
import json
from collections import Counter

import pytest

from harness.config import DataConfig
from harness.core.errors import ConfigError, HarnessError
from harness.tasks.loaders import (fingerprint, first_human_turn, format_post, read_dialogue_file, read_tldr_file)
from harness.tasks import get_task, tasks

from helpers import reference


# --- Reddit TL;DR: the Stiennon et al. CSV ------------------------------------------------------------------

@pytest.fixture(scope="module")
def oai1b():
    return read_tldr_file(reference("tldr/oai1b.csv"))


def test_oai1b_csv_all_posts_with_tldr_stripped(oai1b):
    assert len(oai1b) == 1945
    assert len({q.id for q in oai1b}) == 1945
    for query in oai1b:
        assert query.text.startswith("SUBREDDIT: r/"), query.text[:40]
        assert "\n\nTITLE: " in query.text and "\n\nPOST: " in query.text
        assert not query.text.rstrip().endswith("TL;DR:")
        assert query.text == query.text.strip()


def test_oai1b_first_post_matches_the_raw_csv(oai1b):
    import csv

    with open(reference("tldr/oai1b.csv"), newline="", encoding="utf-8") as handle:
        first = next(csv.DictReader(handle))["query"]
    assert first.rstrip().endswith("TL;DR:")
    assert oai1b[0].text == first.rstrip()[: -len("TL;DR:")].rstrip()


def test_oai1b_split_first_250_evaluate(oai1b):
    task = get_task("tldr")
    data = DataConfig(source=str(reference("tldr/oai1b.csv")), train_limit=None, eval_limit=None)
    evaluation, training = task.load_queries(data, "eval"), task.load_queries(data, "train")
    assert [q.id for q in evaluation] == [q.id for q in oai1b[:250]]
    assert [q.id for q in training] == [q.id for q in oai1b[250:]]
    assert len(training) == 1945 - 250
    assert not {q.id for q in evaluation} & {q.id for q in training}
    # a smaller evaluation (the CPU default) takes the first posts; the training pool still starts after 250
    small = DataConfig(source=data.source, train_limit=16, eval_limit=16)
    assert [q.id for q in task.load_queries(small, "eval")] == [q.id for q in oai1b[:16]]
    assert [q.id for q in task.load_queries(small, "train")] == [q.id for q in oai1b[250:266]]


def test_small_local_file_splits_at_eval_limit(tmp_path):
    path = tmp_path / "posts.jsonl"
    path.write_text("".join(json.dumps({"id": f"p{i}", "post": f"Post number {i}."}) + "\n" for i in range(40)))
    task = get_task("tldr")
    assert task.load_queries(DataConfig(source=str(path), eval_limit=None), "train") == []
    data = DataConfig(source=str(path), train_limit=None, eval_limit=10)
    assert [q.id for q in task.load_queries(data, "eval")] == [f"p{i}" for i in range(10)]
    assert [q.id for q in task.load_queries(data, "train")] == [f"p{i}" for i in range(10, 40)]


# --- the SAMI paper's released responses --------------------------------------------------------------------

def test_sami_responses_json_has_250_posts():
    folder = reference("sami-responses/tldr")
    files = sorted(folder.glob("*.json"))
    assert len(files) >= 1
    queries = read_tldr_file(files[0])
    assert len(queries) == 250
    assert all(q.text.startswith("POST: ") for q in queries)
    assert not any(q.text.endswith("TL;DR:") for q in queries)
    raw = json.loads(files[0].read_text(encoding="utf-8"))
    assert queries[0].text == raw["question"]["0"].strip()
    # every released model was evaluated on the same 250 posts
    assert {fingerprint([q.__class__("", q.text) for q in read_tldr_file(f)]) for f in files} == \
        {fingerprint([q.__class__("", q.text) for q in queries])}
    # as a --data source it is all evaluation
    data = DataConfig(source=str(files[0]), train_limit=None, eval_limit=None)
    assert len(get_task("tldr").load_queries(data, "eval")) == 250
    assert get_task("tldr").load_queries(data, "train") == []


# --- HH-RLHF dialogue ---------------------------------------------------------------------------------------

def test_hh_rlhf_harmless_test_first_human_turn_only():
    path = reference("hh-rlhf/harmless-base-test.jsonl.gz")
    queries = read_dialogue_file(path)
    assert len(queries) == 2312
    assert {q.subset for q in queries} == {"harmless-base"}
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    for query, row in zip(queries, rows):
        assert "Human:" not in query.text and "Assistant:" not in query.text
        assert query.text and query.text == query.text.strip()
        transcript = row["chosen"]
        assert transcript.split("\n\nAssistant:")[0].replace("\n\nHuman:", "", 1).strip() == query.text
    multi_turn = sum(row["chosen"].count("\n\nHuman:") > 1 for row in rows)
    assert multi_turn > 100  # the file is multi-turn; only the first turn is kept
    task = get_task("dialogue")
    data = DataConfig(source=str(path), train_limit=None, eval_limit=None)
    assert [q.id for q in task.load_queries(data, "eval")] == [q.id for q in queries[:250]]
    assert [q.id for q in task.load_queries(data, "train")] == [q.id for q in queries[250:]]
    assert task.load_queries(DataConfig(source=str(path), subsets=["helpful-base"]), "eval") == []


def test_first_human_turn():
    transcript = "\n\nHuman: How do I bake bread?\n\nAssistant: Mix flour.\n\nHuman: And then?\n\nAssistant: Bake."
    assert first_human_turn(transcript) == "How do I bake bread?"
    assert first_human_turn("\n\nHuman: single line, no answer") == "single line, no answer"
    with pytest.raises(ValueError):
        first_human_turn("Assistant: hello")


# --- demo sets ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("task_name", ["tldr", "dialogue"])
def test_demo_sets_72_each_split_48_24(task_name):
    task = get_task(task_name)
    queries = task.read_demo()
    assert len(queries) == 72
    assert len({q.id for q in queries}) == 72
    assert Counter(q.split for q in queries) == {"train": 48, "eval": 24}
    assert all(len(q.text) > 20 for q in queries)
    full = DataConfig(train_limit=None, eval_limit=None)
    train, evaluation = task.load_queries(full, "train"), task.load_queries(full, "eval")
    assert (len(train), len(evaluation)) == (48, 24)
    assert task.load_queries(DataConfig(eval_limit=8), "eval") == evaluation[:8]
    assert task.load_queries(DataConfig(train_limit=5), "train") == train[:5]


def test_demo_dialogue_spans_both_subsets():
    queries = get_task("dialogue").read_demo()
    counts = Counter((q.subset, q.split) for q in queries)
    assert set(counts) == {("helpful-base", "train"), ("helpful-base", "eval"), ("harmless-base", "train"),
                           ("harmless-base", "eval")}
    evaluation = get_task("dialogue").load_queries(DataConfig(subsets=["harmless-base"], eval_limit=None), "eval")
    assert evaluation and {q.subset for q in evaluation} == {"harmless-base"}


def test_demo_tldr_posts_use_the_stiennon_layout():
    for query in get_task("tldr").read_demo():
        assert query.text.startswith("SUBREDDIT: r/") and "\n\nPOST: " in query.text


def test_heldout_task_reads_tldr_data():
    assert [q.id for q in get_task("heldout").read_demo()] == [q.id for q in get_task("tldr").read_demo()]


def test_task_registry_names():
    assert {"tldr", "dialogue", "heldout"} <= set(tasks.names())
    with pytest.raises(HarnessError, match="valid tasks: dialogue, heldout, tldr"):
        get_task("summaries")


# --- formats and errors of local files ---------------------------------------------------------------------

def test_tldr_jsonl_formats(tmp_path):
    path = tmp_path / "posts.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"id": "a", "subreddit": "r/cats", "title": "T", "post": " body "},
        {"query": "SUBREDDIT: r/x\n\nPOST: hi\n\nTL;DR:"},
        {"post": "no title"},
    ]) + "\n")
    queries = read_tldr_file(path)
    assert [q.id for q in queries] == ["a", "posts:1", "posts:2"]
    assert queries[0].text == "SUBREDDIT: r/cats\n\nTITLE: T\n\nPOST: body"
    assert queries[1].text == "SUBREDDIT: r/x\n\nPOST: hi"
    assert queries[2].text == format_post(None, None, "no title") == "POST: no title"


def test_csv_without_query_column(tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text("post,summary\nhello,hi\n")
    with pytest.raises(ConfigError, match="query"):
        read_tldr_file(path)


def test_json_that_is_not_the_responses_format(tmp_path):
    path = tmp_path / "posts.json"
    path.write_text(json.dumps({"posts": ["a"]}))
    with pytest.raises(ConfigError, match="question"):
        read_tldr_file(path)


def test_dialogue_official_format_with_subset_in_name(tmp_path):
    path = tmp_path / "helpful-base-train.jsonl"
    path.write_text(json.dumps({"chosen": "\n\nHuman: Hi?\n\nAssistant: Hello.", "rejected": "x"}) + "\n"
                    + json.dumps({"chosen": "no human turn"}) + "\n")
    with pytest.raises(ConfigError, match="line 2.chosen"):
        read_dialogue_file(path)
    path.write_text(json.dumps({"chosen": "\n\nHuman: Hi?\n\nAssistant: Hello.", "rejected": "x"}) + "\n")
    (query,) = read_dialogue_file(path)
    assert (query.text, query.subset) == ("Hi?", "helpful-base")


def test_fingerprint_changes_with_content():
    queries = get_task("tldr").read_demo()[:3]
    assert fingerprint(queries) == fingerprint(list(queries))
    changed = [queries[0].__class__(queries[0].id, queries[0].text + "!"), *queries[1:]]
    assert fingerprint(changed) != fingerprint(queries)


def test_subset_selection_comes_before_the_limit():
    """`data.subsets` picks queries first and the limit counts what it kept: 4 harmless queries, not 4 mixed
    queries thinned to the harmless ones among them."""
    task = get_task("dialogue")
    harmless = [q for q in task.load_queries(DataConfig(eval_limit=None), "eval") if q.subset == "harmless-base"]
    limited = task.load_queries(DataConfig(eval_limit=4, subsets=["harmless-base"]), "eval")
    assert limited == harmless[:4]


def test_hub_dialogue_evaluation_takes_the_first_queries_of_each_subset(monkeypatch):
    """Paper: the first 250 test queries of each HH-RLHF subset; eval_limit counts per subset for the hub."""
    from harness.tasks.loaders import Query
    from harness.tasks.dialogue import task as dialogue

    rows = [Query(f"{subset}:{i}", f"request {i}", subset=subset)
            for subset in ("helpful-base", "harmless-base") for i in range(5)]
    monkeypatch.setattr(dialogue, "read_dialogue_hub", lambda subsets, split: rows if split == "test" else [])
    chosen = get_task("dialogue").load_queries(DataConfig(source="hub", eval_limit=2), "eval")
    assert [q.id for q in chosen] == ["helpful-base:0", "helpful-base:1", "harmless-base:0", "harmless-base:1"]
