"""Single-turn dialogue from Anthropic HH-RLHF, helpful-base and harmless-base (paper section 4.1)."""

from __future__ import annotations


from harness.config import DataConfig
from harness.tasks.loaders import Query, read_dialogue_file, read_dialogue_hub
from harness.tasks.base import Task

DEFAULT_SUBSETS = ["helpful-base", "harmless-base"]
PAPER_EVAL_QUERIES_PER_SUBSET = 250


class DialogueTask(Task):
    name = "dialogue"
    description = "Single-turn dialogue (HH-RLHF helpful-base + harmless-base) under helpful/harmless principles"
    stop_strings = ["###", "Human:", "\n\n\n"]
    default_filters = ["non_empty", "template_leak", "distinct", "sorry_refusal"]
    hub_eval_split = "test"

    file_reader = staticmethod(read_dialogue_file)
    dpo_beta = 0.1
    paper_config = "configs/paper/dialogue-mistral7b.yaml"

    def read_hub(self, split: str, data: DataConfig) -> list[Query]:
        return read_dialogue_hub(data.subsets or DEFAULT_SUBSETS, split)

    def select(self, queries: list[Query], data: DataConfig) -> list[Query]:
        """Only the configured HH-RLHF subsets, when some are named."""
        return [q for q in queries if q.subset in data.subsets] if data.subsets else queries

    def hub_eval_queries(self, data: DataConfig) -> list[Query]:
        """Paper: the first 250 test queries of EACH subset, so ``eval_limit`` counts per subset here."""
        per_subset = data.eval_limit or PAPER_EVAL_QUERIES_PER_SUBSET
        counts: dict[str | None, int] = {}
        kept = []
        for query in self.read_hub(self.hub_eval_split, data):
            counts[query.subset] = counts.get(query.subset, 0) + 1
            if counts[query.subset] <= per_subset:
                kept.append(query)
        return kept
