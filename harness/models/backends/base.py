"""The backend interface, and the cached generation every caller goes through."""

from __future__ import annotations

from abc import ABC, abstractmethod

from tqdm import tqdm

from harness.core.cache import ContentCache
from harness.config import GenerationConfig, ModelConfig
from harness.core.errors import HarnessError
from harness.models.loading import LazyModel
from harness.models.prompts import Format, Prompt, cut_at_stop, render, resolve_format

CACHE_FORMAT_VERSION = 1


class Backend(ABC):
    """Turns prompts into responses for one model. Subclasses implement ``_generate`` (and ``score``)."""

    name: str

    def __init__(self, model_config: ModelConfig, generation_config: GenerationConfig):
        self.model_config = model_config
        self.generation_config = generation_config
        self.generate_calls = 0  # number of uncached model passes, for tests and telemetry

    @abstractmethod
    def identity(self) -> dict:
        """What identifies the model behind this backend (never a secret)."""

    def unload(self) -> None:
        """Drop loaded weights; a remote backend holds none (local backends: ``LazyModel.unload``)."""

    @property
    @abstractmethod
    def prompt_format(self) -> Format:
        ...

    @abstractmethod
    def render(self, prompt: Prompt) -> str:
        """The exact text (or serialised messages) the model sees."""

    @abstractmethod
    def _generate(self, prompts: list[Prompt], rendered: list[str], seeds: list[int], stop: list[str]) -> list[str]:
        """Raw continuations (after any forced prefix), one per prompt."""

    def score(self, contexts: list[str], continuations: list[str]) -> list[dict]:
        raise HarnessError(f"backend '{self.name}' cannot score log-probabilities; use the 'hf' backend")

    def decoding(self) -> dict:
        g = self.generation_config
        return {"max_new_tokens": g.max_new_tokens, "temperature": g.temperature,
                "top_p": g.top_p if g.temperature > 0 else 1.0}

    def generate(self, prompts: list[Prompt], seeds: list[int], stop: list[str], cache: ContentCache | None = None,
                 desc: str = "generating") -> list[str]:
        """Responses for ``prompts`` (forced prefix included, cut at stop markers), through the cache.

        The cache key holds the backend, model identity, rendered prompt, decoding parameters, stop markers and
        seed, so any change to those misses and identical requests never touch the model.
        """
        rendered = [self.render(p) for p in prompts]
        keys = [ContentCache.key("generation", {
            "version": CACHE_FORMAT_VERSION, "backend": self.name, "model": self.identity(), "prompt": text,
            "decoding": self.decoding(), "stop": stop, "seed": seed if self.generation_config.temperature > 0 else None,
            # the weights' dtype changes the answer; float32 (the default) is left out so existing keys stay valid
            **({"dtype": self.model_config.dtype} if self.model_config.dtype != "float32" else {}),
        }) for text, seed in zip(rendered, seeds)]
        found = cache.get_many(keys) if cache else {}
        missing = [i for i, key in enumerate(keys) if key not in found]
        if missing:
            self.generate_calls += 1
            outputs = []
            batch = max(1, self.generation_config.batch_size) * 4
            for start in tqdm(range(0, len(missing), batch), desc=desc, unit="batch", leave=False,
                              disable=len(missing) <= batch):
                chunk = missing[start:start + batch]
                outputs += self._generate([prompts[i] for i in chunk], [rendered[i] for i in chunk],
                                          [seeds[i] for i in chunk], stop)
                new = {keys[i]: {"response": _finish(prompts[i], out, stop)} for i, out in zip(chunk, outputs[-len(chunk):])}
                found.update(new)
                if cache:
                    cache.put_many("generation", new)  # saved per chunk: an interrupted run keeps its work
        return [found[key]["response"] for key in keys]


class LocalModelBackend(LazyModel, Backend):
    """A backend that runs a local copy of the model (transformers, vLLM): identity from the weights, prompts
    rendered with the model's own tokenizer and chat template."""

    def identity(self) -> dict:
        return self.resolved.identity

    @property
    def prompt_format(self) -> Format:
        return resolve_format(self.model_config.prompt_format, self.tokenizer)

    def render(self, prompt: Prompt) -> str:
        return render(prompt, self.prompt_format, self.tokenizer, self.model_config.principles_in == "system")


def _finish(prompt: Prompt, continuation: str, stop: list[str]) -> str:
    text = prompt.response_prefix + continuation if prompt.response_prefix else continuation
    return cut_at_stop(text, stop)
