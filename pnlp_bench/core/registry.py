"""A small name -> (builder, typed config) registry with errors that list the valid names."""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
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
    hints = field_types(config_class)
    for key, value in options.items():
        # Hydra's override parser turns `trainer.lr=fast` into a string, so a wrong type would otherwise
        # surface as a TypeError deep in a run (or never, for a key only read at the end)
        if key in hints and not matches(value, hints[key]):
            raise ConfigError(f"{key_path(where, key)} must be {describe(hints[key])}, got {value!r}")
    instance = config_class(**{key: value for key, value in options.items() if key in fields})
    validate = getattr(instance, "validate", None)
    if validate is not None:
        validate(where)
    return instance


def key_path(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


@functools.cache
def field_types(config_class: type) -> dict[str, Any]:
    """The annotations of a config dataclass, evaluated (the modules use `from __future__ import annotations`)."""
    return typing.get_type_hints(config_class)


SCALAR_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string", type(None): "null"}
PLURAL_NAMES = {int: "integers", float: "numbers", bool: "booleans", str: "strings"}


def matches(value: Any, annotation: Any) -> bool:
    """Whether a plain config value (as `OmegaConf.to_container` gives it) fits a field annotation.
    An integer fits a float field (`trainer.lr=1`); a bool fits neither (YAML `true` is not a number)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if origin in (list, tuple) or annotation in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(matches(item, arg) for item, arg in zip(value, args))
        return all(matches(item, args[0]) for item in value) if args else True
    if origin is dict or annotation is dict:
        if not isinstance(value, Mapping):
            return False
        key_type, value_type = args if args else (Any, Any)
        return all(matches(k, key_type) and matches(v, value_type) for k, v in value.items())
    return True  # anything else (a nested config class) is checked by the code that parses it


def describe(annotation: Any) -> str:
    """What a field accepts, in the words of an error message: "an integer or null", "a list of 2 numbers"."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(arg) for arg in args)
    if origin is typing.Literal:
        return " or ".join(str(arg) for arg in args)
    if origin is tuple and args and args[-1] is not Ellipsis:
        kinds = set(args)
        return f"a list of {len(args)} {PLURAL_NAMES.get(kinds.pop(), 'values') if len(kinds) == 1 else 'values'}"
    if origin in (list, tuple) and args:
        return f"a list of {PLURAL_NAMES.get(args[0], 'values')}"
    if origin is dict or annotation is dict:
        return "a mapping"
    return SCALAR_NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))
