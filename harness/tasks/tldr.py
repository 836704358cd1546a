"""Reddit TL;DR summarization (Stiennon et al. 2020 posts; SAMI paper section 4.2)."""

from __future__ import annotations

from pathlib import Path

from harness.config import DataConfig
from harness.loaders import Query, read_tldr_file, read_tldr_hub
from harness.prompts import Prompt
from harness.tasks.base import Task

GENERATION_SYSTEM = "System: Write a summary of the post that follows the principles below."
EXAMPLE_FORMAT = """### Example format
Principles: [insert principles here]
Post: [insert post here]
Summary: [insert summary here]"""


class TldrTask(Task):
    name = "tldr"
    description = "Reddit TL;DR summarization: summarize a post under concise/comprehensive principles"
    stop_strings = ["###", "\n\n", "Human:", "POST:"]
    default_filters = ["non_empty", "template_leak", "distinct", "full_stop"]
    response_prefix = "The post"
    response_noun = "summary"

    def read_demo(self) -> list[Query]:
        return read_tldr_file(self.demo_path("tldr.jsonl"))

    def read_file(self, path: Path) -> list[Query]:
        return read_tldr_file(path)

    def read_hub(self, split: str, data: DataConfig) -> list[Query]:
        return read_tldr_hub(split)

    def generation_prompt(self, query: Query, principles_text: str) -> Prompt:
        base = (f"{GENERATION_SYSTEM}\n\n{EXAMPLE_FORMAT}\n\n### Your task\nPrinciples:\n{principles_text}\n\n"
                f"{query.text}\n\nSummary:")
        return Prompt(base_text=base, system=f"Summarize the Reddit post. Follow these principles:\n{principles_text}",
                      user=query.text, response_prefix=self.response_prefix)

    def training_prompt(self, query: Query, principles_text: str) -> Prompt:
        base = f"System: Summarize the post following these principles.\n{principles_text}\n\n{query.text}\n\nSummary:"
        return Prompt(base_text=base, system=f"Summarize the Reddit post. Follow these principles:\n{principles_text}",
                      user=query.text, response_prefix=self.response_prefix)
