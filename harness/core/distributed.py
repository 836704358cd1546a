"""The process group of a multi-process launch (``torchrun`` / ``accelerate launch``), through Accelerate."""

from __future__ import annotations


def cpu_only() -> bool:
    """No accelerator device: Accelerate must be told ``cpu=True`` to see a torchrun launch as MULTI_CPU (gloo);
    without it, every process believes it is alone and trains on its own."""
    import torch

    return not torch.cuda.is_available()


def distributed_state():
    """Accelerate's process state (rank, world size), initialising the process group under torchrun."""
    from accelerate.state import PartialState

    return PartialState(cpu=cpu_only())
