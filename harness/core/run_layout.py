"""Every path inside a run directory, in one place.

    runs/<task>-<trainer>-<config hash>/
      config.yaml  manifest.json  timings.json
      iterations/iter-<t>/data.jsonl, data_manifest.json, done.json              generate (flow/generate.py)
      iterations/iter-<t>/<trainer>/checkpoint/, telemetry.jsonl, done.json        train (flow/train.py)
      eval/<system>/<split>/responses.jsonl, done.json                             evaluate (flow/evaluate.py)
      judgments/<candidate>--vs--<baseline>[--<split>]/verdicts.jsonl, done.json   judge (flow/judge.py)
      mutual_information/iter-0 | iter-<t>-<trainer>/, metrics.jsonl             score (flow/score.py)
      results.json  leaderboard/                                                   publish (flow/publish.py)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RESULTS_FILE = "results.json"
METRICS_FILE = "metrics.jsonl"


@dataclass(frozen=True)
class RunLayout:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def for_config(cls, config) -> RunLayout:
        """``config.out``, else ``runs/<task>-<trainer>-<config hash>`` (a RunConfig)."""
        return cls(Path(config.out or f"runs/{config.task}-{config.trainer}-{config.hash()}"))

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def config_file(self) -> Path:
        return self.root / "config.yaml"

    @property
    def manifest_file(self) -> Path:
        return self.root / "manifest.json"

    @property
    def timings_file(self) -> Path:
        return self.root / "timings.json"

    @property
    def metrics_file(self) -> Path:
        return self.root / METRICS_FILE

    @property
    def results_file(self) -> Path:
        return self.root / RESULTS_FILE

    @property
    def leaderboard_dir(self) -> Path:
        return self.root / "leaderboard"

    def iteration(self, iteration: int) -> Path:
        return self.root / "iterations" / f"iter-{iteration}"

    def trainer(self, iteration: int, trainer: str) -> Path:
        return self.iteration(iteration) / trainer

    def checkpoint(self, iteration: int, trainer: str) -> Path:
        return self.trainer(iteration, trainer) / "checkpoint"

    def evaluation(self, system: str, split: str) -> Path:
        return self.root / "eval" / system / split

    def judgment(self, candidate: str, baseline: str, split: str) -> Path:
        return self.root / "judgments" / (f"{candidate}--vs--{baseline}" + (f"--{split}" if split != "train" else ""))

    def mutual_information(self, iteration: int, trainer: str) -> Path:
        return self.root / "mutual_information" / ("iter-0" if iteration == 0 else f"iter-{iteration}-{trainer}")
