"""Run manifests: enough to trace every number to its config, code, data, model and seeds."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from harness.config import RunConfig

PACKAGES = ("torch", "transformers", "trl", "accelerate", "peft", "datasets", "scipy", "numpy", "pydantic", "openai",
            "vllm", "sami-harness")


def git_commit() -> str | None:
    """The harness repository's commit, with '-dirty' when the working tree has changes."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (commit + ("-dirty" if dirty else "")) or None


def package_versions() -> dict[str, str | None]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def manifest(config: RunConfig, **extra) -> dict:
    """The provenance record of a stage or run; ``extra`` adds data fingerprints, model identity, etc."""
    from harness.core.urls import redact_url

    dumped = config.model_dump(mode="json")
    dumped["generation"]["base_url"] = redact_url(dumped["generation"].get("base_url"))  # no key in a manifest
    return {
        "config": dumped,
        "config_hash": config.hash(),
        "git_commit": git_commit(),
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }
