"""Function aliases (``CreateVersionAlias``, ``UpdateVersionAlias``, ``ShowVersionAlias``,
``ListVersionAliases``, ``DeleteVersionAlias``): their requests, answers and checks, pure and I/O free."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from airflow_provider_fgs.protocol.errors import FunctionGraphApiError, InvalidRequestError
from airflow_provider_fgs.protocol.functions import (
    check_version_name,
    json_object,
    management_request,
    management_url,
    optional_str,
    parse_json_answer,
    unqualified,
)
from airflow_provider_fgs.protocol.http import HttpRequest
from airflow_provider_fgs.protocol.urn import FunctionUrn

_ALIAS_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,62}")


def check_alias_name(name: str) -> str:
    """An alias name: a letter, then letters, digits, ``_`` or ``-`` (at most 63)."""
    if not isinstance(name, str) or not _ALIAS_NAME.fullmatch(name):
        raise InvalidRequestError(
            f"Invalid alias name {name!r}: expected a letter then letters, digits, '_' or '-' (e.g. 'canary')"
        )
    return name


def check_weights(weights: Mapping[str, Any] | None, *, version: str) -> dict[str, int]:
    """
    The canary weights of an alias: ``{other_version: percent}``, percentages summing to at most 100.

    The alias's own ``version`` takes the rest of the traffic, so it cannot carry a weight itself.

    :raises InvalidRequestError: naming the bad version or weight.
    """
    if not weights:
        return {}
    if not isinstance(weights, Mapping):
        raise InvalidRequestError(
            f"Invalid weights {weights!r}: expected a mapping of version to percent, e.g. {{'2': 10}}"
        )
    checked: dict[str, int] = {}
    for other, weight in weights.items():
        check_version_name(str(other), what="weighted version")
        if str(other) == version:
            raise InvalidRequestError(
                f"Invalid weights {dict(weights)!r}: version {version!r} is the alias's main version; "
                "weights name the other versions that get a share of the calls"
            )
        if isinstance(weight, bool) or not isinstance(weight, int | float) or int(weight) != weight:
            raise InvalidRequestError(f"Invalid weight {weight!r} for version {other!r}: expected an integer")
        if not 0 <= int(weight) <= 100:
            raise InvalidRequestError(f"Invalid weight {weight!r} for version {other!r}: expected 0..100")
        checked[str(other)] = int(weight)
    total = sum(checked.values())
    if total > 100:
        raise InvalidRequestError(f"Invalid weights {checked!r}: they sum to {total}, more than 100")
    return checked


@dataclass(frozen=True)
class AliasInfo:
    """An alias: its main version and the weights of the others (``ShowVersionAlias``)."""

    name: str
    version: str
    weights: dict[str, int]
    alias_urn: str | None
    description: str | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AliasInfo:
        weights = data.get("additional_version_weights") or {}
        return cls(
            name=str(data.get("name") or ""),
            version=str(data.get("version") or ""),
            weights={str(k): int(v) for k, v in weights.items()} if isinstance(weights, dict) else {},
            alias_urn=optional_str(data.get("alias_urn")),
            description=optional_str(data.get("description")),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "weights": dict(self.weights),
            "alias_urn": self.alias_urn,
            "description": self.description,
        }


def parse_alias(status: int, headers: Mapping[str, str], body: bytes, *, what: str) -> AliasInfo:
    """An alias answer (create, update, show)."""
    return AliasInfo.from_dict(json_object(parse_json_answer(status, headers, body, what=what), what))


def parse_aliases(status: int, headers: Mapping[str, str], body: bytes, *, what: str) -> list[AliasInfo]:
    """An alias listing (``ListVersionAliases``: a JSON array of aliases)."""
    data = parse_json_answer(status, headers, body, what=what)
    if not isinstance(data, list):
        raise FunctionGraphApiError(f"FunctionGraph answered {what} with {type(data).__name__}, not a list")
    return [AliasInfo.from_dict(item) for item in data if isinstance(item, dict)]


def _alias_body(version: str, description: str | None, weights: Mapping[str, int]) -> dict[str, Any]:
    body: dict[str, Any] = {"version": check_version_name(version, what="alias target version")}
    if description is not None:
        body["description"] = description
    body["additional_version_weights"] = dict(weights)
    return body


def build_create_alias_request(
    endpoint: str,
    urn: FunctionUrn,
    name: str,
    version: str,
    *,
    weights: Mapping[str, Any] | None = None,
    description: str | None = None,
) -> HttpRequest:
    """``POST .../{urn}/aliases`` with ``name``, ``version`` and ``additional_version_weights``."""
    body = {
        "name": check_alias_name(name),
        **_alias_body(version, description, check_weights(weights, version=version)),
    }
    target = unqualified(urn)
    return management_request("POST", management_url(endpoint, target, "aliases"), target, body)


def build_update_alias_request(
    endpoint: str,
    urn: FunctionUrn,
    name: str,
    version: str,
    *,
    weights: Mapping[str, Any] | None = None,
    description: str | None = None,
) -> HttpRequest:
    """``PUT .../{urn}/aliases/{name}``: point the alias at ``version`` with these weights (all replaced)."""
    body = _alias_body(version, description, check_weights(weights, version=version))
    target = unqualified(urn)
    return management_request(
        "PUT",
        management_url(endpoint, target, f"aliases/{quote(check_alias_name(name), safe='')}"),
        target,
        body,
    )


def build_list_aliases_request(endpoint: str, urn: FunctionUrn) -> HttpRequest:
    """``GET .../{urn}/aliases``: every alias of the function."""
    target = unqualified(urn)
    return management_request("GET", management_url(endpoint, target, "aliases"), target)


def build_show_alias_request(endpoint: str, urn: FunctionUrn, name: str) -> HttpRequest:
    """``GET .../{urn}/aliases/{name}``."""
    target = unqualified(urn)
    return management_request(
        "GET", management_url(endpoint, target, f"aliases/{quote(check_alias_name(name), safe='')}"), target
    )


def build_delete_alias_request(endpoint: str, urn: FunctionUrn, name: str) -> HttpRequest:
    """``DELETE .../{urn}/aliases/{name}``."""
    target = unqualified(urn)
    return management_request(
        "DELETE",
        management_url(endpoint, target, f"aliases/{quote(check_alias_name(name), safe='')}"),
        target,
    )
