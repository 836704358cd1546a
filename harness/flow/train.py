"""The train stage of expert iteration (SAMI paper, section 3): which trainers a run trains, and training one.

Trainers are leaves (``trainers/<name>.py``, TRL's one-file habit): the harness reaches them only through the
registry below, by import path, and hands each a ``TrainingJob``. Every trainer restarts from the base weights
at every iteration and trains on the iteration's shared generations for ``train.steps_at(t)`` optimizer steps.

Variants for sweeps: ``NAME@key=value,...`` names a trainer with overridden settings (``sami@lr=1e-6``,
``dpo@beta=0.1,loss=ipo``); ``train.learning_rate_sweep`` adds one variant of the primary trainer per rate, whose
label is formatting only: its learning rate is the sweep's float itself. Each variant trains on the same shared
generations and becomes its own leaderboard row.
"""

from __future__ import annotations

import importlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml
from pydantic import ValidationError

from harness.config import DPOConfig, ModelConfig, RunConfig, SFTConfig, TrainConfig, validation_error
from harness.core.artifacts import read_jsonl
from harness.core.distributed import distributed_state
from harness.core.errors import ConfigError
from harness.core.hashing import folder_hash
from harness.core.registry import Registry
from harness.core.run_layout import RunLayout
from harness.core.stages import Stage
from harness.flow.generate import QueryGroup
from harness.tasks import Task

trainers: Registry[str] = Registry("trainer")
trainers.add("sami", "trainers.sami:train",
             "SAMI (Franken et al. 2024): contrastive mutual-information loss over constitutions x responses")
trainers.add("sft", "trainers.sft:train", "SFT / context distillation (TRL SFTTrainer) on the model's own c+ responses")
trainers.add("dpo", "trainers.dpo:train", "DPO on self-generated c+/c- pairs, no labels (RLCD-style): sigmoid, IPO or SimPO loss")

# Short variant key -> the dotted config field it overrides.
VARIANT_KEYS = {"lr": "train.learning_rate", "beta": "dpo.beta", "loss": "dpo.loss_type", "gamma": "dpo.simpo_gamma"}
# Settings that never change what a trainer does at one iteration (the schedule enters as ``steps``).
TRAIN_FIELDS_NOT_AFFECTING_TRAINING = {"iterations", "steps_per_iteration", "mi_constitutions", "mi_resamples",
                                       "learning_rate_sweep", "keep_checkpoints"}
SECTIONS_NOT_AFFECTING_TRAINING = {"out", "compare_trainers", "trainer", "eval"}
TRAINER_SECTIONS = {"sft", "dpo"}  # sections read by one trainer only: they do not change the others' training


@dataclass
class TrainingJob:
    """One expert-iteration training run: start again from the base weights and train on ``groups``; every
    trainer gets the same data, schedule and output location (fair comparisons, SPEC section 3)."""

    model: ModelConfig         # the BASE model (restart-from-base, never an earlier iterate)
    train: TrainConfig         # learning rate, optimizer, batch sizes, LoRA, ...
    sft: SFTConfig
    dpo: DPOConfig
    task: Task
    groups: list[QueryGroup]   # this iteration's filtered self-generated data, shared by all trainers
    iteration: int             # 1-based
    steps: int                 # optimizer steps to take (paper: 2t)
    output_dir: Path           # save the checkpoint here (safetensors + tokenizer)
    telemetry_path: Path       # append one JSON line per optimizer step
    config_hash: str           # the run config's hash, recorded in the checkpoint's training_info.json

    @classmethod
    def from_config(cls, config: RunConfig, task: Task, groups: list[QueryGroup], iteration: int, steps: int,
                    output_dir: Path, telemetry_path: Path) -> TrainingJob:
        return cls(config.model, config.train, config.sft, config.dpo, task, groups, iteration, steps,
                   Path(output_dir), Path(telemetry_path), config.hash())


Trainer = Callable[[TrainingJob], Path]


# --- which trainers a run trains ---------------------------------------------------------------------------------

def base_name(spec: str) -> str:
    return spec.split("@", 1)[0]


def get_trainer(name: str) -> Trainer:
    """The named trainer's ``train`` function (unknown names list the valid ones); a variant name gives its
    trainer's function."""
    module_name, function_name = trainers.get(base_name(name)).split(":")
    return getattr(importlib.import_module(module_name), function_name)


def sweep_label(trainer: str, learning_rate: float) -> str:
    """The row label of a learning-rate sweep variant (``repr``: exact, so two rates never share a label)."""
    return f"{trainer}@lr={learning_rate!r}"


def trainer_specs(config: RunConfig) -> list[str]:
    """Every trainer (variant) a run trains: the primary, the compared ones, and the learning-rate sweep."""
    specs = [config.trainer, *config.compare_trainers]
    specs += [sweep_label(config.trainer, lr) for lr in config.train.learning_rate_sweep]
    return list(dict.fromkeys(specs))


def variant_overrides(config: RunConfig, spec: str) -> dict[str, Any]:
    """The dotted-field overrides of a trainer spec: a sweep label's exact float, else the values written in the
    name (read as YAML); malformed names raise one clear error."""
    sweep = {sweep_label(config.trainer, lr): lr for lr in config.train.learning_rate_sweep}
    if spec in sweep:
        return {"train.learning_rate": sweep[spec]}
    if "@" not in spec:
        return {}
    result = {}
    for part in spec.split("@", 1)[1].split(","):
        key, _, value = part.partition("=")
        if key not in VARIANT_KEYS or not value:
            raise ConfigError("trainer variant", spec, f"expected NAME@key=value with keys {', '.join(VARIANT_KEYS)}")
        result[VARIANT_KEYS[key]] = yaml.safe_load(value)
    return result


def variant_config(config: RunConfig, spec: str) -> RunConfig:
    """``config`` with the variant's overrides applied, validated like any config."""
    changes = variant_overrides(config, spec)
    if not changes:
        return config
    tree = config.model_dump(mode="python")
    for dotted, value in changes.items():
        section, field = dotted.split(".")
        tree[section][field] = value
    try:
        return RunConfig.model_validate(tree)
    except ValidationError as exc:
        raise validation_error(f"trainer variant {spec}", exc) from None


# --- the stage --------------------------------------------------------------------------------------------

def training_inputs(config: RunConfig, trainer: str, iteration: int, steps: int, data_sha: str, base: dict) -> dict:
    """What the train stage's marker hashes: the settings that change this trainer's training, and its data."""
    other_trainers = TRAINER_SECTIONS - {base_name(trainer)}
    settings = config.model_dump(mode="json", exclude=SECTIONS_NOT_AFFECTING_TRAINING | other_trainers)
    settings["train"] = {k: v for k, v in settings["train"].items() if k not in TRAIN_FIELDS_NOT_AFFECTING_TRAINING}
    return {"trainer": trainer, "iteration": iteration, "steps": steps, "data": data_sha, "base": base,
            "settings": settings}


def train_stage(config: RunConfig, task: Task, layout: RunLayout, iteration: int, trainer: str,
                groups: list[QueryGroup], data_sha: str, base: dict) -> tuple[Stage, bool]:
    """Train ``trainer`` from the base weights on this iteration's data (all processes take part); returns the
    stage and whether it was already done."""
    config = variant_config(config, trainer)  # a sweep variant trains with its own settings
    state = distributed_state()
    folder, checkpoint = layout.trainer(iteration, trainer), layout.checkpoint(iteration, trainer)
    steps = config.train.steps_at(iteration)
    stage = Stage(folder, "train", training_inputs(config, trainer, iteration, steps, data_sha, base))
    if stage.done() and checkpoint.is_dir():  # (a pruned checkpoint keeps its folder and identity)
        return stage, True
    state.wait_for_everyone()  # every process has seen the stale/missing marker before anyone rewrites it
    if state.is_main_process:
        stage.marker.unlink(missing_ok=True)
        for debris in folder.glob(".checkpoint.*"):  # a save killed half-way
            shutil.rmtree(debris, ignore_errors=True)
    state.wait_for_everyone()
    job = TrainingJob.from_config(config, task, groups, iteration, steps, checkpoint, folder / "telemetry.jsonl")
    output = Path(get_trainer(trainer)(job))
    state.wait_for_everyone()
    if state.is_main_process:
        telemetry = read_jsonl(folder / "telemetry.jsonl") if (folder / "telemetry.jsonl").is_file() else []
        stage.finish(trainer=trainer, iteration=iteration, steps=steps, checkpoint=str(output),
                     checkpoint_sha=folder_hash(output), final=telemetry[-1] if telemetry else None)
    state.wait_for_everyone()
    return stage, False
