"""Readers for the query sources the tasks accept: demo files, local files in published formats, and the hub.

Each reader returns ``Query`` records. Preference labels in these datasets are never read.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.core.artifacts import read_csv, read_json, read_jsonl_numbered
from harness.core.errors import ConfigError, HarnessError
from harness.core.hashing import content_hash


@dataclass(frozen=True)
class Query:
    """One query: an id that is stable across runs, the text shown to the model, and where it came from."""

    id: str
    text: str
    subset: str | None = None
    split: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


def fingerprint(queries: list[Query]) -> str:
    """Content hash of a query list (ids, texts, subsets): the data fingerprint recorded in manifests."""
    return content_hash([[q.id, q.text, q.subset] for q in queries])


# --- Reddit TL;DR -----------------------------------------------------------------------------------------

def format_post(subreddit: str | None, title: str | None, post: str) -> str:
    """The Stiennon et al. (2020) prompt layout, without the trailing ``TL;DR:``."""
    parts = []
    if subreddit:
        parts.append(f"SUBREDDIT: r/{subreddit.removeprefix('r/')}")
    if title:
        parts.append(f"TITLE: {title.strip()}")
    parts.append(f"POST: {post.strip()}")
    return "\n\n".join(parts)


def _strip_tldr(text: str) -> str:
    return re.sub(r"\s*TL;DR:\s*$", "", text.strip())


def read_tldr_file(path: Path) -> list[Query]:
    """TL;DR posts from a Stiennon-format CSV (column ``query``), a JSONL (demo format or ``query`` field),
    or the SAMI paper's released responses JSON (``{"question": {i: "POST: ..."}}``)."""
    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"data file not found: {path}")
    stem = path.stem
    if path.suffix == ".csv":
        rows = read_csv(path, ("query",))
        queries = [Query(f"{stem}:{i}", _strip_tldr(row["query"])) for i, (_, row) in enumerate(rows)]
        return _non_empty(path, queries)
    if path.suffix == ".json":
        data = read_json(path)
        if not isinstance(data, dict) or not isinstance(data.get("question"), dict):
            raise ConfigError(str(path), "question", "expected the SAMI responses format {'question': {id: post}}")
        queries = []
        for key, text in data["question"].items():
            _require_str(path, f"question.{key}", text)
            queries.append(Query(f"{stem}:{key}", _strip_tldr(text)))
        return _non_empty(path, queries)
    queries = []
    for index, (number, row) in enumerate(read_jsonl_numbered(path)):
        if "post" in row:
            for name in ("post", "subreddit", "title"):
                _require_str(path, f"line {number}.{name}", row.get(name), optional=name != "post")
            text = format_post(row.get("subreddit"), row.get("title"), row["post"])
        elif "query" in row:
            text = _strip_tldr(_require_str(path, f"line {number}.query", row["query"]))
        else:
            raise ConfigError(str(path), f"line {number}", "needs 'post' (with optional subreddit/title) or 'query'")
        queries.append(Query(str(row.get("id", f"{stem}:{index}")), text, split=row.get("split")))
    return _non_empty(path, queries)


def _require_str(path: Path, field: str, value, optional: bool = False) -> str:
    """``value`` if it is a string (or None where ``optional``), else a ConfigError naming the file and field."""
    if isinstance(value, str) or (optional and value is None):
        return value
    raise ConfigError(str(path), field, f"expected a string, got {type(value).__name__} {str(value)[:40]!r}")


def _non_empty(path: Path, queries: list[Query]) -> list[Query]:
    if not queries:
        raise ConfigError(str(path), "(file)", "no queries in the data file (only a header, or empty)")
    return queries


def read_tldr_hub(split: str) -> list[Query]:
    """openai/summarize_from_feedback (comparisons config), posts de-duplicated by id, as in the paper."""
    rows = _load_hub("openai/summarize_from_feedback", "comparisons", split)
    seen, queries = set(), []
    for row in rows:
        info = row["info"]
        if info["id"] in seen:
            continue
        seen.add(info["id"])
        queries.append(Query(info["id"], format_post(info.get("subreddit"), info.get("title"), info["post"])))
    return queries


# --- HH-RLHF dialogue ---------------------------------------------------------------------------------------

def first_human_turn(transcript: str) -> str:
    """The first ``Human:`` turn of an HH-RLHF transcript (SAMI trains on single-turn dialogue)."""
    match = re.search(r"Human:(.*?)(?:\n\nAssistant:|$)", transcript, flags=re.S)
    if not match:
        raise ValueError("no 'Human:' turn")
    return match.group(1).strip()


def _subset_from_name(path: Path) -> str | None:
    for subset in ("helpful-base", "harmless-base", "helpful-online", "helpful-rejection-sampled"):
        if subset in path.name:
            return subset
    return None


def read_dialogue_file(path: Path) -> list[Query]:
    """HH-RLHF ``.jsonl``/``.jsonl.gz`` in the official format (``chosen`` transcripts; subset from the file
    name), or our demo format (``query`` and ``subset`` fields)."""
    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"data file not found: {path}")
    file_subset = _subset_from_name(path)
    stem = path.name.split(".")[0]
    queries = []
    for index, (number, row) in enumerate(read_jsonl_numbered(path)):  # .jsonl.gz decompressed by the reader
        if "query" in row:
            text = _require_str(path, f"line {number}.query", row["query"]).strip()
            subset = _require_str(path, f"line {number}.subset", row.get("subset", file_subset), optional=True)
        elif "chosen" in row:
            try:
                text = first_human_turn(_require_str(path, f"line {number}.chosen", row["chosen"]))
            except ValueError:
                raise ConfigError(str(path), f"line {number}.chosen", "no 'Human:' turn") from None
            subset = file_subset
        else:
            raise ConfigError(str(path), f"line {number}", "needs 'chosen' (HH-RLHF format) or 'query'")
        if subset is None:
            raise ConfigError(str(path), f"line {number}.subset",
                              "unknown subset: name the file after it (e.g. harmless-base-test.jsonl.gz) "
                              "or give a 'subset' field")
        queries.append(Query(str(row.get("id", f"{stem}:{index}")), text, subset=subset, split=row.get("split")))
    return _non_empty(path, queries)


def read_dialogue_hub(subsets: list[str], split: str) -> list[Query]:
    """Anthropic/hh-rlhf, first human turn only, keeping each query's subset."""
    queries = []
    for subset in subsets:
        for index, row in enumerate(_load_hub("Anthropic/hh-rlhf", None, split, data_dir=subset)):
            queries.append(Query(f"{subset}:{split}:{index}", first_human_turn(row["chosen"]), subset=subset))
    return queries


def _load_hub(name: str, config: str | None, split: str, data_dir: str | None = None) -> list[dict]:
    import datasets

    try:
        return list(datasets.load_dataset(name, config, split=split, data_dir=data_dir))
    except Exception as exc:  # offline, missing, renamed: one clear line
        raise HarnessError(f"could not load hub dataset {name} ({split}): {type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''}; use --data PATH for a local file") from None
