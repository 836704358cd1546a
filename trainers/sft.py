"""SFT (context distillation): supervised fine-tuning on the model's own responses generated under c+.

The baseline of SPEC section 3 (cf. Askell et al. 2021; Snell et al. 2022, "Learning by distilling context"):
for every query x of the iteration's shared data, the previous iterate's response y+ generated under c+
(``group.responses[0]``; c+ is ``group.constitutions[0]``) is the target, and the model minimises

    L_SFT = - sum_{(x, y+) in step} sum_t log pi_theta(y+_t | prompt(x), y+_<t)  /  (response tokens in the step)

(a token-level mean over all response tokens of the optimizer step; the prompt is masked). ``prompt(x)`` is the
task's TRAINING prompt, rendered exactly as SAMI renders it (``harness.models.prompts.render_for_scoring``):

- ``sft.keep_principles = True`` (default): the training prompt with c+ in it, i.e. the (c+, y+) diagonal entry of
  SAMI's log-prob matrix, token for token;
- ``sft.keep_principles = False`` (the "principles removed" variant, classic context distillation): the same
  task template rendered with an EMPTY principles list (``task.training_prompt(x, "")``), so the wording around the
  list stays and only the principles disappear; the model must produce c+ behaviour without seeing c+.

Under the diverse-principles scheme there is no all-positive constitution; index 0 is then simply the first of the
two complementary constitutions, and SFT distils it.

Built on TRL's ``SFTTrainer`` (prompt/completion data with ``completion_only_loss=True``), configured so that it
honours the fairness constraints shared with SAMI and DPO:

- same data and order: the rows are the queries of ``step_schedule(job.groups, job.steps, Q, seed,
  tag="sami-iteration-<t>")`` (SAMI's own call), flattened step by step, and the Trainer reads them with the
  ``sequential`` sampler, so optimizer step s consumes exactly SAMI's queries of step s (responses identical);
- exactly ``job.steps`` optimizer steps (``max_steps``) of ``train.queries_per_step`` queries: per-device batch x
  gradient accumulation x processes = Q (the micro-batch is the largest divisor of Q / processes that is at most
  ``train.micro_batch_queries``, so no micro-batch straddles two optimizer steps);
- constant learning rate, no warm-up, no weight decay, AdamW or RMSprop as ``train.optimizer`` says (the same
  torch optimizers and defaults as ``trainers.common.make_optimizer``), gradient clipping only when
  ``train.max_grad_norm`` is set; TRL's own defaults (bf16 on, gradient checkpointing on, clipping at 1.0) are
  overridden from the train config;
- restart from the base weights (``load_base``) at every iteration; LoRA through ``apply_lora`` like SAMI;
- gradient accumulation is exact: SFTTrainer divides the summed token loss by ``num_items_in_batch`` (the response
  tokens of the whole optimizer step, across processes), so the update does not depend on the micro-batch size
  (the ``labels`` key here is SFTTrainer's own, handled by that normalisation; tests compare micro-batch 1 x
  accumulation 4 with one batch of 4).

The rows are tokenized by the harness, not by TRL: ``harness.models.logprobs.encode_pairs`` (context tokenized alone,
BOS handling, left-truncation of the prompt to ``train.max_prompt_tokens``, response cut at
``train.max_response_tokens``), and handed to SFTTrainer as pre-tokenized ``input_ids`` + ``completion_mask``
(it then builds the masked labels itself). TRL would tokenize prompt+completion jointly and append EOS; keeping the
harness tokenization means SAMI, SFT and DPO train on the same response tokens. No EOS is appended (generation is
cut at the task's stop strings, for every trainer alike).

Telemetry: one JSON line per optimizer step (loss, token accuracy, grad norm, lr, tokens, tokens/s, the step's
query ids). The checkpoint is saved like SAMI's (``save_checkpoint``: safetensors + tokenizer, atomic, LoRA merged).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from harness.flow.generate import QueryGroup
from harness.models.logprobs import encode_pairs
from harness.models.prompts import Format, render_for_scoring, resolve_format
from harness.tasks import Task
from harness.core.distributed import cpu_only, distributed_state
from harness.flow.train import TrainingJob
from trainers.common import (Telemetry, apply_lora, load_base, save_checkpoint, schedule_tag, seed_everything,
                             step_schedule)

TESTED_TRL = ">=1.16,<2"  # the SFTTrainer/SFTConfig API used here (pre-tokenized input_ids + completion_mask)


def sft_pairs(task: Task, groups: list[QueryGroup], tokenizer, fmt: Format, principles_in_system: bool = False,
              keep_principles: bool = True) -> tuple[list[str], list[str]]:
    """(context, continuation) per query: the c+ response after the training prompt (with c+, or with an empty
    principles list when ``keep_principles`` is False)."""
    contexts, continuations = [], []
    for group in groups:
        principles = group.constitutions[0].text if keep_principles else ""
        prompt = task.training_prompt(group.query, principles)
        context, continuation = render_for_scoring(prompt, group.responses[0], fmt, tokenizer, principles_in_system)
        contexts.append(context)
        continuations.append(continuation)
    return contexts, continuations


def sft_rows(task: Task, groups: list[QueryGroup], tokenizer, fmt: Format, principles_in_system: bool,
             keep_principles: bool, max_prompt_tokens: int, max_response_tokens: int) -> list[dict]:
    """Pre-tokenized SFTTrainer rows: ``input_ids`` (prompt + response) and ``completion_mask`` (1 on response)."""
    contexts, continuations = sft_pairs(task, groups, tokenizer, fmt, principles_in_system, keep_principles)
    batch = encode_pairs(tokenizer, contexts, continuations, max_prompt_tokens, max_response_tokens)
    rows = []
    for ids, attention, response in zip(batch.input_ids, batch.attention_mask, batch.response_mask):
        n = int(attention.sum())
        rows.append({"input_ids": ids[:n].tolist(), "completion_mask": response[:n].tolist()})
    return rows


def micro_batch_size(per_process: int, requested: int) -> int:
    """The largest divisor of ``per_process`` that is at most ``requested`` (a micro-batch never straddles two
    optimizer steps with the Trainer's flat data loader)."""
    return max(d for d in range(1, min(per_process, requested) + 1) if per_process % d == 0)


def _telemetry_callback(telemetry: Telemetry, job: TrainingJob, schedule: list[list[QueryGroup]],
                        step_tokens: list[tuple[int, int]], processes: int):
    from transformers import TrainerCallback

    class StepTelemetry(TrainerCallback):
        """One telemetry line per optimizer step, written when the Trainer logs the step (``logging_steps=1``)."""

        def __init__(self):
            self.started = None
            self.seconds = 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.seconds = time.perf_counter() - (self.started or time.perf_counter())

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or "loss" not in logs:
                return
            step = state.global_step
            tokens, response_tokens = step_tokens[step - 1]
            record = {
                "trainer": "sft", "iteration": job.iteration, "step": step, "loss": float(logs["loss"]),
                "token_accuracy": logs.get("mean_token_accuracy"), "grad_norm": logs.get("grad_norm"),
                "lr": logs.get("learning_rate"), "queries": len(schedule[step - 1]), "tokens": tokens,
                "response_tokens": response_tokens, "step_time_s": self.seconds,
                "tokens_per_s": tokens / max(self.seconds, 1e-9), "processes": processes,
                "items": [g.query.id for g in schedule[step - 1]],
                "keep_principles": job.sft.keep_principles,
            }
            telemetry.log(record, {"loss": record["loss"]})

    return StepTelemetry()


def train(job: TrainingJob) -> Path:
    """Context distillation from the base weights on ``job.groups`` for ``job.steps`` optimizer steps; save a
    checkpoint folder (safetensors + tokenizer) at ``job.output_dir`` and return it."""
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    import torch
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import SFTConfig as TrlSFTConfig
    from trl import SFTTrainer

    train_config = job.train
    seed_everything(train_config.seed)
    base = load_base(job.model)  # restart from the base weights, never from the previous iterate
    model, tokenizer = base.model, base.tokenizer
    if train_config.lora:
        if train_config.gradient_checkpointing:
            model.enable_input_require_grads()
        model = apply_lora(model, train_config)

    processes = distributed_state().num_processes
    Q = train_config.queries_per_step
    if Q % processes:
        raise ValueError(f"train.queries_per_step={Q} must be divisible by the {processes} processes")
    micro = micro_batch_size(Q // processes, train_config.micro_batch_queries)
    accumulation = Q // processes // micro

    schedule = step_schedule(job.groups, job.steps, Q, train_config.seed, tag=schedule_tag(job.iteration))
    fmt = resolve_format(job.model.prompt_format, tokenizer)
    flat = [group for step in schedule for group in step]
    rows = sft_rows(job.task, flat, tokenizer, fmt, job.model.principles_in == "system",
                    job.sft.keep_principles, train_config.max_prompt_tokens, train_config.max_response_tokens)
    step_tokens = [(sum(len(r["input_ids"]) for r in rows[s * Q:(s + 1) * Q]),
                    sum(sum(r["completion_mask"]) for r in rows[s * Q:(s + 1) * Q])) for s in range(job.steps)]

    output_dir = Path(job.output_dir)
    scratch = output_dir.with_name(f".{output_dir.name}.sft-trainer-{os.getpid()}")
    args = TrlSFTConfig(
        output_dir=str(scratch), max_steps=job.steps, per_device_train_batch_size=micro,
        gradient_accumulation_steps=accumulation, train_sampling_strategy="sequential", shuffle_dataset=False,
        learning_rate=train_config.learning_rate, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
        optim="adamw_torch" if train_config.optimizer == "adamw" else "rmsprop",
        max_grad_norm=train_config.max_grad_norm or 0.0,
        bf16=train_config.mixed_precision == "bf16", fp16=train_config.mixed_precision == "fp16",
        activation_checkpointing=train_config.gradient_checkpointing,
        completion_only_loss=True, max_length=None, packing=False,
        use_cpu=cpu_only(), seed=train_config.seed, data_seed=train_config.seed, logging_steps=1, save_strategy="no",
        report_to="none",
        disable_tqdm=True, dataloader_num_workers=0, dataloader_pin_memory=torch.cuda.is_available(),
        remove_unused_columns=True, ddp_find_unused_parameters=False,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    trainer.remove_callback(PrinterCallback)  # our Telemetry writes the per-step lines and the progress bar
    telemetry = Telemetry(job.telemetry_path, job.steps, f"sft iter {job.iteration}",
                          enabled=trainer.accelerator.is_main_process)
    trainer.add_callback(_telemetry_callback(telemetry, job, schedule, step_tokens, processes))
    try:
        trainer.train()
    finally:
        telemetry.close()
    if trainer.state.global_step != job.steps:
        raise RuntimeError(f"SFTTrainer took {trainer.state.global_step} optimizer steps, expected {job.steps}")
    info = {"trainer": "sft", "iteration": job.iteration, "steps": job.steps, "queries_per_step": Q,
            "keep_principles": job.sft.keep_principles, "base_model": base.resolved.identity,
            "config_hash": job.config_hash, "groups": len(job.groups)}
    output = save_checkpoint(trainer.accelerator, trainer.model_wrapped, tokenizer, output_dir, info)
    if trainer.accelerator.is_main_process:
        shutil.rmtree(scratch, ignore_errors=True)
    trainer.accelerator.free_memory()
    return output


__all__ = ["train", "sft_pairs", "sft_rows", "micro_batch_size"]
