"""Summarization under diverse principles, with training and held-out principle sets (paper section 4.3)."""

from __future__ import annotations

from harness.tasks.tldr import TldrTask


class HeldoutTask(TldrTask):
    name = "heldout"
    description = "TL;DR summarization under diverse principles; evaluated on training and held-out principles"
