"""Deployed code, versions and aliases of the emulator's functions.

A function is first served from its handler file (see :mod:`~airflow_provider_fgs.emulator.registry`).
Once a management call touches it, :class:`ManagedRegistry` keeps its state here: uploaded zips are
unzipped into a private directory and become the function's code, a published version is an immutable
snapshot of code and configuration, and an alias resolves to a version, splitting calls between its
version and the weighted others with a random generator that a seed makes deterministic.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import shutil
import tempfile
import threading
import weakref
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from airflow_provider_fgs.emulator.registry import (
    FunctionRegistry,
    FunctionSpec,
    LookupFailure,
    ResolvedFunction,
)
from airflow_provider_fgs.protocol.urn import LATEST, FunctionUrn

DEFAULT_RUNTIME = "Python3.10"
MAX_VERSIONS = 10


class ManagementError(Exception):
    """A change the platform refuses: ``status`` and FSS ``error_code`` of the answer."""

    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Snapshot:
    """Code and configuration of ``latest`` or of a published version."""

    code_dir: str
    handler: str
    runtime: str
    memory_size: int
    timeout: int
    environment: dict[str, str]
    description: str
    digest: str
    code_size: int
    code_filename: str
    code_type: str
    last_modified: str
    version_description: str = ""

    @property
    def handler_path(self) -> str:
        module, _, _ = self.handler.rpartition(".")
        return os.path.join(self.code_dir, module.replace(".", os.sep) + ".py")

    @property
    def handler_attr(self) -> str:
        return self.handler.rpartition(".")[2]


@dataclass
class AliasRecord:
    """An alias: its version and the weights of the other versions."""

    version: str
    weights: dict[str, int]
    description: str
    last_modified: str


@dataclass
class ManagedFunction:
    """A function whose code and versions the emulator manages."""

    base: FunctionSpec
    latest: Snapshot
    versions: dict[str, Snapshot] = field(default_factory=dict)
    aliases: dict[str, AliasRecord] = field(default_factory=dict)
    uploads: int = 0


def _file_digest(path: str) -> tuple[str, int]:
    data = Path(path).read_bytes()
    return hashlib.sha512(data).hexdigest(), len(data)


class ManagedRegistry(FunctionRegistry):
    """
    The function registry plus deployed code, versions and aliases.

    :param directories: directories of handler files.
    :param seed: seed of the weighted alias split (``None``: not reproducible).
    """

    def __init__(self, directories: Sequence[str | os.PathLike[str]], *, seed: int | None = None) -> None:
        super().__init__(directories)
        self._functions: dict[str, ManagedFunction] = {}
        self._deleted: set[str] = set()
        self._lock = threading.RLock()
        self._random = random.Random(seed)
        self._code_root = tempfile.mkdtemp(prefix="fgs-emulator-code-")
        weakref.finalize(self, shutil.rmtree, self._code_root, True)

    def seed(self, seed: int | None) -> None:
        """Restart the alias split's random sequence from ``seed``."""
        with self._lock:
            self._random.seed(seed)

    # -- lookups the invoke routes use ------------------------------------------------------------

    def get(self, name: str) -> FunctionSpec | None:
        with self._lock:
            if name in self._deleted:
                return None
            managed = self._functions.get(name)
            if managed is not None:
                return self._spec(managed, managed.latest)
        return super().get(name)

    def names(self) -> list[str]:
        with self._lock:
            return sorted((set(super().names()) | set(self._functions)) - self._deleted)

    def resolve(self, urn: FunctionUrn) -> ResolvedFunction:
        with self._lock:
            if urn.name in self._deleted:
                raise LookupFailure("FSS.1051", f"Not found the function: {urn.unqualified}")
            managed = self._functions.get(urn.name)
            if managed is None:
                return super().resolve(urn)
            if managed.base.package != urn.package:
                raise LookupFailure("FSS.1051", f"Not found the function: {urn.unqualified}")
            alias = urn.alias
            if alias is not None:
                record = managed.aliases.get(alias)
                if record is None:
                    raise LookupFailure("FSS.1053", f"Not found the function alias {alias!r} of {urn.name}")
                version = self._pick(record)
                return ResolvedFunction(self._spec(managed, self.snapshot(managed, version)), version, alias)
            snapshot = self.snapshot(managed, urn.qualifier)
            return ResolvedFunction(self._spec(managed, snapshot), urn.qualifier, "")

    def lookup(self, urn: FunctionUrn) -> FunctionSpec:
        if urn.alias is None:
            return self.resolve(urn).spec  # no draw without an alias
        with self._lock:
            managed = self._functions.get(urn.name)
            if managed is None or urn.name in self._deleted:
                return super().lookup(urn)  # served from its file (or raises: deleted)
            if managed.base.package != urn.package:
                raise LookupFailure("FSS.1051", f"Not found the function: {urn.unqualified}")
            if urn.alias not in managed.aliases:
                raise LookupFailure("FSS.1053", f"Not found the function alias {urn.alias!r} of {urn.name}")
            return self._spec(managed, managed.latest)

    def _pick(self, record: AliasRecord) -> str:
        draw = self._random.uniform(0, 100)
        for version, weight in sorted(record.weights.items()):
            if draw < weight:
                return version
            draw -= weight
        return record.version

    @staticmethod
    def _spec(managed: ManagedFunction, snapshot: Snapshot) -> FunctionSpec:
        return replace(
            managed.base,
            path=snapshot.handler_path,
            handler=snapshot.handler_attr,
            timeout=float(snapshot.timeout),
            memory_size=snapshot.memory_size,
            environment=dict(snapshot.environment),
        )

    # -- management -------------------------------------------------------------------------------

    def managed(self, name: str) -> ManagedFunction:
        """The managed state of ``name`` (taken over from its handler file on first use)."""
        with self._lock:
            if name in self._deleted:
                raise LookupFailure("FSS.1051", f"Not found the function: {name}")
            managed = self._functions.get(name)
            if managed is not None:
                return managed
            spec = super().get(name)
            if spec is None:
                raise LookupFailure("FSS.1051", f"Not found the function: {name}")
            digest, size = _file_digest(spec.path)
            directory, filename = os.path.split(spec.path)
            latest = Snapshot(
                code_dir=directory,
                handler=f"{filename[:-3]}.{spec.handler}",
                runtime=DEFAULT_RUNTIME,
                memory_size=spec.memory_size,
                timeout=max(3, int(spec.timeout)),
                environment=dict(spec.environment),
                description="",
                digest=digest,
                code_size=size,
                code_filename=filename,
                code_type="inline",
                last_modified=_now(),
            )
            managed = ManagedFunction(base=spec, latest=latest)
            for version in spec.versions:
                managed.versions[version] = latest
            for alias, target in spec.aliases.items():
                managed.aliases[alias] = AliasRecord(target, {}, "", latest.last_modified)
            self._functions[name] = managed
            return managed

    @staticmethod
    def snapshot(managed: ManagedFunction, version: str) -> Snapshot:
        if version == LATEST:
            return managed.latest
        snapshot = managed.versions.get(version)
        if snapshot is None:
            raise LookupFailure(
                "FSS.1052", f"Not found the function version {version!r} of {managed.base.name}"
            )
        return snapshot

    def upload_code(self, name: str, zip_bytes: bytes, filename: str) -> Snapshot:
        """Unzip ``zip_bytes`` as the new code of ``latest``."""
        with self._lock:
            managed = self.managed(name)
            managed.uploads += 1
            target = Path(self._code_root) / name / str(managed.uploads)
            _unzip(zip_bytes, target, filename)
            managed.latest = replace(
                managed.latest,
                code_dir=str(target),
                digest=hashlib.sha512(zip_bytes).hexdigest(),
                code_size=len(zip_bytes),
                code_filename=filename,
                code_type="zip",
                last_modified=_now(),
            )
            return managed.latest

    def update_config(self, name: str, changes: Mapping[str, Any]) -> Snapshot:
        """Apply validated configuration ``changes`` to ``latest``."""
        with self._lock:
            managed = self.managed(name)
            managed.latest = replace(managed.latest, **changes, last_modified=_now())
            return managed.latest

    def publish(
        self, name: str, version: str | None, description: str, digest: str | None
    ) -> tuple[str, Snapshot]:
        """Snapshot ``latest`` as ``version`` (named from the time when absent)."""
        with self._lock:
            managed = self.managed(name)
            if digest and digest != managed.latest.digest:
                raise ManagementError(
                    400, "FSS.0400", f"The digest {digest[:16]}... does not match the code of {name}:latest"
                )
            version = version or datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
            if version == LATEST or version in managed.versions:
                raise ManagementError(400, "FSS.0400", f"The version {version!r} of {name} already exists")
            if len(managed.versions) >= MAX_VERSIONS:
                raise ManagementError(
                    400, "FSS.0400", f"Function {name} already has {MAX_VERSIONS} versions; delete one first"
                )
            snapshot = replace(managed.latest, version_description=description, last_modified=_now())
            managed.versions[version] = snapshot
            return version, snapshot

    def delete_version(self, name: str, version: str) -> None:
        with self._lock:
            managed = self.managed(name)
            self.snapshot(managed, version)
            users = sorted(
                alias
                for alias, record in managed.aliases.items()
                if record.version == version or version in record.weights
            )
            if users:
                raise ManagementError(
                    400, "FSS.0400", f"The version {version!r} of {name} is used by alias(es) {users}"
                )
            del managed.versions[version]

    def delete_function(self, name: str) -> None:
        with self._lock:
            self.managed(name)
            self._deleted.add(name)
            self._functions.pop(name, None)

    def set_alias(
        self,
        name: str,
        alias: str,
        version: str,
        weights: Mapping[str, int],
        description: str,
        *,
        create: bool,
    ) -> AliasRecord:
        with self._lock:
            managed = self.managed(name)
            exists = alias in managed.aliases
            if create and exists:
                raise ManagementError(400, "FSS.0400", f"The alias {alias!r} of {name} already exists")
            if not create and not exists:
                raise LookupFailure("FSS.1053", f"Not found the function alias {alias!r} of {name}")
            for target in (version, *weights):
                self.snapshot(managed, target)
            record = AliasRecord(version, dict(weights), description, _now())
            managed.aliases[alias] = record
            return record

    def alias(self, name: str, alias: str) -> AliasRecord:
        with self._lock:
            record = self.managed(name).aliases.get(alias)
            if record is None:
                raise LookupFailure("FSS.1053", f"Not found the function alias {alias!r} of {name}")
            return record

    def delete_alias(self, name: str, alias: str) -> None:
        with self._lock:
            self.alias(name, alias)
            del self.managed(name).aliases[alias]


def _unzip(data: bytes, target: Path, filename: str) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ManagementError(400, "FSS.0400", f"The code package {filename!r} is not a zip file") from None
    with archive:
        for member in archive.namelist():
            path = PurePosixPath(member)
            if path.is_absolute() or ".." in path.parts:
                raise ManagementError(400, "FSS.0400", f"The code package holds an unsafe path {member!r}")
        target.mkdir(parents=True, exist_ok=False)
        archive.extractall(target)
