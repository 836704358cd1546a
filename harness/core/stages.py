"""Idempotent stages: a stage is done when its marker exists and records the hash of the same inputs.

The marker is written atomically and last, after every artifact of the stage, so a run killed at any point
(even ``kill -9``) either sees a finished stage or redoes it; changed inputs make the marker stale. It records
the harness commit that ran the stage: a run resumed or republished by a later commit keeps, per stage, the
code that produced each artifact.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.core.artifacts import read_json, write_json
from harness.core.hashing import content_hash

MARKER = "done.json"


class Stage:
    def __init__(self, directory: Path, name: str, inputs: Any):
        self.directory = Path(directory)
        self.name = name
        self.inputs_hash = content_hash(inputs)
        self.marker = self.directory / MARKER

    def done(self) -> bool:
        if not self.marker.is_file():
            return False
        return read_json(self.marker).get("inputs_hash") == self.inputs_hash

    def summary(self) -> dict:
        return read_json(self.marker)

    def finish(self, **summary: Any) -> dict:
        from harness.core.provenance import git_commit

        record = {"stage": self.name, "inputs_hash": self.inputs_hash,
                  "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"), "commit": git_commit(),
                  **summary}
        write_json(self.marker, record)
        return record
