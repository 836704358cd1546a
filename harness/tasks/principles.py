"""Principles and constitutions (SPEC section 2; Franken et al. 2024, section 3).

A *principle* has a definition and an antithesis. A *constitution* is a numbered list of principles, each in
its positive or negated form, in a shuffled order. Three sampling schemes produce the contrastive constitutions
SAMI trains on, one set per query:

- ``contrastive`` (TL;DR): c+ = all principles positive; c- negates one of the configured index sets
  (paper: the first, the second or both, uniformly).
- ``subset`` (dialogue): c- negates the principle tied to the query's subset (helpful or harmless).
- ``diverse`` (held-out principles): draw ``per_constitution`` principles from the training split, flip a coin
  for each slot, and give the second constitution the complement in every slot.

For C > 2 constitutions per query (e.g. the mutual-information metric), c_1 is the scheme's first
constitution and the others are distinct sign patterns over the same principles.

Files: our YAML format (``harness/tasks/<task>/principles.yaml``), and the paper's released formats: a folder of
``{"positive", "negative", "identifiers"}`` JSON files, or a ``{name: {"definition", "antithesis"}}`` JSON.
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.config import load_yaml_mapping, validation_error
from harness.core.artifacts import read_json
from harness.core.errors import ConfigError
from harness.verifiers import CheckSpec, parse_check

NAME_PATTERN = r"^[a-z0-9_-]+$"


class Principle(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    definition: str = Field(min_length=3)
    antithesis: str = Field(min_length=3)
    subset: str | None = None
    check: CheckSpec | None = Field(None, description="exact verifier of the definition (harness/verifiers)")
    antithesis_check: CheckSpec | None = Field(None, description="exact verifier of the antithesis")

    def text(self, positive: bool) -> str:
        return (self.definition if positive else self.antithesis).strip()

    def check_for(self, positive: bool) -> CheckSpec | None:
        """The verifier of the definition (positive) or of the antithesis; None when not checkable."""
        return self.check if positive else self.antithesis_check

    @property
    def checkable(self) -> bool:
        return self.check is not None and self.antithesis_check is not None


class Writer(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str
    notes: str | None = None


class Sampling(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scheme: str = Field(pattern="^(contrastive|subset|diverse)$")
    negate: list[list[int]] | None = None
    per_constitution: int = Field(2, ge=1)


class Split(BaseModel):
    model_config = ConfigDict(extra="forbid")

    train: list[str]
    heldout: list[str]


class PrincipleSet(BaseModel):
    """A task's principles, how constitutions are drawn from them, and who wrote them."""

    model_config = ConfigDict(extra="forbid")

    task: str
    description: str
    writer: Writer
    principles: list[Principle] = Field(min_length=1)
    sampling: Sampling
    split: Split | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "PrincipleSet":
        names = [p.name for p in self.principles]
        if len(set(names)) != len(names):
            raise ValueError(f"principle names must be unique, got {names}")
        if self.sampling.scheme == "contrastive":
            if not self.sampling.negate:
                raise ValueError("sampling.negate must list the index sets that c- negates")
            for option in self.sampling.negate:
                if not option or any(not 0 <= i < len(names) for i in option):
                    raise ValueError(f"sampling.negate entry {option} must hold indices 0..{len(names) - 1}")
        if self.sampling.scheme == "subset" and any(p.subset is None for p in self.principles):
            raise ValueError("scheme 'subset' needs a 'subset' on every principle")
        if self.sampling.scheme == "diverse":
            if self.split is None:
                raise ValueError("scheme 'diverse' needs split.train and split.heldout")
            listed = self.split.train + self.split.heldout
            if sorted(listed) != sorted(names):
                raise ValueError("split.train and split.heldout must partition the principle names")
            if self.sampling.per_constitution > len(self.split.train):
                raise ValueError("sampling.per_constitution exceeds the training principles")
        return self

    def by_name(self, name: str) -> Principle:
        for principle in self.principles:
            if principle.name == name:
                return principle
        raise KeyError(name)

    def training_principles(self) -> list[Principle]:
        if self.split is None:
            return list(self.principles)
        return [self.by_name(n) for n in self.split.train]

    def heldout_principles(self) -> list[Principle]:
        return [self.by_name(n) for n in self.split.heldout] if self.split else []


@dataclass(frozen=True)
class Constitution:
    """An ordered list of (principle, positive?) rendered as a numbered list."""

    entries: tuple[tuple[Principle, bool], ...]

    @property
    def text(self) -> str:
        return "\n".join(f"{i}. {p.text(positive)}" for i, (p, positive) in enumerate(self.entries, 1))

    @property
    def identifiers(self) -> list[str]:
        return [f"{'pos' if positive else 'neg'} {p.name}" for p, positive in self.entries]

    def to_json(self) -> dict:
        return {"text": self.text, "identifiers": self.identifiers}


@dataclass
class ConstitutionSampler:
    """Draws the C constitutions of one query from a PrincipleSet, seeded per query."""

    principles: PrincipleSet
    n_constitutions: int = 2
    _patterns: list = field(default_factory=list, init=False, repr=False)

    def sample(self, rng: random.Random, subset: str | None = None) -> list[Constitution]:
        scheme = self.principles.sampling.scheme
        if scheme == "diverse":
            chosen = rng.sample(self.principles.training_principles(), self.principles.sampling.per_constitution)
            first_signs = tuple(rng.random() < 0.5 for _ in chosen)
            second_signs = tuple(not s for s in first_signs)
        else:
            chosen = list(self.principles.principles)
            rng.shuffle(chosen)
            first_signs = tuple(True for _ in chosen)
            if scheme == "contrastive":
                negated = {self.principles.principles[i].name for i in rng.choice(self.principles.sampling.negate)}
            else:
                matches = {p.name for p in chosen if p.subset == subset}
                if not matches:
                    known = sorted({p.subset for p in chosen})
                    raise ConfigError("principles", "subset", f"query subset '{subset}' matches no principle ({known})")
                negated = matches
            second_signs = tuple(p.name not in negated for p in chosen)
        patterns = [first_signs, second_signs]
        if self.n_constitutions > 2:
            others = [s for s in itertools.product([True, False], repeat=len(chosen)) if s not in patterns]
            needed = self.n_constitutions - 2
            if needed > len(others):
                raise ConfigError("config", "principles.constitutions_per_query",
                                  f"{self.n_constitutions} exceeds the {2 ** len(chosen)} sign patterns of "
                                  f"{len(chosen)} principles")
            patterns += rng.sample(others, needed)
        return [Constitution(tuple(zip(chosen, signs))) for signs in patterns[: self.n_constitutions]]

    def evaluation(self, rng: random.Random, heldout: bool = False) -> Constitution:
        """The all-positive evaluation constitution (diverse: a random positive pair from the chosen split)."""
        if self.principles.sampling.scheme == "diverse":
            pool = self.principles.heldout_principles() if heldout else self.principles.training_principles()
            chosen = rng.sample(pool, self.principles.sampling.per_constitution)
        else:
            chosen = list(self.principles.principles)
        return Constitution(tuple((p, True) for p in chosen))


def load_principles(path: str | Path) -> PrincipleSet:
    """Load a principles file in any supported format; errors name the file and the field."""
    path = Path(path)
    try:
        if path.is_dir():
            return _load_paper_pairs(path)
        if path.suffix == ".json":
            return _load_paper_definitions(path)
        return PrincipleSet.model_validate(_parse_checks(load_yaml_mapping(path), str(path)))
    except ValidationError as exc:
        raise validation_error(str(path), exc) from None


CHECK_FIELDS = ("check", "antithesis_check")


def _parse_checks(data: dict, source: str) -> dict:
    """Validate every principle's ``check`` / ``antithesis_check`` against the verifier registry first, so a
    malformed check is one error naming the file, the principle and the field."""
    entries = data.get("principles")
    if not isinstance(entries, list):
        return data
    parsed = []
    for index, entry in enumerate(entries):
        if isinstance(entry, dict) and any(entry.get(field) is not None for field in CHECK_FIELDS):
            name = str(entry.get("name", index))
            entry = {**entry, **{field: parse_check(entry[field], source, name, field)
                                 for field in CHECK_FIELDS if entry.get(field) is not None}}
        parsed.append(entry)
    return {**data, "principles": parsed}


def default_principles_path(task: str) -> Path:
    """The principles file shipped in the task's folder (``harness/tasks/<task>/principles.yaml``)."""
    from harness.tasks import get_task

    return get_task(task).principles_file


def available_principle_files() -> dict[str, Path]:
    """Task name -> the principles file shipped in its folder."""
    from harness.tasks import get_task, tasks

    return {name: get_task(name).principles_file for name in tasks.names()}


def _load_paper_definitions(path: Path) -> PrincipleSet:
    """The paper's diverse-principles JSON: ``{name: {definition, antithesis}}``, first 15 train, last 5 held out."""
    data = read_json(path)
    if not isinstance(data, dict) or not data:
        raise ConfigError(str(path), "(top level)", "expected {name: {definition, antithesis}}")
    principles = []
    for name, entry in data.items():
        if not isinstance(entry, dict) or not {"definition", "antithesis"} <= set(entry):
            raise ConfigError(str(path), name, "needs 'definition' and 'antithesis'")
        principles.append(Principle(name=_slug(name), definition=entry["definition"], antithesis=entry["antithesis"]))
    names = [p.name for p in principles]
    n_heldout = 5 if len(names) > 5 else 0
    return PrincipleSet(
        task="heldout", description="Summarize a Reddit post following diverse principles.",
        writer=Writer(model="claude-opus (SAMI paper release)", notes=f"loaded from {path}"),
        principles=principles, sampling=Sampling(scheme="diverse", per_constitution=2),
        split=Split(train=names[: len(names) - n_heldout], heldout=names[len(names) - n_heldout:]))


def _load_paper_pairs(folder: Path) -> PrincipleSet:
    """A folder of the paper's ``{positive, negative, identifiers}`` files: recover each principle's two forms
    from the numbered lines and their identifiers ("pos concise" / "neg concise"), and the negation options."""
    files = sorted(folder.glob("*.json"))
    if not files:
        raise ConfigError(str(folder), "(folder)", "no .json constitution files")
    forms: dict[str, dict[bool, str]] = {}
    order: list[str] = []
    negate_options: list[list[str]] = []
    for file in files:
        data = read_json(file)
        try:
            for side in ("positive", "negative"):
                lines = [re.sub(r"^\d+\.\s*", "", ln).strip() for ln in data[side].strip().split("\n") if ln.strip()]
                idents = data["identifiers"][side]
                if len(lines) != len(idents):
                    raise ConfigError(str(file), f"identifiers.{side}", "count differs from the numbered lines")
                for line, ident in zip(lines, idents):
                    sign, name = ident.split(" ", 1)
                    forms.setdefault(_slug(name), {})[sign == "pos"] = line
                    if _slug(name) not in order:
                        order.append(_slug(name))
            negated = sorted(_slug(i.split(" ", 1)[1]) for i in data["identifiers"]["negative"] if i.startswith("neg"))
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ConfigError(str(file), "positive/negative/identifiers", f"unexpected structure ({exc})") from None
        if negated not in negate_options:
            negate_options.append(negated)
    principles = []
    for name in order:
        if set(forms[name]) != {True, False}:
            raise ConfigError(str(folder), name, "needs both a 'pos' and a 'neg' form across the files")
        principles.append(Principle(name=name, definition=forms[name][True], antithesis=forms[name][False]))
    return PrincipleSet(
        task="tldr", description="Summarize a Reddit post.",
        writer=Writer(model="SAMI paper release", notes=f"loaded from {folder}"), principles=principles,
        sampling=Sampling(scheme="contrastive", negate=[sorted(order.index(n) for n in option) for option in negate_options]))


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "_", name.strip().lower())
