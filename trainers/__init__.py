"""Trainer registry: one self-contained module per trainer; ``harness ls trainers`` lists them.

A trainer is a function ``train(job: TrainingJob) -> Path`` that starts from the base weights, trains on the
iteration's shared data for ``job.steps`` optimizer steps, and saves a safetensors checkpoint folder.
"""

from harness.core.registry import Registry
from trainers.base import TrainingJob, Trainer

trainers: Registry[str] = Registry("trainer")
trainers.add("sami", "trainers.sami:train",
             "SAMI (Franken et al. 2024): contrastive mutual-information loss over constitutions x responses")
trainers.add("sft", "trainers.sft:train", "SFT / context distillation (TRL SFTTrainer) on the model's own c+ responses")
trainers.add("dpo", "trainers.dpo:train", "DPO on self-generated c+/c- pairs, no labels (RLCD-style): sigmoid, IPO or SimPO loss")


def get_trainer(name: str) -> Trainer:
    """Import and return the named trainer's ``train`` function (unknown names list the valid ones);
    a variant name (``sami@lr=1e-6``, see trainers/variants.py) gives its trainer's function."""
    import importlib

    from trainers.variants import base_name

    module_name, function_name = trainers.get(base_name(name)).split(":")
    return getattr(importlib.import_module(module_name), function_name)


__all__ = ["TrainingJob", "Trainer", "trainers", "get_trainer"]
