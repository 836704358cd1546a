"""What every trainer receives: the same data, schedule and output location (fair comparisons, SPEC section 3)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harness.config import RunConfig
from harness.flow.generate import QueryGroup
from harness.tasks import Task


@dataclass
class TrainingJob:
    """One expert-iteration training run: start again from the base weights and train on ``groups``."""

    config: RunConfig          # effective config (train.* holds lr, optimizer, batch sizes, ...)
    task: Task
    groups: list[QueryGroup]   # this iteration's filtered self-generated data, shared by all trainers
    iteration: int             # 1-based
    steps: int                 # optimizer steps to take (paper: 2t)
    output_dir: Path           # save the checkpoint here (safetensors + tokenizer)
    telemetry_path: Path       # append one JSON line per optimizer step


Trainer = Callable[[TrainingJob], Path]
