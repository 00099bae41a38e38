"""Function management requests (code, configuration, versions) and their answers.

Pure and I/O free, shared by both transports and the emulator (aliases: :mod:`.aliases`); paths and
bodies follow the official SDK's models (``UpdateFunctionCode``, ``UpdateFunctionConfig``,
``CreateFunctionVersion``, ``ShowFunctionConfig``, ``ShowFunctionCode``, ``DeleteFunction``).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from airflow_provider_fgs.protocol.errors import FunctionGraphApiError, InvalidRequestError
from airflow_provider_fgs.protocol.http import HttpRequest, platform_error
from airflow_provider_fgs.protocol.invoke import ALLOWED_MEMORY_SIZES
from airflow_provider_fgs.protocol.urn import LATEST, FunctionUrn

# Huawei's "Updating a Function's Code": a zip sent inline (base64) may be up to 50 MB once decoded.
MAX_INLINE_ZIP_BYTES = 50 * 1024 * 1024
MIN_TIMEOUT_S = 3
MAX_TIMEOUT_S = 259_200
MAX_VERSIONS = 10
_VERSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,41}")
_HANDLER = re.compile(r"[^\s.][^\s]*\.[A-Za-z_][A-Za-z0-9_]*")
_JSON = {"Content-Type": "application/json"}


def management_url(endpoint: str, urn: FunctionUrn | str, action: str | None = None) -> str:
    """``{endpoint}/v2/{project}/fgs/functions/{urn}[/{action}]``, the URN encoded as one segment."""
    urn_text = str(urn)
    project_id = urn.project_id if isinstance(urn, FunctionUrn) else urn_text.split(":")[3]
    url = f"{endpoint.rstrip('/')}/v2/{project_id}/fgs/functions/{quote(urn_text, safe='')}"
    return f"{url}/{action}" if action else url


def management_request(method: str, url: str, urn: FunctionUrn, body: Any = None) -> HttpRequest:
    """A management request with its JSON body (none for ``None``) and the project header."""
    headers = {**_JSON, "X-Project-Id": urn.project_id}
    data = b"" if body is None else json.dumps(body, separators=(",", ":")).encode("utf-8")
    return HttpRequest(method=method, url=url, headers=headers, body=data)


def unqualified(urn: FunctionUrn) -> FunctionUrn:
    """The function itself (``latest``): code, configuration, versions and aliases live there."""
    return FunctionUrn(urn.region, urn.project_id, urn.package, urn.name)


# -- validation -------------------------------------------------------------------------------------


def check_version_name(version: str, *, what: str = "version") -> str:
    """A version name to publish or point at (``latest`` allowed only as a target)."""
    if not isinstance(version, str) or not (version == LATEST or _VERSION_NAME.fullmatch(version)):
        raise InvalidRequestError(
            f"Invalid {what} {version!r}: expected letters, digits, '.', '_' or '-', at most 42 "
            "characters, starting with a letter or digit (e.g. 'v2' or '20240101-120000')"
        )
    return version


@dataclass(frozen=True)
class ConfigUpdate:
    """
    Settings to change on a function; ``None`` keeps the current value.

    :param memory_size: memory in MB (one of the allowed sizes).
    :param timeout: timeout in seconds (3..259200).
    :param handler: ``file.function``, e.g. ``index.handler``.
    :param runtime: e.g. ``Python3.10``.
    :param environment: environment variables (sent as the JSON ``user_data`` string).
    :param description: the function's description.
    """

    memory_size: int | None = None
    timeout: int | None = None
    handler: str | None = None
    runtime: str | None = None
    environment: Mapping[str, str] | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        if self.memory_size is not None and self.memory_size not in ALLOWED_MEMORY_SIZES:
            raise InvalidRequestError(
                f"Invalid memory_size {self.memory_size!r}: expected one of {ALLOWED_MEMORY_SIZES}"
            )
        if self.timeout is not None and (
            isinstance(self.timeout, bool)
            or not isinstance(self.timeout, int)
            or not MIN_TIMEOUT_S <= self.timeout <= MAX_TIMEOUT_S
        ):
            raise InvalidRequestError(
                f"Invalid timeout {self.timeout!r}: "
                f"expected whole seconds in {MIN_TIMEOUT_S}..{MAX_TIMEOUT_S}"
            )
        if self.handler is not None:
            check_handler(self.handler)
        if self.runtime is not None and (not isinstance(self.runtime, str) or not self.runtime.strip()):
            raise InvalidRequestError(f"Invalid runtime {self.runtime!r}: expected e.g. 'Python3.10'")
        if self.environment is not None:
            if not isinstance(self.environment, Mapping):
                raise InvalidRequestError(
                    f"Invalid environment {self.environment!r}: expected a mapping of names to strings"
                )
            for key, value in self.environment.items():
                if not isinstance(key, str) or not isinstance(value, str):
                    raise InvalidRequestError(
                        f"Invalid environment variable {key!r}: names and values must be strings"
                    )

    @property
    def is_empty(self) -> bool:
        """Whether nothing would change."""
        return all(
            value is None
            for value in (
                self.memory_size,
                self.timeout,
                self.handler,
                self.runtime,
                self.environment,
                self.description,
            )
        )

    def expected(self) -> dict[str, Any]:
        """The configuration fields (as :class:`FunctionConfig` names them) that must hold afterwards."""
        wanted: dict[str, Any] = {
            "memory_size": self.memory_size,
            "timeout": self.timeout,
            "handler": self.handler,
            "runtime": self.runtime,
            "environment": dict(self.environment) if self.environment is not None else None,
            "description": self.description,
        }
        return {key: value for key, value in wanted.items() if value is not None}


def check_handler(handler: str) -> str:
    """A Python handler ``file.function``."""
    if not isinstance(handler, str) or not _HANDLER.fullmatch(handler):
        raise InvalidRequestError(
            f"Invalid handler {handler!r}: expected 'file.function', e.g. 'index.handler'"
        )
    return handler


def handler_file(handler: str) -> str:
    """The file a Python handler lives in: ``index.handler`` -> ``index.py``."""
    return check_handler(handler).rsplit(".", 1)[0].replace(".", "/") + ".py"


# -- answers ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionConfig:
    """
    A function's (or version's) configuration, as ``ShowFunctionConfig`` answers it.

    Missing or odd fields are ``None`` (a timeout that is not a positive number too).

    :param raw: the whole answer, for fields not named here.
    """

    func_urn: str
    func_name: str
    version: str
    runtime: str | None
    handler: str | None
    memory_size: int | None
    timeout: int | None
    digest: str | None
    code_size: int | None
    last_modified: str | None
    environment: dict[str, str]
    description: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FunctionConfig:
        user_data = data.get("user_data")
        environment: dict[str, str] = {}
        if isinstance(user_data, str) and user_data.strip():
            try:
                decoded = json.loads(user_data)
            except ValueError:
                decoded = None
            if isinstance(decoded, dict):
                environment = {str(k): str(v) for k, v in decoded.items()}
        elif isinstance(user_data, dict):
            environment = {str(k): str(v) for k, v in user_data.items()}
        return cls(
            func_urn=str(data.get("func_urn") or ""),
            func_name=str(data.get("func_name") or ""),
            version=str(data.get("version") or LATEST),
            runtime=optional_str(data.get("runtime")),
            handler=optional_str(data.get("handler")),
            memory_size=_opt_int(data.get("memory_size")),
            timeout=_positive_int(data.get("timeout")),
            digest=optional_str(data.get("digest")),
            code_size=_opt_int(data.get("code_size")),
            last_modified=optional_str(data.get("last_modified")),
            environment=environment,
            description=optional_str(data.get("description")),
            raw=dict(data),
        )

    @property
    def log_group_id(self) -> str | None:
        """The LTS log group of the function's logs: ``log_config.group_id``, else ``log_group_id``."""
        return _log_setting(self.raw, "group_id")

    @property
    def log_stream_id(self) -> str | None:
        """The LTS log stream of the function's logs: ``log_config.stream_id``, else ``log_stream_id``."""
        return _log_setting(self.raw, "stream_id")

    def mismatches(self, expected: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
        """``{field: (expected, actual)}`` for each expected field that does not hold."""
        differ: dict[str, tuple[Any, Any]] = {}
        for key, want in expected.items():
            have = getattr(self, key, None) if key != "raw" else None
            if have is None:
                have = self.raw.get(key)
            if have != want:
                differ[key] = (want, have)
        return differ

    def to_dict(self) -> dict[str, Any]:
        """The named fields (JSON-serializable, for XCom)."""
        return {
            "func_urn": self.func_urn,
            "func_name": self.func_name,
            "version": self.version,
            "runtime": self.runtime,
            "handler": self.handler,
            "memory_size": self.memory_size,
            "timeout": self.timeout,
            "digest": self.digest,
            "code_size": self.code_size,
            "last_modified": self.last_modified,
            "environment": dict(self.environment),
            "description": self.description,
        }


def optional_str(value: Any) -> str | None:
    """``value`` as text, ``None`` kept."""
    return None if value is None else str(value)


def _positive_int(value: Any) -> int | None:
    number = _opt_int(value)
    return number if number is not None and number > 0 else None


def _log_setting(data: Mapping[str, Any], name: str) -> str | None:
    log_config = data.get("log_config")
    nested = log_config.get(name) if isinstance(log_config, dict) else None
    flat = data.get(f"log_{name}")
    for value in (nested, flat):
        if isinstance(value, str) and value:
            return value
    return None


def _opt_int(value: Any) -> int | None:
    try:
        return None if value is None or isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        return None


def parse_json_answer(status: int, headers: Mapping[str, str], body: bytes, *, what: str) -> Any:
    """The decoded JSON of a 2xx answer (``None`` when empty); a typed error otherwise."""
    if status >= 400:
        raise platform_error(status, headers, body, what=what)
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise FunctionGraphApiError(
            f"FunctionGraph answered {what} with HTTP {status} and a body that is not JSON: "
            f"{body[:200].decode('utf-8', errors='replace')!r}",
            http_status=status,
        ) from None


def json_object(data: Any, what: str) -> dict[str, Any]:
    """``data`` when it is a JSON object; a :class:`FunctionGraphApiError` naming ``what`` otherwise."""
    if not isinstance(data, dict):
        raise FunctionGraphApiError(
            f"FunctionGraph answered {what} with {type(data).__name__}, not an object"
        )
    return data


def parse_config(status: int, headers: Mapping[str, str], body: bytes, *, what: str) -> FunctionConfig:
    """A configuration answer (show config, update config, publish version)."""
    return FunctionConfig.from_dict(json_object(parse_json_answer(status, headers, body, what=what), what))


def parse_object(status: int, headers: Mapping[str, str], body: bytes, *, what: str) -> dict[str, Any]:
    """Any answer that is a JSON object (code metadata, update code)."""
    return json_object(parse_json_answer(status, headers, body, what=what), what)


def parse_empty(status: int, headers: Mapping[str, str], body: bytes, *, what: str) -> None:
    """A delete answer: anything 2xx."""
    if status >= 400:
        raise platform_error(status, headers, body, what=what)


def pending_reasons(
    config: FunctionConfig, *, digest: str | None = None, expected: Mapping[str, Any] | None = None
) -> list[str]:
    """
    Why ``config`` does not (yet) show a finished update: the code digest differs from ``digest``, or
    a field differs from ``expected``. Empty when the update is complete.
    """
    reasons: list[str] = []
    if digest and config.digest != digest:
        reasons.append(f"code digest is {str(config.digest)[:16]}..., waiting for {digest[:16]}...")
    for key, (want, have) in config.mismatches(expected or {}).items():
        reasons.append(f"{key} is {have!r}, waiting for {want!r}")
    return reasons


# -- requests ---------------------------------------------------------------------------------------


def build_update_code_request(
    endpoint: str,
    urn: FunctionUrn,
    zip_bytes: bytes,
    *,
    code_filename: str = "code.zip",
    depend_version_list: list[str] | None = None,
) -> HttpRequest:
    """``PUT .../{urn}/code`` with the zip inline (``code_type: zip``, base64 ``func_code.file``)."""
    if not zip_bytes:
        raise InvalidRequestError(f"The code package {code_filename!r} is empty")
    if len(zip_bytes) > MAX_INLINE_ZIP_BYTES:
        raise InvalidRequestError(
            f"The code package {code_filename!r} is {len(zip_bytes)} bytes; at most "
            f"{MAX_INLINE_ZIP_BYTES} can be uploaded inline (use an OBS link instead)"
        )
    body: dict[str, Any] = {
        "code_type": "zip",
        "code_filename": code_filename,
        "func_code": {"file": base64.b64encode(zip_bytes).decode("ascii")},
    }
    if depend_version_list:
        body["depend_version_list"] = list(depend_version_list)
    target = unqualified(urn)
    return management_request("PUT", management_url(endpoint, target, "code"), target, body)


def build_update_config_request(
    endpoint: str, urn: FunctionUrn, update: ConfigUpdate, current: FunctionConfig
) -> HttpRequest:
    """
    ``PUT .../{urn}/config``: the API wants the whole set of required fields, so the ones not being
    changed are copied from ``current`` (a fresh ``ShowFunctionConfig``).
    """
    runtime = update.runtime or current.runtime
    handler = update.handler or current.handler
    memory = update.memory_size or current.memory_size
    timeout = update.timeout or current.timeout
    missing = [
        name
        for name, value in (
            ("runtime", runtime),
            ("handler", handler),
            ("memory_size", memory),
            ("timeout", timeout),
        )
        if value is None
    ]
    if missing:
        raise InvalidRequestError(
            f"Cannot update the configuration of {urn.unqualified}: the current configuration has no "
            f"{', '.join(missing)}; give them explicitly"
        )
    body: dict[str, Any] = {
        "func_name": urn.name,
        "runtime": runtime,
        "handler": handler,
        "memory_size": memory,
        "timeout": timeout,
    }
    environment = update.environment if update.environment is not None else current.environment
    body["user_data"] = json.dumps(dict(environment), separators=(",", ":")) if environment else ""
    description = update.description if update.description is not None else current.description
    if description is not None:
        body["description"] = description
    target = unqualified(urn)
    return management_request("PUT", management_url(endpoint, target, "config"), target, body)


def build_show_config_request(endpoint: str, urn: FunctionUrn) -> HttpRequest:
    """``GET .../{urn}/config`` (a version's URN reads that version's snapshot)."""
    return management_request("GET", management_url(endpoint, urn, "config"), urn)


def build_show_code_request(endpoint: str, urn: FunctionUrn) -> HttpRequest:
    """``GET .../{urn}/code``: code metadata (digest, size, file name, last change)."""
    return management_request("GET", management_url(endpoint, urn, "code"), urn)


def build_publish_version_request(
    endpoint: str,
    urn: FunctionUrn,
    *,
    version: str | None = None,
    description: str | None = None,
    digest: str | None = None,
) -> HttpRequest:
    """``POST .../{urn}/versions``: snapshot ``latest`` as ``version`` (the platform names it if absent)."""
    body: dict[str, Any] = {}
    if version is not None:
        if version == LATEST:
            raise InvalidRequestError("Invalid version 'latest': that name is reserved for the live code")
        body["version"] = check_version_name(version)
    if description is not None:
        body["description"] = description
    if digest is not None:
        body["digest"] = digest
    target = unqualified(urn)
    return management_request("POST", management_url(endpoint, target, "versions"), target, body)


def build_list_versions_request(endpoint: str, urn: FunctionUrn) -> HttpRequest:
    """``GET .../{urn}/versions``: the published versions."""
    target = unqualified(urn)
    return management_request("GET", management_url(endpoint, target, "versions"), target)


def parse_versions(
    status: int, headers: Mapping[str, str], body: bytes, *, what: str
) -> list[FunctionConfig]:
    """The ``versions`` list of a version listing."""
    data = json_object(parse_json_answer(status, headers, body, what=what), what)
    items = data.get("versions") or []
    return [FunctionConfig.from_dict(item) for item in items if isinstance(item, dict)]


def build_delete_function_request(
    endpoint: str, urn: FunctionUrn, *, version: str | None = None
) -> HttpRequest:
    """
    ``DELETE .../{urn}``: the whole function (unqualified URN), or one version when ``version`` is
    given (the URN qualified with it; ``latest`` cannot be deleted on its own).
    """
    target = unqualified(urn)
    if version is not None:
        if version == LATEST:
            raise InvalidRequestError(
                "Cannot delete version 'latest' on its own: delete the function (version=None) instead"
            )
        target = FunctionUrn(urn.region, urn.project_id, urn.package, urn.name, check_version_name(version))
    return management_request("DELETE", management_url(endpoint, target), target)


__all__ = [
    "ConfigUpdate",
    "FunctionConfig",
    "build_delete_function_request",
    "build_list_versions_request",
    "build_publish_version_request",
    "build_show_code_request",
    "build_show_config_request",
    "build_update_code_request",
    "build_update_config_request",
    "check_handler",
    "check_version_name",
    "handler_file",
    "parse_config",
    "parse_empty",
    "parse_json_answer",
    "parse_object",
    "parse_versions",
]
