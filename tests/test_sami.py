"""SAMI: the loss against hand-computed values, masking, gradient accumulation, LoRA/KL options, and
(slow) a 2-process torchrun run against the 1-process trajectory. Tiny random models only."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from tiny_models import build_tiny_model, synthetic_groups, tiny_config  # noqa: I001

from harness.models.logprobs import encode_pairs, response_logprobs, response_window
from harness.tasks import get_task
from harness.flow.train import TrainingJob
from harness.objectives import diagonal_gap, infonce_estimate, sami_loss, sami_loss_per_query, scoring_pairs
from trainers.sami import SamiBatcher, logprob_matrix, optimizer_step, train

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def load(tiny_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_dir), AutoTokenizer.from_pretrained(tiny_dir)


# --- the loss ------------------------------------------------------------------------------------------------

def test_loss_2x2_by_hand():
    L = torch.tensor([[-1.0, -3.0], [-2.0, -0.5]])
    # rows (which response belongs to constitution i): log(1 + e^(off - diag))
    rows = (math.log1p(math.exp(-3.0 + 1.0)) + math.log1p(math.exp(-2.0 + 0.5))) / 2
    # columns (which constitution generated response j)
    cols = (math.log1p(math.exp(-2.0 + 1.0)) + math.log1p(math.exp(-3.0 + 0.5))) / 2
    assert rows == pytest.approx(0.1641706445, abs=1e-9) and cols == pytest.approx(0.1960757109, abs=1e-9)
    assert sami_loss(L).item() == pytest.approx((rows + cols) / 2, abs=1e-6)
    assert sami_loss(L).item() == pytest.approx(0.1801231777, abs=1e-6)


def test_loss_3x3_by_hand():
    L = [[-1.0, -2.0, -4.0], [-3.0, -0.5, -1.0], [-2.0, -2.5, -1.5]]

    def lse(values):
        return math.log(sum(math.exp(v) for v in values))

    rows = sum(lse(L[i]) - L[i][i] for i in range(3)) / 3
    cols = sum(lse([L[k][j] for k in range(3)]) - L[j][j] for j in range(3)) / 3
    assert (rows + cols) / 2 == pytest.approx(0.5452915871, abs=1e-9)
    assert sami_loss(torch.tensor(L)).item() == pytest.approx(0.5452915871, abs=1e-6)


def test_loss_matches_c2_closed_form_on_a_batch():
    generator = torch.Generator().manual_seed(0)
    L = torch.randn(16, 2, 2, generator=generator, dtype=torch.float64) * 3
    d0, d1 = L[:, 0, 0], L[:, 1, 1]
    # mean of -log sigmoid(diagonal - off-diagonal), along rows and along columns
    terms = torch.stack([-torch.nn.functional.logsigmoid(d0 - L[:, 0, 1]),   # row 0
                         -torch.nn.functional.logsigmoid(d1 - L[:, 1, 0]),   # row 1
                         -torch.nn.functional.logsigmoid(d0 - L[:, 1, 0]),   # column 0
                         -torch.nn.functional.logsigmoid(d1 - L[:, 0, 1])])  # column 1
    assert torch.allclose(sami_loss_per_query(L), terms.mean(0), atol=1e-12)
    assert sami_loss(L).item() == pytest.approx(terms.mean().item(), abs=1e-12)


@pytest.mark.parametrize("C", [2, 3, 4, 7])
def test_equal_logprobs_give_log_c_and_zero_information(C):
    L = torch.full((3, C, C), -2.5)
    assert sami_loss(L).item() == pytest.approx(math.log(C), abs=1e-6)
    assert infonce_estimate(sami_loss(L).item(), C) == pytest.approx(0.0, abs=1e-6)
    assert sami_loss(torch.full((2, 2), -1.0)).item() == pytest.approx(math.log(2), abs=1e-6)  # ~0.693


def test_loss_is_batch_mean_and_rejects_bad_shapes():
    L = torch.randn(5, 3, 3)
    assert sami_loss(L).item() == pytest.approx(torch.stack([sami_loss(m) for m in L]).mean().item(), abs=1e-6)
    diagonal, off = diagonal_gap(L)
    assert diagonal.shape == (5,) and off.shape == (5,)
    with pytest.raises(ValueError):
        sami_loss(torch.zeros(2, 3))


# --- the log-prob matrix ----------------------------------------------------------------------------------------

def matrix(model, tokenizer, groups, summed=False):
    batcher = SamiBatcher(get_task("tldr"), tokenizer, "base", max_prompt_tokens=256, max_response_tokens=64)
    with torch.no_grad():
        L, _ = logprob_matrix(model, batcher.encode(groups), len(groups), 2, summed)
    return L


def test_matrix_layout_and_masking(tiny_dir):
    model, tokenizer = load(tiny_dir)
    model.eval()
    task = get_task("tldr")
    groups = synthetic_groups(3)
    alone = matrix(model, tokenizer, groups[:1])
    # 1. more right padding (batched with longer sequences) does not change the first query's matrix
    padded = matrix(model, tokenizer, groups)
    assert torch.allclose(alone[0], padded[0], atol=1e-5)
    # 2. neither does the pad token id (the tokens written into padding positions)
    tokenizer.pad_token = tokenizer.eos_token
    assert torch.allclose(alone[0], matrix(model, tokenizer, groups)[0], atol=1e-5)
    tokenizer.pad_token = "<pad>"
    # 3. the response mask covers exactly the continuation's tokens, and the layout is [query, i, j]
    contexts, continuations = scoring_pairs(task, groups[:1], tokenizer, "base")
    assert contexts[0] == contexts[1] != contexts[2] and continuations[0] == continuations[2] != continuations[1]
    batch = encode_pairs(tokenizer, contexts, continuations)
    for row, continuation in enumerate(continuations):
        expected = tokenizer(continuation, add_special_tokens=False).input_ids
        assert batch.input_ids[row][batch.response_mask[row].bool()].tolist() == expected
    # 4. the entries are the per-token means of the response tokens (prompt excluded), summed on request
    summed = matrix(model, tokenizer, groups[:1], summed=True)
    counts = batch.response_mask.sum(-1).view(2, 2).float()
    assert torch.allclose(summed[0] / counts, alone[0], atol=1e-5)
    # 5. a different prompt (other constitution) changes the row, not the padding
    assert not torch.allclose(alone[0][0], alone[0][1])


def test_windowed_logprobs_equal_the_full_logits_computation(tiny_dir):
    """Only the positions that predict response tokens get logits (``logits_to_keep``); the log-probs, and their
    gradients, equal the naive computation over every position, for contexts of different lengths and an
    empty response."""
    model, tokenizer = load(tiny_dir)
    contexts = ["a b c d e f g h i j k l", "a b", "a b c d e"]
    continuations = [" one two", " three four five six", ""]
    batch = encode_pairs(tokenizer, contexts, continuations)
    assert response_window(batch) < batch.input_ids.shape[1]  # the long context's prefix is skipped

    total, count = response_logprobs(model, batch)
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[:, :-1].float()
    full = torch.log_softmax(logits, -1).gather(-1, batch.input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    naive = (full * batch.response_mask[:, 1:]).sum(-1)
    assert torch.allclose(total, naive, atol=1e-5)
    assert count.tolist() == batch.response_mask.sum(-1).tolist() and count[2] == 0

    windowed_grad = torch.autograd.grad(total.sum(), model.lm_head.weight)[0]
    naive_grad = torch.autograd.grad(naive.sum(), model.lm_head.weight)[0]
    assert torch.allclose(windowed_grad, naive_grad, atol=1e-5)


# --- gradient accumulation ------------------------------------------------------------------------------------------

def sgd_step(tiny_dir, groups, micro, accumulation, zero_between=False):
    from trainers.common import make_accelerator

    model, tokenizer = load(tiny_dir)
    config = tiny_config(tiny_dir)
    accelerator = make_accelerator(config.train, accumulation)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()
    batcher = SamiBatcher(get_task("tldr"), tokenizer, "base", max_prompt_tokens=256, max_response_tokens=64)
    stats = optimizer_step(model, optimizer, accelerator, batcher, groups, micro, len(groups))
    return {n: p.detach().clone() for n, p in accelerator.unwrap_model(model).named_parameters()}, stats


def test_four_micro_batches_equal_one_batch_of_four(tiny_dir):
    groups = synthetic_groups(4)
    base, _ = load(tiny_dir)
    initial = {n: p.detach().clone() for n, p in base.named_parameters()}
    accumulated, stats_a = sgd_step(tiny_dir, groups, micro=1, accumulation=4)
    full, stats_f = sgd_step(tiny_dir, groups, micro=4, accumulation=1)
    uneven, _ = sgd_step(tiny_dir, groups, micro=3, accumulation=2)  # micro-batches of 3 and 1 queries
    assert stats_a.loss == pytest.approx(stats_f.loss, abs=1e-5) and stats_a.queries == 4
    # independent reference: the gradient of sami_loss over the whole (4, C, C) matrix
    model, tokenizer = load(tiny_dir)
    batcher = SamiBatcher(get_task("tldr"), tokenizer, "base", max_prompt_tokens=256, max_response_tokens=64)
    L, _ = logprob_matrix(model, batcher.encode(groups), 4, 2)
    sami_loss(L).backward()
    moved = 0
    for name, p in model.named_parameters():
        reference = initial[name] - p.grad  # SGD, lr 1
        assert torch.allclose(full[name], reference, atol=1e-5), name
        assert torch.allclose(accumulated[name], reference, atol=1e-5), name
        assert torch.allclose(uneven[name], reference, atol=1e-5), name
        moved += int(not torch.equal(full[name], initial[name]))
    assert moved > 0


# --- the trainer -------------------------------------------------------------------------------------------------

def run_train(tiny_dir, out: Path, steps=2, groups=None, **train):
    config = tiny_config(tiny_dir, **train)
    job = TrainingJob.from_config(config, get_task("tldr"), groups or synthetic_groups(6), 1, steps, out / "checkpoint",
                      out / "telemetry.jsonl")
    return train_fn(job), [json.loads(line) for line in (out / "telemetry.jsonl").read_text().splitlines()]


train_fn = train


def test_train_writes_checkpoint_and_telemetry(tiny_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    checkpoint, rows = run_train(tiny_dir, tmp_path, steps=3, max_grad_norm=1.0, optimizer="rmsprop")
    assert sorted(p.name for p in checkpoint.glob("*.safetensors")) == ["model.safetensors"]
    assert (checkpoint / "tokenizer.json").is_file() and (checkpoint / "training_info.json").is_file()
    assert not list(tmp_path.glob(".checkpoint*"))  # no staging debris
    assert [r["step"] for r in rows] == [1, 2, 3]
    for row in rows:
        assert row["mi_nats"] == pytest.approx(math.log(2) - row["loss"])
        assert row["diag_gap"] == pytest.approx(row["diag_logprob"] - row["offdiag_logprob"])
        assert row["tokens_per_s"] > 0 and row["lr"] == 1e-3 and row["queries"] == 4
    assert rows[-1]["loss"] < rows[0]["loss"]  # lr 1e-3 on a tiny model: the objective moves
    trained = AutoModelForCausalLM.from_pretrained(checkpoint)
    base, _ = load(tiny_dir)
    assert any(not torch.equal(a, b) for a, b in zip(trained.state_dict().values(), base.state_dict().values()))


def test_train_is_seeded(tiny_dir, tmp_path):
    _, first = run_train(tiny_dir, tmp_path / "a", steps=2)
    _, second = run_train(tiny_dir, tmp_path / "b", steps=2)
    assert [r["loss"] for r in first] == pytest.approx([r["loss"] for r in second], abs=1e-6)


def test_lora_with_kl_saves_a_merged_plain_model(tiny_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    checkpoint, rows = run_train(tiny_dir, tmp_path, steps=2, lora=True, lora_rank=4, kl_beta=0.5,
                                 learning_rate=1e-2)
    assert not (checkpoint / "adapter_config.json").exists()
    assert rows[0]["kl"] == pytest.approx(0.0, abs=1e-6)  # LoRA B starts at zero: pi_theta = pi_base
    assert rows[1]["kl"] > 0 and rows[1]["objective"] == pytest.approx(rows[1]["loss"] + 0.5 * rows[1]["kl"], abs=1e-5)
    trained = AutoModelForCausalLM.from_pretrained(checkpoint)
    assert not any("lora" in name for name in trained.state_dict())


def test_full_finetune_kl_uses_a_frozen_reference(tiny_dir, tmp_path):
    _, rows = run_train(tiny_dir, tmp_path, steps=2, kl_beta=0.1)
    assert rows[0]["kl"] == pytest.approx(0.0, abs=1e-6) and rows[1]["kl"] > 0


# --- 2 processes under torchrun ---------------------------------------------------------------------------------

WORKER = """
import json, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from tiny_models import synthetic_groups, tiny_config
from harness.tasks import get_task
from harness.flow.train import TrainingJob
from trainers.sami import train
out = Path(sys.argv[1])
config = tiny_config(Path({model!r}), queries_per_step=4, micro_batch_queries=1)
train(TrainingJob.from_config(config, get_task("tldr"), synthetic_groups(6), 1, 3, out / "checkpoint", out / "telemetry.jsonl"))
"""


@pytest.mark.slow
def test_two_processes_match_one_process(tiny_dir, tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(WORKER.format(tests=str(Path(__file__).parent), model=str(tiny_dir))))
    _, single = run_train(tiny_dir, tmp_path / "one", steps=3)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                             "--standalone", str(script), str(tmp_path / "two")],
                            env=env, capture_output=True, text=True, timeout=110)
    assert result.returncode == 0, result.stderr[-3000:]
    double = [json.loads(line) for line in (tmp_path / "two" / "telemetry.jsonl").read_text().splitlines()]
    assert [r["processes"] for r in double] == [2, 2, 2] and [r["queries"] for r in double] == [4, 4, 4]
    assert [r["loss"] for r in double] == pytest.approx([r["loss"] for r in single], rel=1e-4, abs=1e-5)
    from safetensors.torch import load_file

    one = load_file(tmp_path / "one" / "checkpoint" / "model.safetensors")
    two = load_file(tmp_path / "two" / "checkpoint" / "model.safetensors")
    assert all(torch.allclose(one[k], two[k], atol=1e-5) for k in one)
