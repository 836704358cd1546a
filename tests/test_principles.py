"""Principle files (ours and the paper's formats) and the constitution samplers of SPEC section 2."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from harness.core.errors import ConfigError
from harness.flow.generate import sample_constitutions
from harness.tasks.loaders import Query
from harness.tasks.principles import (ConstitutionSampler, PrincipleSet, available_principle_files,
                                default_principles_path, load_principles)

from helpers import reference

DRAWS = 3000


def tldr() -> PrincipleSet:
    """The paper's TL;DR pair (concise, comprehensive), shipped beside the task's verifiable default."""
    return load_principles(default_principles_path("tldr").parent / "concise-comprehensive.yaml")


def dialogue() -> PrincipleSet:
    return load_principles(default_principles_path("dialogue"))


def heldout() -> PrincipleSet:
    return load_principles(default_principles_path("heldout"))


def negated(constitution) -> frozenset[str]:
    return frozenset(p.name for p, positive in constitution.entries if not positive)


# --- our principle files ------------------------------------------------------------------------------------

def test_shipped_files_load_with_definitions_and_antitheses():
    files = {task: load_principles(path) for task, path in available_principle_files().items()}
    assert {"tldr", "dialogue", "heldout"} <= set(files)
    for stem, principles in files.items():
        assert principles.task == stem
        assert principles.writer.model
        for principle in principles.principles:
            assert principle.definition.strip() and principle.antithesis.strip()
            assert principle.definition != principle.antithesis


def test_shipped_schemes():
    assert tldr().sampling.scheme == "contrastive" and tldr().sampling.negate == [[0], [1], [0, 1]]
    assert [p.name for p in tldr().principles] == ["concise", "comprehensive"]
    assert dialogue().sampling.scheme == "subset"
    assert {p.subset for p in dialogue().principles} == {"helpful-base", "harmless-base"}
    split = heldout().split
    assert heldout().sampling.scheme == "diverse" and len(heldout().principles) == 20
    assert (len(split.train), len(split.heldout)) == (15, 5)


def test_tldr_default_principles_are_verifiable_and_the_verifier_judges_them():
    from harness.config import RunConfig
    from harness.flow.judge import with_default_judge

    default = load_principles(default_principles_path("tldr"))
    assert default.principles and all(p.checkable for p in default.principles)
    assert with_default_judge(RunConfig(task="tldr")).eval.judge == "verifier"
    assert with_default_judge(RunConfig(task="dialogue")).eval.judge == "local"  # paper-style, not checkable
    verifiable = load_principles(default_principles_path("heldout").parent / "verifiable.yaml")
    assert verifiable.split.heldout and all(p.checkable for p in verifiable.principles)


# --- the paper's formats ------------------------------------------------------------------------------------

@pytest.mark.parametrize("writer", ["mistral", "opus"])
def test_paper_constitution_folders(writer):
    folder = reference(f"sami-constitutions/{writer}")
    principles = load_principles(folder)
    assert [p.name for p in principles.principles] == ["concise", "comprehensive"]
    concise, comprehensive = principles.principles
    if writer == "mistral":
        assert concise.definition == "Summaries should be brief and to the point, avoiding unnecessary details."
        assert concise.antithesis == "Summaries should be lengthy and include unnecessary details."
    for principle in principles.principles:
        assert principle.definition.startswith("Summaries should") and principle.antithesis.startswith("Summaries")
        assert principle.definition != principle.antithesis
        assert not principle.definition[0].isdigit() and principle.definition == principle.definition.strip()
    assert principles.sampling.scheme == "contrastive"
    assert sorted(principles.sampling.negate) == [[0], [0, 1], [1]]


@pytest.mark.parametrize("writer", ["mistral", "opus"])
def test_paper_constitutions_are_reproduced_by_our_sampler(writer):
    """Every (positive, negative) pair in the paper's files is one our contrastive sampler can draw."""
    import json

    folder = reference(f"sami-constitutions/{writer}")
    sampler = ConstitutionSampler(load_principles(folder))
    drawn = set()
    for seed in range(300):
        plus, minus = sampler.sample(random.Random(seed))
        drawn.add((plus.text, minus.text))
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        pair = tuple("\n".join(line.strip() for line in data[side].strip().split("\n")) for side in ("positive", "negative"))
        assert pair in drawn, path.name


def test_paper_diverse_principles_split_in_file_order():
    import json

    path = reference("sami-constitutions/diverse.json")
    principles = load_principles(path)
    assert len(principles.principles) == 20
    assert principles.sampling.scheme == "diverse"
    names = [p.name for p in principles.principles]
    assert principles.split.train == names[:15]
    assert principles.split.heldout == ["satirical", "philosophical", "motivational", "analytical", "sarcastic"]
    raw = json.loads(path.read_text())
    assert [p.definition for p in principles.principles] == [v["definition"] for v in raw.values()]
    assert [p.antithesis for p in principles.principles] == [v["antithesis"] for v in raw.values()]
    assert "emoji-based" in raw and "emoji-based" in names and "shakespearean" in names  # names kept, lower-cased


def test_paper_folder_with_broken_file(tmp_path):
    (tmp_path / "0.json").write_text('{"positive": "1. a", "negative": "1. b"}')
    with pytest.raises(ConfigError, match="0.json"):
        load_principles(tmp_path)
    (tmp_path / "0.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_principles(tmp_path)


# --- contrastive scheme (TL;DR) -----------------------------------------------------------------------------

def test_contrastive_c_minus_first_second_both_uniform():
    sampler = ConstitutionSampler(tldr())
    counts = Counter()
    for seed in range(DRAWS):
        plus, minus = sampler.sample(random.Random(seed))
        assert all(positive for _, positive in plus.entries)  # c+ is all positive
        counts[negated(minus)] += 1
    assert set(counts) == {frozenset({"concise"}), frozenset({"comprehensive"}), frozenset({"concise", "comprehensive"})}
    expected = DRAWS / 3
    chi_square = sum((count - expected) ** 2 / expected for count in counts.values())
    assert chi_square < 13.8  # chi-square, 2 degrees of freedom, p = 0.001


def test_shuffled_order_both_orders_and_same_within_a_pair():
    sampler = ConstitutionSampler(tldr())
    orders = Counter()
    for seed in range(400):
        plus, minus = sampler.sample(random.Random(seed))
        order = tuple(p.name for p, _ in plus.entries)
        assert tuple(p.name for p, _ in minus.entries) == order  # same order within a query's pair
        orders[order] += 1
    assert set(orders) == {("concise", "comprehensive"), ("comprehensive", "concise")}
    assert 120 < orders[("concise", "comprehensive")] < 280


def test_constitution_text_is_numbered_and_uses_the_sign():
    principles = tldr()
    plus, minus = ConstitutionSampler(principles).sample(random.Random(1))
    lines = minus.text.split("\n")
    assert [line.split(". ", 1)[0] for line in lines] == ["1", "2"]
    for line, (principle, positive) in zip(lines, minus.entries):
        assert line.split(". ", 1)[1] == (principle.definition if positive else principle.antithesis)
    assert plus.identifiers[0].startswith("pos ") and minus.to_json()["text"] == minus.text


def test_seeded_draws_are_reproducible():
    sampler = ConstitutionSampler(heldout(), 4)
    queries = [Query(f"q{i}", "text") for i in range(20)]
    first = sample_constitutions(sampler, queries, seed=42, tag="train-1")
    again = sample_constitutions(sampler, queries, seed=42, tag="train-1")
    assert [[c.text for c in g] for g in first] == [[c.text for c in g] for g in again]
    other = sample_constitutions(sampler, queries, seed=43, tag="train-1")
    assert [[c.text for c in g] for g in first] != [[c.text for c in g] for g in other]
    # a query's draw does not depend on the other queries in the list
    alone = sample_constitutions(sampler, queries[5:6], seed=42, tag="train-1")
    assert [c.text for c in alone[0]] == [c.text for c in first[5]]


# --- subset scheme (dialogue) -------------------------------------------------------------------------------

@pytest.mark.parametrize("subset, principle", [("helpful-base", "helpful"), ("harmless-base", "harmless")])
def test_subset_scheme_negates_the_query_subset_principle(subset, principle):
    sampler = ConstitutionSampler(dialogue())
    for seed in range(200):
        plus, minus = sampler.sample(random.Random(seed), subset)
        assert all(positive for _, positive in plus.entries)
        assert negated(minus) == {principle}


def test_subset_scheme_unknown_subset():
    with pytest.raises(ConfigError, match="helpful-online"):
        ConstitutionSampler(dialogue()).sample(random.Random(0), "helpful-online")


# --- diverse scheme (held-out principles) -------------------------------------------------------------------

@pytest.mark.parametrize("source", ["ours", "paper"])
def test_diverse_complement_and_no_heldout_leak(source):
    principles = heldout() if source == "ours" else load_principles(reference("sami-constitutions/diverse.json"))
    train, held = set(principles.split.train), set(principles.split.heldout)
    sampler = ConstitutionSampler(principles)
    seen, first_signs = Counter(), Counter()
    for seed in range(DRAWS):
        first, second = sampler.sample(random.Random(seed))
        names = [p.name for p, _ in first.entries]
        assert len(names) == 2 and len(set(names)) == 2
        assert [p.name for p, _ in second.entries] == names
        assert [not s for _, s in first.entries] == [s for _, s in second.entries]  # complement in both slots
        assert not set(names) & held  # held-out principles never appear in training samples
        seen.update(names)
        first_signs[tuple(s for _, s in first.entries)] += 1
    assert set(seen) == train  # all 15 training principles do appear
    assert len(first_signs) == 4 and min(first_signs.values()) > DRAWS / 4 * 0.8  # a fair coin per slot


def test_diverse_evaluation_constitutions():
    principles = heldout()
    sampler = ConstitutionSampler(principles)
    train, held = set(principles.split.train), set(principles.split.heldout)
    seen_held, seen_train = set(), set()
    for seed in range(500):
        on_held = sampler.evaluation(random.Random(seed), heldout=True)
        on_train = sampler.evaluation(random.Random(seed), heldout=False)
        assert all(positive for _, positive in on_held.entries + on_train.entries)
        assert {p.name for p, _ in on_held.entries} <= held
        assert {p.name for p, _ in on_train.entries} <= train
        assert len(on_held.entries) == len(on_train.entries) == 2
        seen_held |= {p.name for p, _ in on_held.entries}
        seen_train |= {p.name for p, _ in on_train.entries}
    assert seen_held == held and seen_train == train


def test_evaluation_constitution_is_all_positive_for_tldr_and_dialogue():
    for principles in (tldr(), dialogue()):
        constitution = ConstitutionSampler(principles).evaluation(random.Random(0))
        assert [p.name for p, _ in constitution.entries] == [p.name for p in principles.principles]
        assert all(positive for _, positive in constitution.entries)


# --- C > 2 constitutions ------------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["tldr", "heldout", "dialogue"])
def test_four_constitutions_are_four_distinct_sign_patterns(which):
    principles = {"tldr": tldr, "heldout": heldout, "dialogue": dialogue}[which]()
    sampler = ConstitutionSampler(principles, 4)
    for seed in range(100):
        group = sampler.sample(random.Random(seed), "helpful-base" if which == "dialogue" else None)
        assert len(group) == 4
        names = [tuple(p.name for p, _ in c.entries) for c in group]
        assert len(set(names)) == 1  # same principles, same order
        assert len({tuple(s for _, s in c.entries) for c in group}) == 4
        assert len({c.text for c in group}) == 4
        if which != "heldout":
            assert all(s for _, s in group[0].entries)  # c1 is still c+


def test_too_many_constitutions_for_the_sign_patterns():
    with pytest.raises(ConfigError, match="constitutions_per_query"):
        ConstitutionSampler(tldr(), 5).sample(random.Random(0))


# --- validation of our YAML format --------------------------------------------------------------------------

def _set(**changes) -> dict:
    data = tldr().model_dump(mode="json", exclude_none=True)
    data.update(changes)
    return data


@pytest.mark.parametrize("changes, message", [
    ({"sampling": {"scheme": "contrastive"}}, "sampling.negate"),
    ({"sampling": {"scheme": "contrastive", "negate": [[]]}}, "must hold indices"),
    ({"sampling": {"scheme": "subset"}}, "subset"),
    ({"sampling": {"scheme": "diverse"}}, "split"),
    ({"sampling": {"scheme": "random"}}, "pattern"),
    ({"principles": []}, "at least 1"),
])
def test_principle_set_validation(changes, message):
    with pytest.raises(ValueError, match=message):
        PrincipleSet.model_validate(_set(**changes))


def test_duplicate_names_and_bad_split():
    data = _set()
    data["principles"] = [data["principles"][0], data["principles"][0]]
    with pytest.raises(ValueError, match="unique"):
        PrincipleSet.model_validate(data)
    data = heldout().model_dump(mode="json", exclude_none=True)
    data["split"]["heldout"] = data["split"]["heldout"][:-1]
    with pytest.raises(ValueError, match="partition"):
        PrincipleSet.model_validate(data)


def test_yaml_errors_name_the_file(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("task: tldr\ndescription: x\nwriter: {model: m}\nprinciples:\n  - name: Bad Name\n"
                    "    definition: Be brief.\n    antithesis: Be long.\nsampling: {scheme: contrastive, negate: [[0]]}\n")
    with pytest.raises(ConfigError) as info:
        load_principles(path)
    assert info.value.source == str(path) and info.value.field == "principles.0.name"


# --- the principle writer (`harness principles write`) ------------------------------------------------------

VALID = """ concise
DEFINITION: Summaries should be brief and keep only the essential facts.
ANTITHESIS: Summaries should be long and full of unnecessary detail.

NAME: comprehensive
DEFINITION: Summaries should cover every important point of the post.
ANTITHESIS: Summaries should leave out important points of the post.
"""
MALFORMED = " Here are two great principles for you!\n1. Be brief\n2. Be complete"


def writer_backend(answers, **generation):
    from harness.config import GenerationConfig, ModelConfig

    from helpers import FakeBackend

    return FakeBackend(ModelConfig(name="writer-llm"), GenerationConfig(max_new_tokens=400, **generation),
                       answers=answers)


def test_writer_prompt_asks_the_paper_question_in_a_strict_format():
    from harness.tasks.principle_writer import request_for_task, writer_prompt

    prompt = writer_prompt(request_for_task("tldr"))
    assert prompt.user.startswith("Write two principles for the following task, with definitions, and their antitheses")
    assert "Reddit post" in prompt.user
    for key in ("NAME:", "DEFINITION:", "ANTITHESIS:"):
        assert key in prompt.user
    assert prompt.response_prefix == "NAME:"
    dialogue_prompt = writer_prompt(request_for_task("dialogue")).user
    assert "Principle 1 must be about being helpful" in dialogue_prompt
    assert "Principle 2 must be about being harmless" in dialogue_prompt


def test_parse_tolerates_markdown_and_continuation_lines():
    from harness.tasks.principle_writer import parse_principles

    text = ("**NAME:** Concise\n**DEFINITION:** Summaries should be short\nand to the point.\n"
            "**ANTITHESIS:** Summaries should ramble on.\n\n- NAME: Fully Comprehensive\n"
            "- DEFINITION: Summaries should include every key detail.\n- ANTITHESIS: Summaries should skip key details.\n"
            "\nNAME: extra\nDEFINITION: ignored third block")
    first, second = parse_principles(text, 2)
    assert (first.name, first.definition) == ("concise", "Summaries should be short and to the point.")
    assert first.antithesis == "Summaries should ramble on."
    assert second.name == "fully_comprehensive"
    (only,) = parse_principles("NAME:" + VALID.split("\n\n")[0] + "\n\nI hope these principles help!", 1)
    assert only.antithesis == "Summaries should be long and full of unnecessary detail."  # chatter not appended


@pytest.mark.parametrize("text, problem", [
    ("", "found 0"),
    ("NAME: a\nDEFINITION: Summaries should be brief.\n", "no ANTITHESIS"),
    ("DEFINITION: Summaries should be brief.\n", "before any 'NAME:'"),
    ("NAME: a\nDEFINITION: Summaries should be brief.\nANTITHESIS: Summaries should be brief.\n"
     "NAME: b\nDEFINITION: Summaries should be long.\nANTITHESIS: Summaries should be short.", "repeats"),
    ("NAME: a\nDEFINITION: Summaries should be brief.\nANTITHESIS: Summaries should be long.\n"
     "NAME: a\nDEFINITION: Summaries should be whole.\nANTITHESIS: Summaries should be partial.", "differ"),
    ("NAME: a\nDEFINITION: short\nANTITHESIS: Summaries should be long.\n"
     "NAME: b\nDEFINITION: Summaries should be whole.\nANTITHESIS: Summaries should be partial.", "full sentence"),
    ("NAME: !!!\nDEFINITION: Summaries should be brief.\nANTITHESIS: Summaries should be long.\n"
     "NAME: b\nDEFINITION: Summaries should be whole.\nANTITHESIS: Summaries should be partial.", "unusable name"),
])
def test_parse_rejects_malformed_answers(text, problem):
    from harness.tasks.principle_writer import MalformedOutput, parse_principles

    with pytest.raises(MalformedOutput, match=problem):
        parse_principles(text, 2)


def test_writer_succeeds_on_third_attempt_with_new_seeds_and_sampling(tmp_path):
    from harness.core.cache import ContentCache
    from harness.tasks.principle_writer import dump_principles, request_for_task, write_principles

    backend = writer_backend([MALFORMED, MALFORMED, VALID])
    temperatures, seeds = [], []
    original = backend._generate

    def spy(prompts, rendered, seeds_, stop):
        temperatures.append(backend.generation_config.temperature)
        seeds.extend(seeds_)
        return original(prompts, rendered, seeds_, stop)

    backend._generate = spy
    log = []
    principles = write_principles(backend, request_for_task("tldr"), max_attempts=3,
                                  cache=ContentCache(tmp_path / "c.sqlite"), log=log.append)
    assert backend.model_calls == 3 and len(log) == 2
    assert temperatures[0] == 0.0 and temperatures[1] > 0 and temperatures[2] > 0  # re-asks sample
    assert len(set(seeds)) == 3
    assert backend.generation_config.temperature == 0.0  # restored
    assert [p.name for p in principles.principles] == ["concise", "comprehensive"]
    assert principles.sampling.scheme == "contrastive" and principles.sampling.negate == [[0], [1], [0, 1]]
    writer = principles.writer.model_dump()
    assert writer["model"] == "writer-llm" and writer["attempts"] == 3
    assert writer["identity"] == {"name": "writer-llm", "revision": "main"}
    assert "Write two principles" in writer["prompt"] and writer["date"][:2] == "20"

    path = dump_principles(principles, tmp_path / "written.yaml")
    loaded = load_principles(path)
    assert loaded == principles
    assert loaded.principles[0].antithesis == "Summaries should be long and full of unnecessary detail."
    plus, minus = ConstitutionSampler(loaded).sample(random.Random(0))  # usable for sampling at once
    assert plus.text != minus.text


def test_writer_always_malformed_fails_clearly():
    from harness.core.errors import HarnessError
    from harness.tasks.principle_writer import request_for_task, write_principles

    backend = writer_backend(lambda text, seed: MALFORMED)
    with pytest.raises(HarnessError) as info:
        write_principles(backend, request_for_task("tldr"), max_attempts=2)
    message = str(info.value)
    assert backend.model_calls == 2
    assert "2 attempt(s)" in message and "writer-llm" in message and "found 0 complete" in message
    assert "NAME: Here are two great principles for you!" in message  # the start of the last raw answer


def test_writer_for_dialogue_and_heldout_shapes(tmp_path):
    from harness.tasks.principle_writer import dump_principles, request_for_task, write_principles

    dialogue_answer = VALID.replace("concise", "helpful").replace("comprehensive", "harmless")
    principles = write_principles(writer_backend([dialogue_answer]), request_for_task("dialogue"))
    assert principles.sampling.scheme == "subset"
    assert [p.subset for p in principles.principles] == ["helpful-base", "harmless-base"]
    assert load_principles(dump_principles(principles, tmp_path / "d.yaml")) == principles

    blocks = "\n".join(f"NAME: style{i}\nDEFINITION: Summaries should use style {i} throughout.\n"
                       f"ANTITHESIS: Summaries should avoid style {i} entirely." for i in range(8))
    request = request_for_task("heldout", count=8)
    principles = write_principles(writer_backend([blocks[len("NAME:"):]]), request)
    assert (len(principles.split.train), len(principles.split.heldout)) == (6, 2)
    assert principles.split.heldout == ["style6", "style7"]
    assert load_principles(dump_principles(principles, tmp_path / "h.yaml")) == principles


def test_principles_command_write_list_and_show(tmp_path, monkeypatch, capsys):
    from harness.cli import main

    answers = [MALFORMED, VALID]
    monkeypatch.setenv("SAMI_HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("harness.models.backends.create_backend",
                        lambda model, generation: writer_backend(answers) if model.name == "writer-llm" else None)
    out = tmp_path / "tldr-written.yaml"
    assert main(["principles", "write", "--task", "tldr", "--writer", "writer-llm", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "attempts: 2" in captured.out and "attempt 1/3: malformed" in captured.err
    assert load_principles(out).writer.model == "writer-llm"
    # an existing file is kept unless --force
    assert main(["principles", "write", "--task", "tldr", "--writer", "writer-llm", "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err

    assert main(["principles", "show", str(out), "--sample", "2", "--seed", "1"]) == 0
    shown = capsys.readouterr().out
    assert shown.count("--- sample") == 2 and "c+: [pos" in shown and "c-: [" in shown

    assert main(["principles", "list"]) == 0
    listing = capsys.readouterr().out
    for line in ("tldr/principles.yaml", "dialogue/principles.yaml", "heldout/principles.yaml"):
        assert line in listing
    assert "15 train / 5 held out" in listing


def test_principles_show_is_seeded(capsys):
    from harness.cli import main

    outputs = []
    for seed in (3, 3, 4):
        assert main(["principles", "show", "heldout", "--sample", "5", "--seed", str(seed)]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] and outputs[0] != outputs[2]
