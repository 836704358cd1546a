"""Training-loop pieces every trainer shares: base-model loading, optimizer, LoRA, Accelerate, checkpoints,
telemetry, and the deterministic batch schedule.

Each trainer restarts from the base weights (``job.model``) at every expert iteration (SAMI paper,
section 3), so nothing here ever loads an earlier iterate. Distributed runs go through Accelerate: under
``torchrun --nproc_per_node N`` or ``accelerate launch --multi_gpu --num_processes N`` (with an FSDP config on
GPUs, if wanted) every process runs the same code, takes its shard of each optimizer step's queries, and
Accelerate averages the gradients. (``accelerate launch --cpu`` runs a single process on this machine; use
``torchrun`` for multi-process CPU runs.)
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, TypeVar

import torch

from harness.config import ModelConfig, TrainConfig
from harness.core.distributed import cpu_only, distributed_state
from harness.core.errors import HarnessError
from harness.core.hashing import derived_seed
from harness.flow.generate import QueryGroup
from harness.models.logprobs import EncodedBatch, encode_pairs
from harness.models.loading import ResolvedModel, load_causal_lm, load_tokenizer, resolve_model
from harness.models.prompts import Format, resolve_format
from harness.tasks import Task

T = TypeVar("T")


# --- seeds, models, optimizer ------------------------------------------------------------------------------

@dataclass
class GroupEncoder:
    """Turns query groups into one encoded batch of (training prompt, response) sequences for a model/tokenizer;
    a trainer's subclass says which pairs (``pairs``), e.g. SAMI's C x C matrix or DPO's c+ row."""

    task: Task
    tokenizer: object
    fmt: Format
    principles_in_system: bool = False
    max_prompt_tokens: int = 512
    max_response_tokens: int = 512

    @classmethod
    def for_job(cls, job, tokenizer):
        """The encoder of a TrainingJob's task, base model prompt settings and token limits."""
        return cls(job.task, tokenizer, resolve_format(job.model.prompt_format, tokenizer),
                   job.model.principles_in == "system", job.train.max_prompt_tokens, job.train.max_response_tokens)

    def pairs(self, groups: list[QueryGroup]) -> tuple[list[str], list[str]]:
        raise NotImplementedError

    def encode(self, groups: list[QueryGroup]) -> EncodedBatch:
        contexts, continuations = self.pairs(groups)
        return encode_pairs(self.tokenizer, contexts, continuations, self.max_prompt_tokens, self.max_response_tokens)


def seed_everything(seed: int) -> None:
    """Seed Python, torch (CPU and CUDA) so LoRA initialisation and any sampling are reproducible."""
    random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


@dataclass
class BaseModel:
    """The freshly loaded base weights of a run, with their tokenizer and identity."""

    model: torch.nn.Module
    tokenizer: object
    resolved: ResolvedModel


def load_base(model_config: ModelConfig) -> BaseModel:
    """Load the BASE model (``job.model``, never an earlier iterate): restart-from-base."""
    resolved = resolve_model(model_config)
    tokenizer = load_tokenizer(resolved, model_config)
    model = load_causal_lm(resolved, model_config)
    return BaseModel(model, tokenizer, resolved)


def load_frozen_reference(model_config: ModelConfig) -> torch.nn.Module:
    """A second, frozen copy of the base model (for a KL penalty with full fine-tuning)."""
    model = load_causal_lm(resolve_model(model_config), model_config)
    model.eval()
    model.requires_grad_(False)
    return model


def apply_lora(model: torch.nn.Module, train: TrainConfig) -> torch.nn.Module:
    """Wrap ``model`` with LoRA adapters on every linear layer (peft); only the adapters train."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=train.lora_rank, lora_alpha=train.lora_alpha, lora_dropout=0.0,
                        target_modules="all-linear", task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def prepare_for_training(model: torch.nn.Module, train: TrainConfig) -> torch.nn.Module:
    """Gradient checkpointing and LoRA adapters, as ``train`` asks."""
    if train.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
        if train.lora:
            model.enable_input_require_grads()
    return apply_lora(model, train) if train.lora else model


def accelerated(model: torch.nn.Module, train: TrainConfig):
    """(prepared model, optimizer, accelerator, processes) for steps of ``train.queries_per_step`` queries split
    evenly over the processes and accumulated over micro-batches of ``train.micro_batch_queries`` queries."""
    processes = distributed_state().num_processes
    Q, M = train.queries_per_step, train.micro_batch_queries
    if Q % processes:
        raise ValueError(f"train.queries_per_step={Q} must be divisible by the {processes} processes")
    accelerator = make_accelerator(train, math.ceil(Q // processes / M))
    optimizer = make_optimizer(model.parameters(), train)
    model, optimizer = accelerator.prepare(model, optimizer)
    return model, optimizer, accelerator, processes


def make_optimizer(parameters, train: TrainConfig) -> torch.optim.Optimizer:
    """AdamW (mistral-7b runs) or RMSprop (mixtral / llama3-70b runs) at a constant learning rate; no weight
    decay, no schedule (SPEC section 2)."""
    params = [p for p in parameters if p.requires_grad]
    if not params:
        raise HarnessError("no trainable parameters")
    if train.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=train.learning_rate, weight_decay=0.0)
    if train.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=train.learning_rate)
    raise HarnessError(f"unknown optimizer '{train.optimizer}' (adamw, rmsprop)")


def make_accelerator(train: TrainConfig, gradient_accumulation_steps: int = 1):
    """An Accelerator for this training run.

    Accelerate keeps process-wide state; a second trainer in the same process (``compare_trainers``) may ask
    for a different mixed precision, so the (non-distributed) accelerator state is reset when it differs.
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    state = AcceleratorState._shared_state
    if state and str(state.get("_mixed_precision", "no")) != train.mixed_precision:
        AcceleratorState._reset_state(reset_partial_state=False)
    return Accelerator(gradient_accumulation_steps=gradient_accumulation_steps, mixed_precision=train.mixed_precision,
                       cpu=cpu_only())


# --- the batch schedule ---------------------------------------------------------------------------------------

def schedule_tag(iteration: int) -> str:
    """The tag every trainer passes to ``step_schedule`` at an iteration: the same tag gives SAMI, SFT and DPO the
    same queries, constitutions and responses at every optimizer step (fair comparisons, SPEC section 3)."""
    return f"sami-iteration-{iteration}"


def step_schedule(items: Sequence[T], steps: int, per_step: int, seed: int, tag: str = "") -> list[list[T]]:
    """The items of each optimizer step: cycle through ``items`` epoch by epoch, each epoch in an order
    shuffled by a seed derived from (seed, tag, epoch), so the schedule is a pure function of its inputs."""
    if not items:
        raise HarnessError("no training data: every generated group was filtered out (check the filter counts)")
    stream: list[T] = []
    epoch = 0
    while len(stream) < steps * per_step:
        order = list(range(len(items)))
        random.Random(derived_seed(seed, tag, epoch)).shuffle(order)
        stream += [items[i] for i in order]
        epoch += 1
    return [stream[s * per_step:(s + 1) * per_step] for s in range(steps)]


def process_shard(batch: Sequence[T], process_index: int, num_processes: int) -> list[T]:
    """This process's contiguous share of a global batch (every process gets the same number of items, so
    all take the same number of backward passes, as DDP and FSDP require)."""
    if len(batch) % num_processes:
        raise HarnessError(f"train.queries_per_step={len(batch)} must be divisible by the {num_processes} "
                           "processes (each process takes an equal share of every optimizer step)")
    share = len(batch) // num_processes
    return list(batch[process_index * share:(process_index + 1) * share])


def micro_batches(items: Sequence[T], size: int) -> list[list[T]]:
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


# --- the optimizer step -----------------------------------------------------------------------------------

MicroLoss = Callable[[int, list], "tuple[torch.Tensor, dict[str, float]]"]


def accumulate_step(model, optimizer, accelerator, chunks: list[list], global_queries: int, micro_loss: MicroLoss,
                    max_grad_norm: float | None = None) -> dict[str, float]:
    """One optimizer step over this process's micro-batches ``chunks`` of the step's queries.

    ``micro_loss(k, chunk)`` returns the (B,) objective of the chunk's queries and named sums for telemetry.
    Scaling: each micro-batch contributes ``sum_q loss_q * P * K / Q`` (P processes, K micro-batches per process,
    Q queries per global step); ``accelerator.backward`` divides by K and the distributed all-reduce averages over
    P, so the accumulated gradient is exactly the gradient of the mean loss over the Q queries, whatever the
    micro-batch size, and uneven last micro-batches are weighted correctly (gradients are never zeroed between
    micro-steps). Returns the named sums added over micro-batches and processes."""
    K = accelerator.gradient_accumulation_steps
    if len(chunks) != K:
        raise RuntimeError(f"accelerator accumulates {K} micro-batches but this step has {len(chunks)}")
    P = accelerator.num_processes
    totals: dict[str, float] = {}
    for k, chunk in enumerate(chunks):
        with accelerator.accumulate(model):
            objective, sums = micro_loss(k, chunk)
            accelerator.backward(objective.sum() * (P * K / global_queries))
            if accelerator.sync_gradients and max_grad_norm:
                accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        for name, value in sums.items():
            totals[name] = totals.get(name, 0.0) + float(value)
    if not accelerator.sync_gradients:
        raise RuntimeError("gradient accumulation ended out of step with the optimizer")
    names = sorted(totals)
    local = torch.tensor([totals[name] for name in names], dtype=torch.float64)
    reduced = accelerator.reduce(local.to(accelerator.device), reduction="sum").cpu().tolist()
    return dict(zip(names, reduced))


# --- checkpoints ------------------------------------------------------------------------------------------

def save_checkpoint(accelerator, model: torch.nn.Module, tokenizer, output_dir: Path, info: dict | None = None) -> Path:
    """Save a plain model folder (safetensors weights + tokenizer), atomically: write to a temporary folder
    beside ``output_dir``, then rename it into place. LoRA adapters are merged first, so every checkpoint loads
    with ``AutoModelForCausalLM.from_pretrained`` like the base model."""
    output_dir = Path(output_dir)
    from accelerate.utils import DistributedType

    accelerator.wait_for_everyone()
    state_dict = None
    if accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED):
        state_dict = accelerator.get_state_dict(model)  # gathers the shards (a collective: every process calls it)
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)
        if hasattr(unwrapped, "merge_and_unload"):
            unwrapped = unwrapped.merge_and_unload()
            state_dict = None  # the merged module's own weights
        output_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = output_dir.with_name(f".{output_dir.name}.partial-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        unwrapped.save_pretrained(staging, safe_serialization=True, state_dict=state_dict)
        tokenizer.save_pretrained(staging)
        if info is not None:
            (staging / "training_info.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
        if output_dir.exists():
            trash = output_dir.with_name(f".{output_dir.name}.old-{os.getpid()}")
            output_dir.rename(trash)
            staging.rename(output_dir)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            staging.rename(output_dir)
    accelerator.wait_for_everyone()
    return output_dir


# --- telemetry --------------------------------------------------------------------------------------------

class Telemetry:
    """One JSON line per optimizer step (main process only) and a tqdm progress bar.

    The file is truncated when a run starts, so a rerun of a killed stage never mixes two runs' lines.
    """

    def __init__(self, path: Path | None, total_steps: int, desc: str, enabled: bool = True):
        from tqdm import tqdm

        self.enabled = enabled
        self.path = Path(path) if path else None
        self._handle = None
        if enabled and self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "w", encoding="utf-8")
        self.bar = tqdm(total=total_steps, desc=desc, unit="step", disable=not enabled, dynamic_ncols=True)
        self.started = time.time()

    def log(self, record: dict, postfix: dict | None = None) -> None:
        if not self.enabled:
            return
        record = {**record, "elapsed_s": round(time.time() - self.started, 3)}
        if self._handle is not None:
            self._handle.write(json.dumps(record, default=float) + "\n")
            self._handle.flush()
        self.bar.update(1)
        if postfix:
            self.bar.set_postfix({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in postfix.items()})

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        self.bar.close()
