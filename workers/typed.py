"""Typed settings from plain config mappings: unknown keys, missing keys and wrong types are errors.

``from_mapping(Settings, {"steps": 80}, "scorer")`` builds the dataclass ``Settings`` from a config
section. Every key must be a field (a near miss is suggested), every field without a default must be
given, and each value must have the field's type (``int``, ``float`` (ints accepted), ``str``, ``bool``,
``X | None``, ``tuple[X, ...]``, ``list``, ``dict``); floats must be finite. The dataclass's own
``__post_init__`` checks ranges and raises ``ValueError``.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from blocknas.workers.registry import did_you_mean

S = TypeVar("S")


class SettingsError(ValueError):
    """A config section does not fit its settings type; the message names the key."""


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.init]


def check_keys(data: Mapping, allowed: list[str], where: str) -> None:
    for key in data:
        if key not in allowed:
            raise SettingsError(
                f"unknown config key '{where}.{key}'{did_you_mean(key, allowed)}; "
                f"valid keys of {where}: {', '.join(allowed)}"
            )


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """``value`` checked against ``annotation`` (and converted: an int where a float is asked, a list where a
    tuple is); ``SettingsError`` names ``where`` and what was expected."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(value, typing.get_args(annotation), where)
    if annotation is Any:
        return value
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise SettingsError(f"{where} must be a list, got {value!r}")
        args = typing.get_args(annotation)
        items = [_coerce(v, args[0] if args else Any, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or annotation is dict:
        if not isinstance(value, Mapping):
            raise SettingsError(f"{where} must be a mapping, got {value!r}")
        return dict(value)
    if annotation in _SCALARS:
        return _SCALARS[annotation](value, where)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, Mapping):
            raise SettingsError(f"{where} must be a mapping, got {value!r}")
        return from_mapping(typing.cast(type, annotation), value, where)
    return value


def _coerce_union(value: Any, options: tuple, where: str) -> Any:
    if value is None and type(None) in options:
        return None
    errors = []
    for option in options:
        if option is type(None):
            continue
        try:
            return _coerce(value, option, where)
        except SettingsError as exc:
            errors.append(str(exc))
    raise SettingsError(errors[0] if len(errors) == 1 else f"{where} has the wrong type: {value!r}")


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise SettingsError(f"{where} must be true or false, got {value!r}")
    return value


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(f"{where} must be an int, got {value!r}")
    return value


def _float(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SettingsError(f"{where} must be a float, got {value!r}")
    if not math.isfinite(value):
        raise SettingsError(f"{where} must be a finite number, got {value!r}")
    return float(value)


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise SettingsError(f"{where} must be a string, got {value!r}")
    return value


_SCALARS: dict[Any, Callable[[Any, str], Any]] = {bool: _bool, int: _int, float: _float, str: _str}


def from_mapping(cls: type[S], data: Mapping | None, where: str) -> S:
    """``cls(**data)`` after checking keys and types (see the module docstring)."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    names = field_names(cls)
    check_keys(data, names, where)
    values = {}
    for field in dataclasses.fields(typing.cast(Any, cls)):
        if not field.init:
            continue
        if field.name not in data:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise SettingsError(f"{where}.{field.name} is required")
            continue
        values[field.name] = _coerce(data[field.name], hints[field.name], f"{where}.{field.name}")
    try:
        return cls(**values)
    except SettingsError:
        raise
    except (TypeError, ValueError) as exc:
        message = str(exc)
        raise SettingsError(message if message.startswith(where) else f"{where}: {message}") from exc
