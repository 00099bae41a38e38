"""FunctionGraph function URNs: parse, build from parts, validate.

``urn:fss:{region}:{project_id}:function:{package}:{name}[:{qualifier}]`` where the qualifier is
``latest`` (the default when absent), a version, or an alias written ``!alias``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from airflow_provider_fgs.protocol.errors import InvalidRequestError

DEFAULT_PACKAGE = "default"
LATEST = "latest"

_REGION = re.compile(r"[a-z][a-z0-9-]{1,62}")
_PROJECT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PACKAGE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,127}")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_ALIAS = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


def _check(pattern: re.Pattern[str], value: object, what: str, *, example: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidRequestError(
            f"Invalid FunctionGraph {what} {value!r}: expected something like {example!r}"
        )
    return value


@dataclass(frozen=True)
class FunctionUrn:
    """
    A validated FunctionGraph function URN.

    :param region: region id, e.g. ``ap-southeast-1``.
    :param project_id: the project the function belongs to.
    :param package: the function's package (application), usually ``default``.
    :param name: the function's name.
    :param qualifier: ``latest``, a version, or ``!alias``.
    """

    region: str
    project_id: str
    package: str
    name: str
    qualifier: str = LATEST

    def __post_init__(self) -> None:
        _check(_REGION, self.region, "region", example="ap-southeast-1")
        _check(_PROJECT_ID, self.project_id, "project id", example="0a1b2c3d4e5f")
        _check(_PACKAGE, self.package, "package", example=DEFAULT_PACKAGE)
        _check(_NAME, self.name, "function name", example="my_function")
        qualifier = self.qualifier
        if isinstance(qualifier, str) and qualifier.startswith("!"):
            _check(_ALIAS, qualifier[1:], "alias", example="prod")
        else:
            _check(_VERSION, qualifier, "qualifier (version)", example=LATEST)

    @classmethod
    def parse(cls, urn: str) -> FunctionUrn:
        """Parse a full URN; the qualifier defaults to ``latest`` when absent."""
        if not isinstance(urn, str):
            raise InvalidRequestError(f"Invalid FunctionGraph URN {urn!r}: expected a string")
        parts = urn.strip().split(":")
        if len(parts) not in (7, 8) or parts[0] != "urn" or parts[1] != "fss" or parts[4] != "function":
            raise InvalidRequestError(
                f"Invalid FunctionGraph URN {urn!r}: expected "
                "'urn:fss:<region>:<project_id>:function:<package>:<name>[:<qualifier>]'"
            )
        qualifier = parts[7] if len(parts) == 8 else LATEST
        return cls(region=parts[2], project_id=parts[3], package=parts[5], name=parts[6], qualifier=qualifier)

    @classmethod
    def from_parts(
        cls,
        *,
        region: str,
        project_id: str,
        name: str,
        package: str | None = None,
        qualifier: str | None = None,
        alias: str | None = None,
    ) -> FunctionUrn:
        """
        Build a URN from its parts.

        :param alias: an alias name (without ``!``); mutually exclusive with ``qualifier``.
        """
        if alias is not None and qualifier is not None:
            raise InvalidRequestError(
                f"Give either qualifier {qualifier!r} or alias {alias!r} for function {name!r}, not both"
            )
        if alias is not None:
            qualifier = alias if alias.startswith("!") else f"!{alias}"
        return cls(
            region=region,
            project_id=project_id,
            package=package or DEFAULT_PACKAGE,
            name=name,
            qualifier=qualifier or LATEST,
        )

    @property
    def alias(self) -> str | None:
        """The alias name when the qualifier is an alias, else ``None``."""
        return self.qualifier[1:] if self.qualifier.startswith("!") else None

    @property
    def unqualified(self) -> str:
        """The URN without its qualifier."""
        return f"urn:fss:{self.region}:{self.project_id}:function:{self.package}:{self.name}"

    def __str__(self) -> str:
        return f"{self.unqualified}:{self.qualifier}"


def check_function_arguments(
    function_urn: str | None,
    function_name: str | None,
    package: str | None,
    qualifier: str | None,
    alias: str | None,
) -> None:
    """
    Check the ways to name a function: exactly one of URN and name; package, qualifier and alias
    only with a name, and not both qualifier and alias.

    Shared by the operators (when the DAG is parsed) and the hook (before any network call).

    :raises InvalidRequestError: naming the conflicting or missing values.
    """
    if function_urn is not None and function_name is not None:
        raise InvalidRequestError(
            f"Give either function_urn or function_name, not both "
            f"(got function_urn={function_urn!r} and function_name={function_name!r})"
        )
    if function_urn is None and function_name is None:
        raise InvalidRequestError(
            "Give the function to invoke: function_urn='urn:fss:...' or function_name='my_function' "
            "(both are None)"
        )
    if function_urn is not None:
        extra = {"package": package, "qualifier": qualifier, "alias": alias}
        given = {key: value for key, value in extra.items() if value is not None}
        if given:
            named = ", ".join(f"{key}={value!r}" for key, value in given.items())
            raise InvalidRequestError(
                f"Give either function_urn={function_urn!r} or its parts ({named}) with function_name, "
                "not both: a URN already names the package and qualifier"
            )
    if qualifier is not None and alias is not None:
        raise InvalidRequestError(
            f"Give either qualifier={qualifier!r} or alias={alias!r} for function {function_name!r}, not both"
        )
