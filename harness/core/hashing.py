"""Stable content hashes: the keys of the cache, the run manifests and the seeds."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace, so equal content gives equal text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def content_hash(obj: Any, length: int = 16) -> str:
    """SHA-256 of the canonical JSON of ``obj``, truncated to ``length`` hex digits."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()[:length]


def derived_seed(*parts: Any) -> int:
    """A 32-bit seed from a content hash of ``parts`` (e.g. item id and run seed), never global state."""
    return int(hashlib.sha256(canonical_json(parts).encode("utf-8")).hexdigest()[:8], 16)


def file_hash(path: Path, length: int = 16) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:length]


def folder_hash(folder: Path, patterns: tuple[str, ...] | None = None) -> str:
    """Hash of a model folder by relative name and content: every file at its top level (weights, config,
    tokenizer, chat template, custom-code ``.py``; hidden files such as ``.DS_Store`` left out), or only those
    matching ``patterns`` where given. Editing any file a loader may read gives a new hash."""
    folder = Path(folder)
    if patterns is None:
        entries = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    else:
        entries = sorted({p for pattern in patterns for p in folder.glob(pattern) if p.is_file()})
    return content_hash([[p.name, file_hash(p)] for p in entries])
