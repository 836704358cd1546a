"""Named registries (tasks, trainers, judges, backends): unknown names list the valid ones."""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

from harness.core.errors import HarnessError

T = TypeVar("T")


class Registry(Generic[T]):
    """A mapping from names to entries with one-line descriptions, for ``harness ls``."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, tuple[T, str]] = {}

    def register(self, name: str, description: str) -> Callable[[T], T]:
        def decorator(entry: T) -> T:
            self.add(name, entry, description)
            return entry

        return decorator

    def add(self, name: str, entry: T, description: str) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} '{name}' registered twice")
        self._entries[name] = (entry, description)

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise HarnessError(f"unknown {self.kind} '{name}'; valid {self.kind}s: {', '.join(self.names())}")
        return self._entries[name][0]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def describe(self) -> list[tuple[str, str]]:
        return [(name, self._entries[name][1]) for name in self.names()]

    def __contains__(self, name: str) -> bool:
        return name in self._entries
