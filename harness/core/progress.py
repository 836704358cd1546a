"""Progress a person can follow: one line per stage of a run (``[3/17] evaluate sami-iter2 (train principles):
16 responses``) with the elapsed time and an estimate of the time left, on standard error."""

from __future__ import annotations

import sys
import time


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}:{seconds:02d}"


class RunProgress:
    """Counts the run's stages; the estimate is the mean time of the stages so far times the stages left (stages
    already done on a resume take no time, so early estimates of a resumed run are low)."""

    def __init__(self, total: int, stream=None):
        self.total = total
        self.done = 0
        self.started = time.time()
        self.stream = stream or sys.stderr

    def stage(self, name: str, detail: str) -> None:
        elapsed = time.time() - self.started
        left = "" if not self.done else f", about {_clock(elapsed / self.done * (self.total - self.done))} left"
        self.done += 1
        print(f"[{self.done}/{self.total}] {name} {detail}  ({_clock(elapsed)} elapsed{left})", file=self.stream,
              flush=True)


def quiet_model_loading() -> None:
    """No per-file weight-loading bars from transformers and the hub (the stage lines say what is loading)."""
    from transformers.utils import logging

    logging.disable_progress_bar()
