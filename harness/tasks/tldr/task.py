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

    generation_instruction = "System: Write a summary of the post that follows the principles below."
    example_format = """### Example format
Principles: [insert principles here]
Post: [insert post here]
Summary: [insert summary here]"""
    training_instruction = "System: Summarize the post following these principles."
    chat_instruction = "Summarize the Reddit post. Follow these principles:"
    answer_label = "Summary:"
    response_prefix = "The post"
    response_noun = "summary"
    file_reader = staticmethod(read_tldr_file)
    judge_query_label = "Forum post"
    dpo_beta = 0.5
    paper_config = "configs/paper/tldr-mistral7b.yaml"

    def read_hub(self, split: str, data: DataConfig) -> list[Query]:
        return read_tldr_hub(split)
