"""What a task is: a data source, a train/eval split, prompt templates, stop markers, filters, principles."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from harness.config import DataConfig
from harness.loaders import DEMO_DIR, Query
from harness.principles import PrincipleSet, default_principles_path, load_principles
from harness.prompts import Prompt

# Local files without a declared split: the first EVAL_SIZE queries evaluate (paper: first 250), the rest train.
DEFAULT_EVAL_SIZE = 250


class Task:
    name: ClassVar[str]
    description: ClassVar[str]
    stop_strings: ClassVar[list[str]]
    default_filters: ClassVar[list[str]]
    response_prefix: ClassVar[str] = ""
    response_noun: ClassVar[str] = "response"

    # --- data ------------------------------------------------------------------------------------------------
    def read_demo(self) -> list[Query]:
        raise NotImplementedError

    def read_file(self, path: Path) -> list[Query]:
        raise NotImplementedError

    def read_hub(self, split: str, data: DataConfig) -> list[Query]:
        raise NotImplementedError

    def load_queries(self, data: DataConfig, split: str) -> list[Query]:
        """Queries of ``split`` ('train' or 'eval') from the configured source, limited as configured."""
        if split not in ("train", "eval"):
            raise ValueError(split)
        if data.source == "hub":
            queries = self.read_hub("train" if split == "train" else self.hub_eval_split, data)
        else:
            queries = self.read_demo() if data.source == "demo" else self.read_file(Path(data.source))
            queries = self.split_local(queries, split, data)
        limit = data.train_limit if split == "train" else data.eval_limit
        return queries[:limit] if limit else queries

    hub_eval_split: ClassVar[str] = "validation"

    def split_local(self, queries: list[Query], split: str, data: DataConfig) -> list[Query]:
        """Honour a declared split field; otherwise the first queries evaluate and the rest train."""
        if any(q.split for q in queries):
            return [q for q in queries if q.split == split]
        # The boundary stays at the paper's first 250 whatever eval_limit a run uses, so the training pool never
        # holds a post of the standard evaluation set; only smaller files split at eval_limit.
        eval_size = DEFAULT_EVAL_SIZE if len(queries) > DEFAULT_EVAL_SIZE else (data.eval_limit or DEFAULT_EVAL_SIZE)
        if len(queries) <= eval_size:
            return queries if split == "eval" else []
        return queries[:eval_size] if split == "eval" else queries[eval_size:]

    # --- principles and prompts -------------------------------------------------------------------------------
    def principles(self, path: str | None = None) -> PrincipleSet:
        return load_principles(path or default_principles_path(self.name))

    def generation_prompt(self, query: Query, principles_text: str) -> Prompt:
        raise NotImplementedError

    def training_prompt(self, query: Query, principles_text: str) -> Prompt:
        raise NotImplementedError

    @staticmethod
    def demo_path(file_name: str) -> Path:
        return DEMO_DIR / file_name
