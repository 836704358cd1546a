"""Trainers: one self-contained module per trainer (``sami``, ``sft``, ``dpo``), each a function
``train(job: harness.flow.train.TrainingJob) -> Path`` that starts from the base weights, trains on the
iteration's shared data for ``job.steps`` optimizer steps, and saves a safetensors checkpoint folder.

The harness reaches them only through its trainer registry (``harness/flow/train.py``, ``harness ls trainers``).
"""
