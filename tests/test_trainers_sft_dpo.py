"""The SFT and DPO baselines: pairs, losses against hand-computed values, equal terms with SAMI (same queries and
responses per optimizer step, same number of steps, restart from base), exact gradient accumulation, checkpoints
and telemetry. Tiny random models only (``tests/tiny_models.py``: a 2-layer llama, hidden 64, in-memory BPE
tokenizer, so nothing here needs the embedded model)."""

from __future__ import annotations

import inspect
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.optim.optimizer import register_optimizer_step_pre_hook

from tiny_models import build_tiny_model, synthetic_groups, tiny_config  # noqa: I001

from harness.models.logprobs import encode_pairs
from harness.tasks import get_task
from harness.flow.train import TrainingJob, get_trainer, trainers
from trainers.dpo import PairBatcher, dpo_pairs, preference_loss, resolve_beta, sequence_logprobs
from harness.objectives import scoring_pairs
from trainers.sami import SamiBatcher, logprob_matrix
from trainers.sft import micro_batch_size, sft_pairs, sft_rows

torch.set_num_threads(1)
TASK = get_task("tldr")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", hidden=64, layers=2)


@pytest.fixture(scope="module")
def groups():
    return synthetic_groups(6)


def load(tiny_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_dir), AutoTokenizer.from_pretrained(tiny_dir)


def make_job(tiny_dir, tmp_path, groups, name="run", iteration=1, steps=2, dpo=None, sft=None, **train) -> TrainingJob:
    config = tiny_config(tiny_dir, **train)
    for key, value in (dpo or {}).items():
        setattr(config.dpo, key, value)
    for key, value in (sft or {}).items():
        setattr(config.sft, key, value)
    return TrainingJob.from_config(config, TASK, groups, iteration, steps, tmp_path / f"{name}-it{iteration}",
                       tmp_path / f"{name}-it{iteration}.jsonl")


def telemetry(job: TrainingJob) -> list[dict]:
    return [json.loads(line) for line in job.telemetry_path.read_text().splitlines()]


class OptimizerSteps:
    """Counts real optimizer steps (any torch optimizer) and keeps the parameters and gradients seen before the
    first one: the weights each training run starts from."""

    def __init__(self):
        self.count = 0
        self.first_params: list[torch.Tensor] | None = None
        self.first_grads: list[torch.Tensor] | None = None

    def __call__(self, optimizer, args, kwargs):
        if self.count == 0:
            params = [p for group in optimizer.param_groups for p in group["params"]]
            self.first_params = [p.detach().clone() for p in params]
            self.first_grads = [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in params]
        self.count += 1

    def __enter__(self):
        self.handle = register_optimizer_step_pre_hook(self)
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def fingerprint(tensors) -> list[tuple]:
    """An order-free summary of a set of tensors (the Trainer groups parameters differently from SAMI)."""
    return sorted((tuple(t.shape), round(t.double().sum().item(), 5), round(t.double().square().sum().item(), 5))
                  for t in tensors)


# --- registry and defaults ----------------------------------------------------------------------------------

def test_registry_lists_the_three_trainers():
    assert {"sami", "sft", "dpo"} <= set(trainers.names())
    descriptions = dict(trainers.describe())
    assert all(descriptions[name] for name in ("sami", "sft", "dpo"))
    assert callable(get_trainer("sft")) and callable(get_trainer("dpo"))


def test_beta_defaults_follow_the_task_and_loss():
    from harness.config import DPOConfig

    assert resolve_beta(DPOConfig(), get_task("tldr")) == 0.5
    assert resolve_beta(DPOConfig(), get_task("heldout")) == 0.5
    assert resolve_beta(DPOConfig(), get_task("dialogue")) == 0.1
    assert resolve_beta(DPOConfig(loss_type="ipo"), get_task("dialogue")) == 0.1
    assert resolve_beta(DPOConfig(loss_type="simpo"), get_task("tldr")) == 2.0
    assert resolve_beta(DPOConfig(beta=0.3), get_task("dialogue")) == 0.3


# --- the pairs ------------------------------------------------------------------------------------------------

def test_dpo_pairs_are_the_cplus_and_cminus_responses_of_the_same_query(groups):
    contexts, continuations = dpo_pairs(TASK, groups, None, "base")
    assert len(contexts) == 2 * len(groups)
    for k, group in enumerate(groups):
        cplus_prompt = TASK.training_prompt(group.query, group.constitutions[0].text).base_text
        chosen, rejected = 2 * k, 2 * k + 1
        assert contexts[chosen] == contexts[rejected] == cplus_prompt       # prompt = (x, c+)
        assert group.query.text in cplus_prompt and group.constitutions[0].text in cplus_prompt
        assert group.constitutions[1].text not in cplus_prompt
        assert continuations[chosen] == f" {group.responses[0]}"             # chosen = response under c+
        assert continuations[rejected] == f" {group.responses[1]}"           # rejected = response under c-


def test_dpo_scores_exactly_the_cplus_row_of_samis_matrix(tiny_dir, groups):
    """Same tokens as SAMI: SimPO with beta = 1, gamma = 0 equals SAMI's row term for c+ (C = 2)."""
    model, tokenizer = load(tiny_dir)
    with torch.no_grad():
        sami_batch = SamiBatcher(TASK, tokenizer, "base").encode(groups)
        L, _ = logprob_matrix(model, sami_batch, len(groups), 2)
        policy, counts = sequence_logprobs(model, PairBatcher(TASK, tokenizer, "base").encode(groups), len(groups), 2)
    row_term = -F.logsigmoid(L[:, 0, 0] - L[:, 0, 1])
    simpo = preference_loss(policy, counts, None, "simpo", beta=1.0, gamma=0.0).per_query
    assert torch.allclose(simpo, row_term, atol=1e-5)
    assert torch.allclose(policy / counts, L[:, 0, :], atol=1e-5)


def test_sft_trains_on_the_cplus_diagonal_tokens_and_the_variant_drops_the_principles(tiny_dir, groups):
    _, tokenizer = load(tiny_dir)
    rows = sft_rows(TASK, groups, tokenizer, "base", False, True, 256, 64)
    contexts, continuations = scoring_pairs(TASK, groups, tokenizer, "base")
    C = 2
    diagonal = [k * C * C for k in range(len(groups))]   # (query k, constitution 0, response 0)
    expected = encode_pairs(tokenizer, [contexts[i] for i in diagonal], [continuations[i] for i in diagonal], 256, 64)
    for row, ids, attention, response in zip(rows, expected.input_ids, expected.attention_mask, expected.response_mask):
        n = int(attention.sum())
        assert row["input_ids"] == ids[:n].tolist() and row["completion_mask"] == response[:n].tolist()

    plain, plain_continuations = sft_pairs(TASK, groups, tokenizer, "base", keep_principles=False)
    for context, continuation, group in zip(plain, plain_continuations, groups):
        assert context == TASK.training_prompt(group.query, "").base_text
        assert group.query.text in context
        assert all(c.text not in context for c in group.constitutions)
        assert continuation == f" {group.responses[0]}"


def test_micro_batch_size_never_straddles_a_step():
    assert micro_batch_size(4, 1) == 1 and micro_batch_size(4, 4) == 4 and micro_batch_size(4, 3) == 2
    assert micro_batch_size(6, 4) == 3 and micro_batch_size(4, 9) == 4


# --- the losses -----------------------------------------------------------------------------------------------

def test_preference_losses_by_hand():
    policy = torch.tensor([[-10.0, -14.0]])
    reference = torch.tensor([[-11.0, -12.0]])
    counts = torch.tensor([[5, 8]])
    # sigmoid: beta * [(-10 + 11) - (-14 + 12)] = 0.5 * 3 = 1.5; -log sigmoid(1.5) = log(1 + e^-1.5)
    out = preference_loss(policy, counts, reference, "sigmoid", beta=0.5)
    assert out.per_query.item() == pytest.approx(math.log1p(math.exp(-1.5)), abs=1e-6)
    assert out.per_query.item() == pytest.approx(0.2014132780, abs=1e-6)
    assert out.margin.item() == pytest.approx(1.5) and out.chosen.item() == pytest.approx(0.5)
    # ipo: h = 1/5 - (-2)/8 = 0.45; (h - 1/(2 * 0.5))^2 = 0.55^2
    out = preference_loss(policy, counts, reference, "ipo", beta=0.5)
    assert out.per_query.item() == pytest.approx(0.3025, abs=1e-6)
    assert out.margin.item() == pytest.approx(0.45)
    # simpo: 2 * (-10/5) - 2 * (-14/8) = -4 + 3.5 = -0.5; -log sigmoid(-0.5 - 1) = log(1 + e^1.5); no reference
    out = preference_loss(policy, counts, None, "simpo", beta=2.0, gamma=1.0)
    assert out.per_query.item() == pytest.approx(math.log1p(math.exp(1.5)), abs=1e-6)
    assert out.per_query.item() == pytest.approx(1.7014132780, abs=1e-6)
    assert out.margin.item() == pytest.approx(-0.5)


def test_preference_loss_batches_and_averages_over_rejected_responses():
    policy = torch.tensor([[-10.0, -14.0, -9.0], [-3.0, -2.0, -8.0]])
    reference = torch.tensor([[-11.0, -12.0, -9.5], [-3.0, -3.0, -3.0]])
    counts = torch.tensor([[5, 8, 4], [2, 2, 4]])
    out = preference_loss(policy, counts, reference, "sigmoid", beta=0.1)

    def pair(q, j):
        h = (policy[q, 0] - reference[q, 0]) - (policy[q, j] - reference[q, j])
        return math.log1p(math.exp(-0.1 * h.item()))

    assert out.per_query.tolist() == pytest.approx([(pair(0, 1) + pair(0, 2)) / 2, (pair(1, 1) + pair(1, 2)) / 2],
                                                   abs=1e-6)
    with pytest.raises(ValueError, match="reference"):
        preference_loss(policy, counts, None, "ipo", beta=0.1)
    with pytest.raises(ValueError, match="unknown"):
        preference_loss(policy, counts, reference, "kto", beta=0.1)


def test_dpo_loss_on_a_real_batch_matches_a_token_by_token_computation(tiny_dir, groups):
    """Masking: the summed log-probs are those of the response tokens only, each sequence scored on its own."""
    model, tokenizer = load(tiny_dir)
    batcher = PairBatcher(TASK, tokenizer, "base")
    chunk = groups[:2]
    with torch.no_grad():
        policy, counts = sequence_logprobs(model, batcher.encode(chunk), 2, 2)
        contexts, continuations = dpo_pairs(TASK, chunk, tokenizer, "base")
        by_hand = []
        for context, continuation in zip(contexts, continuations):
            prompt_ids = tokenizer(context).input_ids
            response_ids = tokenizer(continuation, add_special_tokens=False).input_ids
            ids = torch.tensor([prompt_ids + response_ids])
            logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
            by_hand.append(sum(logp[len(prompt_ids) - 1 + t, tok].item() for t, tok in enumerate(response_ids)))
    by_hand = torch.tensor(by_hand).view(2, 2)
    assert torch.allclose(policy, by_hand, atol=1e-3)
    reference = by_hand - torch.tensor([[0.3, -0.2], [0.0, 0.5]])   # a made-up reference
    loss = preference_loss(policy, counts, reference, "sigmoid", beta=0.5).per_query
    expected = [-math.log(1 / (1 + math.exp(-0.5 * (0.3 + 0.2)))), -math.log(1 / (1 + math.exp(-0.5 * (0.0 - 0.5))))]
    assert loss.tolist() == pytest.approx(expected, abs=1e-4)


# --- equal terms with SAMI ------------------------------------------------------------------------------------

def spy_local_groups(monkeypatch, module, record: list):
    """Record the query groups each optimizer step of ``module.train`` consumed (1 process: the whole step)."""
    original = module.optimizer_step
    signature = inspect.signature(original)

    def spy(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        record.append([(g.query.id, tuple(g.responses), tuple(c.text for c in g.constitutions))
                       for g in bound.arguments["local_groups"]])
        return original(*args, **kwargs)

    monkeypatch.setattr(module, "optimizer_step", spy)


def test_sami_sft_and_dpo_see_identical_queries_and_responses(tiny_dir, tmp_path, groups, monkeypatch):
    import trl

    import trainers.dpo
    import trainers.sami

    Q, steps = 4, 2   # 6 queries, 8 slots: the schedule wraps into a second epoch
    seen = {"sami": [], "dpo": []}
    spy_local_groups(monkeypatch, trainers.sami, seen["sami"])
    spy_local_groups(monkeypatch, trainers.dpo, seen["dpo"])
    sft_inputs = []
    original = trl.SFTTrainer.compute_loss

    def sft_spy(self, model, inputs, *args, **kwargs):
        for ids, mask in zip(inputs["input_ids"], inputs["attention_mask"]):
            sft_inputs.append(ids[mask.bool()].tolist())
        return original(self, model, inputs, *args, **kwargs)

    monkeypatch.setattr(trl.SFTTrainer, "compute_loss", sft_spy)
    jobs = {name: make_job(tiny_dir, tmp_path, groups, name, steps=steps, queries_per_step=Q, learning_rate=1e-4)
            for name in ("sami", "sft", "dpo")}
    for name, job in jobs.items():
        get_trainer(name)(job)

    assert len(seen["sami"]) == steps and all(len(step) == Q for step in seen["sami"])
    assert seen["dpo"] == seen["sami"]                       # same queries, constitutions, responses, step by step
    ids = [[item[0] for item in step] for step in seen["sami"]]
    for name in ("sft", "dpo"):
        assert [line["items"] for line in telemetry(jobs[name])] == ids
    # SFT consumed, step after step, the c+ prompt + c+ response tokens of exactly those queries
    by_id = {g.query.id: g for g in groups}
    _, tokenizer = load(tiny_dir)
    expected = [row["input_ids"] for step in ids
                for row in sft_rows(TASK, [by_id[i] for i in step], tokenizer, "base", False, True, 256, 64)]
    assert sft_inputs == expected


@pytest.mark.parametrize("name,extra", [("sami", {}), ("sft", {}), ("dpo", {"dpo": {"loss_type": "sigmoid"}}),
                                        ("dpo", {"dpo": {"loss_type": "simpo"}})])
def test_restart_from_base_and_exact_step_counts(tiny_dir, tmp_path, groups, name, extra):
    base_model, _ = load(tiny_dir)
    base = fingerprint(base_model.parameters())
    runs = []
    for iteration, steps in ((1, 2), (2, 3)):
        job = make_job(tiny_dir, tmp_path, groups, name, iteration=iteration, steps=steps, **extra)
        with OptimizerSteps() as counter:
            output = get_trainer(name)(job)
        runs.append((job, counter, output))
        assert counter.count == steps                        # exactly job.steps optimizer steps
        assert len(telemetry(job)) == steps and [r["step"] for r in telemetry(job)] == list(range(1, steps + 1))
        assert fingerprint(counter.first_params) == base     # every iteration starts from the base weights
    trained, _ = load(runs[0][2])
    assert fingerprint(trained.parameters()) != base         # ...although iteration 1 did move them


def dpo_or_sft_first_gradient(tiny_dir, tmp_path, groups, name, micro, **extra):
    job = make_job(tiny_dir, tmp_path, groups, f"{name}-m{micro}", steps=1, queries_per_step=4,
                   micro_batch_queries=micro, **extra)
    with OptimizerSteps() as counter:
        get_trainer(name)(job)
    return counter.first_grads


def uneven_groups():
    """Responses of different lengths (so padding, and token- vs sequence-level averaging, would show)."""
    from harness.flow.generate import QueryGroup

    words = ["short.", "a bit longer than that.", "far longer, with many more words in it than the others.", "ok."]
    return [QueryGroup(g.query, g.constitutions, [f"The post is {words[k % 4]}", f"The post {'is long ' * (k + 1)}."])
            for k, g in enumerate(synthetic_groups(4))]


@pytest.mark.parametrize("name,extra", [("sft", {}), ("dpo", {"dpo": {"loss_type": "ipo"}})])
def test_gradient_accumulation_is_exact(tiny_dir, tmp_path, name, extra):
    """Micro-batch 1 x accumulation 4 (and an uneven 3 + 1 split for DPO) give the gradient of one batch of 4."""
    groups = uneven_groups()
    one_batch = dpo_or_sft_first_gradient(tiny_dir, tmp_path, groups, name, 4, **extra)
    accumulated = dpo_or_sft_first_gradient(tiny_dir, tmp_path, groups, name, 1, **extra)
    same_order = len(one_batch) == len(accumulated)  # the same trainer: the same parameter order
    assert same_order and all(torch.allclose(a, b, rtol=1e-4, atol=1e-7) for a, b in zip(accumulated, one_batch))
    assert any(g.abs().sum() > 0 for g in one_batch)
    if name == "dpo":
        uneven = dpo_or_sft_first_gradient(tiny_dir, tmp_path, groups, name, 3, **extra)
        assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-7) for a, b in zip(uneven, one_batch))


# --- reference handling, telemetry, checkpoints ---------------------------------------------------------------

@pytest.mark.parametrize("loss_type,first_loss", [("sigmoid", math.log(2)), ("ipo", 1.0)])
def test_precomputed_reference_is_the_base_model(tiny_dir, tmp_path, groups, loss_type, first_loss):
    """Before the first update the policy equals the reference, so the first step's loss is ln 2 (DPO) and
    (1 / (2 beta))^2 = 1 at the TL;DR beta 0.5 (IPO); the second step, after an update, differs."""
    job = make_job(tiny_dir, tmp_path, groups, f"dpo-{loss_type}", dpo={"loss_type": loss_type})
    output = get_trainer("dpo")(job)
    lines = telemetry(job)
    assert lines[0]["loss"] == pytest.approx(first_loss, abs=1e-5)
    assert lines[0]["reward_margin"] == pytest.approx(0.0, abs=1e-5)
    assert lines[1]["loss"] != pytest.approx(first_loss, abs=1e-4)
    assert lines[1]["reward_accuracy"] > 0.5    # the update separates chosen from rejected
    for line in lines:
        assert {"loss", "reward_margin", "reward_accuracy", "tokens_per_s", "items", "lr"} <= set(line)
        assert line["beta"] == 0.5 and line["loss_type"] == loss_type and line["queries"] == 4
    info = json.loads((output / "training_info.json").read_text())
    assert info["reference"].startswith("precomputed") and info["trainer"] == "dpo"


def test_checkpoints_are_saved_like_sami(tiny_dir, tmp_path, groups):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    for name in ("sft", "dpo"):
        job = make_job(tiny_dir, tmp_path, groups, name, steps=1, sft={"keep_principles": False})
        output = get_trainer(name)(job)
        assert output == job.output_dir and (output / "model.safetensors").is_file()
        assert (output / "tokenizer.json").is_file()
        assert json.loads((output / "training_info.json").read_text())["trainer"] == name
        AutoModelForCausalLM.from_pretrained(output)
        AutoTokenizer.from_pretrained(output)
        leftovers = [p.name for p in output.parent.iterdir() if p.name.startswith(f".{output.name}")]
        assert leftovers == []                                # no partial folder, no Trainer scratch folder
        line = telemetry(job)[0]
        assert line["trainer"] == name and line["tokens_per_s"] > 0 and math.isfinite(line["loss"])
    assert telemetry(make_job(tiny_dir, tmp_path, groups, "sft", steps=1))[0]["keep_principles"] is False


# --- 2 processes under torchrun -------------------------------------------------------------------------------

WORKER = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from tiny_models import synthetic_groups, tiny_config
from harness.tasks import get_task
from harness.flow.train import TrainingJob, get_trainer
out = Path(sys.argv[1])
for name in ("dpo", "sft"):
    config = tiny_config(Path({model!r}), queries_per_step=4, micro_batch_queries=1)
    get_trainer(name)(TrainingJob.from_config(config, get_task("tldr"), synthetic_groups(6), 1, 3, out / name / "checkpoint",
                                  out / name / "telemetry.jsonl"))
"""


@pytest.mark.slow
def test_two_processes_match_one_process(tiny_dir, tmp_path):
    """torchrun with 2 processes (each takes half of every step's queries) gives the 1-process trajectory."""
    from safetensors.torch import load_file

    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(WORKER.format(tests=str(Path(__file__).parent), model=str(tiny_dir))))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    runs = {"one": [sys.executable, str(script), str(tmp_path / "one")],
            "two": [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
                    str(script), str(tmp_path / "two")]}
    for command in runs.values():
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=150)
        assert result.returncode == 0, result.stderr[-3000:]
    for name in ("dpo", "sft"):
        single, double = ([json.loads(line) for line in (tmp_path / run / name / "telemetry.jsonl").open()]
                          for run in ("one", "two"))
        assert [r["processes"] for r in double] == [2, 2, 2] and [r["queries"] for r in double] == [4, 4, 4]
        assert [r["items"] for r in double] == [r["items"] for r in single]
        assert [r["loss"] for r in double] == pytest.approx([r["loss"] for r in single], rel=1e-4, abs=1e-5)
        one = load_file(tmp_path / "one" / name / "checkpoint" / "model.safetensors")
        two = load_file(tmp_path / "two" / name / "checkpoint" / "model.safetensors")
        assert all(torch.allclose(one[k], two[k], atol=1e-5) for k in one)


def test_lora_trains_adapters_and_saves_a_merged_plain_model(tiny_dir, tmp_path, groups):
    from transformers import AutoModelForCausalLM

    base_model, _ = load(tiny_dir)
    base = fingerprint(base_model.parameters())
    for name in ("sft", "dpo"):
        job = make_job(tiny_dir, tmp_path, groups, f"{name}-lora", steps=2, lora=True, lora_rank=4)
        output = get_trainer(name)(job)
        merged = AutoModelForCausalLM.from_pretrained(output)
        assert not any("lora" in key for key in merged.state_dict())
        assert fingerprint(merged.parameters()) != base
        if name == "dpo":   # the adapters start at zero: the precomputed reference is the base model
            assert telemetry(job)[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)
