"""One small registry type for every set of interchangeable things (models, attackers,
datasets, unlearning methods): ``register`` / ``names`` / ``get``, where an unknown
name is a ConfigError that names the option and suggests the nearest names."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Generic, TypeVar

from dau.errors import ConfigError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, option: str, normalize: Callable[[str], str] = str.strip) -> None:
        self.kind, self.option, self.normalize = kind, option, normalize
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        key = self.normalize(name)

        def decorator(item: T) -> T:
            if key in self._items:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
            self._items[key] = item
            return item

        return decorator

    def names(self) -> list[str]:
        return sorted(self._items)

    def get(self, name: str) -> T:
        key = self.normalize(name)
        if key not in self._items:
            close = difflib.get_close_matches(key, self.names(), n=2, cutoff=0.5)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise ConfigError(
                f"{self.option}: unknown {self.kind} {name.strip()!r}{hint} "
                f"(expected one of: {', '.join(self.names())})"
            )
        return self._items[key]
