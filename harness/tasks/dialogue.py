"""Single-turn dialogue from Anthropic HH-RLHF, helpful-base and harmless-base (paper section 4.1)."""

from __future__ import annotations

from pathlib import Path

from harness.config import DataConfig
from harness.loaders import Query, read_dialogue_file, read_dialogue_hub
from harness.prompts import Prompt
from harness.tasks.base import Task

DEFAULT_SUBSETS = ["helpful-base", "harmless-base"]
GENERATION_SYSTEM = "System: Write the assistant's reply to the human, following the principles below."
EXAMPLE_FORMAT = """### Example format
Principles: [insert principles here]
Human: [insert request here]
Assistant: [insert reply here]"""


class DialogueTask(Task):
    name = "dialogue"
    description = "Single-turn dialogue (HH-RLHF helpful-base + harmless-base) under helpful/harmless principles"
    stop_strings = ["###", "Human:", "\n\n\n"]
    default_filters = ["non_empty", "template_leak", "distinct", "sorry_refusal"]
    hub_eval_split = "test"

    def read_demo(self) -> list[Query]:
        return read_dialogue_file(self.demo_path("dialogue.jsonl"))

    def read_file(self, path: Path) -> list[Query]:
        return read_dialogue_file(path)

    def read_hub(self, split: str, data: DataConfig) -> list[Query]:
        return read_dialogue_hub(data.subsets or DEFAULT_SUBSETS, split)

    def load_queries(self, data: DataConfig, split: str) -> list[Query]:
        queries = super().load_queries(data, split) if data.source != "hub" or split == "train" else \
            self._first_per_subset(self.read_hub(self.hub_eval_split, data), data.eval_limit or 250)
        if data.subsets:
            queries = [q for q in queries if q.subset in data.subsets]
        return queries

    @staticmethod
    def _first_per_subset(queries: list[Query], per_subset: int) -> list[Query]:
        """Paper: the first 250 test queries of each subset."""
        counts: dict[str | None, int] = {}
        kept = []
        for query in queries:
            counts[query.subset] = counts.get(query.subset, 0) + 1
            if counts[query.subset] <= per_subset:
                kept.append(query)
        return kept

    def generation_prompt(self, query: Query, principles_text: str) -> Prompt:
        base = (f"{GENERATION_SYSTEM}\n\n{EXAMPLE_FORMAT}\n\n### Your task\nPrinciples:\n{principles_text}\n\n"
                f"Human: {query.text}\n\nAssistant:")
        return Prompt(base_text=base, system=f"You are an AI assistant. Follow these principles:\n{principles_text}",
                      user=query.text)

    def training_prompt(self, query: Query, principles_text: str) -> Prompt:
        base = f"System: The assistant follows these principles.\n{principles_text}\n\nHuman: {query.text}\n\nAssistant:"
        return Prompt(base_text=base, system=f"You are an AI assistant. Follow these principles:\n{principles_text}",
                      user=query.text)
