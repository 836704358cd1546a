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

from harness.flow.generate import QueryGroup
from harness.models.logprobs import EncodedBatch, response_logprobs, window_logits, window_token_logprobs
from harness.objectives import diagonal_gap, group_size, infonce_estimate, sami_loss_per_query, scoring_pairs
from harness.flow.train import TrainingJob
from trainers.common import (GroupEncoder, Telemetry, accelerated, accumulate_step, load_base, load_frozen_reference,
                             micro_batches, prepare_for_training, process_shard, save_checkpoint, schedule_tag,
                             seed_everything, step_schedule)


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
    """One optimizer step over this process's share of the step's queries (``accumulate_step``: the update is the
    gradient of the mean objective over the step's queries, whatever the micro-batch size or process count)."""
    started = time.perf_counter()

    def micro_loss(_: int, chunk: list[QueryGroup]) -> tuple[torch.Tensor, dict[str, float]]:
        batch = batcher.encode(chunk)
        L, kl = logprob_matrix(model, batch, len(chunk), group_size(chunk), summed, reference if kl_beta > 0 else None)
        per_query = sami_loss_per_query(L)
        objective = per_query + kl_beta * kl if kl is not None else per_query
        diagonal, off = diagonal_gap(L.detach())
        return objective, {"loss": per_query.detach().sum().item(), "objective": objective.detach().sum().item(),
                           "diagonal": diagonal.sum().item(), "off_diagonal": off.sum().item(),
                           "kl": kl.detach().sum().item() if kl is not None else 0.0, "queries": len(chunk),
                           "tokens": int(batch.attention_mask.sum()), "response_tokens": int(batch.response_mask.sum()),
                           "at_prompt_limit": batcher.contexts_at_limit(batch)}

    sums = accumulate_step(model, optimizer, accelerator, micro_batches(local_groups, micro_batch_queries),
                           global_queries, micro_loss, max_grad_norm)
    n = max(sums["queries"], 1.0)
    return StepStats(loss=sums["loss"] / n, objective=sums["objective"] / n, diagonal=sums["diagonal"] / n,
                     off_diagonal=sums["off_diagonal"] / n, kl=sums["kl"] / n, queries=int(sums["queries"]),
                     tokens=int(sums["tokens"]), response_tokens=int(sums["response_tokens"]),
                     at_prompt_limit=int(sums["at_prompt_limit"]), seconds=time.perf_counter() - started)


# --- the trainer ----------------------------------------------------------------------------------------------

def train(job: TrainingJob) -> Path:
    """Train SAMI from the base weights on ``job.groups`` for ``job.steps`` optimizer steps; save a checkpoint
    folder (safetensors + tokenizer) at ``job.output_dir`` and return it."""
    train_config = job.train
    seed_everything(train_config.seed)
    base = load_base(job.model)  # restart from the base weights, never from the previous iterate
    model, tokenizer = base.model, base.tokenizer
    model = prepare_for_training(model, train_config)
    reference_model = load_frozen_reference(job.model) if train_config.kl_beta > 0 and not train_config.lora else None
    model, optimizer, accelerator, processes = accelerated(model, train_config)
    Q, M = train_config.queries_per_step, train_config.micro_batch_queries
    if reference_model is not None:
        reference_model.to(accelerator.device)

    def reference(batch: EncodedBatch, keep: int) -> torch.Tensor:
        if reference_model is not None:
            return window_logits(reference_model, batch, keep)
        with accelerator.unwrap_model(model).disable_adapter():  # LoRA: the adapter-free model is the base
            return window_logits(model, batch, keep)

    batcher = SamiBatcher.for_job(job, tokenizer)
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
            "base_model": base.resolved.identity, "config_hash": job.config_hash, "groups": len(job.groups)}
    output = save_checkpoint(accelerator, model, tokenizer, Path(job.output_dir), info)
    accelerator.free_memory()
    return output
