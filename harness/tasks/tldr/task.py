"""Reddit TL;DR summarization (Stiennon et al. 2020 posts; SAMI paper section 4.2)."""

from __future__ import annotations

from harness.config import DataConfig
from harness.tasks.loaders import Query, read_tldr_file, read_tldr_hub
from harness.tasks.base import Task


class TldrTask(Task):
    name = "tldr"
    description = "Reddit TL;DR summarization: summarize a post under concise/comprehensive principles"
    stop_strings = ["###", "\n\n", "Human:", "POST:"]
    default_filters = ["non_empty", "template_leak", "distinct", "full_stop"]

    file_reader = staticmethod(read_tldr_file)
    dpo_beta = 0.5
    paper_config = "configs/paper/tldr-mistral7b.yaml"

    def read_hub(self, split: str, data: DataConfig) -> list[Query]:
        return read_tldr_hub(split)
