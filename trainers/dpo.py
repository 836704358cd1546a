"""DPO on self-generated pairs, with no preference labels (RLCD-style; SPEC section 3).

For each query x of the iteration's shared data the previous iterate generated y+ under c+ (``responses[0]``,
``constitutions[0]``) and y- under c- (``responses[1]``). The pair is (prompt = training prompt with c+,
chosen = y+, rejected = y-). With log-probs s(y) = sum_t log pi(y_t | prompt(x, c+), y_<t) over the response
tokens (prompt and padding masked), |y| the response length, pi_theta the policy and pi_ref the base model:

- ``sigmoid`` -- DPO, Rafailov et al. 2023, eq. 7:
      L = -log sigmoid( beta * [ (s_theta(y+) - s_ref(y+)) - (s_theta(y-) - s_ref(y-)) ] )
- ``ipo`` -- IPO, Azar et al. 2023, eq. 17, on length-averaged log-probs (as in TRL, confirmed with the IPO
  authors), beta playing the role of tau:
      h = (s_theta(y+) - s_ref(y+)) / |y+|  -  (s_theta(y-) - s_ref(y-)) / |y-|,      L = (h - 1 / (2 beta))^2
- ``simpo`` -- SimPO, Meng et al. 2024, eq. 6: reference-free and length-normalised, target margin gamma:
      L = -log sigmoid( beta / |y+| * s_theta(y+)  -  beta / |y-| * s_theta(y-)  -  gamma )

beta defaults to the task's value (``dpo.beta`` unset): sigmoid/ipo 0.1 for dialogue, 0.5 for tldr/heldout (SPEC
section 3); simpo 2.0 (Meng et al.'s recommended range is 2.0-2.5, with gamma / beta about 0.5, hence
``dpo.simpo_gamma = 1.0``). With C > 2 responses per query, every response j >= 1 is a rejected one and the
query's loss is the mean over its C - 1 pairs (C = 2 gives the single pair above). With C = 2, SAMI's row term for
c+ is exactly SimPO with beta = 1, gamma = 0 on the same tokens (tested).

The reference is the base model, handled by PRECOMPUTING s_ref once per iteration: before the first optimizer
step the freshly loaded policy IS the base model (restart-from-base; LoRA adapters start at zero), so one no-grad
pass of the policy over this process's scheduled pairs gives every reference log-prob (2 floats a pair), and no
second model is ever loaded. Peak memory is therefore that of SAMI without a KL term (policy + gradients +
optimizer state + one micro-batch of activations); holding a frozen reference through training would add one more
copy of the weights (about 14 GB for a 7B model in bf16; 0.5 GB for the 135M embedded model in fp32). The
precompute costs one no-grad forward per scheduled pair (about a third of a training pass); SimPO needs none.

Why a compact Accelerate loop and not TRL's ``DPOTrainer`` (TRL 1.16 has sigmoid and length-averaged IPO; the
Trainer's ``train_sampling_strategy="sequential"``, ``max_steps`` and a constant schedule could reproduce the step
schedule): (1) DPOTrainer has no reference-free loss, so SimPO needs this loop anyway (TRL's SimPO lives in the
experimental CPO trainer, marked unstable), and the three variants should differ in the loss line only, not in
tokenization and batching; (2) DPOTrainer tokenizes prompt + completion jointly and appends EOS to every
non-conversational completion, so it would score different tokens than SAMI; this loop uses SAMI's own rendering
and ``harness.models.logprobs.encode_pairs``, so DPO scores exactly the c+ row of SAMI's log-prob matrix, which makes it
the tightest control; (3) the step mechanics are SAMI's: ``job.steps`` optimizer steps, each of
``train.queries_per_step`` queries from the same ``step_schedule`` call (same queries, constitutions, responses per
step), micro-batches of ``train.micro_batch_queries`` queries accumulated exactly (the gradient is that of the mean
loss over the step's queries, whatever the micro-batch size or process count), constant learning rate,
AdamW/RMSprop from ``make_optimizer``, optional clipping, LoRA and mixed precision, restart from base, and no
``labels`` key anywhere (so no gradient-accumulation scaling trap). Dropout is disabled (as TRL does) so the
policy and the precomputed reference are scored alike.

Telemetry: one JSON line per optimizer step (loss, reward margin and accuracy, chosen/rejected log-probs, tokens,
tokens/s, the step's query ids). Checkpoints are saved like SAMI's (safetensors + tokenizer, atomic, LoRA merged).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from harness.config import DPOConfig
from harness.flow.generate import QueryGroup
from harness.models.logprobs import EncodedBatch, response_logprobs
from harness.models.prompts import Format, render_for_scoring
from harness.tasks import Task
from harness.flow.train import TrainingJob
from trainers.common import (GroupEncoder, Telemetry, accelerated, accumulate_step, load_base, micro_batches,
                             prepare_for_training, process_shard, save_checkpoint, schedule_tag, seed_everything,
                             step_schedule)

LOSS_TYPES = ("sigmoid", "ipo", "simpo")
SIMPO_BETA = 2.0                                               # Meng et al. 2024


def resolve_beta(dpo: DPOConfig, task: Task) -> float:
    """``dpo.beta`` if set, else the default of the loss and task (``task.dpo_beta``: SPEC section 3)."""
    if dpo.beta is not None:
        return dpo.beta
    if dpo.loss_type == "simpo":
        return SIMPO_BETA
    return task.dpo_beta


# --- the objective --------------------------------------------------------------------------------------------

@dataclass
class PreferenceOutput:
    per_query: torch.Tensor   # (B,) loss of each query (mean over its C - 1 pairs)
    margin: torch.Tensor      # (B, C-1) implicit reward margin of each pair (> 0: chosen preferred)
    chosen: torch.Tensor      # (B,) implicit reward of the chosen response
    rejected: torch.Tensor    # (B, C-1) implicit rewards of the rejected responses


def preference_loss(policy: torch.Tensor, counts: torch.Tensor, reference: torch.Tensor | None, loss_type: str,
                    beta: float, gamma: float = 0.0) -> PreferenceOutput:
    """The pairwise losses of a batch of queries.

    ``policy`` and ``reference``: (B, C) SUMMED response log-probs under the c+ prompt, column 0 the chosen (c+)
    response and columns 1..C-1 the rejected ones; ``counts``: (B, C) response token counts. ``reference`` is
    unused (may be None) for ``simpo``. Implicit rewards: beta * log-ratio (sigmoid), length-averaged log-ratio
    (ipo), beta * mean log-prob (simpo)."""
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"unknown dpo.loss_type '{loss_type}' ({', '.join(LOSS_TYPES)})")
    if policy.dim() != 2 or policy.shape[1] < 2:
        raise ValueError(f"expected (B, C >= 2) log-probs, got shape {tuple(policy.shape)}")
    counts = counts.to(policy.dtype).clamp(min=1)
    if loss_type == "simpo":
        rewards = beta * policy / counts
        margin = rewards[:, :1] - rewards[:, 1:]
        losses = -F.logsigmoid(margin - gamma)                                  # Meng et al. 2024, eq. 6
    else:
        if reference is None:
            raise ValueError(f"loss '{loss_type}' needs reference log-probs")
        ratios = policy - reference.to(policy.dtype)
        if loss_type == "sigmoid":
            rewards = beta * ratios
            margin = rewards[:, :1] - rewards[:, 1:]
            losses = -F.logsigmoid(margin)                                      # Rafailov et al. 2023, eq. 7
        else:
            rewards = ratios / counts
            margin = rewards[:, :1] - rewards[:, 1:]
            losses = (margin - 1.0 / (2.0 * beta)) ** 2                         # Azar et al. 2023, eq. 17
    return PreferenceOutput(losses.mean(-1), margin, rewards[:, 0], rewards[:, 1:])


# --- the data -------------------------------------------------------------------------------------------------

def dpo_pairs(task: Task, groups: list[QueryGroup], tokenizer, fmt: Format,
              principles_in_system: bool = False) -> tuple[list[str], list[str]]:
    """(context, continuation) of every response of every query, all under the c+ TRAINING prompt: per query the
    chosen response (index 0) first, then the rejected ones (index 1..C-1). This is row 0 of SAMI's matrix."""
    contexts, continuations = [], []
    for group in groups:
        if len(group.responses) < 2 or len(group.responses) != len(group.constitutions):
            raise ValueError(f"query {group.query.id}: DPO needs a c+ and at least one c- response, "
                             f"got {len(group.responses)} responses for {len(group.constitutions)} constitutions")
        prompt = task.training_prompt(group.query, group.constitutions[0].text)
        for response in group.responses:
            context, continuation = render_for_scoring(prompt, response, fmt, tokenizer, principles_in_system)
            contexts.append(context)
            continuations.append(continuation)
    return contexts, continuations


def group_size(groups: list[QueryGroup]) -> int:
    sizes = {len(g.responses) for g in groups}
    if len(sizes) != 1:
        raise ValueError(f"every query needs the same number of responses, got {sorted(sizes)}")
    return sizes.pop()


class PairBatcher(GroupEncoder):
    """Encodes query groups as (c+ training prompt, response j) batches: chosen first, then the rejected."""

    def pairs(self, groups: list[QueryGroup]) -> tuple[list[str], list[str]]:
        return dpo_pairs(self.task, groups, self.tokenizer, self.fmt, self.principles_in_system)


def sequence_logprobs(model, batch: EncodedBatch, n_queries: int, C: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C) summed response log-probs and (B, C) response token counts."""
    total, count = response_logprobs(model, batch)
    return total.view(n_queries, C), count.view(n_queries, C)


def disable_dropout(model: torch.nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


@torch.no_grad()
def precompute_reference(model, batcher: PairBatcher, local_schedule: list[list[QueryGroup]],
                         micro_batch_queries: int) -> list[list[torch.Tensor]]:
    """Reference (base-model) summed log-probs of every scheduled pair, per step and micro-batch, computed with the
    policy BEFORE its first update (it is the base model then). Every process runs the same number of forwards
    (its equal share of each step), as FSDP requires."""
    was_training = model.training
    model.eval()
    out = []
    for local in local_schedule:
        step = []
        for chunk in micro_batches(local, micro_batch_queries):
            total, _ = sequence_logprobs(model, batcher.encode(chunk), len(chunk), group_size(chunk))
            step.append(total.detach().float().cpu())
        out.append(step)
    model.train(was_training)
    return out


# --- the step -------------------------------------------------------------------------------------------------

@dataclass
class StepStats:
    loss: float
    margin: float
    accuracy: float
    chosen_reward: float
    rejected_reward: float
    chosen_logprob: float     # per-token mean
    rejected_logprob: float
    queries: int
    pairs: int
    tokens: int
    response_tokens: int
    seconds: float


def optimizer_step(model, optimizer, accelerator, batcher: PairBatcher, local_groups: list[QueryGroup],
                   reference: list[torch.Tensor] | None, micro_batch_queries: int, global_queries: int,
                   loss_type: str, beta: float, gamma: float, max_grad_norm: float | None = None) -> StepStats:
    """One optimizer step over this process's share of the step's queries with SAMI's accumulation
    (``accumulate_step``: the gradient of the mean loss over the step's Q queries whatever the micro-batch size and
    process count); ``reference[k]`` holds micro-batch k's precomputed base-model log-probs."""
    started = time.perf_counter()

    def micro_loss(k: int, chunk: list[QueryGroup]) -> tuple[torch.Tensor, dict[str, float]]:
        C = group_size(chunk)
        batch = batcher.encode(chunk)
        policy, counts = sequence_logprobs(model, batch, len(chunk), C)
        ref = reference[k].to(policy.device) if reference is not None else None
        out = preference_loss(policy, counts, ref, loss_type, beta, gamma)
        margin = out.margin.detach()
        mean_logprob = policy.detach() / counts.clamp(min=1)
        return out.per_query, {
            "loss": out.per_query.detach().sum().item(), "margin": margin.mean(-1).sum().item(),
            "accuracy": (margin > 0).float().mean(-1).sum().item(), "chosen_reward": out.chosen.detach().sum().item(),
            "rejected_reward": out.rejected.detach().mean(-1).sum().item(),
            "chosen_logprob": mean_logprob[:, 0].sum().item(), "rejected_logprob": mean_logprob[:, 1:].mean(-1).sum().item(),
            "queries": len(chunk), "pairs": len(chunk) * (C - 1), "tokens": int(batch.attention_mask.sum()),
            "response_tokens": int(batch.response_mask.sum())}

    sums = accumulate_step(model, optimizer, accelerator, micro_batches(local_groups, micro_batch_queries),
                           global_queries, micro_loss, max_grad_norm)
    n = max(sums["queries"], 1.0)
    return StepStats(loss=sums["loss"] / n, margin=sums["margin"] / n, accuracy=sums["accuracy"] / n,
                     chosen_reward=sums["chosen_reward"] / n, rejected_reward=sums["rejected_reward"] / n,
                     chosen_logprob=sums["chosen_logprob"] / n, rejected_logprob=sums["rejected_logprob"] / n,
                     queries=int(sums["queries"]), pairs=int(sums["pairs"]), tokens=int(sums["tokens"]),
                     response_tokens=int(sums["response_tokens"]), seconds=time.perf_counter() - started)


# --- the trainer ----------------------------------------------------------------------------------------------

def train(job: TrainingJob) -> Path:
    """Train DPO (``dpo.loss_type``: sigmoid, ipo or simpo) from the base weights on ``job.groups`` for
    ``job.steps`` optimizer steps; save a checkpoint folder (safetensors + tokenizer) at ``job.output_dir``."""
    train_config, dpo = job.train, job.dpo
    beta, gamma = resolve_beta(dpo, job.task), dpo.simpo_gamma if dpo.loss_type == "simpo" else 0.0
    seed_everything(train_config.seed)
    base = load_base(job.model)  # restart from the base weights: this model is also the reference until step 1
    model, tokenizer = base.model, base.tokenizer
    disable_dropout(model)
    model, optimizer, accelerator, processes = accelerated(prepare_for_training(model, train_config), train_config)
    Q, M = train_config.queries_per_step, train_config.micro_batch_queries
    batcher = PairBatcher.for_job(job, tokenizer)
    schedule = step_schedule(job.groups, job.steps, Q, train_config.seed, tag=schedule_tag(job.iteration))
    local_schedule = [process_shard(batch, accelerator.process_index, processes) for batch in schedule]

    reference_started = time.perf_counter()
    reference = None
    if dpo.loss_type != "simpo":
        with accelerator.autocast():
            reference = precompute_reference(model, batcher, local_schedule, M)
    reference_seconds = time.perf_counter() - reference_started

    telemetry = Telemetry(job.telemetry_path, job.steps, f"dpo-{dpo.loss_type} iter {job.iteration}",
                          enabled=accelerator.is_main_process)
    model.train()
    try:
        for step, batch in enumerate(schedule, 1):
            local = local_schedule[step - 1]
            stats = optimizer_step(model, optimizer, accelerator, batcher, local,
                                   reference[step - 1] if reference is not None else None, M, Q,
                                   dpo.loss_type, beta, gamma, train_config.max_grad_norm)
            record = {
                "trainer": "dpo", "loss_type": dpo.loss_type, "beta": beta,
                "gamma": gamma if dpo.loss_type == "simpo" else None, "iteration": job.iteration, "step": step,
                "loss": stats.loss, "reward_margin": stats.margin, "reward_accuracy": stats.accuracy,
                "chosen_reward": stats.chosen_reward, "rejected_reward": stats.rejected_reward,
                "chosen_logprob": stats.chosen_logprob, "rejected_logprob": stats.rejected_logprob,
                "lr": optimizer.param_groups[0]["lr"], "queries": stats.queries, "pairs": stats.pairs,
                "tokens": stats.tokens, "response_tokens": stats.response_tokens, "step_time_s": stats.seconds,
                "tokens_per_s": stats.tokens / max(stats.seconds, 1e-9), "processes": processes,
                "reference_precompute_s": reference_seconds if step == 1 and reference is not None else None,
                "items": [g.query.id for g in batch],
            }
            telemetry.log(record, {"loss": stats.loss, "margin": stats.margin, "acc": stats.accuracy})
    finally:
        telemetry.close()
    info = {"trainer": "dpo", "loss_type": dpo.loss_type, "beta": beta,
            "simpo_gamma": gamma if dpo.loss_type == "simpo" else None, "iteration": job.iteration,
            "steps": job.steps, "queries_per_step": Q, "reference": "precomputed base-model log-probs"
            if reference is not None else "none (reference-free)", "reference_precompute_s": reference_seconds,
            "base_model": base.resolved.identity, "config_hash": job.config_hash, "groups": len(job.groups)}
    output = save_checkpoint(accelerator, model, tokenizer, Path(job.output_dir), info)
    accelerator.free_memory()
    return output
