"""Judges are data: a YAML file (backend, model, decoding, prompt template file, verdict parser, protocol) plus
a prompt template. The judge's content hash (the config without its name, description and transport settings,
the template text, and the parser's name and version) enters every cache key and every verdict line, so a
changed prompt, model or parser never reuses another judge's answers.

    name: robust
    description: ...
    backend: openai            # openai (any OpenAI-compatible endpoint) | local (transformers)
    model: gpt-4o              # served model id; local: 'embedded', a model folder or a hub id
    base_url: null             # openai: endpoint (default $OPENAI_BASE_URL, else OpenAI)
    prompt: prompt.txt         # template file beside the YAML
    parser: {name: final-line, version: 1}
    protocol: robust           # robust: both orders per item | sami-paper: one seeded random order per item
    decoding: {temperature: 0, max_tokens: 400, logprobs: true, top_logprobs: 5}
    max_reasks: 2              # garbage answers are re-asked this many times, then recorded as parse failures
    runtime: {api_key_env: OPENAI_API_KEY, concurrency: 8, requests_per_minute: null, timeout_s: 60, ...}
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.config import load_yaml_mapping, validation_error
from harness.core.errors import ConfigError, HarnessError
from harness.core.hashing import content_hash
from harness.judging.parsing import PARSERS, TOKEN_PROBS_PARSER
from harness.core.registry import Registry

JUDGES_DIR = Path(__file__).resolve().parent / "judges"  # judges/<name>/{config.yaml,prompt.txt}
DEFAULT_JUDGE = "robust"
TEMPLATE_FIELDS = {"principles", "query", "response_a", "response_b", "noun", "Noun", "query_label"}
HASH_VERSION = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ParserSpec(_Strict):
    name: str
    version: int = Field(ge=1)


class Decoding(_Strict):
    temperature: float = Field(0.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(400, ge=1)
    logprobs: bool = Field(True, description="ask for token log-probs (soft preference) where the endpoint has them")
    top_logprobs: int = Field(5, ge=0, le=20)


class LocalSettings(_Strict):
    """Local judge: the preference is read from the next-token probabilities of the verdict tokens."""

    a_tokens: list[str] = Field(default_factory=lambda: [" A"], min_length=1)
    b_tokens: list[str] = Field(default_factory=lambda: [" B"], min_length=1)
    tie_margin: float = Field(0.02, ge=0.0, lt=0.5, description="tie when |p(A) - 0.5| < tie_margin")
    chat_template: bool = Field(False, description="wrap the prompt as a user turn of the model's chat template; "
                                "the answer prefix then opens the assistant turn")
    answer_prefix: str = Field("Preferred {noun}:", description="text after the prompt, before the verdict token")
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    max_prompt_tokens: int = Field(4096, ge=64)


class Runtime(_Strict):
    """Transport and batching settings: they never change an answer, so they stay out of the judge hash."""

    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = Field(8, ge=1)
    requests_per_minute: float | None = Field(None, gt=0)
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(6, ge=0)
    backoff_s: float = Field(1.0, ge=0)
    backoff_max_s: float = Field(60.0, ge=0)
    batch_size: int = Field(4, ge=1, description="local backend: prompts per forward pass")


class JudgeConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    backend: Literal["openai", "local", "verifier"]
    model: str
    base_url: str | None = None
    system: str | None = Field(None, description="openai: an optional system message")
    prompt: str = Field("prompt.txt", description="prompt template file, relative to the YAML file")
    parser: ParserSpec = ParserSpec(name="final-line", version=1)
    protocol: Literal["robust", "sami-paper"] = "robust"
    shuffle_principles: bool = True
    max_reasks: int = Field(2, ge=0)
    decoding: Decoding = Decoding()
    local: LocalSettings = LocalSettings()
    runtime: Runtime = Runtime()

    def hashed_content(self) -> dict:
        """Fields that change a verdict (the template file's name is left out: its text is hashed instead)."""
        return self.model_dump(mode="json", exclude={"name", "description", "runtime", "prompt"})


@dataclass(frozen=True)
class Judge:
    """A loaded judge: its config, template text and where it came from."""

    config: JudgeConfig
    template: str
    source: str

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def protocol(self) -> str:
        return self.config.protocol

    @cached_property
    def hash(self) -> str:
        """Content hash of everything that changes a verdict (model, decoding, template, parser version...)."""
        return content_hash({"version": HASH_VERSION, "config": self.config.hashed_content(),
                             "template": self.template, "parser": self.parser_identity})

    @property
    def parser_identity(self) -> dict:
        return {"name": self.config.parser.name, "version": self.config.parser.version}

    def describe(self) -> dict:
        """The judge for manifests: config (no secret: ``api_key_env`` is a variable name), hash, template."""
        from harness.core.urls import redact_url

        config = self.config.model_dump(mode="json")
        config["base_url"] = redact_url(config.get("base_url"))  # a key inside the URL never reaches a manifest
        return {"name": self.name, "source": self.source, "hash": self.hash, "config": config,
                "template_sha": content_hash(self.template)}


def _check_parser(config: JudgeConfig, source: str) -> None:
    if config.backend == "openai":
        if config.parser.name not in PARSERS:
            raise ConfigError(source, "parser.name", f"unknown parser '{config.parser.name}'; known: {', '.join(sorted(PARSERS))}")
        implemented = PARSERS[config.parser.name][0]
    else:
        if config.parser.name != TOKEN_PROBS_PARSER[0]:
            raise ConfigError(source, "parser.name", "the local backend reads token probabilities: parser must be "
                              f"'{TOKEN_PROBS_PARSER[0]}'")
        implemented = TOKEN_PROBS_PARSER[1]
    if config.parser.version != implemented:
        raise ConfigError(source, "parser.version", f"version {config.parser.version} requested; this harness "
                          f"implements {config.parser.name} version {implemented}")


def _check_template(text: str, source: str) -> None:
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as exc:
        raise ConfigError(source, "prompt", f"template is not a valid format string ({exc}); write braces as {{{{ }}}}") from None
    unknown = sorted(fields - TEMPLATE_FIELDS)
    if unknown:
        raise ConfigError(source, "prompt", f"unknown template field {{{unknown[0]}}}; fields: {', '.join(sorted(TEMPLATE_FIELDS))}")
    missing = sorted({"response_a", "response_b"} - fields)
    if missing:
        raise ConfigError(source, "prompt", f"template must show {{{missing[0]}}}")


def _parse_config(data: dict, source: str) -> JudgeConfig:
    try:
        return JudgeConfig.model_validate(data)
    except ValidationError as exc:
        raise validation_error(source, exc) from None


def load_judge_file(path: str | Path, overrides: dict | None = None) -> Judge:
    """Load a judge YAML and its template; ``overrides`` (dotted keys, e.g. ``{"model": "gpt-4o-mini"}``) change
    fields (and so the hash). Any mistake is a ConfigError naming the file and the field."""
    path = Path(path)
    data = load_yaml_mapping(path)
    for dotted, value in (overrides or {}).items():
        node = data
        keys = dotted.split(".")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError("--judge-set", dotted, f"'{key}' is not a section")
        node[keys[-1]] = value
    config = _parse_config(data, str(path))
    if config.backend == "verifier":  # exact checks, no prompt and no parser
        return Judge(config=config, template="", source=str(path))
    _check_parser(config, str(path))
    template_path = (path.parent / config.prompt).resolve()
    if not template_path.is_file():
        raise ConfigError(str(path), "prompt", f"template file not found: {template_path}")
    template = template_path.read_text(encoding="utf-8")
    _check_template(template, str(template_path))
    if config.backend == "local":
        _check_template_prefix(config, str(path))
    return Judge(config=config, template=template, source=str(path))


def _check_template_prefix(config: JudgeConfig, source: str) -> None:
    try:
        config.local.answer_prefix.format(noun="x", Noun="X")
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(source, "local.answer_prefix", f"may only use {{noun}} or {{Noun}} ({exc})") from None


def _describe_file(path: Path) -> str:
    try:
        data = load_yaml_mapping(path)
    except ConfigError as exc:
        return f"(malformed: {exc.problem})"
    text = str(data.get("description", "")).strip().splitlines()
    return text[0] if text else ""


def _build_registry() -> Registry[Path]:
    registry: Registry[Path] = Registry("judge")
    for path in sorted(JUDGES_DIR.glob("*/config.yaml")):
        registry.add(path.parent.name, path, _describe_file(path))
    return registry


judges: Registry[Path] = _build_registry()


def list_judges() -> list[tuple[str, str]]:
    """(name, one-line description) of the shipped judges, for ``harness ls judges``."""
    return judges.describe()


def load_judge(name_or_path: str | Path | None = None, overrides: dict | None = None) -> Judge:
    """A judge by registry name (``harness/judging/judges/<name>/config.yaml``) or by path to a YAML file."""
    spec = str(name_or_path or DEFAULT_JUDGE)
    path = Path(spec).expanduser()
    if spec.endswith((".yaml", ".yml")) or "/" in spec or path.is_file():
        if not path.is_file():
            raise HarnessError(f"judge file not found: {spec}")
        return load_judge_file(path, overrides)
    return load_judge_file(judges.get(spec), overrides)
