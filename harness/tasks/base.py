"""What a task is: a data source, a train/eval split, prompt templates, stop markers, filters, principles.

A task is a folder (lm-evaluation-harness style): ``harness/tasks/<name>/task.py`` (this class's subclass),
``principles.yaml`` and the demo queries ``demo.jsonl``. Everything the rest of the harness needs to know about a
task is an attribute here (principle splits, the judge's label for the query, the DPO beta, the paper config), so
adding a task touches nothing outside its folder and the registry in ``harness/tasks/__init__.py``.

A task's prompts differ only in their wording, so each task states its wording as class attributes and this
class assembles the two prompt shapes the paper uses (SPEC section 2): the generation prompt (a system line, an
example-format block with bracketed placeholders, then the real principles and query) and the shorter training
prompt that SAMI's log-probabilities are scored under.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Callable, ClassVar

from harness.config import DataConfig, load_yaml_mapping
from harness.core.errors import ConfigError
from harness.tasks.loaders import Query
from harness.tasks.principles import PrincipleSet, load_principles
from harness.models.prompts import Prompt

# Local files without a declared split: the first EVAL_SIZE queries evaluate (paper: first 250), the rest train.
DEFAULT_EVAL_SIZE = 250


WORDING_FIELDS = ("generation_instruction", "example_format", "training_instruction", "chat_instruction", "query_label",
                  "answer_label", "response_prefix", "response_noun", "judge_query_label")


class Task:
    name: ClassVar[str]
    description: ClassVar[str]
    stop_strings: ClassVar[list[str]]
    default_filters: ClassVar[list[str]]
    hub_eval_split: ClassVar[str] = "validation"
    principles_file: ClassVar[Path]            # default: principles.yaml in the task's folder
    demo_file: ClassVar[Path]                  # default: demo.jsonl in the task's folder (else its parent task's)
    file_reader: ClassVar[Callable[[Path], list[Query]]]  # reads the task's demo and local files
    principle_splits: ClassVar[tuple[str, ...]] = ("train",)  # evaluated principle splits ('heldout' too)
    judge_query_label: ClassVar[str] = "Query"  # what the judge prompt calls the query
    dpo_beta: ClassVar[float] = 0.1            # DPO/IPO beta (SPEC section 3; 0.1 is the DPO paper's value)
    paper_config: ClassVar[str | None] = None  # the paper's settings for this task (configs/paper/)

    # Prompt wording, read from prompts.yaml in the task's folder. The base-format prompt ends
    # "<query_label><query>\n\n<answer_label>".
    generation_instruction: ClassVar[str]
    example_format: ClassVar[str]
    training_instruction: ClassVar[str]
    chat_instruction: ClassVar[str]
    query_label: ClassVar[str] = ""
    answer_label: ClassVar[str]
    response_prefix: ClassVar[str] = ""
    response_noun: ClassVar[str] = "response"

    def __init_subclass__(cls, **kwargs) -> None:
        """File facts default to the files in the task's own folder (``harness/tasks/<name>/``), and the prompt
        wording is that folder's ``prompts.yaml`` (a task without one keeps its parent task's wording)."""
        super().__init_subclass__(**kwargs)
        folder = Path(inspect.getfile(cls)).resolve().parent
        if (folder / "prompts.yaml").is_file():
            wording = load_yaml_mapping(folder / "prompts.yaml")
            unknown = sorted(set(wording) - set(WORDING_FIELDS))
            if unknown:
                raise ConfigError(str(folder / "prompts.yaml"), unknown[0], f"unknown wording field; known: "
                                  f"{', '.join(WORDING_FIELDS)}")
            for key, value in wording.items():
                setattr(cls, key, value)
        if "principles_file" not in cls.__dict__:
            cls.principles_file = folder / "principles.yaml"
        if "demo_file" not in cls.__dict__ and (folder / "demo.jsonl").is_file():
            cls.demo_file = folder / "demo.jsonl"

    # --- data ------------------------------------------------------------------------------------------------
    def read_demo(self) -> list[Query]:
        return self.read_file(self.demo_file)

    def read_file(self, path: Path) -> list[Query]:
        return type(self).file_reader(path)

    def read_hub(self, split: str, data: DataConfig) -> list[Query]:
        raise NotImplementedError

    def load_queries(self, data: DataConfig, split: str) -> list[Query]:
        """Queries of ``split`` ('train' or 'eval') from the configured source, selected and limited as configured."""
        if split not in ("train", "eval"):
            raise ValueError(split)
        if data.source == "hub":
            if split == "eval":
                return self.hub_eval_queries(data)
            queries = self.read_hub("train", data)
        else:
            queries = self.read_demo() if data.source == "demo" else self.read_file(Path(data.source))
            queries = self.split_local(queries, split, data)
        queries = self.select(queries, data)
        limit = data.train_limit if split == "train" else data.eval_limit
        return queries[:limit] if limit else queries

    def hub_eval_queries(self, data: DataConfig) -> list[Query]:
        """The hub's evaluation queries, limited as configured (a task may follow its paper's own rule)."""
        queries = self.read_hub(self.hub_eval_split, data)
        return queries[:data.eval_limit] if data.eval_limit else queries

    def select(self, queries: list[Query], data: DataConfig) -> list[Query]:
        """Keep the queries the data config asks for (before the limit applies); all of them by default."""
        return queries

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
        return load_principles(path or self.principles_file)

    def generation_prompt(self, query: Query, principles_text: str) -> Prompt:
        """The prompt responses are sampled from (paper appendix: format-only example, then the real task)."""
        base = (f"{self.generation_instruction}\n\n{self.example_format}\n\n### Your task\nPrinciples:\n"
                f"{principles_text}\n\n{self._query_block(query)}")
        return self._prompt(base, query, principles_text)

    def training_prompt(self, query: Query, principles_text: str) -> Prompt:
        """The shorter prompt SAMI's log-probabilities are computed under (no example-format block)."""
        base = f"{self.training_instruction}\n{principles_text}\n\n{self._query_block(query)}"
        return self._prompt(base, query, principles_text)

    def _query_block(self, query: Query) -> str:
        return f"{self.query_label}{query.text}\n\n{self.answer_label}"

    def _prompt(self, base_text: str, query: Query, principles_text: str) -> Prompt:
        return Prompt(base_text=base_text, system=f"{self.chat_instruction}\n{principles_text}", user=query.text,
                      response_prefix=self.response_prefix)
