"""Malformed configs and input files: each gives one clear line on stderr (naming the file and the field where
there is one), exit status 2 and no traceback, through the real command line (``harness.cli.main``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import build_parser, main

HAS_VALIDATE = "validate" in build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
needs_validate = pytest.mark.skipif(not HAS_VALIDATE, reason="`harness validate` is not built yet")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("SAMI_HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)


def fails_cleanly(capsys, argv: list[str], *expected: str) -> str:
    """Run the CLI, expect exit status 2 and exactly one error line containing every ``expected`` text."""
    status = main(argv)
    captured = capsys.readouterr()
    assert status == 2, f"exit status {status}; stderr: {captured.err}"
    assert "Traceback" not in captured.err + captured.out
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one error line, got: {captured.err!r}"
    line = lines[0]
    assert line.startswith("error: "), line
    for text in expected:
        assert text in line, f"{text!r} not in {line!r}"
    return line


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- run configs --------------------------------------------------------------------------------------------

@needs_validate
def test_unknown_field_names_file_and_field(tmp_path, capsys):
    config = write(tmp_path / "run.yaml", "generation:\n  max_new_tokenz: 50\n")
    line = fails_cleanly(capsys, ["validate", str(config)], str(config), "generation.max_new_tokenz", "unknown field")
    assert "generation.max_new_tokenz" in line


@needs_validate
def test_wrong_type(tmp_path, capsys):
    config = write(tmp_path / "run.yaml", "generation:\n  batch_size: many\n")
    fails_cleanly(capsys, ["validate", str(config)], str(config), "generation.batch_size", "integer")


@needs_validate
def test_negative_max_new_tokens(tmp_path, capsys):
    config = write(tmp_path / "run.yaml", "generation:\n  max_new_tokens: -5\n")
    fails_cleanly(capsys, ["validate", str(config)], str(config), "generation.max_new_tokens", "greater than")


@needs_validate
def test_bad_yaml_syntax_names_the_line(tmp_path, capsys):
    config = write(tmp_path / "run.yaml", "task: tldr\ngeneration:\n  max_new_tokens: [1, 2\n  seed: 3\n")
    fails_cleanly(capsys, ["validate", str(config)], str(config), "line ", "not valid YAML")


@needs_validate
def test_yaml_not_a_mapping(tmp_path, capsys):
    config = write(tmp_path / "run.yaml", "- task: tldr\n- trainer: sami\n")
    fails_cleanly(capsys, ["validate", str(config)], str(config), "(top level)", "mapping")


@needs_validate
def test_section_given_a_scalar(tmp_path, capsys):
    config = write(tmp_path / "run.yaml", "generation: 5\n")
    fails_cleanly(capsys, ["validate", str(config)], str(config), "generation")


@needs_validate
def test_missing_config_file(tmp_path, capsys):
    fails_cleanly(capsys, ["validate", str(tmp_path / "nowhere.yaml")], "nowhere.yaml", "no such file")


@needs_validate
def test_unknown_task_lists_valid_names(tmp_path, capsys):
    config = write(tmp_path / "run.yaml", "task: summarise\n")
    fails_cleanly(capsys, ["validate", str(config)], "summarise", "dialogue", "heldout", "tldr")


@needs_validate
def test_unknown_backend_lists_valid_names(capsys):
    fails_cleanly(capsys, ["validate", "--backend", "llamacpp"], "llamacpp", "hf", "openai", "vllm")


@needs_validate
def test_unknown_trainer_lists_valid_names(capsys):
    fails_cleanly(capsys, ["validate", "--set", "trainer=ppo"], "ppo", "sami")


@needs_validate
def test_unknown_filter_lists_valid_names(capsys):
    fails_cleanly(capsys, ["validate", "--set", "filters=[full_stop, no_such_filter]"], "no_such_filter",
                  "template_leak", "distinct")


@needs_validate
def test_set_without_equals(capsys):
    fails_cleanly(capsys, ["validate", "--set", "generation.max_new_tokens"], "--set", "generation.max_new_tokens",
                  "section.field=value")


@needs_validate
def test_set_wrong_type_names_the_field(capsys):
    fails_cleanly(capsys, ["validate", "--set", "train.learning_rate=fast"], "train.learning_rate")


@needs_validate
def test_set_into_a_scalar_field(capsys):
    fails_cleanly(capsys, ["validate", "--set", "seed.value=3"], "'seed'", "integer")
    fails_cleanly(capsys, ["validate", "--set", "seed=1", "--set", "seed.value=3"], "seed.value", "not a section")


@needs_validate
def test_steps_per_iteration_shorter_than_iterations(capsys):
    fails_cleanly(capsys, ["validate", "--set", "train.iterations=3", "--set", "train.steps_per_iteration=[2, 4]"],
                  "train.steps_per_iteration")


# --- principles files ---------------------------------------------------------------------------------------

PRINCIPLES_OK = """\
task: tldr
description: Summarize a post.
writer: {model: test}
principles:
  - name: concise
    definition: Summaries should be brief.
    antithesis: Summaries should be long.
  - name: comprehensive
    definition: Summaries should be complete.
    antithesis: Summaries should be incomplete.
sampling: {scheme: contrastive, negate: [[0], [1], [0, 1]]}
"""


@needs_validate
def test_principles_file_missing_antithesis(tmp_path, capsys):
    bad = write(tmp_path / "p.yaml", PRINCIPLES_OK.replace("    antithesis: Summaries should be incomplete.\n", ""))
    fails_cleanly(capsys, ["validate", "--set", f"principles.file={bad}"], str(bad), "principles.1.antithesis",
                  "required")


@needs_validate
def test_principles_negate_index_out_of_range(tmp_path, capsys):
    bad = write(tmp_path / "p.yaml", PRINCIPLES_OK.replace("[[0], [1], [0, 1]]", "[[0], [2]]"))
    fails_cleanly(capsys, ["validate", "--set", f"principles.file={bad}"], str(bad), "sampling.negate", "[2]")


@needs_validate
def test_principles_file_not_found(tmp_path, capsys):
    fails_cleanly(capsys, ["validate", "--set", f"principles.file={tmp_path / 'none.yaml'}"], "none.yaml",
                  "no such file")


def test_principles_show_bad_paper_json(tmp_path, capsys):
    bad = write(tmp_path / "diverse.json", json.dumps({"concise": {"definition": "Be brief."}}))
    fails_cleanly(capsys, ["principles", "show", str(bad)], str(bad), "concise", "antithesis")


def test_principles_show_unknown_name(capsys):
    fails_cleanly(capsys, ["principles", "show", "summaries"], "summaries", "tldr")


# --- data files and models (generate fails before loading any model) ----------------------------------------

def test_malformed_jsonl_data_line(tmp_path, capsys):
    good = {"id": "p1", "post": "I wrote a post.", "split": "eval"}
    data = write(tmp_path / "posts.jsonl", json.dumps(good) + "\n{\"id\": \"p2\", \"post\": \n")
    fails_cleanly(capsys, ["generate", "--task", "tldr", "--data", str(data), "--limit", "1"],
                  str(data), "line 2", "not valid JSON")


def test_data_line_without_text_field(tmp_path, capsys):
    data = write(tmp_path / "posts.jsonl", json.dumps({"id": "p1", "body": "no post field"}) + "\n")
    fails_cleanly(capsys, ["generate", "--task", "tldr", "--data", str(data), "--limit", "1"],
                  str(data), "line 1", "post")


def test_dialogue_data_without_subset(tmp_path, capsys):
    data = write(tmp_path / "requests.jsonl", json.dumps({"query": "Hi there"}) + "\n")
    fails_cleanly(capsys, ["generate", "--task", "dialogue", "--data", str(data), "--limit", "1"],
                  str(data), "line 1.subset")


def test_missing_data_file(tmp_path, capsys):
    fails_cleanly(capsys, ["generate", "--task", "tldr", "--data", str(tmp_path / "absent.jsonl"), "--limit", "1"],
                  "absent.jsonl", "not found")


def test_bad_model_folder_path(tmp_path, capsys):
    fails_cleanly(capsys, ["generate", "--task", "tldr", "--model", str(tmp_path / "no-model"), "--limit", "1",
                           "--out", str(tmp_path / "out")], "no-model", "not found")
    assert not (tmp_path / "out").exists()


def test_model_folder_without_safetensors(tmp_path, capsys):
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "pytorch_model.bin").write_bytes(b"\0")
    fails_cleanly(capsys, ["generate", "--task", "tldr", "--model", str(folder), "--limit", "1",
                           "--out", str(tmp_path / "out")], str(folder), "safetensors")


def test_unknown_task_on_generate(capsys):
    fails_cleanly(capsys, ["generate", "--task", "poetry", "--limit", "1"], "poetry", "tldr")


def test_vllm_backend_without_vllm(capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_vllm(name, *args, **kwargs):
        if name == "vllm" or name.startswith("vllm."):
            raise ImportError("No module named 'vllm'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_vllm)
    fails_cleanly(capsys, ["generate", "--task", "tldr", "--backend", "vllm", "--limit", "1"],
                  "pip install 'sami-harness[vllm]'", "GPU")
