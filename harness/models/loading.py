"""Resolving ``--model`` (``embedded``, a local folder or a hub id) to weights, a tokenizer and an identity.

The identity (name, revision, and a hash of the weight files when they are local) goes into every cache key
and manifest, so a changed checkpoint never reuses another model's generations. Weights load with
safetensors only; ``trust_remote_code`` stays off unless the config turns it on.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

from harness.config import ModelConfig
from harness.models.embedded import EMBEDDED_MODEL_ID, EMBEDDED_NAME, embedded_model_dir
from harness.core.errors import HarnessError
from harness.core.hashing import folder_hash

DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}


@dataclass(frozen=True)
class ResolvedModel:
    """Where to load a model from, and what identifies its weights."""

    load_path: str
    identity: dict


def resolve_model(config: ModelConfig) -> ResolvedModel:
    if config.name == EMBEDDED_NAME:
        folder = embedded_model_dir()
        return ResolvedModel(str(folder), {"name": EMBEDDED_MODEL_ID, "weights": _local_hash(str(folder))})
    path = Path(config.name).expanduser()
    if path.is_dir():
        if not any(path.glob("*.safetensors")):
            raise HarnessError(f"model folder {path} has no .safetensors weights (only safetensors are loaded)")
        return ResolvedModel(str(path.resolve()), {"name": str(path.resolve()), "weights": _local_hash(str(path.resolve()))})
    if config.name.startswith((".", "/", "~")):
        raise HarnessError(f"model folder not found: {config.name} (use 'embedded', a hub id, or an existing folder)")
    return ResolvedModel(config.name, {"name": config.name, "revision": config.revision or "main"})


def _local_hash(folder: str) -> str:
    """Hash of a model folder's files, memoised on their names, sizes and modification times, so a checkpoint
    rewritten in place gets a fresh hash while an unchanged folder is hashed once per process."""
    files = [p for p in Path(folder).iterdir() if p.is_file()]
    stamp = tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files))
    return _hash_of(folder, stamp)


@lru_cache(maxsize=32)
def _hash_of(folder: str, stamp: tuple) -> str:
    return folder_hash(Path(folder))


def model_identity(config: ModelConfig) -> dict:
    """Identity of a model's weights (a checkpoint rewritten in place gets a new hash)."""
    return resolve_model(config).identity


def load_tokenizer(resolved: ResolvedModel, config: ModelConfig):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolved.load_path, revision=config.revision,
                                              trust_remote_code=config.trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(resolved: ResolvedModel, config: ModelConfig):
    import torch
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(
            resolved.load_path, revision=config.revision, dtype=getattr(torch, DTYPES[config.dtype]),
            trust_remote_code=config.trust_remote_code, use_safetensors=True)
    except OSError as exc:
        raise HarnessError(f"could not load model '{config.name}': {str(exc).splitlines()[0]}") from None


def free_memory() -> None:
    """Return the memory of dropped models (CPU and GPU) before the next stage loads one."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class LazyModel:
    """Mixin for anything with a ``model_config``: weights and tokenizer load on first use, so work answered
    from the cache never loads a model; ``unload`` drops them again."""

    model_config: ModelConfig
    LOADED_ATTRIBUTES = ("model", "engine", "llm")

    def unload(self) -> None:
        """Drop the loaded weights (a later use loads them again) and free their memory."""
        for attribute in self.LOADED_ATTRIBUTES:
            self.__dict__.pop(attribute, None)
        free_memory()

    @cached_property
    def resolved(self) -> ResolvedModel:
        return resolve_model(self.model_config)

    @cached_property
    def tokenizer(self):
        return load_tokenizer(self.resolved, self.model_config)

    @cached_property
    def model(self):
        import torch

        model = load_causal_lm(self.resolved, self.model_config)
        model.eval()
        if torch.cuda.is_available():
            model.to("cuda")
        return model
