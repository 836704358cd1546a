"""Expert iteration: layout, restart from base, idempotent stages, resume after a crash, stale markers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tiny_models import build_tiny_model, tiny_config  # noqa: I001

from harness.flow import train as trainer_registry
import trainers.sami as sami
from harness.core.artifacts import read_json, read_jsonl
from harness.core.cache import ContentCache
from harness.core.run_layout import RunLayout
from harness.pipeline import run_expert_iteration
from harness.core.provenance import git_commit

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def config_for(tiny_dir, **train):
    config = tiny_config(tiny_dir, queries_per_step=2, steps_per_iteration=[1, 1], max_prompt_tokens=2048, **train)
    config.data.train_limit = 3
    config.generation.max_new_tokens = 8
    config.filters = ["non_empty"]
    return config


class Spy:
    """Wraps the SAMI trainer: records each call's iteration and the weights it starts from."""

    def __init__(self, fail_at: int | None = None):
        self.calls: list[int] = []
        self.start_weights: list[dict] = []
        self.fail_at = fail_at
        self.real_load_base = sami.load_base

    def load_base(self, config):
        base = self.real_load_base(config)
        self.start_weights.append({k: v.clone() for k, v in base.model.state_dict().items()})
        return base

    def train(self, job):
        self.calls.append(job.iteration)
        if self.fail_at == job.iteration:
            raise RuntimeError("simulated crash")
        return sami.train.__wrapped__(job)


@pytest.fixture
def spy(monkeypatch):
    s = Spy()
    real = sami.train

    def wrapped(job):
        return s.train(job)

    wrapped.__wrapped__ = real
    sami.train.__wrapped__ = real
    monkeypatch.setattr(sami, "train", wrapped)
    monkeypatch.setattr(sami, "load_base", s.load_base)
    return s


def weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


def test_layout_restart_from_base_and_skip_on_rerun(tiny_dir, tmp_path, spy):
    config, cache = config_for(tiny_dir), ContentCache(tmp_path / "cache.sqlite")
    run_dir = tmp_path / "run"
    summaries = run_expert_iteration(config, RunLayout(run_dir), cache)
    assert [s["iteration"] for s in summaries] == [1, 2] and spy.calls == [1, 2]
    for t in (1, 2):
        folder = RunLayout(run_dir).iteration(t)
        rows = read_jsonl(folder / "data.jsonl")
        assert rows and {"item", "query", "constitutions", "responses"} <= set(rows[0])
        assert all(len(r["responses"]) == len(r["constitutions"]) == 2 for r in rows)
        data_manifest = read_json(folder / "data_manifest.json")
        assert data_manifest["dropped"] == {"non_empty": 0} and data_manifest["kept"] == len(rows) == 3
        assert (folder / "sami" / "telemetry.jsonl").is_file()
        assert read_json(folder / "sami" / "done.json")["commit"] == git_commit()  # the code that trained it
        assert (RunLayout(run_dir).checkpoint(t, "sami") / "model.safetensors").is_file()
    # iteration 2 generated with iteration 1's checkpoint...
    generator = read_json(RunLayout(run_dir).iteration(2) / "data_manifest.json")["generator"]["name"]
    assert generator == str(RunLayout(run_dir).checkpoint(1, "sami").resolve())
    # ...but both iterations trained from the BASE weights, not from iteration 1's
    base = weights(tiny_dir)
    iteration_1 = weights(RunLayout(run_dir).checkpoint(1, "sami"))
    for start in spy.start_weights:
        for name, tensor in start.items():
            if name in base:
                assert torch.equal(tensor, base[name]), name
    assert any(not torch.equal(iteration_1[k], base[k]) for k in base)
    # a second run does no work at all
    again = run_expert_iteration(config, RunLayout(run_dir), cache)
    assert spy.calls == [1, 2]
    assert all(s["generation_skipped"] for s in again) and all(s["trainers"]["sami"]["skipped"] for s in again)


def test_resume_after_crash_and_rerun_on_changed_config(tiny_dir, tmp_path, spy):
    config, cache = config_for(tiny_dir), ContentCache(tmp_path / "cache.sqlite")
    run_dir = tmp_path / "run"
    spy.fail_at = 2
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_expert_iteration(config, RunLayout(run_dir), cache)
    assert spy.calls == [1, 2]
    # a kill -9 in the middle of saving leaves a staging folder and a half-written telemetry file
    debris = RunLayout(run_dir).iteration(2) / "sami" / ".checkpoint.partial-999"
    debris.mkdir(parents=True)
    (RunLayout(run_dir).iteration(2) / "sami" / "telemetry.jsonl").write_text('{"step": 1, "loss": 9}\n{"st')
    spy.fail_at = None
    summaries = run_expert_iteration(config, RunLayout(run_dir), cache)
    assert spy.calls == [1, 2, 2]  # only iteration 2's training reran
    assert summaries[0]["generation_skipped"] and summaries[0]["trainers"]["sami"]["skipped"]
    assert summaries[1]["generation_skipped"] and not summaries[1]["trainers"]["sami"]["skipped"]
    assert not debris.exists()
    telemetry = read_jsonl(RunLayout(run_dir).iteration(2) / "sami" / "telemetry.jsonl")
    assert [r["step"] for r in telemetry] == [1] and telemetry[0]["loss"] != 9
    first_checkpoint = weights(RunLayout(run_dir).checkpoint(1, "sami"))

    # a changed training setting: iteration 1's data is reused, training reruns, and so does everything
    # downstream of iteration 1's checkpoint (iteration 2's generator changed)
    changed = config_for(tiny_dir, learning_rate=5e-3)
    summaries = run_expert_iteration(changed, RunLayout(run_dir), cache)
    assert spy.calls == [1, 2, 2, 1, 2]
    assert summaries[0]["generation_skipped"] and not summaries[0]["trainers"]["sami"]["skipped"]
    assert not summaries[1]["generation_skipped"] and not summaries[1]["trainers"]["sami"]["skipped"]
    assert any(not torch.equal(first_checkpoint[k], v) for k, v in weights(RunLayout(run_dir).checkpoint(1, "sami")).items())
    # a setting that does not affect training or data (evaluation) reruns nothing
    unrelated = changed.model_copy(deep=True)
    unrelated.eval.mi_queries = 5
    run_expert_iteration(unrelated, RunLayout(run_dir), cache)
    assert spy.calls == [1, 2, 2, 1, 2]


def copy_base_trainer(job):
    """A stand-in comparison trainer: records its job and saves the base weights unchanged."""
    from harness.models.loading import load_causal_lm, load_tokenizer, resolve_model

    resolved = resolve_model(job.model)
    load_causal_lm(resolved, job.model).save_pretrained(job.output_dir, safe_serialization=True)
    load_tokenizer(resolved, job.model).save_pretrained(job.output_dir)
    job.telemetry_path.write_text(json.dumps({"step": 1, "groups": [g.query.id for g in job.groups]}) + "\n")
    return job.output_dir


def test_compare_trainers_share_the_data(tiny_dir, tmp_path, spy, monkeypatch):
    monkeypatch.setitem(trainer_registry.trainers._entries, "copy", ("test_iterate:copy_base_trainer", "test"))
    config = config_for(tiny_dir, iterations=1)
    config.compare_trainers = ["copy"]
    run_dir = tmp_path / "run"
    summary = run_expert_iteration(config, RunLayout(run_dir), ContentCache(tmp_path / "cache.sqlite"))[0]
    assert set(summary["trainers"]) == {"sami", "copy"}
    items = [r["item"] for r in read_jsonl(RunLayout(run_dir).iteration(1) / "data.jsonl")]
    assert sorted(read_jsonl(RunLayout(run_dir).iteration(1) / "copy" / "telemetry.jsonl")[0]["groups"]) == sorted(items)
    assert (RunLayout(run_dir).checkpoint(1, "copy") / "model.safetensors").is_file()
