"""Functions served by the emulator: handler files in one or more directories.

``<dir>/<name>.py`` is the function ``<name>`` (package ``default``); an optional ``<dir>/<name>.json``
beside it sets, all optional::

    {"handler": "handler", "timeout": 3, "memory_size": 128, "package": "default",
     "user_data": {"KEY": "value"}, "environment": {"VAR": "value"},
     "versions": ["1", "2"], "aliases": {"prod": "1"},
     "async_status_persistence": false, "dynamic_memory": false, "max_requests_per_instance": 1}

As on FunctionGraph, the timeout defaults to 3 s, async status records are kept only for functions
with ``async_status_persistence`` on, ``X-Cff-Instance-Memory`` applies only with ``dynamic_memory``
on (otherwise the configured memory is used, silently), and an instance serves one request at a time
unless ``max_requests_per_instance`` (single-instance multi-concurrency) is above 1.

Every version runs the same file (the emulator keeps no code history); the version and alias are what
``context.getVersion()`` / ``getAlias()`` report. Files are looked up on every call, so functions added
or edited while the emulator runs are served at once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_fgs.protocol.invoke import ALLOWED_MEMORY_SIZES
from airflow_provider_fgs.protocol.urn import LATEST, FunctionUrn

DEFAULT_TIMEOUT = 3.0
DEFAULT_MEMORY = 128


class FunctionConfigError(ValueError):
    """A function's ``.json`` settings file is invalid."""


class LookupFailure(LookupError):
    """
    The URN names no function, version or alias that exists here.

    :param error_code: ``FSS.1051`` (function), ``FSS.1052`` (version) or ``FSS.1053`` (alias).
    """

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


@dataclass(frozen=True)
class FunctionSpec:
    """One function: its handler file and settings."""

    name: str
    path: str
    handler: str = "handler"
    package: str = "default"
    timeout: float = DEFAULT_TIMEOUT
    memory_size: int = DEFAULT_MEMORY
    user_data: dict[str, str] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    versions: tuple[str, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)
    async_status_persistence: bool = False
    dynamic_memory: bool = False
    max_requests_per_instance: int = 1


@dataclass(frozen=True)
class ResolvedFunction:
    """A function plus the version (and alias) a URN selected."""

    spec: FunctionSpec
    version: str
    alias: str


def _str_dict(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FunctionConfigError(f"{what} must be an object of strings")
    return {str(k): str(v) for k, v in value.items()}


def _flag(settings: dict[str, Any], key: str, config_name: str) -> bool:
    value = settings.get(key, False)
    if not isinstance(value, bool):
        raise FunctionConfigError(f"{config_name}: {key} must be true or false, got {value!r}")
    return value


def load_spec(name: str, path: Path, config_path: Path) -> FunctionSpec:
    """Build a :class:`FunctionSpec` from a handler file and its optional settings file."""
    settings: dict[str, Any] = {}
    if config_path.is_file():
        try:
            loaded = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise FunctionConfigError(f"Cannot read {config_path.name}: {err}") from None
        if not isinstance(loaded, dict):
            raise FunctionConfigError(f"{config_path.name} must hold a JSON object")
        settings = loaded
    try:
        timeout = float(settings.get("timeout", DEFAULT_TIMEOUT))
        memory = int(settings.get("memory_size", settings.get("memory", DEFAULT_MEMORY)))
    except (TypeError, ValueError) as err:
        raise FunctionConfigError(f"{config_path.name}: bad timeout or memory_size ({err})") from None
    if timeout <= 0:
        raise FunctionConfigError(f"{config_path.name}: timeout must be positive")
    per_instance = settings.get("max_requests_per_instance", 1)
    if isinstance(per_instance, bool) or not isinstance(per_instance, int) or not 1 <= per_instance <= 1000:
        raise FunctionConfigError(
            f"{config_path.name}: max_requests_per_instance must be an integer from 1 to 1000, "
            f"got {per_instance!r}"
        )
    if memory not in ALLOWED_MEMORY_SIZES:
        raise FunctionConfigError(f"{config_path.name}: memory_size must be one of {ALLOWED_MEMORY_SIZES}")
    versions = settings.get("versions") or []
    if not isinstance(versions, list):
        raise FunctionConfigError(f"{config_path.name}: versions must be a list")
    aliases = _str_dict(settings.get("aliases"), f"{config_path.name}: aliases")
    known = {LATEST, *map(str, versions)}
    for alias, target in aliases.items():
        if target not in known:
            raise FunctionConfigError(
                f"{config_path.name}: alias {alias!r} points to unknown version {target!r}"
            )
    return FunctionSpec(
        name=name,
        path=str(path),
        handler=str(settings.get("handler", "handler")),
        package=str(settings.get("package", "default")),
        timeout=timeout,
        memory_size=memory,
        user_data=_str_dict(settings.get("user_data"), f"{config_path.name}: user_data"),
        environment=_str_dict(settings.get("environment"), f"{config_path.name}: environment"),
        versions=tuple(str(v) for v in versions),
        aliases=aliases,
        async_status_persistence=_flag(settings, "async_status_persistence", config_path.name),
        dynamic_memory=_flag(settings, "dynamic_memory", config_path.name),
        max_requests_per_instance=per_instance,
    )


class FunctionRegistry:
    """
    Find functions in directories (the first directory holding ``<name>.py`` wins).

    :param directories: directories of handler files.
    """

    def __init__(self, directories: Sequence[str | os.PathLike[str]]) -> None:
        self.directories = [Path(d).resolve() for d in directories]
        for directory in self.directories:
            if not directory.is_dir():
                raise FileNotFoundError(f"Functions directory {directory} does not exist")
        self._cache: dict[Path, tuple[tuple[int, int], FunctionSpec]] = {}

    def get(self, name: str) -> FunctionSpec | None:
        """The function called ``name``, or ``None``."""
        if not name or name.startswith(("_", ".")) or "/" in name or "\\" in name:
            return None
        for directory in self.directories:
            path = directory / f"{name}.py"
            if path.is_file():
                config = directory / f"{name}.json"
                try:
                    stat = config.stat()
                    key = (stat.st_mtime_ns, stat.st_size)
                except OSError:
                    key = (0, -1)
                cached = self._cache.get(path)
                if cached is not None and cached[0] == key:
                    return cached[1]
                spec = load_spec(name, path, config)
                self._cache[path] = (key, spec)
                return spec
        return None

    def names(self) -> list[str]:
        """Names of all functions, sorted."""
        found: set[str] = set()
        for directory in self.directories:
            for entry in directory.glob("*.py"):
                if not entry.name.startswith(("_", ".")):
                    found.add(entry.stem)
        return sorted(found)

    def lookup(self, urn: FunctionUrn) -> FunctionSpec:
        """
        The function a URN names, its version or alias checked, without choosing a version for an
        alias (which would draw from a seeded weighted split).

        :raises LookupFailure: unknown function (FSS.1051), version (FSS.1052) or alias (FSS.1053).
        """
        return self.resolve(urn).spec  # an alias resolves here without drawing

    def resolve(self, urn: FunctionUrn) -> ResolvedFunction:
        """
        The function and version a URN selects.

        :raises LookupFailure: unknown function (FSS.1051), version (FSS.1052) or alias (FSS.1053).
        """
        spec = self.get(urn.name)
        if spec is None or spec.package != urn.package:
            raise LookupFailure("FSS.1051", f"Not found the function: {urn.unqualified}")
        alias = urn.alias
        if alias is not None:
            target = spec.aliases.get(alias)
            if target is None:
                raise LookupFailure("FSS.1053", f"Not found the function alias {alias!r} of {urn.name}")
            return ResolvedFunction(spec, target, alias)
        if urn.qualifier != LATEST and urn.qualifier not in spec.versions:
            raise LookupFailure("FSS.1052", f"Not found the function version {urn.qualifier!r} of {urn.name}")
        return ResolvedFunction(spec, urn.qualifier, "")
