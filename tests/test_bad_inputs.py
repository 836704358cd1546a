"""A table-driven battery of malformed inputs through the real command line: each gives exactly one line
``error: ...`` on stderr naming the file (and line or field where there is one), exit status 2, no traceback,
and leaves every file that was already there unchanged. Nothing is silently accepted."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from harness.cli import main

TASK_DIR = Path(__file__).resolve().parents[1] / "harness" / "tasks"
LATIN1 = "caf\xe9 na\xefve".encode("latin-1")  # not UTF-8

RESPONSE = {"item": "q0", "query": "POST: a story", "constitution": "1. Be brief.", "response": "A summary.",
            "model": "m"}
VERDICT = {"item": "q0", "order": "candidate_first", "winner": "candidate", "candidate": "a", "baseline": "b",
           "judge": "j"}


def jsonl(*rows) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def resp(**change) -> str:
    return jsonl({**RESPONSE, **change})


GOOD_BASELINE = jsonl({**RESPONSE, "response": "Other.", "model": "base"})
PRINCIPLES_OK = (TASK_DIR / "tldr" / "principles.yaml").read_text(encoding="utf-8")


def tokenizer_folder(files: dict) -> dict:
    return {f"model/{name}": text for name, text in {"model.safetensors": b"\0" * 16, **files}.items()}


VALIDATE = ["validate", "--task", "tldr"]
JUDGE = ["judge", "--task", "tldr", "--judge", "local", "--no-progress", "--out", "{d}/jout"]
GENERATE = ["generate", "--task", "tldr", "--out", "{d}/gout"]


def judge_with(candidate: str, baseline: str = GOOD_BASELINE, suffix: str = "jsonl", extra=()):
    files = {f"cand.{suffix}": candidate, "base.jsonl": baseline}
    return files, [*JUDGE, "--candidate", f"{{d}}/cand.{suffix}", "--baseline", "{d}/base.jsonl", *extra]


# (id, files {relative path: text or bytes}, argv with {d} for the folder, texts the error line must contain)
CASES = [
    # --- run configs (YAML) ---
    ("config-not-utf8", {"run.yaml": b"task: tldr\n# " + LATIN1}, ["validate", "{d}/run.yaml"], ["run.yaml", "UTF-8", "line 2"]),
    ("config-bad-yaml", {"run.yaml": "task: [tldr\n"}, ["validate", "{d}/run.yaml"], ["run.yaml", "YAML"]),
    ("config-not-mapping", {"run.yaml": "- a\n- b\n"}, ["validate", "{d}/run.yaml"], ["run.yaml", "mapping"]),
    ("config-unknown-field", {"run.yaml": "generation:\n  max_new_tokenz: 5\n"}, ["validate", "{d}/run.yaml"],
     ["run.yaml", "generation.max_new_tokenz"]),
    ("config-wrong-type", {"run.yaml": "generation:\n  batch_size: many\n"}, ["validate", "{d}/run.yaml"],
     ["run.yaml", "generation.batch_size"]),
    ("config-steps-too-few", {"run.yaml": "train:\n  iterations: 3\n  steps_per_iteration: [1]\n"},
     ["validate", "{d}/run.yaml"], ["run.yaml", "train.steps_per_iteration"]),
    ("config-missing", {}, ["validate", "{d}/absent.yaml"], ["absent.yaml", "no such file"]),
    ("config-is-folder", {"folder/x": "x"}, ["validate", "{d}/folder"], ["folder"]),
    # --- validate: paths must exist, principles must belong to the task ---
    ("validate-model-missing", {}, [*VALIDATE, "--model", "{d}/no-model"], ["model.name", "not found"]),
    ("validate-model-missing-relative", {}, [*VALIDATE, "--model", "models/mine/v1"], ["model.name", "not found"]),
    ("validate-model-no-weights", {"model/config.json": "{}"}, [*VALIDATE, "--model", "{d}/model"], ["safetensors"]),
    ("validate-data-missing", {}, [*VALIDATE, "--data", "{d}/absent.jsonl"], ["data.source", "absent.jsonl"]),
    ("validate-principles-other-task", {"p.yaml": (TASK_DIR / "dialogue" / "principles.yaml").read_text()},
     [*VALIDATE, "--set", "principles.file={d}/p.yaml"], ["p.yaml", "task", "dialogue", "tldr"]),
    ("principles-not-utf8", {"p.yaml": PRINCIPLES_OK.encode() + b"\n# " + LATIN1},
     [*VALIDATE, "--set", "principles.file={d}/p.yaml"], ["p.yaml", "UTF-8"]),
    ("principles-bad-yaml", {"p.yaml": "task: tldr\nprinciples: [\n"},
     [*VALIDATE, "--set", "principles.file={d}/p.yaml"], ["p.yaml", "YAML"]),
    # --- data files (TL;DR: CSV, JSONL, JSON; dialogue: JSONL, JSONL.GZ) ---
    ("data-jsonl-not-utf8", {"d.jsonl": b'{"query": "' + LATIN1 + b'"}\n'}, [*VALIDATE, "--data", "{d}/d.jsonl"],
     ["d.jsonl", "UTF-8", "line 1"]),
    ("data-csv-not-utf8", {"d.csv": b"query\n" + LATIN1 + b"\n"}, [*VALIDATE, "--data", "{d}/d.csv"], ["d.csv", "UTF-8", "line 2"]),
    ("data-json-not-utf8", {"d.json": b'{"question": {"0": "' + LATIN1 + b'"}}'}, [*VALIDATE, "--data", "{d}/d.json"],
     ["d.json", "UTF-8"]),
    ("data-json-broken", {"d.json": '{"question": {"0": "POST: x"'}, [*VALIDATE, "--data", "{d}/d.json"],
     ["d.json", "not valid JSON"]),
    ("data-json-wrong-shape", {"d.json": '["a"]'}, [*VALIDATE, "--data", "{d}/d.json"], ["d.json", "question"]),
    ("data-json-post-int", {"d.json": '{"question": {"0": 7}}'}, [*VALIDATE, "--data", "{d}/d.json"],
     ["d.json", "question.0", "string"]),
    ("data-jsonl-broken-line", {"d.jsonl": '{"query": "ok"}\n{"query": \n'}, [*VALIDATE, "--data", "{d}/d.jsonl"],
     ["d.jsonl", "line 2", "JSON"]),
    ("data-jsonl-not-object", {"d.jsonl": '["a"]\n'}, [*VALIDATE, "--data", "{d}/d.jsonl"], ["d.jsonl", "line 1", "object"]),
    ("data-jsonl-post-int", {"d.jsonl": '{"post": 5}\n'}, [*VALIDATE, "--data", "{d}/d.jsonl"],
     ["d.jsonl", "line 1.post", "string"]),
    ("data-jsonl-title-list", {"d.jsonl": '{"post": "x", "title": ["t"]}\n'}, [*VALIDATE, "--data", "{d}/d.jsonl"],
     ["line 1.title", "string"]),
    ("data-jsonl-query-null", {"d.jsonl": '{"query": null}\n'}, [*VALIDATE, "--data", "{d}/d.jsonl"], ["line 1.query"]),
    ("data-jsonl-no-fields", {"d.jsonl": '{"text": "x"}\n'}, [*VALIDATE, "--data", "{d}/d.jsonl"], ["d.jsonl", "line 1"]),
    ("data-jsonl-empty", {"d.jsonl": "\n\n"}, [*VALIDATE, "--data", "{d}/d.jsonl"], ["d.jsonl", "no queries"]),
    ("data-csv-header-only", {"d.csv": "query\n"}, [*VALIDATE, "--data", "{d}/d.csv"], ["d.csv", "no queries"]),
    ("data-csv-empty", {"d.csv": ""}, [*VALIDATE, "--data", "{d}/d.csv"], ["d.csv", "empty"]),
    ("data-csv-no-query-column", {"d.csv": "post\nx\n"}, [*VALIDATE, "--data", "{d}/d.csv"], ["d.csv", "query"]),
    ("data-csv-unterminated-quote", {"d.csv": 'query\n"POST: one\nPOST: two\nPOST: three\n'},
     [*VALIDATE, "--data", "{d}/d.csv"], ["d.csv", "line 2", "never closes"]),
    ("data-csv-stray-quote", {"d.csv": 'query\n"POST: a" b\n'}, [*VALIDATE, "--data", "{d}/d.csv"], ["d.csv", "line 2"]),
    ("data-csv-extra-field", {"d.csv": "query\nPOST: a,b\n"}, [*VALIDATE, "--data", "{d}/d.csv"], ["d.csv", "line 2", "fields"]),
    ("data-generate-header-only", {"d.csv": "query\n"}, [*GENERATE, "--data", "{d}/d.csv"], ["d.csv", "no queries"]),
    ("dialogue-gz-corrupt", {"harmless-base-x.jsonl.gz": b"\x1f\x8bnot really gzip"},
     ["validate", "--task", "dialogue", "--data", "{d}/harmless-base-x.jsonl.gz"], ["jsonl.gz", "gzip"]),
    ("dialogue-gz-not-gzip", {"harmless-base-x.jsonl.gz": b"plain text"},
     ["validate", "--task", "dialogue", "--data", "{d}/harmless-base-x.jsonl.gz"], ["jsonl.gz", "gzip"]),
    ("dialogue-gz-bad-line", {"harmless-base-x.jsonl.gz": gzip.compress(b'{"chosen": "\\n\\nHuman: hi"}\n{oops\n')},
     ["validate", "--task", "dialogue", "--data", "{d}/harmless-base-x.jsonl.gz"], ["jsonl.gz", "line 2"]),
    ("dialogue-chosen-int", {"harmless-base-x.jsonl": '{"chosen": 3}\n'},
     ["validate", "--task", "dialogue", "--data", "{d}/harmless-base-x.jsonl"], ["line 1.chosen", "string"]),
    ("dialogue-no-human-turn", {"harmless-base-x.jsonl": '{"chosen": "Assistant: hi"}\n'},
     ["validate", "--task", "dialogue", "--data", "{d}/harmless-base-x.jsonl"], ["line 1.chosen", "Human"]),
    ("dialogue-subset-int", {"d.jsonl": '{"query": "hi", "subset": 4}\n'},
     ["validate", "--task", "dialogue", "--data", "{d}/d.jsonl"], ["line 1.subset"]),
    # --- responses files for `harness judge` ---
    ("responses-not-utf8", *judge_with(resp().replace("A summary.", "X").encode() + LATIN1 + b"\n"), ["cand.jsonl", "UTF-8"]),
    ("responses-json-not-utf8", *judge_with(b'{"question": {"q0": "' + LATIN1 + b'"}}', suffix="json"), ["cand.json", "UTF-8"]),
    ("responses-json-broken", *judge_with('{"question": {', suffix="json"), ["cand.json", "not valid JSON"]),
    ("responses-constitution-int", *judge_with(resp(constitution=5)), ["cand.jsonl line 1", "constitution"]),
    ("responses-json-constitution-int", *judge_with(json.dumps({"question": {"q0": "POST: a story"},
                                                                "response": {"q0": "x"}, "constitution": {"q0": 5}}),
                                                    suffix="json"), ["cand.json", "constitution.q0"]),
    ("responses-query-int", *judge_with(resp(query=3)), ["cand.jsonl line 1", "string"]),
    ("responses-missing-field", *judge_with(jsonl({"item": "q0", "query": "x"})), ["cand.jsonl line 1", "response"]),
    ("responses-empty", *judge_with(""), ["cand.jsonl", "no responses"]),
    ("judge-limit-negative", *judge_with(resp(), extra=["--limit", "-5"]), ["--limit", "positive"]),
    ("judge-limit-zero", *judge_with(resp(), extra=["--limit", "0"]), ["--limit", "positive"]),
    ("judge-candidate-missing", {"base.jsonl": GOOD_BASELINE},
     [*JUDGE, "--candidate", "{d}/nope.jsonl", "--baseline", "{d}/base.jsonl"], ["nope.jsonl"]),
    # --- verdict files for `harness stats` ---
    ("verdicts-not-utf8", {"v.jsonl": jsonl(VERDICT).encode() + LATIN1 + b"\n"}, ["stats", "{d}/v.jsonl"], ["v.jsonl", "UTF-8", "line 2"]),
    ("verdicts-empty", {"v.jsonl": ""}, ["stats", "{d}/v.jsonl"], ["v.jsonl", "no verdicts"]),
    ("verdicts-broken-line", {"v.jsonl": jsonl(VERDICT) + "{\n"}, ["stats", "{d}/v.jsonl"], ["v.jsonl", "line 2"]),
    # --- model folders and hub ids (tokenizer loading) ---
    ("tokenizer-hub-id-offline", {}, [*GENERATE, "--model", "nobody-here/no-such-model", "--limit", "1"],
     ["nobody-here/no-such-model", "tokenizer"]),
    ("tokenizer-garbage-file", tokenizer_folder({"config.json": json.dumps({"model_type": "llama"}),
                                                 "tokenizer.json": "this is not a tokenizer",
                                                 "tokenizer_config.json": json.dumps({"tokenizer_class": "PreTrainedTokenizerFast"})}),
     [*GENERATE, "--model", "{d}/model", "--limit", "1"], ["model", "tokenizer"]),
    ("tokenizer-custom-code-refused", tokenizer_folder({
        "config.json": json.dumps({"model_type": "custom-thing", "auto_map": {"AutoConfig": "configuration_x.XConfig",
                                   "AutoTokenizer": ["tokenization_x.XTokenizer", None]}}),
        "tokenizer_config.json": json.dumps({"auto_map": {"AutoTokenizer": ["tokenization_x.XTokenizer", None]}}),
        "tokenization_x.py": "raise SystemExit('custom code ran')\n"}),
     [*GENERATE, "--model", "{d}/model", "--limit", "1"], ["model", "trust_remote_code"]),
    ("generate-limit-zero", {}, [*GENERATE, "--limit", "0"], ["data.eval_limit"]),
]


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file() and "cache" not in p.relative_to(root).parts}


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("SAMI_HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "cache" / "hf"))
    monkeypatch.chdir(tmp_path)


def test_the_battery_is_large_enough():
    assert len(CASES) >= 40
    assert len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("files, argv, expected", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_gives_one_line(tmp_path, capsys, files, argv, expected):
    d = tmp_path / "in"
    d.mkdir()
    for name, content in files.items():
        path = d / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    (d / "earlier-output.json").write_text('{"kept": true}\n')  # something already written
    before = snapshot(tmp_path)
    status = main([arg.replace("{d}", str(d)) for arg in argv])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert status == 2, f"exit {status} (silently accepted?); stderr: {captured.err!r}"
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one error line, got: {captured.err!r}"
    assert lines[0].startswith("error: "), lines[0]
    for text in expected:
        assert text in lines[0], f"{text!r} not in {lines[0]!r}"
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before, "an existing file was changed"
    assert not [k for k in after if k not in before and not k.startswith("in/model")], f"new files: {after.keys() - before.keys()}"
