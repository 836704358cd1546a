"""The verifier registry: every check on passing and failing examples (IFEval-style ones for lm-eval's
checkers), check/antithesis pairs never both passing, ``parse_check``'s one-line errors, and offline loading."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from harness.core.errors import ConfigError, HarnessError
from harness.verifiers import OMITTED_IFEVAL, CheckSpec, list_verifiers, parse_check, verifiers, verify
from harness.verifiers.ifeval import instruction_dict

REPO = Path(__file__).resolve().parents[1]
QUERY = "My landlord refuses to return my security deposit after I moved out. Should I do something about it?"

try:
    IFEVAL_IDS = set(instruction_dict())
    LM_EVAL_MISSING = None
except HarnessError as exc:
    IFEVAL_IDS, LM_EVAL_MISSING = set(), str(exc)
needs_lm_eval = pytest.mark.skipif(LM_EVAL_MISSING is not None,
                                   reason=f"lm-eval's IFEval checkers are not importable: {LM_EVAL_MISSING}")


def from_ifeval(name: str) -> bool:
    return verifiers.get(name).fn.__module__ == "harness.verifiers.ifeval"


def spec(check: dict) -> CheckSpec:
    return parse_check(check, "test.yaml", "p", "check")


# (check, responses that pass, responses that fail); IFEval rows open with the instruction IFEval would give.
CASES = [
    # --- hand-written -------------------------------------------------------------------------------------
    ({"name": "max_words", "n": 5}, ["one two three four five", "a - b - c", ""], ["one two three four five six"]),
    ({"name": "min_words", "n": 5}, ["one two three four five", "I paid $1,200 -- twice, in cash."],
     ["one two - three ... four", ""]),
    ({"name": "max_sentences", "n": 2}, ["Hi there. How are you?", "Version 3.5 is out. It is fast!", "no stop"],
     ["One. Two! Three?", "Wait... what?! Really."]),
    ({"name": "min_sentences", "n": 2}, ["Hi. Bye!", "He left... She stayed"], ["Just one sentence.", "", "?!"]),
    ({"name": "starts_with", "phrase": "TL;DR"}, ["  tl;dr: landlord keeps the deposit", "TL;DR the end"],
     ["Summary: TL;DR", ""]),
    ({"name": "not_starts_with", "phrase": "TL;DR"}, ["Summary: TL;DR", ""], ["\nTL;DR: the end"]),
    ({"name": "no_first_person"},
     ["The poster wants advice.", "The tenant, i.e. the poster, wants advice.", "Minesweeper, Iowa, Mel."],
     ["I want advice.", "My boyfriend forgot.", "We're moving.", "Tell us.", "the money is OURS", "i'm sad"]),
    ({"name": "first_person"}, ["I'm sad.", "ask me"], ["The poster is sad.", "Iowa is large and usual."]),
    ({"name": "no_digits"}, ["No numbers here.", ""], ["Paid 1200 dollars.", "Room 4B"]),
    ({"name": "has_digits"}, ["Paid 1200 dollars.", "2nd try"], ["No numbers here.", ""]),
    ({"name": "ends_with_question"}, ["Should she move out?", 'He asked "why?"', "What now?  \n", "**Why?**"],
     ["She should move out.", "Why? Because.", ""]),
    ({"name": "not_ends_with_question"}, ["She should move out.", ""], ["Should she move out?"]),
    ({"name": "bullet_list", "min_items": 2}, ["- rent\n- deposit", "Facts:\n  * rent\n  • deposit\n+ keys"],
     ["- rent only", "*bold* text\n---\n***", "-not a bullet\n-nor this", ""]),
    ({"name": "no_bullets"}, ["*bold* text\n---", "Plain text - with a dash."], ["Facts:\n- rent"]),
    ({"name": "all_lowercase"}, ["all lower case.", "123 ?", ""], ["Mostly lower case."]),
    ({"name": "has_uppercase"}, ["Mostly lower case.", "ÉTÉ"], ["all lower case.", ""]),
    ({"name": "all_uppercase"}, ["ALL CAPS!", "123"], ["ALL CAPs"]),
    ({"name": "has_lowercase"}, ["ALL CAPs", "été"], ["ALL CAPS!", ""]),
    ({"name": "has_comma"}, ["Yes, indeed."], ["Yes indeed."]),
    ({"name": "mentions_query_keyword"}, ["Landlord won't give the deposit back.", "Tenant wants a RETURN."],
     ["Tenant wants money back.", "I left.", "Should do something about it"]),
    ({"name": "no_query_keyword"}, ["Tenant wants money back.", ""], ["The DEPOSIT is gone."]),
    # --- IFEval (lm-eval's checkers) ----------------------------------------------------------------------
    ({"name": "english_lowercase"},  # Your entire response should be in English, and in all lowercase letters.
     ["i think the poster should call her landlord and ask for the deposit back."],
     ["I think the poster should call her landlord and ask for the deposit back.",
      "je pense que la locataire devrait appeler son propriétaire pour récupérer sa caution.", ""]),
    ({"name": "english_uppercase"},  # Your entire response should be in English, and in all capital letters.
     ["THE POSTER SHOULD CALL HER LANDLORD AND ASK FOR THE DEPOSIT BACK."],
     ["The poster should call her landlord and ask for the deposit back.", "THE POSTER SHOULD CALL HER LANDLORd."]),
    ({"name": "no_comma"},  # In your entire response, refrain from the use of any commas.
     ["The landlord kept the deposit and the tenant wants it back."], ["Sadly, the landlord kept it."]),
    ({"name": "ends_with", "phrase": "Any other questions?"},  # Finish your response with this exact phrase ...
     ["Call the landlord first. any other questions?", 'Call the landlord. Any other questions?"  \n'],
     ["Any other questions? Call the landlord.", "Call the landlord."]),
    ({"name": "not_ends_with", "phrase": "Any other questions?"}, ["Any other questions? No."],
     ["Call the landlord. Any other questions?"]),
    ({"name": "quoted"},  # Wrap your entire response with double quotation marks.
     ['  "Call the landlord, then small claims court."  '], ['Call the "landlord".', '"']),
    ({"name": "not_quoted"}, ['Call the "landlord".'], ['"Call the landlord."']),
    ({"name": "exact_bullets", "n": 3},  # Your answer must contain exactly 3 bullet points ... * This is point 1.
     ["* rent\n* deposit\n* keys", "Facts:\n- rent\n- deposit\n-keys"],
     ["* rent\n* deposit", "* a\n* b\n* c\n* d", "**bold**\n* a\n* b"]),
    ({"name": "has_keywords", "keywords": ["deposit", "C++"]},  # Include keywords deposit, C++ in the response.
     ["Our c++ code kept the DEPOSITS."], ["Our C++ code kept the money.", "The deposit is in C+."]),
    ({"name": "forbidden_words", "words": ["lol", "omg"]},  # Do not include keywords lol, omg in the response.
     ["That was funny.", "A lollipop."], ["omg that was funny", "That was funny LOL."]),
    ({"name": "uses_words", "words": ["lol", "omg"]}, ["That was funny LOL."], ["A lollipop."]),
    ({"name": "keyword_at_least", "keyword": "dog", "n": 2},  # ... the word dog should appear at least 2 times.
     ["A dog and a hotdog.", "DOG dog"], ["A dog.", ""]),
    ({"name": "keyword_less_than", "keyword": "dog", "n": 2}, ["A dog.", ""], ["A dog and a hotdog."]),
    ({"name": "letter_at_least", "letter": "z", "n": 3},  # ... the letter z should appear at least 3 times.
     ["Zany zebras zoom."], ["A zebra.", ""]),
    ({"name": "letter_less_than", "letter": "Z", "n": 3}, ["A zebra."], ["Zany zebras zoom."]),
    ({"name": "exact_paragraphs", "n": 2},  # There should be 2 paragraphs, separated by the markdown divider ***
     ["The landlord kept it.\n***\nThe tenant wants it back.", "***\nOne.\n***\nTwo.\n***"],
     ["One paragraph only.", "One.\n***\n***\nTwo.", "A\n***\nB\n***\nC"]),
    ({"name": "min_placeholders", "n": 2},  # ... at least 2 placeholders represented by square brackets
     ["Send it to [name] at [address]."], ["Send it to [name]."]),
    ({"name": "postscript", "marker": "P.S."},  # ... explicitly add a postscript starting with P.S.
     ["Call the landlord.\nP.S. Keep the receipts.", "Call.\np. s. receipts"], ["Call the landlord."]),
    ({"name": "postscript", "marker": "Note (1):"}, ["Call.\nNote (1): receipts"], ["Call.\nNote 1: receipts"]),
    ({"name": "constrained_response"},  # Answer with one of: My answer is yes., My answer is no., ...
     ["My answer is no.", "Hmm. My answer is maybe."], ["No.", "my answer is no."]),
    ({"name": "min_highlights", "n": 2},  # Highlight at least 2 sections ... i.e. *highlighted section*.
     ["*Call* the landlord, then **court**."], ["*Call* the landlord.", "** ** and * *"]),
    ({"name": "min_sections", "splitter": "Section", "n": 2},  # ... Mark the beginning of each section with Section X
     ["Section 1\nFacts.\nSection 2\nAdvice."], ["Section 1\nFacts only.", "Sections: facts"]),
    ({"name": "json_format"},  # Entire output should be wrapped in JSON format.
     ['{"advice": "call the landlord"}', '```json\n{"a": [1, 2]}\n```'], ["advice: call the landlord"]),
    ({"name": "title"},  # Your answer must contain a title, wrapped in double angular brackets, such as <<...>>.
     ["<<Deposit woes>>\nCall the landlord."], ["Deposit woes\nCall the landlord.", "<<  >>"]),
    ({"name": "two_responses"},  # Give two different responses ... separated by 6 asterisk symbols: ******.
     ["Call the landlord.\n******\nGo to small claims court."],
     ["Call the landlord.\n******\nCall the landlord.", "Call the landlord.", "A\n******\n******\nB"]),
]

# check/antithesis pairs, and whether exactly one of the two holds on every response (not just at most one)
PAIRS = [
    ({"name": "max_words", "n": 25}, {"name": "min_words", "n": 60}, False),
    ({"name": "max_words", "n": 5}, {"name": "min_words", "n": 6}, True),
    ({"name": "max_sentences", "n": 2}, {"name": "min_sentences", "n": 3}, True),
    ({"name": "starts_with", "phrase": "TL;DR"}, {"name": "not_starts_with", "phrase": "TL;DR"}, True),
    ({"name": "no_first_person"}, {"name": "first_person"}, True),
    ({"name": "no_digits"}, {"name": "has_digits"}, True),
    ({"name": "ends_with_question"}, {"name": "not_ends_with_question"}, True),
    ({"name": "bullet_list", "min_items": 1}, {"name": "no_bullets"}, True),
    ({"name": "bullet_list", "min_items": 3}, {"name": "no_bullets"}, False),
    ({"name": "all_lowercase"}, {"name": "has_uppercase"}, True),
    ({"name": "all_uppercase"}, {"name": "has_lowercase"}, True),
    ({"name": "mentions_query_keyword"}, {"name": "no_query_keyword"}, True),
    ({"name": "english_lowercase"}, {"name": "has_uppercase"}, False),
    ({"name": "english_uppercase"}, {"name": "has_lowercase"}, False),
    ({"name": "no_comma"}, {"name": "has_comma"}, True),
    ({"name": "ends_with", "phrase": "Any other questions?"},
     {"name": "not_ends_with", "phrase": "any other questions?"}, True),
    ({"name": "quoted"}, {"name": "not_quoted"}, True),
    ({"name": "forbidden_words", "words": ["lol", "omg"]}, {"name": "uses_words", "words": ["lol", "omg"]}, True),
    ({"name": "keyword_at_least", "keyword": "dog", "n": 2}, {"name": "keyword_less_than", "keyword": "dog", "n": 2},
     True),
    ({"name": "letter_at_least", "letter": "z", "n": 3}, {"name": "letter_less_than", "letter": "z", "n": 3}, True),
]
ALL_RESPONSES = sorted({r for _, passing, failing in CASES for r in passing + failing} | {
    "TL;DR: landlord kept my $500 deposit; should I sue?",
    "tl;dr landlord kept the deposit",
    " ".join(["word"] * 30) + ".",
    " ".join(["word."] * 70),
})


def marks(*checks: dict) -> list:
    return [needs_lm_eval] if any(from_ifeval(c["name"]) for c in checks) else []


@pytest.mark.parametrize("check,passing,failing",
                         [pytest.param(*case, id=case[0]["name"], marks=marks(case[0])) for case in CASES])
def test_verifier_on_passing_and_failing_examples(check, passing, failing):
    parsed = spec(check)
    assert [r for r in passing if not verify(parsed, r, QUERY)] == []
    assert [r for r in failing if verify(parsed, r, QUERY)] == []


def test_every_verifier_has_examples():
    assert sorted({check["name"] for check, _, _ in CASES}) == verifiers.names()


@pytest.mark.parametrize("first,second,exhaustive",
                         [pytest.param(a, b, x, id=f"{a['name']}-{b['name']}", marks=marks(a, b))
                          for a, b, x in PAIRS])
def test_check_and_antithesis_are_mutually_exclusive(first, second, exhaustive):
    first, second = spec(first), spec(second)
    outcomes = {r: (verify(first, r, QUERY), verify(second, r, QUERY)) for r in ALL_RESPONSES}
    assert [r for r, (a, b) in outcomes.items() if a and b] == []
    if exhaustive:
        assert [r for r, (a, b) in outcomes.items() if not (a or b)] == []
    else:  # both sides are reached on the examples
        assert any(a for a, _ in outcomes.values()) and any(b for _, b in outcomes.values())


def test_query_keywords_ignore_short_words_and_stopwords():
    mentions = spec({"name": "mentions_query_keyword"})
    assert not verify(mentions, "Should I do something about it?", "Should I do something about it?")
    assert verify(mentions, "moving", "Moving out") and not verify(mentions, "moved", "Moving out")
    with pytest.raises(HarnessError, match="'mentions_query_keyword' needs the query text"):
        verify(mentions, "moving")


# --- parse_check ---------------------------------------------------------------------------------------------

def test_parse_check_builds_a_frozen_spec():
    parsed = parse_check({"name": "max_words", "n": 25}, "principles/tldr.yaml", "concise", "check")
    assert parsed == CheckSpec(name="max_words", params={"n": 25})
    assert spec({"name": "no_digits"}).params == {}
    with pytest.raises(ValidationError):
        parsed.name = "min_words"


@pytest.mark.parametrize("data,problem", [
    ({"name": "max_wordz", "n": 25}, "unknown verifier 'max_wordz'; valid verifiers: all_lowercase, "),
    ({"n": 25}, "missing 'name' (the verifier)"),
    ({"name": "max_words"}, "'max_words' needs parameter 'n' (int >= 0)"),
    ({"name": "max_words", "n": "25"}, "'max_words' parameter 'n' must be int >= 0, got '25'"),
    ({"name": "max_words", "n": True}, "'max_words' parameter 'n' must be int >= 0, got True"),
    ({"name": "max_words", "n": 2.5}, "'max_words' parameter 'n' must be int >= 0, got 2.5"),
    ({"name": "max_words", "n": -1}, "'max_words' parameter 'n' must be int >= 0, got -1"),
    ({"name": "bullet_list", "min_items": 0}, "'bullet_list' parameter 'min_items' must be int >= 1, got 0"),
    ({"name": "starts_with", "phrase": "  "}, "'starts_with' parameter 'phrase' must be non-empty str, got '  '"),
    ({"name": "forbidden_words", "words": "lol"}, "'forbidden_words' parameter 'words' must be non-empty list"),
    ({"name": "forbidden_words", "words": ["lol", 3]}, "must be non-empty list of non-empty str, got ['lol', 3]"),
    ({"name": "letter_at_least", "letter": "zz", "n": 3}, "parameter 'letter' must be a single letter a-z"),
    ({"name": "max_words", "n": 25, "m": 1}, "'max_words' has no parameter 'm' (parameters: n)"),
    ({"name": "no_digits", "n": 1}, "'no_digits' has no parameter 'n' (parameters: none)"),
    ("max_words", "expected a mapping like {name: max_words, n: 25}, got str"),
    (["max_words"], "got list"),
    (None, "got NoneType"),
])
def test_parse_check_errors_name_file_principle_and_field(data, problem):
    with pytest.raises(ConfigError) as caught:
        parse_check(data, "principles/tldr.yaml", "concise", "antithesis_check")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("principles/tldr.yaml: field 'principles.concise.antithesis_check': ")
    assert problem in message


# --- descriptions and lm-eval coverage -------------------------------------------------------------------------

def test_descriptions_name_their_source():
    for name, description in list_verifiers():
        assert description.startswith(("IFEval ", "harness: ")), name
        for param in verifiers.get(name).params:
            assert f"{param.name} (" in description


@needs_lm_eval
def test_every_ifeval_instruction_is_wrapped_or_listed_as_omitted():
    wrapped = {d.split()[1].rstrip(":") for _, d in list_verifiers() if d.startswith("IFEval ")}
    assert wrapped <= IFEVAL_IDS
    assert not wrapped & set(OMITTED_IFEVAL)
    assert wrapped | set(OMITTED_IFEVAL) == IFEVAL_IDS
    assert all(reason and "\n" not in reason for reason in OMITTED_IFEVAL.values())


@needs_lm_eval
def test_ifeval_checks_load_offline_without_heavy_modules_or_downloads(tmp_path):
    """In a fresh interpreter with sockets disabled: every IFEval-backed check runs, and neither lm_eval's
    package chain (evaluator, torch, datasets) nor nltk gets imported."""
    script = """
import json, socket, sys
def refuse(*args, **kwargs):
    raise OSError("network access attempted")
socket.socket.connect = socket.socket.connect_ex = socket.create_connection = refuse
from harness.verifiers import parse_check, verifiers, verify
for name in verifiers.names():
    verifier = verifiers.get(name)
    if verifier.fn.__module__ == "harness.verifiers.ifeval":
        params = {p.name: {"int >= 0": 1, "a single letter a-z": "a"}.get(p.kind.label, ["x"]
                  if p.kind.label.startswith("non-empty list") else "x") for p in verifier.params}
        verify(parse_check({"name": name, **params}, "f", "p", "check"), "a response, P.S. x [y] *z* <<t>>")
heavy = ("lm_eval", "torch", "datasets", "transformers", "requests", "nltk")
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
"""
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", NLTK_DATA=str(tmp_path))
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
    assert "network" not in result.stderr and not list(tmp_path.iterdir())
