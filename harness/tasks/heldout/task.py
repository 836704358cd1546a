"""Summarization under diverse principles, with training and held-out principle sets (paper section 4.3)."""

from __future__ import annotations

from harness.tasks.tldr.task import TldrTask


class HeldoutTask(TldrTask):
    """The TL;DR posts (and demo posts) under 20 diverse principles: 15 to train on, 5 held out."""

    name = "heldout"
    description = "TL;DR summarization under diverse principles; evaluated on training and held-out principles"
    principle_splits = ("train", "heldout")
    paper_config = "configs/paper/heldout-llama3-70b.yaml"
