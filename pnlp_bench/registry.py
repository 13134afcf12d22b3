"""A small name -> (builder, typed config) registry with errors that list the valid names."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A wrong config key or value, reported in one line before any work starts."""


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, tuple[Callable[..., T], type]] = {}

    def register(self, name: str, config_class: type) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(builder: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = (builder, config_class)
            return builder

        return decorator

    def names(self) -> list[str]:
        return sorted(self._entries)

    def config_class(self, name: str) -> type:
        return self._lookup(name)[1]

    def _lookup(self, name: str) -> tuple[Callable[..., T], type]:
        if name not in self._entries:
            raise ConfigError(f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}")
        return self._entries[name]

    def parse(self, name: str, options: Mapping[str, Any], where: str) -> Any:
        """Build the typed config of `name` from a mapping, naming any key it does not have."""
        _, config_class = self._lookup(name)
        return typed_config(config_class, options, where)

    def build(self, name: str, options: Mapping[str, Any], where: str, **context: Any) -> T:
        builder, _ = self._lookup(name)
        return builder(self.parse(name, options, where), **context)


def typed_config(config_class: type, options: Mapping[str, Any], where: str) -> Any:
    fields = {field.name for field in dataclasses.fields(config_class)}
    unknown = sorted(set(options) - fields - {"name", "_target_"})
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(sorted(fields))}")
    instance = config_class(**{key: value for key, value in options.items() if key in fields})
    validate = getattr(instance, "validate", None)
    if validate is not None:
        validate(where)
    return instance
