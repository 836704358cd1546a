"""Typed run configs: defaults, YAML plus overrides, hashing, and errors that name the file and the field."""

from __future__ import annotations

import pytest

from harness.config import GenerationConfig, RunConfig, TrainConfig, load_config, load_yaml_mapping, parse_override
from harness.core.errors import ConfigError


def test_defaults_match_the_embedded_cpu_setting():
    config = load_config()
    assert (config.task, config.trainer, config.model.name, config.data.source) == ("tldr", "sami", "embedded", "demo")
    assert config.generation.backend == "hf" and config.generation.temperature == 0.0  # paper: greedy
    assert config.principles.constitutions_per_query == 2
    assert config.train.kl_beta == 0.0  # no KL in any paper run


def test_precedence_file_then_shortcuts_then_set(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("task: dialogue\nmodel: {name: from-file}\ngeneration: {max_new_tokens: 10, seed: 7}\n")
    config = load_config(path, {"model.name": "from-flag", "data.source": None},
                         ["generation.max_new_tokens=20", "train.steps_per_iteration=[1, 2, 3]"])
    assert config.task == "dialogue"
    assert config.model.name == "from-flag"           # shortcut beats the file
    assert config.data.source == "demo"               # a None shortcut leaves the default
    assert config.generation.max_new_tokens == 20     # --set beats the file
    assert config.generation.seed == 7                # untouched fields stay
    assert config.train.steps_per_iteration == [1, 2, 3]


@pytest.mark.parametrize("text, expected", [
    ("a.b=3", ("a.b", 3)), ("a=0.5", ("a", 0.5)), ("a=true", ("a", True)), ("a=[x, y]", ("a", ["x", "y"])),
    ("a=", ("a", "")), ("a=b=c", ("a", "b=c")), ("a=[unclosed", ("a", "[unclosed")), (" a = 5 ", ("a", 5)),
])
def test_parse_override_reads_values_as_yaml(text, expected):
    assert parse_override(text) == expected


def test_exponent_notation_reaches_float_fields():
    # PyYAML reads "1e-6" as a string (YAML 1.1); the typed field still gets the number.
    assert load_config(sets=["train.learning_rate=1e-6"]).train.learning_rate == 1e-6
    assert load_config(sets=["train.learning_rate=5.0e-7"]).train.learning_rate == 5e-7


def test_parse_override_needs_equals():
    with pytest.raises(ConfigError, match="section.field=value"):
        parse_override("generation.seed")


def test_hash_ignores_the_output_folder_but_not_settings():
    base = RunConfig()
    assert RunConfig(out="elsewhere").hash() == base.hash()
    assert load_config(sets=["generation.max_new_tokens=97"]).hash() != base.hash()
    assert load_config(sets=["model.name=other"]).hash() != base.hash()
    assert base.hash() == RunConfig().hash()


def test_steps_schedule_defaults_to_paper_2t_and_checks_length():
    assert [TrainConfig().steps_at(t) for t in (1, 2, 3)] == [2, 4, 6]
    config = TrainConfig(steps_per_iteration=[5, 1])
    assert config.steps_at(2) == 1
    with pytest.raises(ConfigError, match="train.steps_per_iteration"):
        config.steps_at(3)
    with pytest.raises(ValueError):
        TrainConfig(steps_per_iteration=[1, 0])


def test_assignment_is_validated():
    generation = GenerationConfig()
    with pytest.raises(ValueError):
        generation.max_new_tokens = 0
    with pytest.raises(ValueError):
        generation.not_a_field = 1


def test_errors_name_file_and_dotted_field(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  lora_rank: 0\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert (info.value.source, info.value.field) == (str(path), "train.lora_rank")
    assert str(path) in str(info.value) and "train.lora_rank" in str(info.value)


def test_empty_yaml_is_an_empty_config(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing set\n")
    assert load_yaml_mapping(path) == {}
    assert load_config(path) == RunConfig()


def test_bad_yaml_reports_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("a: 1\nb: [2\nc: 3\n")
    with pytest.raises(ConfigError) as info:
        load_yaml_mapping(path)
    assert info.value.field.startswith("line ")


def test_shipped_paper_configs_validate_and_cover_every_task():
    from helpers import REPO

    from harness.tasks import get_task, tasks

    for path in sorted((REPO / "configs").rglob("*.yaml")):
        load_config(path)
    paper_configs = {name: get_task(name).paper_config for name in tasks.names()}
    assert all(paper_configs.values())  # the end-of-run hint names each task's paper config
    for task, relative in paper_configs.items():
        assert load_config(REPO / relative).task == task
