"""FunctionGraph management routes of the emulator: code, configuration, versions, aliases, deletes.

Answers have the shapes of the official SDK's models (``UpdateFunctionCodeResponse``,
``ShowFunctionConfigResponse``, ``CreateFunctionVersionResponse``, ``ShowVersionAliasResponse``, ...);
the state lives in :class:`~airflow_provider_fgs.emulator.deployments.ManagedRegistry`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from airflow_provider_fgs.emulator.deployments import (
    AliasRecord,
    ManagedFunction,
    ManagedRegistry,
    ManagementError,
    Snapshot,
)
from airflow_provider_fgs.emulator.functions_api import (
    ApiRefusal,
    authenticated_body,
    json_object_body,
    urn_of_path,
)
from airflow_provider_fgs.emulator.registry import LookupFailure
from airflow_provider_fgs.emulator.responses import json_response
from airflow_provider_fgs.emulator.state import EmulatorState
from airflow_provider_fgs.protocol.aliases import check_alias_name, check_weights
from airflow_provider_fgs.protocol.errors import InvalidRequestError
from airflow_provider_fgs.protocol.functions import ConfigUpdate, check_version_name
from airflow_provider_fgs.protocol.urn import LATEST, FunctionUrn

Handler = Callable[[EmulatorState, Request], Awaitable[Response]]
# Base64 of a 50 MB zip plus the JSON around it.
MAX_CODE_REQUEST_BYTES = 70 * 1024 * 1024
MAX_CONFIG_REQUEST_BYTES = 1024 * 1024

_BASE = r"/v2/(?P<project_id>[^/]+)/fgs/functions/(?P<urn>[^/]+)"
_ROUTES: list[tuple[re.Pattern[str], dict[str, tuple[str, str]]]] = [
    (re.compile(_BASE + r"/?"), {"DELETE": ("delete_function", "delete_function")}),
    (
        re.compile(_BASE + r"/code/?"),
        {"GET": ("show_code", "show_code"), "PUT": ("update_code", "update_code")},
    ),
    (
        re.compile(_BASE + r"/config/?"),
        {"GET": ("config", "show_config"), "PUT": ("update_config", "update_config")},
    ),
    (
        re.compile(_BASE + r"/versions/?"),
        {"GET": ("list_versions", "list_versions"), "POST": ("publish_version", "publish_version")},
    ),
    (
        re.compile(_BASE + r"/aliases/?"),
        {"GET": ("list_aliases", "list_aliases"), "POST": ("create_alias", "create_alias")},
    ),
    (
        re.compile(_BASE + r"/aliases/(?P<alias>[^/]+)/?"),
        {
            "GET": ("show_alias", "show_alias"),
            "PUT": ("update_alias", "update_alias"),
            "DELETE": ("delete_alias", "delete_alias"),
        },
    ),
]


def route(method: str, path: str) -> tuple[str, Handler | None, dict[str, str], str | None] | None:
    """(route name, handler or ``None`` for a wrong method, path params, allowed methods), or ``None``."""
    for pattern, methods in _ROUTES:
        match = pattern.fullmatch(path)
        if match is None:
            continue
        allowed = ", ".join(methods)
        params = {key: value for key, value in match.groupdict().items() if value is not None}
        if method not in methods:
            name = next(iter(methods.values()))[0]
            return name, None, params, allowed
        name, handler_name = methods[method]
        handler: Handler = globals()[f"_{handler_name}"]
        return name, handler, params, allowed
    return None


# -- helpers ----------------------------------------------------------------------------------------


def _registry(state: EmulatorState) -> ManagedRegistry:
    registry = state.registry
    if not isinstance(registry, ManagedRegistry):
        raise ApiRefusal(501, "FSS.0501", "This emulator was started without function management")
    return registry


def _managed(state: EmulatorState, urn: FunctionUrn) -> ManagedFunction:
    try:
        managed = _registry(state).managed(urn.name)
    except LookupFailure as err:
        raise ApiRefusal(404, err.error_code, err.message) from None
    if managed.base.package != urn.package:
        raise ApiRefusal(404, "FSS.1051", f"Not found the function: {urn.unqualified}")
    return managed


def _json_body(body: bytes) -> dict[str, Any]:
    """The JSON object of a management request; an empty body is an empty object."""
    return json_object_body(body) if body.strip() else {}


def _refusing(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except ManagementError as err:
        raise ApiRefusal(err.status, err.error_code, err.message) from None
    except LookupFailure as err:
        raise ApiRefusal(404, err.error_code, err.message) from None
    except InvalidRequestError as err:
        raise ApiRefusal(400, "FSS.0400", str(err)) from None


def _config_body(
    state: EmulatorState, managed: ManagedFunction, snapshot: Snapshot, version: str
) -> dict[str, Any]:
    spec = managed.base
    urn = FunctionUrn.from_parts(
        region=state.region,
        project_id=state.project_id,
        name=spec.name,
        package=spec.package,
        qualifier=version,
    )
    return {
        "func_id": f"{spec.package}-{spec.name}",
        "resource_id": f"{spec.package}-{spec.name}",
        "func_urn": str(urn),
        "func_name": spec.name,
        "domain_id": state.project_id,
        "namespace": state.project_id,
        "project_name": state.project_name,
        "package": spec.package,
        "runtime": snapshot.runtime,
        "timeout": snapshot.timeout,
        "handler": snapshot.handler,
        "memory_size": snapshot.memory_size,
        "cpu": 300,
        "code_type": snapshot.code_type,
        "code_url": "",
        "code_filename": snapshot.code_filename,
        "code_size": snapshot.code_size,
        "user_data": json.dumps(snapshot.environment) if snapshot.environment else "",
        "digest": snapshot.digest,
        "version": version,
        "image_name": f"{spec.name}-{version}",
        "description": snapshot.description,
        "last_modified": snapshot.last_modified,
        "type": "v2",
        "enable_dynamic_memory": False,
        "depend_version_list": [],
    }


def _code_body(state: EmulatorState, managed: ManagedFunction) -> dict[str, Any]:
    latest = managed.latest
    urn = FunctionUrn.from_parts(
        region=state.region, project_id=state.project_id, name=managed.base.name, package=managed.base.package
    )
    return {
        "func_urn": str(urn),
        "func_name": managed.base.name,
        "domain_id": state.project_id,
        "runtime": latest.runtime,
        "code_type": latest.code_type,
        "code_url": "",
        "code_filename": latest.code_filename,
        "code_size": latest.code_size,
        "digest": latest.digest,
        "last_modified": latest.last_modified,
        "func_code": {"file": "", "link": ""},
        "depend_list": [],
        "depend_version_list": [],
    }


def _alias_body(
    state: EmulatorState, managed: ManagedFunction, name: str, record: AliasRecord
) -> dict[str, Any]:
    urn = FunctionUrn.from_parts(
        region=state.region,
        project_id=state.project_id,
        name=managed.base.name,
        package=managed.base.package,
        alias=name,
    )
    return {
        "name": name,
        "version": record.version,
        "description": record.description,
        "last_modified": record.last_modified,
        "alias_urn": str(urn),
        "additional_version_weights": dict(record.weights),
    }


# -- routes -----------------------------------------------------------------------------------------


async def _show_config(state: EmulatorState, request: Request) -> Response:
    await authenticated_body(state, request, 0)
    urn = urn_of_path(state, request)
    managed = _managed(state, urn)
    if urn.alias is not None:
        record = _refusing(lambda: _registry(state).alias(urn.name, urn.alias or ""))
        version = record.version
    else:
        version = urn.qualifier
    snapshot = _refusing(lambda: _registry(state).snapshot(managed, version))
    return json_response(200, _config_body(state, managed, snapshot, version))


async def _show_code(state: EmulatorState, request: Request) -> Response:
    await authenticated_body(state, request, 0)
    managed = _managed(state, urn_of_path(state, request))
    return json_response(200, _code_body(state, managed))


async def _update_code(state: EmulatorState, request: Request) -> Response:
    body = _json_body(await authenticated_body(state, request, MAX_CODE_REQUEST_BYTES))
    urn = urn_of_path(state, request)
    managed = _managed(state, urn)
    code_type = body.get("code_type")
    if code_type != "zip":
        raise ApiRefusal(
            400, "FSS.0400", f"Unsupported code_type {code_type!r}: the emulator takes inline zips ('zip')"
        )
    func_code = body.get("func_code")
    encoded = func_code.get("file") if isinstance(func_code, dict) else None
    if not isinstance(encoded, str) or not encoded:
        raise ApiRefusal(400, "FSS.0400", "func_code.file must hold the base64 of the zip")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ApiRefusal(400, "FSS.0400", "func_code.file is not valid base64") from None
    filename = str(body.get("code_filename") or "code.zip")
    _refusing(lambda: _registry(state).upload_code(urn.name, data, filename))
    return json_response(200, {**_code_body(state, managed), "func_code": {"file": "", "link": ""}})


async def _update_config(state: EmulatorState, request: Request) -> Response:
    body = _json_body(await authenticated_body(state, request, MAX_CONFIG_REQUEST_BYTES))
    urn = urn_of_path(state, request)
    managed = _managed(state, urn)
    if urn.qualifier != LATEST:
        raise ApiRefusal(
            400, "FSS.0400", f"Version {urn.qualifier!r} is immutable: update the function's latest"
        )
    missing = [
        key for key in ("func_name", "runtime", "timeout", "handler", "memory_size") if body.get(key) is None
    ]
    if missing:
        raise ApiRefusal(400, "FSS.0400", f"Missing required parameter(s) {missing}")
    if body["func_name"] != urn.name:
        raise ApiRefusal(
            400, "FSS.0400", f"func_name {body['func_name']!r} does not match the URN's {urn.name!r}"
        )
    user_data = body.get("user_data") or ""
    try:
        environment = json.loads(user_data) if user_data else {}
    except ValueError:
        raise ApiRefusal(400, "FSS.0400", "user_data must be a JSON object of strings") from None
    if not isinstance(environment, dict):
        raise ApiRefusal(400, "FSS.0400", "user_data must be a JSON object of strings")

    def validated() -> ConfigUpdate:
        return ConfigUpdate(
            memory_size=body["memory_size"],
            timeout=body["timeout"],
            handler=body["handler"],
            runtime=body["runtime"],
            environment={str(k): str(v) for k, v in environment.items()},
            description=body.get("description"),
        )

    update = _refusing(validated)
    changes: dict[str, Any] = {
        "memory_size": update.memory_size,
        "timeout": update.timeout,
        "handler": update.handler,
        "runtime": update.runtime,
        "environment": dict(update.environment or {}),
    }
    if update.description is not None:
        changes["description"] = update.description
    snapshot = _refusing(lambda: _registry(state).update_config(urn.name, changes))
    return json_response(200, _config_body(state, managed, snapshot, LATEST))


async def _list_versions(state: EmulatorState, request: Request) -> Response:
    await authenticated_body(state, request, 0)
    managed = _managed(state, urn_of_path(state, request))
    items = [_config_body(state, managed, managed.latest, LATEST)]
    items += [_config_body(state, managed, snap, name) for name, snap in managed.versions.items()]
    return json_response(200, {"versions": items, "next_marker": 0, "count": len(items)})


async def _publish_version(state: EmulatorState, request: Request) -> Response:
    body = _json_body(await authenticated_body(state, request, MAX_CONFIG_REQUEST_BYTES))
    urn = urn_of_path(state, request)
    managed = _managed(state, urn)
    version = body.get("version") or None
    if version is not None:
        _refusing(lambda: check_version_name(str(version)))
    description = str(body.get("description") or "")
    digest = body.get("digest") or None
    name, snapshot = _refusing(
        lambda: _registry(state).publish(
            urn.name, None if version is None else str(version), description, digest
        )
    )
    # Only the publish answer carries the version's description (CreateFunctionVersionResponse).
    body = _config_body(state, managed, snapshot, name)
    return json_response(200, {**body, "version_description": snapshot.version_description})


def _alias_request(body: dict[str, Any]) -> tuple[str, dict[str, int], str]:
    version = body.get("version")
    if not isinstance(version, str) or not version:
        raise ApiRefusal(400, "FSS.0400", "Missing required parameter 'version'")
    weights = body.get("additional_version_weights") or {}
    checked = _refusing(lambda: check_weights(weights, version=version))
    return version, checked, str(body.get("description") or "")


async def _list_aliases(state: EmulatorState, request: Request) -> Response:
    await authenticated_body(state, request, 0)
    managed = _managed(state, urn_of_path(state, request))
    return json_response(200, [_alias_body(state, managed, n, r) for n, r in managed.aliases.items()])


async def _create_alias(state: EmulatorState, request: Request) -> Response:
    body = _json_body(await authenticated_body(state, request, MAX_CONFIG_REQUEST_BYTES))
    urn = urn_of_path(state, request)
    managed = _managed(state, urn)
    name = body.get("name")
    _refusing(lambda: check_alias_name(name))  # type: ignore[arg-type]
    version, weights, description = _alias_request(body)
    record = _refusing(
        lambda: _registry(state).set_alias(urn.name, str(name), version, weights, description, create=True)
    )
    return json_response(200, _alias_body(state, managed, str(name), record))


async def _show_alias(state: EmulatorState, request: Request) -> Response:
    await authenticated_body(state, request, 0)
    urn = urn_of_path(state, request)
    managed = _managed(state, urn)
    name = request.path_params["alias"]
    record = _refusing(lambda: _registry(state).alias(urn.name, name))
    return json_response(200, _alias_body(state, managed, name, record))


async def _update_alias(state: EmulatorState, request: Request) -> Response:
    body = _json_body(await authenticated_body(state, request, MAX_CONFIG_REQUEST_BYTES))
    urn = urn_of_path(state, request)
    managed = _managed(state, urn)
    name = request.path_params["alias"]
    version, weights, description = _alias_request(body)
    record = _refusing(
        lambda: _registry(state).set_alias(urn.name, name, version, weights, description, create=False)
    )
    return json_response(200, _alias_body(state, managed, name, record))


async def _delete_alias(state: EmulatorState, request: Request) -> Response:
    await authenticated_body(state, request, 0)
    urn = urn_of_path(state, request)
    _managed(state, urn)
    _refusing(lambda: _registry(state).delete_alias(urn.name, request.path_params["alias"]))
    return Response(status_code=204)


async def _delete_function(state: EmulatorState, request: Request) -> Response:
    await authenticated_body(state, request, 0)
    urn = urn_of_path(state, request)
    _managed(state, urn)
    if urn.alias is not None:
        raise ApiRefusal(400, "FSS.0400", "Delete an alias with DELETE .../aliases/{name}")
    if urn.qualifier == LATEST:
        _refusing(lambda: _registry(state).delete_function(urn.name))
    else:
        _refusing(lambda: _registry(state).delete_version(urn.name, urn.qualifier))
    return Response(status_code=204)


__all__ = ["route"]
