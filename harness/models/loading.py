"""Resolving ``--model`` (``embedded``, a local folder or a hub id) to weights, a tokenizer and an identity.

The identity (name, revision, and a hash of the weight files when they are local) goes into every cache key
and manifest, so a changed checkpoint never reuses another model's generations. Weights load with
safetensors only; ``trust_remote_code`` stays off unless the config turns it on.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

from harness.config import ModelConfig
from harness.models.embedded import EMBEDDED_MODEL_ID, EMBEDDED_NAME, embedded_model_dir
from harness.core.errors import HarnessError
from harness.core.hashing import folder_hash
from harness.core.progress import quiet_model_loading

DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}


PRUNED_FILE = "pruned.json"  # left in a checkpoint folder whose weights ``train.keep_checkpoints`` deleted


def prune_checkpoint(folder: Path) -> int:
    """Delete a checkpoint's files but keep its identity (``pruned.json``), so finished stages that name it stay
    current on resume; returns the bytes freed. Loading a pruned checkpoint is an error that says so."""
    folder = Path(folder)
    if (folder / PRUNED_FILE).is_file() or not folder.is_dir():
        return 0
    identity = resolve_model(ModelConfig(name=str(folder))).identity
    freed = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    for item in folder.iterdir():
        shutil.rmtree(item) if item.is_dir() else item.unlink()
    (folder / PRUNED_FILE).write_text(json.dumps(identity), encoding="utf-8")
    return freed


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
    if (path / PRUNED_FILE).is_file():  # a checkpoint whose weights were deleted after use: identity only
        return ResolvedModel(str(path.resolve()), json.loads((path / PRUNED_FILE).read_text(encoding="utf-8")))
    if path.is_dir():
        if not any(path.glob("*.safetensors")):
            raise HarnessError(f"model folder {path} has no .safetensors weights (only safetensors are loaded)")
        return ResolvedModel(str(path.resolve()), {"name": str(path.resolve()), "weights": _local_hash(str(path.resolve()))})
    if config.name.startswith((".", "/", "~")) or path.exists() or config.name.count("/") > 1:
        raise HarnessError(f"model folder not found: {config.name} (use 'embedded', a hub id, or an existing folder)")
    return ResolvedModel(config.name, {"name": config.name, **hub_revision(config.name, config.revision)})


def check_model_source(config: ModelConfig) -> None:
    """What ``resolve_model`` checks, without hashing the weights: the folder exists and holds safetensors."""
    if config.name == EMBEDDED_NAME:
        return
    path = Path(config.name).expanduser()
    if path.is_dir():
        if not any(path.glob("*.safetensors")):
            raise HarnessError(f"model folder {path} has no .safetensors weights (only safetensors are loaded)")
        return
    if config.name.startswith((".", "/", "~")) or path.exists() or config.name.count("/") > 1:
        raise HarnessError(f"model folder not found: {config.name} (use 'embedded', a hub id, or an existing folder)")


@lru_cache(maxsize=64)
def hub_revision(name: str, revision: str | None) -> dict:
    """A hub id's revision pinned to its commit: asked of the hub when online, else read from the local HF cache
    (the snapshot an offline load uses); ``{"revision": ref, "pinned": False}`` when neither knows it, so a
    manifest shows that the weights behind a moving ref such as ``main`` are not identified."""
    import os
    import re

    ref = revision or "main"
    if re.fullmatch(r"[0-9a-f]{40}", ref):
        return {"revision": ref}
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("1", "true", "yes", "on"):
        try:
            from huggingface_hub import HfApi

            sha = HfApi().model_info(name, revision=ref, timeout=10).sha
            if sha:
                return {"revision": sha, "ref": ref}
        except Exception:  # offline, private, unknown: fall back to the local cache
            pass
    try:
        from huggingface_hub import constants

        refs = Path(constants.HF_HUB_CACHE) / f"models--{name.replace('/', '--')}" / "refs" / ref
        sha = refs.read_text(encoding="utf-8").strip() if refs.is_file() else ""
    except Exception:
        sha = ""
    if re.fullmatch(r"[0-9a-f]{40}", sha):
        return {"revision": sha, "ref": ref}
    return {"revision": ref, "pinned": False}


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


def _require_weights(resolved: ResolvedModel) -> None:
    if (Path(resolved.load_path) / PRUNED_FILE).is_file():
        raise HarnessError(f"checkpoint {resolved.load_path} was pruned after its run was published "
                           "(train.keep_checkpoints=last); a stage that needs its weights must retrain it: delete its "
                           "done.json, or run with --set train.keep_checkpoints=all")


def load_tokenizer(resolved: ResolvedModel, config: ModelConfig):
    from transformers import AutoTokenizer

    from transformers.utils import logging as hf_logging

    _require_weights(resolved)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # a failed load is our one error line, not transformers' warnings before it
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved.load_path, revision=config.revision,
                                                  trust_remote_code=config.trust_remote_code)
    except Exception as exc:  # missing, offline, garbage files, custom code refused: one line naming the model
        raise HarnessError(f"could not load the tokenizer of model '{config.name}': {_first_line(exc)}"
                           f"{_load_hint(resolved, config, exc)}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(resolved: ResolvedModel, config: ModelConfig):
    import torch
    from transformers import AutoModelForCausalLM

    _require_weights(resolved)
    quiet_model_loading()
    try:
        return AutoModelForCausalLM.from_pretrained(
            resolved.load_path, revision=config.revision, dtype=getattr(torch, DTYPES[config.dtype]),
            trust_remote_code=config.trust_remote_code, use_safetensors=True)
    except (OSError, ValueError, KeyError, ImportError) as exc:
        raise HarnessError(f"could not load model '{config.name}': {_first_line(exc)}"
                           f"{_load_hint(resolved, config, exc)}") from None


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0][:300] if lines else '(no message)'}"


def _load_hint(resolved: ResolvedModel, config: ModelConfig, exc: BaseException) -> str:
    if "trust_remote_code" in str(exc) and not config.trust_remote_code:
        return " (the folder ships custom code; set model.trust_remote_code: true only if you trust it)"
    if not Path(resolved.load_path).is_dir():
        return (" (no such folder here; as a hub id it needs the network or a copy in the Hugging Face cache, "
                "and HF_HUB_OFFLINE=1 forbids the network)")
    return ""


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
