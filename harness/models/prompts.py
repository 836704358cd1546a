"""Prompts in the two formats the paper uses (SPEC section 2).

Base (pretrained) models get a format-only prompt: a system line, an example-format block with bracketed
placeholders, then the real principles and query. Chat models get the same content in their chat template.
A task may force the response to begin with a prefix (TL;DR: "The post"); the prefix is part of the response.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Format = Literal["chat", "base"]


@dataclass(frozen=True)
class Prompt:
    """One request to a model, renderable as plain text (base) or chat messages (chat)."""

    base_text: str
    system: str | None
    user: str
    response_prefix: str = ""

    def messages(self, principles_in_system: bool = False) -> list[dict]:
        if self.system and principles_in_system:
            return [{"role": "system", "content": self.system}, {"role": "user", "content": self.user}]
        user = f"{self.system}\n\n{self.user}" if self.system else self.user
        return [{"role": "user", "content": user}]


def resolve_format(requested: str, tokenizer) -> Format:
    """'auto' means chat when the tokenizer has a chat template."""
    if requested == "auto":
        return "chat" if getattr(tokenizer, "chat_template", None) else "base"
    return requested  # type: ignore[return-value]


def render(prompt: Prompt, fmt: Format, tokenizer=None, principles_in_system: bool = False) -> str:
    """The exact text fed to the model, ending where the response (after any forced prefix) continues."""
    if fmt == "chat":
        text = tokenizer.apply_chat_template(prompt.messages(principles_in_system), tokenize=False,
                                             add_generation_prompt=True)
        return text + prompt.response_prefix
    return prompt.base_text + (f" {prompt.response_prefix}" if prompt.response_prefix else "")


def render_for_scoring(prompt: Prompt, response: str, fmt: Format, tokenizer=None,
                       principles_in_system: bool = False) -> tuple[str, str]:
    """(context, continuation) for scoring ``response`` (which already starts with any forced prefix)."""
    if fmt == "chat":
        context = tokenizer.apply_chat_template(prompt.messages(principles_in_system), tokenize=False,
                                                add_generation_prompt=True)
        return context, response
    return prompt.base_text, f" {response}"


def cut_at_stop(text: str, stop_strings: list[str]) -> str:
    """Cut a generation at the earliest stop marker (e.g. the next 'Human:' turn, '###')."""
    cut = len(text)
    for marker in stop_strings:
        position = text.find(marker)
        if position != -1:
            cut = min(cut, position)
    return text[:cut].strip()
