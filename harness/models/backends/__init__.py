"""Generation and scoring backends behind one interface: ``hf`` (transformers), ``vllm``, ``openai``."""

from harness.models.backends.base import Backend
from harness.core.registry import Registry

backends: Registry[str] = Registry("backend")
backends.add("hf", "harness.models.backends.hf:HFBackend",
             "transformers on CPU/GPU: batched generation and response log-probs (default)")
backends.add("vllm", "harness.models.backends.vllm_backend:VLLMBackend",
             "vLLM offline engine on GPUs (install the 'vllm' extra); tensor parallel configurable")
backends.add("openai", "harness.models.backends.openai_backend:OpenAIBackend",
             "any OpenAI-compatible endpoint (OpenAI, `vllm serve`, ...) via base_url; key from the environment")


def create_backend(model_config, generation_config) -> Backend:
    """Instantiate the configured backend (imported lazily, so vLLM is only needed when chosen)."""
    import importlib

    module_name, class_name = backends.get(generation_config.backend).split(":")
    return getattr(importlib.import_module(module_name), class_name)(model_config, generation_config)


__all__ = ["Backend", "backends", "create_backend"]
