"""Registries of strategies (timm's ``register_model`` shape), open to third-party entries.

Every pluggable strategy (search-space kinds, blocks, datasets, scorers, estimators, predictors, target
kinds and file formats, search methods) lives in a ``Registry``. An entry is found by

1. its registered name (built-ins register themselves when their module is imported);
2. an entry point of the registry's group (``blocknas.<kind>s``), so a pip-installed plugin needs no
   config edits: ``[project.entry-points."blocknas.scorers"] my_scorer = "my_pkg.scoring:score"``;
3. an import path, ``package.module:attribute`` or ``package.module.attribute``, from a user's config.

An unknown name is a ``RegistryError`` that names the near misses and every valid option.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.machinery
import os
import sys
from collections.abc import Callable, Iterable
from importlib import metadata
from typing import Any, Generic, TypeVar

T = TypeVar("T")

ENTRY_POINT_PREFIX = "blocknas."


class RegistryError(LookupError):
    """A name that is neither registered, an installed entry point, nor an importable path."""


def did_you_mean(name: str, options: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest options, or an empty string."""
    close = difflib.get_close_matches(str(name), list(options), n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


USER_PATH_ENV = "BLOCKNAS_USER_PATH"  # where a Ray worker finds the user's modules: the driver's directory


def user_directories() -> list[str]:
    """Where a user's own modules named by import path are looked for, after every installed package: the
    directory blocknas runs from (in a Ray worker, the driver's, from ``BLOCKNAS_USER_PATH``)."""
    value = os.environ.get(USER_PATH_ENV)
    return [d for d in value.split(os.pathsep) if d] if value else [os.getcwd()]


class _UserDirectoryFinder:
    """The last resort of ``import``: top-level modules in the user's directories. Being last (after
    setuptools' editable finders too), it never shadows an installed package."""

    @staticmethod
    def find_spec(name: str, path=None, target=None):
        if path is not None:  # a submodule: its package's own __path__ finds it
            return None
        return importlib.machinery.PathFinder.find_spec(name, user_directories())

    @staticmethod
    def invalidate_caches() -> None:
        pass


def find_user_modules() -> None:
    """Let ``import`` find the user's own modules (named by import path in a config, and whatever they import
    of their own) in the user's directory, after every installed package. Idempotent."""
    if not any(isinstance(f, _UserDirectoryFinder) for f in sys.meta_path):
        sys.meta_path.append(_UserDirectoryFinder())


def enter_user_directory() -> None:
    """A Ray worker's set-up (Ray's worker set-up hook): the driver's directory, where relative paths of the
    config point, as working directory; the user's modules found there after the installed packages."""
    find_user_modules()
    directories = user_directories()
    if directories and os.path.isdir(directories[0]):
        os.chdir(directories[0])


def import_object(path: str) -> Any:
    """The object at ``package.module:attribute`` (or the dotted ``package.module.attribute``)."""
    module_name, sep, attribute = path.partition(":")
    if not sep:
        module_name, _, attribute = path.rpartition(".")
    if not module_name or not attribute:
        raise RegistryError(f"{path!r} is not an import path; write package.module:attribute")
    try:
        find_user_modules()
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise RegistryError(
            f"cannot import {module_name!r} (from {path!r}): {exc}; install the package that provides it "
            "(pip install -e .) or run blocknas from the directory that holds it"
        ) from exc
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError as exc:
            raise RegistryError(f"module {module_name!r} has no attribute {attribute!r} (from {path!r})") from exc
    return target


def looks_like_import_path(name: str) -> bool:
    return ":" in name or ("." in name and not name.startswith(".") and not name.endswith("."))


class Registry(Generic[T]):
    """Named entries of one kind of strategy; see the module docstring for how a name is resolved."""

    def __init__(self, kind: str, adapt: Callable[[str, Any], T] | None = None):
        self.kind = kind
        self.group = f"{ENTRY_POINT_PREFIX}{kind.replace(' ', '_')}s"
        self._entries: dict[str, T] = {}
        self._adapt = adapt or (lambda name, obj: obj)
        self._entry_points_loaded = False

    def register(self, name: str, entry: T | None = None):
        """``registry.register("name", entry)``, or ``@registry.register("name")`` as a decorator."""

        def add(obj):
            if name in self._entries and self._entries[name] is not obj:
                raise RegistryError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return add(entry) if entry is not None else add

    def _entry_points(self) -> dict[str, metadata.EntryPoint]:
        return {ep.name: ep for ep in metadata.entry_points(group=self.group)}

    def names(self) -> list[str]:
        """Registered names and installed entry points, sorted."""
        return sorted(set(self._entries) | set(self._entry_points()))

    def __contains__(self, name: str) -> bool:
        return name in self._entries or name in self._entry_points()

    def get(self, name: Any, where: str | None = None) -> T:
        """The entry called ``name`` (registered, entry point or import path); ``RegistryError`` otherwise."""
        if not isinstance(name, str) or not name:
            raise RegistryError(f"{where or self.kind} must name a {self.kind}, got {name!r}")
        if name in self._entries:
            return self._entries[name]
        point = self._entry_points().get(name)
        if point is not None:
            try:
                obj = point.load()
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not look like a typo
                raise RegistryError(
                    f"{self.kind} {name!r} (entry point {point.value} of {self.group}) failed to load: {exc}"
                ) from exc
            return self._entries.setdefault(name, self._adapt(name, obj))
        if looks_like_import_path(name):
            return self._entries.setdefault(name, self._adapt(name, import_object(name)))
        raise RegistryError(
            f"{where or self.kind} {name!r} is not a known {self.kind}{did_you_mean(name, self.names())}; "
            f"valid: {', '.join(self.names())}; or an import path package.module:attribute, or an entry point "
            f"of the {self.group!r} group"
        )
