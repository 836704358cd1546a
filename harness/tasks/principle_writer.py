"""An LLM writes a task's principles and their antitheses (SAMI paper, section 3: the principle writer).

The writer is asked, as in the paper, to "write two principles for <task>, with definitions, and their
antitheses", in a strict line format::

    NAME: concise
    DEFINITION: Summaries should be brief ...
    ANTITHESIS: Summaries should be long ...

The answer is parsed and validated into a ``PrincipleSet`` (sampling scheme taken from the task's own
principles file); on malformed output the writer is asked again with a new seed and a sampling temperature, a
bounded number of times, then the run fails with the start of the last raw answer. The provenance (writer
model identity, backend, the exact prompt, date, attempts) is written into the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import yaml
from pydantic import ValidationError

from harness.core.artifacts import atomic_write_text
from harness.models.backends.base import Backend
from harness.core.cache import ContentCache
from harness.core.errors import HarnessError
from harness.core.hashing import derived_seed
from harness.tasks.principles import (NAME_PATTERN, Principle, PrincipleSet, Sampling, Split, Writer, _slug,
                                default_principles_path, load_principles)
from harness.models.prompts import Prompt

RETRY_TEMPERATURE = 0.7
STOP = ["###", "\n\n\n\n"]
KEYS = ("NAME", "DEFINITION", "ANTITHESIS")
_KEY_LINE = re.compile(r"^\s*(?:[-*#>\d.)\s]*)?\**\s*(NAME|DEFINITION|ANTITHESIS)\s*\**\s*[:\-]\s*\**\s*(.*)$", re.I)


class MalformedOutput(ValueError):
    """The writer's answer does not follow the requested format; the message says what is wrong."""


@dataclass
class WriterRequest:
    """What to ask for: ``count`` principles for the task described by ``description``."""

    task: str
    description: str
    count: int = 2
    sampling: Sampling = field(default_factory=lambda: Sampling(scheme="contrastive", negate=[[0], [1], [0, 1]]))
    topics: list[str] = field(default_factory=list)  # subset scheme: what principle i must be about
    subsets: list[str] = field(default_factory=list)  # subset scheme: the data subset of principle i
    heldout: int = 0  # diverse scheme: how many of the principles (the last ones) are held out


def request_for_task(task: str, count: int | None = None, description: str | None = None) -> WriterRequest:
    """A request shaped like the task's shipped principles file (its description and sampling scheme)."""
    from harness.tasks import get_task

    task_object = get_task(task)
    path = default_principles_path(task)
    template = load_principles(path) if path.is_file() else None
    text = description or (template.description if template else task_object.description)
    sampling = template.sampling if template else Sampling(scheme="contrastive", negate=[[0], [1], [0, 1]])
    scheme = sampling.scheme
    if scheme == "contrastive":
        n = count or (len(template.principles) if template else 2)
        if template and n == len(template.principles):
            negate = sampling.negate
        else:  # each principle alone, and all of them together (the paper's first/second/both for n = 2)
            negate = [[i] for i in range(n)] + ([list(range(n))] if n > 1 else [])
        return WriterRequest(task, text, n, Sampling(scheme="contrastive", negate=negate))
    if scheme == "subset":
        topics = [p.name for p in template.principles]
        if count is not None and count != len(topics):
            raise HarnessError(f"task '{task}' ties one principle to each data subset: --count must be {len(topics)}")
        return WriterRequest(task, text, len(topics), sampling, topics=topics,
                             subsets=[p.subset or "" for p in template.principles])
    n = count or (len(template.principles) if template else 20)
    heldout = max(1, n // 4)
    if n - heldout < sampling.per_constitution:
        minimum = next(k for k in range(n + 1, 8 * n + 8) if k - max(1, k // 4) >= sampling.per_constitution)
        raise HarnessError(f"task '{task}' draws {sampling.per_constitution} training principles per constitution "
                           f"and holds out the last quarter: --count must be at least {minimum}")
    return WriterRequest(task, text, n, sampling, heldout=heldout)


_NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}


def writer_prompt(request: WriterRequest) -> Prompt:
    """The instruction: the paper's request plus the exact output format."""
    count = _NUMBER_WORDS.get(request.count, str(request.count))
    noun = "principle" if request.count == 1 else "principles"
    lines = [f"Write {count} {noun} for the following task, with definitions, and their antitheses.",
             "", f"Task: {request.description.strip()}", ""]
    if request.topics:
        for number, topic in enumerate(request.topics, 1):
            lines.append(f"Principle {number} must be about being {topic.replace('_', ' ')}.")
        lines.append("")
    lines += [
        "A definition is one sentence saying what a good response does under the principle. "
        "Its antithesis is one sentence saying the opposite, in the same style.",
        f"Answer with exactly {request.count} blocks in this format and nothing else:",
        "",
        "NAME: <one or two lowercase words>",
        "DEFINITION: <one sentence>",
        "ANTITHESIS: <one sentence>",
    ]
    text = "\n".join(lines)
    return Prompt(base_text=f"{text}\n\n", system=None, user=text, response_prefix="NAME:")


def parse_principles(text: str, count: int) -> list[Principle]:
    """Parse ``NAME/DEFINITION/ANTITHESIS`` blocks; raise MalformedOutput naming the first problem.

    Markdown decoration (bold, bullets, numbering) around the keys is tolerated, as are lines that continue a
    definition or antithesis up to a blank line; any text after the ``count``-th complete block is ignored.
    """
    blocks: list[dict[str, str]] = []
    current_key = None
    for line in text.splitlines():
        match = _KEY_LINE.match(line)
        if match:
            key, value = match.group(1).upper(), match.group(2).strip().strip("*").strip()
            if key == "NAME":
                if len(blocks) >= count and all(k in blocks[-1] for k in KEYS):
                    break
                blocks.append({})
            elif not blocks:
                raise MalformedOutput(f"'{key}:' comes before any 'NAME:' line")
            if key in blocks[-1]:
                raise MalformedOutput(f"principle {len(blocks)} has two '{key}:' lines")
            blocks[-1][key] = value
            current_key = key
        elif not line.strip():
            current_key = None if blocks and blocks[-1].get(current_key or "") else current_key
        elif blocks and current_key in ("DEFINITION", "ANTITHESIS"):
            blocks[-1][current_key] = f"{blocks[-1][current_key]} {line.strip()}".strip()
        elif blocks and current_key == "NAME" and not blocks[-1]["NAME"]:
            blocks[-1]["NAME"] = line.strip()
    complete = [b for b in blocks if all(b.get(k) for k in KEYS)]
    if len(complete) < count:
        missing = next((f"principle {i + 1} has no {k}" for i, b in enumerate(blocks) for k in KEYS if not b.get(k)),
                       None)
        raise MalformedOutput(f"found {len(complete)} complete NAME/DEFINITION/ANTITHESIS blocks, need {count}"
                              + (f" ({missing})" if missing else ""))
    principles = []
    for number, block in enumerate(complete[:count], 1):
        name = _slug(block["NAME"].strip(" .`'\""))[:40].strip("_")
        if not name or not re.match(NAME_PATTERN, name):
            raise MalformedOutput(f"principle {number} has an unusable name {block['NAME']!r}")
        definition, antithesis = block["DEFINITION"].strip(), block["ANTITHESIS"].strip()
        if len(definition) < 10 or len(antithesis) < 10:
            raise MalformedOutput(f"principle {number} ({name}): definition and antithesis need a full sentence each")
        if definition.lower() == antithesis.lower():
            raise MalformedOutput(f"principle {number} ({name}): the antithesis repeats the definition")
        principles.append(Principle(name=name, definition=definition, antithesis=antithesis))
    names = [p.name for p in principles]
    if len(set(names)) != len(names):
        raise MalformedOutput(f"principle names must differ, got {names}")
    return principles


def build_set(request: WriterRequest, principles: list[Principle], writer: Writer) -> PrincipleSet:
    """Attach the request's sampling scheme (subsets, split) to parsed principles and validate the whole set."""
    if request.subsets:
        principles = [p.model_copy(update={"subset": s}) for p, s in zip(principles, request.subsets)]
    split = None
    if request.sampling.scheme == "diverse":
        names = [p.name for p in principles]
        split = Split(train=names[: len(names) - request.heldout], heldout=names[len(names) - request.heldout:])
    try:
        return PrincipleSet(task=request.task, description=request.description, writer=writer,
                            principles=principles, sampling=request.sampling, split=split)
    except ValidationError as exc:
        raise MalformedOutput(exc.errors()[0]["msg"]) from None


def write_principles(backend: Backend, request: WriterRequest, max_attempts: int = 3, seed: int = 0,
                     cache: ContentCache | None = None, log=None) -> PrincipleSet:
    """Ask ``backend`` for principles until its answer parses (at most ``max_attempts`` times).

    The first attempt uses the configured decoding (greedy by default); each retry samples at temperature
    ``RETRY_TEMPERATURE`` (or the configured one, if higher) with a new seed.
    """
    if max_attempts < 1:
        raise HarnessError("--max-attempts must be at least 1")
    prompt = writer_prompt(request)
    config = backend.generation_config
    first_temperature = config.temperature
    problems: list[str] = []
    raw = ""
    try:
        for attempt in range(1, max_attempts + 1):
            if attempt > 1:
                config.temperature = max(first_temperature, RETRY_TEMPERATURE)
            attempt_seed = derived_seed("principle-writer", request.task, seed, attempt)
            (raw,) = backend.generate([prompt], [attempt_seed], STOP, cache=cache, desc="writing principles")
            try:
                principles = parse_principles(raw, request.count)
                writer = Writer(model=backend.model_config.name, identity=backend.identity(), backend=backend.name,
                                decoding=backend.decoding(), seed=attempt_seed, prompt=backend.render(prompt),
                                date=datetime.now(timezone.utc).isoformat(timespec="seconds"), attempts=attempt,
                                notes="Written by an LLM with `harness principles write`; review before use.")
                return build_set(request, principles, writer)
            except MalformedOutput as exc:
                problems.append(str(exc))
                if log:
                    log(f"attempt {attempt}/{max_attempts}: malformed answer ({exc})")
    finally:
        config.temperature = first_temperature
    head = "\n".join(f"    {line}" for line in raw.strip().splitlines()[:6]) or "    (empty)"
    raise HarnessError(f"the writer {backend.model_config.name!r} gave no parseable principles in {max_attempts} "
                       f"attempt(s); last problem: {problems[-1]}; its last answer began:\n{head}")


def dump_principles(principles: PrincipleSet, path: Path) -> Path:
    """Write ``principles`` as YAML (atomically) and check that the file loads back to the same set."""
    path = Path(path)
    data = principles.model_dump(mode="json", exclude_none=True)
    header = f"# Principles for task '{principles.task}' written by {principles.writer.model} (harness principles write)\n"
    atomic_write_text(path, header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110))
    if load_principles(path) != principles:
        raise HarnessError(f"{path}: the written principles do not load back identically")
    return path
