"""What the benchmarks share: the model under test and demo TL;DR groups with synthetic responses."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@contextmanager
def benchmark_model(name: str) -> Iterator[tuple]:
    """(model config, resolved model, tokenizer, model) for 'tiny' (a random 2-layer llama built in a temporary
    folder), 'embedded', or a model folder; torch uses ``OMP_NUM_THREADS`` threads when it is set."""
    import torch

    from harness.config import ModelConfig
    from harness.models.loading import load_causal_lm, load_tokenizer, resolve_model

    if "OMP_NUM_THREADS" in os.environ:
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    with tempfile.TemporaryDirectory() as folder:
        if name == "tiny":
            sys.path.insert(0, str(REPO / "tests"))
            from tiny_models import build_tiny_model

            model_config = ModelConfig(name=str(build_tiny_model(Path(folder) / "tiny", hidden=64)),
                                       prompt_format="base")
        else:
            model_config = ModelConfig(name=name)
        resolved = resolve_model(model_config)
        yield model_config, resolved, load_tokenizer(resolved, model_config), load_causal_lm(resolved, model_config)


def build_groups(task, n_queries: int, C: int, response_words: int):
    """Demo TL;DR posts under sampled constitutions, with fixed synthetic responses of a realistic length."""
    import random

    from harness.config import DataConfig
    from harness.flow.generate import QueryGroup
    from harness.tasks.principles import ConstitutionSampler

    queries = task.load_queries(DataConfig(), "train")[:n_queries]
    sampler = ConstitutionSampler(task.principles(), C)
    groups = []
    for k, query in enumerate(queries):
        words = query.text.split("POST:", 1)[-1].split()
        responses = [" ".join(["The post"] + words[j * 7:j * 7 + response_words]) + "." for j in range(C)]
        groups.append(QueryGroup(query, sampler.sample(random.Random(k)), responses))
    return groups
