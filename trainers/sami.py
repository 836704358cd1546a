"""SAMI: Self-Supervised Alignment with Mutual Information (Franken et al., NeurIPS 2024, arXiv 2404.14313).

For each query x the previous iterate generated one response y_j under each of C constitutions c_1..c_C.
SAMI scores every (constitution, response) pair with the policy being trained,

    L[i, j] = (1/|y_j|) sum_t log pi_theta(y_j,t | prompt(x, c_i), y_j,<t)        (per-token mean; paper code)

(rows: constitutions, columns: responses, diagonal: matched pairs) and minimises the symmetric InfoNCE /
CLIP-style contrastive loss of the paper's objective (section 3, eq. 3-4):

    L_SAMI = 1/2 [ (1/C) sum_i -log softmax_j(L[i, :])[i]   +   (1/C) sum_j -log softmax_i(L[:, j])[j] ],

averaged over queries. ``log C - L_SAMI`` is the InfoNCE lower bound on the conditional mutual information
I(Y; C | X) in nats (Oord et al. 2018; Poole et al. 2019). No temperature, no reference model; the optional
KL(pi_theta || pi_base) penalty (``train.kl_beta``, 0 in every paper run) is defined in ``token_kl``.

Training follows the paper's expert iteration, implementing the *intended* algorithm: restart from the base
weights at every iteration, ``job.steps`` optimizer steps of ``train.queries_per_step`` queries, gradients
accumulated over micro-batches of ``train.micro_batch_queries`` queries (never zeroed between micro-steps; the
paper-era trainer did), constant learning rate, AdamW or RMSprop, optional gradient clipping, LoRA and
mixed precision. Under ``torchrun``/``accelerate launch`` the queries of each step are split across processes and
the gradients averaged, so the global batch and the update are the same as in one process.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from harness.flow.generate import QueryGroup
from harness.models.logprobs import EncodedBatch, response_logprobs, window_logits, window_token_logprobs
from harness.models.prompts import Format, render_for_scoring, resolve_format
from harness.tasks import Task
from trainers.base import TrainingJob
from trainers.common import (GroupEncoder, Telemetry, apply_lora, distributed_state, load_base, load_frozen_reference,
                             make_accelerator, make_optimizer, micro_batches, process_shard, release,
                             save_checkpoint, schedule_tag, seed_everything, step_schedule)

ESTIMATOR = "InfoNCE lower bound on I(Y;C|X), log C - L_SAMI"


# --- the objective --------------------------------------------------------------------------------------

def _as_batch(logprobs: torch.Tensor) -> torch.Tensor:
    if logprobs.dim() == 2:
        logprobs = logprobs.unsqueeze(0)
    if logprobs.dim() != 3 or logprobs.shape[-1] != logprobs.shape[-2]:
        raise ValueError(f"expected a (C, C) or (B, C, C) log-prob matrix, got shape {tuple(logprobs.shape)}")
    return logprobs


def sami_loss_per_query(logprobs: torch.Tensor) -> torch.Tensor:
    """The SAMI loss of each query: shape (B,) for a (B, C, C) input (a (C, C) input counts as B = 1).

    Row i is a C-way classification of which response was generated under constitution i, column j of which
    constitution generated response j; both use the raw log-probs as logits (no temperature), target = diagonal.
    """
    L = _as_batch(logprobs)
    B, C, _ = L.shape
    target = torch.arange(C, device=L.device).expand(B, C)
    rows = F.cross_entropy(L.reshape(B * C, C), target.reshape(-1), reduction="none").view(B, C).mean(-1)
    cols = F.cross_entropy(L.transpose(1, 2).reshape(B * C, C), target.reshape(-1), reduction="none")
    return (rows + cols.view(B, C).mean(-1)) / 2


def sami_loss(logprobs: torch.Tensor) -> torch.Tensor:
    """SAMI's contrastive loss (Franken et al. 2024, eq. 3-4): the mean of the row-wise and the column-wise
    cross-entropy of ``logprobs`` against its diagonal, averaged over the batch.

    ``logprobs`` has shape (C, C) or (B, C, C); ``logprobs[..., i, j]`` is the per-token mean log-probability of
    response j under constitution i. Returns a scalar; for equal log-probs it is log C (ln 2 ~ 0.693 at C = 2).
    """
    return sami_loss_per_query(logprobs).mean()


def infonce_estimate(loss, n_constitutions: int):
    """``log C - loss``: the InfoNCE lower bound on I(Y; C | X) in nats (at most log C)."""
    return math.log(n_constitutions) - loss


def diagonal_gap(logprobs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per query: (mean diagonal log-prob, mean off-diagonal log-prob)."""
    L = _as_batch(logprobs)
    C = L.shape[-1]
    eye = torch.eye(C, dtype=torch.bool, device=L.device)
    diagonal = L[:, eye].mean(-1)
    off = L[:, ~eye].mean(-1) if C > 1 else torch.zeros_like(diagonal)
    return diagonal, off


# --- the log-prob matrix ---------------------------------------------------------------------------------

def scoring_pairs(task: Task, groups: list[QueryGroup], tokenizer, fmt: Format,
                  principles_in_system: bool = False) -> tuple[list[str], list[str]]:
    """(context, continuation) for every (query, constitution i, response j), in that nesting order.

    Contexts use the task's TRAINING prompt (the paper trains on a shorter prompt than it generates with)."""
    contexts, continuations = [], []
    for group in groups:
        prompts = [task.training_prompt(group.query, c.text) for c in group.constitutions]
        for prompt in prompts:
            for response in group.responses:
                context, continuation = render_for_scoring(prompt, response, fmt, tokenizer, principles_in_system)
                contexts.append(context)
                continuations.append(continuation)
    return contexts, continuations


def group_size(groups: list[QueryGroup]) -> int:
    sizes = {len(g.constitutions) for g in groups} | {len(g.responses) for g in groups}
    if len(sizes) != 1:
        raise ValueError(f"every query needs the same number C of constitutions and responses, got {sorted(sizes)}")
    return sizes.pop()


def token_kl(logits: torch.Tensor, reference_logits: torch.Tensor) -> torch.Tensor:
    """KL(pi_theta || pi_base) at each position, exact over the vocabulary:

        KL_t = sum_v pi_theta(v | h_t) [log pi_theta(v | h_t) - log pi_base(v | h_t)],

    where h_t is the sequence prefix (prompt of constitution i, tokens of response j before t). Summing over the
    vocabulary avoids the bias of a sampled estimator: the responses come from the previous iterate, not from
    pi_theta. The penalty is the mean of KL_t over the response tokens of all C x C sequences of a query."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    logq = torch.log_softmax(reference_logits.float(), dim=-1)
    return (logp.exp() * (logp - logq)).sum(-1)


def logprob_matrix(model, batch: EncodedBatch, n_queries: int, n_constitutions: int, summed: bool = False,
                   reference: Callable[[EncodedBatch, int], torch.Tensor] | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The (B, C, C) log-prob matrix of ``batch`` (encoded in ``scoring_pairs`` order), and with ``reference``
    (a function returning the base model's ``window_logits``) the per-query mean response-token KL to the base
    model."""
    C = n_constitutions
    if reference is None:
        total, count = response_logprobs(model, batch)
        kl = None
    else:
        logits, token_logprobs, mask, keep = window_token_logprobs(model, batch)
        total, count = (token_logprobs * mask).sum(-1), mask.sum(-1)
        with torch.no_grad():
            reference_logits = reference(batch, keep)
        per_token = token_kl(logits, reference_logits)
        kl_sum = (per_token * mask).view(n_queries, C * C, -1).sum((-1, -2))
        kl = kl_sum / mask.view(n_queries, C * C, -1).sum((-1, -2)).clamp(min=1)
    scores = total if summed else total / count.clamp(min=1)
    return scores.view(n_queries, C, C), kl


@dataclass
class StepStats:
    """Sums over this step's queries (reduced across processes) and the step's counts."""

    loss: float
    objective: float
    diagonal: float
    off_diagonal: float
    kl: float
    queries: int
    at_prompt_limit: int
    tokens: int
    response_tokens: int
    seconds: float


class SamiBatcher(GroupEncoder):
    """Encodes query groups as C x C (constitution i's training prompt, response j) batches."""

    def pairs(self, groups: list[QueryGroup]) -> tuple[list[str], list[str]]:
        return scoring_pairs(self.task, groups, self.tokenizer, self.fmt, self.principles_in_system)

    def contexts_at_limit(self, batch: EncodedBatch) -> int:
        """Sequences whose context reached ``max_prompt_tokens``: left-truncated, so the principles at the start of
        the prompt may be gone (the loss then cannot tell the constitutions apart). Raise the limit if non-zero."""
        context_lengths = batch.attention_mask.sum(-1) - batch.response_mask.sum(-1)
        return int((context_lengths >= self.max_prompt_tokens).sum())


def optimizer_step(model, optimizer, accelerator, batcher: SamiBatcher, local_groups: list[QueryGroup],
                   micro_batch_queries: int, global_queries: int, summed: bool = False, kl_beta: float = 0.0,
                   reference: Callable[[EncodedBatch, int], torch.Tensor] | None = None,
                   max_grad_norm: float | None = None) -> StepStats:
    """One optimizer step over this process's share of the step's queries, accumulated over micro-batches.

    Scaling: each micro-batch contributes ``sum_q loss_q * P * K / Q`` (P processes, K micro-batches per
    process, Q queries per global step); ``accelerator.backward`` divides by K and the distributed all-reduce
    averages over P, so the accumulated gradient is exactly the gradient of the mean loss over the Q queries,
    whatever the micro-batch size, and uneven last micro-batches are weighted correctly.
    """
    started = time.perf_counter()
    chunks = micro_batches(local_groups, micro_batch_queries)
    K = accelerator.gradient_accumulation_steps
    if len(chunks) != K:
        raise RuntimeError(f"accelerator accumulates {K} micro-batches but this step has {len(chunks)}")
    P = accelerator.num_processes
    sums = torch.zeros(9, dtype=torch.float64)
    for chunk in chunks:
        C = group_size(chunk)
        batch = batcher.encode(chunk)
        with accelerator.accumulate(model):
            L, kl = logprob_matrix(model, batch, len(chunk), C, summed, reference if kl_beta > 0 else None)
            per_query = sami_loss_per_query(L)
            objective = per_query + kl_beta * kl if kl is not None else per_query
            accelerator.backward(objective.sum() * (P * K / global_queries))
            if accelerator.sync_gradients and max_grad_norm:
                accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            diagonal, off = diagonal_gap(L.detach())
            sums += torch.tensor([per_query.detach().sum().item(), objective.detach().sum().item(),
                                  diagonal.sum().item(), off.sum().item(),
                                  kl.detach().sum().item() if kl is not None else 0.0, len(chunk),
                                  int(batch.attention_mask.sum()), int(batch.response_mask.sum()),
                                  batcher.contexts_at_limit(batch)], dtype=torch.float64)
    if not accelerator.sync_gradients:
        raise RuntimeError("gradient accumulation ended out of step with the optimizer")
    sums = accelerator.reduce(sums.to(accelerator.device), reduction="sum").cpu()
    n = max(sums[5].item(), 1.0)
    return StepStats(loss=sums[0].item() / n, objective=sums[1].item() / n, diagonal=sums[2].item() / n,
                     off_diagonal=sums[3].item() / n, kl=sums[4].item() / n, queries=int(sums[5].item()),
                     tokens=int(sums[6].item()), response_tokens=int(sums[7].item()),
                     at_prompt_limit=int(sums[8].item()), seconds=time.perf_counter() - started)


# --- the trainer ----------------------------------------------------------------------------------------------

def train(job: TrainingJob) -> Path:
    """Train SAMI from the base weights on ``job.groups`` for ``job.steps`` optimizer steps; save a checkpoint
    folder (safetensors + tokenizer) at ``job.output_dir`` and return it."""
    config, train_config = job.config, job.config.train
    seed_everything(train_config.seed)
    base = load_base(config)  # restart from the base weights, never from the previous iterate
    model, tokenizer = base.model, base.tokenizer
    if train_config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
        if train_config.lora:
            model.enable_input_require_grads()
    if train_config.lora:
        model = apply_lora(model, train_config)
    reference_model = load_frozen_reference(config) if train_config.kl_beta > 0 and not train_config.lora else None

    processes = distributed_state().num_processes
    Q, M = train_config.queries_per_step, train_config.micro_batch_queries
    if Q % processes:
        raise ValueError(f"train.queries_per_step={Q} must be divisible by the {processes} processes")
    accumulation = math.ceil(Q // processes / M)
    accelerator = make_accelerator(train_config, accumulation)
    optimizer = make_optimizer(model.parameters(), train_config)
    model, optimizer = accelerator.prepare(model, optimizer)
    if reference_model is not None:
        reference_model.to(accelerator.device)

    def reference(batch: EncodedBatch, keep: int) -> torch.Tensor:
        if reference_model is not None:
            return window_logits(reference_model, batch, keep)
        with accelerator.unwrap_model(model).disable_adapter():  # LoRA: the adapter-free model is the base
            return window_logits(model, batch, keep)

    batcher = SamiBatcher(job.task, tokenizer, resolve_format(config.model.prompt_format, tokenizer),
                          config.model.principles_in == "system", train_config.max_prompt_tokens,
                          train_config.max_response_tokens)
    schedule = step_schedule(job.groups, job.steps, Q, train_config.seed, tag=schedule_tag(job.iteration))
    telemetry = Telemetry(job.telemetry_path, job.steps, f"sami iter {job.iteration}",
                          enabled=accelerator.is_main_process)
    model.train()
    last: StepStats | None = None
    warned = False
    try:
        for step, batch in enumerate(schedule, 1):
            local = process_shard(batch, accelerator.process_index, processes)
            last = optimizer_step(model, optimizer, accelerator, batcher, local, M, Q, train_config.summed_logprobs,
                                  train_config.kl_beta, reference, train_config.max_grad_norm)
            C = group_size(batch)
            record = {
                "trainer": "sami", "iteration": job.iteration, "step": step, "loss": last.loss,
                "mi_nats": infonce_estimate(last.loss, C), "log_C": math.log(C),
                "diag_logprob": last.diagonal, "offdiag_logprob": last.off_diagonal,
                "diag_gap": last.diagonal - last.off_diagonal, "kl": last.kl if train_config.kl_beta > 0 else None,
                "objective": last.objective, "lr": optimizer.param_groups[0]["lr"], "queries": last.queries,
                "tokens": last.tokens, "response_tokens": last.response_tokens, "step_time_s": last.seconds,
                "tokens_per_s": last.tokens / max(last.seconds, 1e-9), "processes": processes,
                "contexts_at_prompt_limit": last.at_prompt_limit,
            }
            if last.at_prompt_limit and not warned:
                warned = True
                warnings.warn(f"{last.at_prompt_limit} training contexts reached train.max_prompt_tokens="
                              f"{train_config.max_prompt_tokens} and were cut from the left, which can remove the "
                              "principles; raise train.max_prompt_tokens", stacklevel=2)
            telemetry.log(record, {"loss": last.loss, "mi": record["mi_nats"], "gap": record["diag_gap"]})
    finally:
        telemetry.close()
    info = {"trainer": "sami", "iteration": job.iteration, "steps": job.steps, "queries_per_step": Q,
            "base_model": base.resolved.identity, "config_hash": config.hash(), "groups": len(job.groups)}
    output = save_checkpoint(accelerator, model, tokenizer, Path(job.output_dir), info)
    accelerator.free_memory()
    release(model, optimizer, reference_model)
    return output
