"""Content-addressed cache for generations, log-probs and judgments.

Keys are content hashes of everything that changes the answer (backend, model identity, rendered prompt,
decoding parameters, seed, parser version); values are JSON. One SQLite file, safe for concurrent processes.
API keys never enter keys or values: callers pass identities, not clients.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from harness.models.embedded import cache_root
from harness.core.hashing import content_hash


class ContentCache:
    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else cache_root() / "cache.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(self.path, timeout=60)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, kind TEXT, value TEXT)")
        self._connection.commit()

    @staticmethod
    def key(kind: str, parts: dict) -> str:
        return content_hash({"kind": kind, **parts}, length=40)

    def get(self, key: str) -> Any | None:
        row = self._connection.execute("SELECT value FROM entries WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        found = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for key, value in self._connection.execute(f"SELECT key, value FROM entries WHERE key IN ({marks})", chunk):
                found[key] = json.loads(value)
        return found

    def put_many(self, kind: str, items: dict[str, Any]) -> None:
        with self._connection:
            self._connection.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?)",
                                         [(k, kind, json.dumps(v)) for k, v in items.items()])

    def close(self) -> None:
        self._connection.close()
