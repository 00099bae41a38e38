"""One synchronous invocation as a DAG describes it: which function, with what event, and how.

The operator, its trigger, both hooks and the TaskFlow decorator pass this one value object around, so
the options of an invocation are listed once (here) instead of once per layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from airflow_provider_fgs.protocol.errors import InvalidRequestError
from airflow_provider_fgs.protocol.invoke import encode_payload, validate_options
from airflow_provider_fgs.protocol.urn import check_function_arguments

OPERATOR_NAMES = {"timeout": "invoke_timeout", "deserialize": "deserialize_result"}
"""The options that the operators (``InvokeFunctionOperator``, ``@task.functiongraph``) spell differently."""


@dataclass(frozen=True, kw_only=True)
class Invocation:
    """
    A synchronous invocation of a FunctionGraph function, before the connection completes it.

    Name the function by ``function_urn``, or by ``function_name`` with optional ``package`` and
    ``qualifier`` or ``alias`` (the connection gives region and project).

    :param function_urn: full URN ``urn:fss:<region>:<project>:function:<package>:<name>[:<qualifier>]``.
    :param function_name: the function's name, instead of ``function_urn``.
    :param package: the function's package (``default`` when not given); only with ``function_name``.
    :param qualifier: ``latest`` (the default) or a version; only with ``function_name``.
    :param alias: an alias, instead of ``qualifier``; only with ``function_name``.
    :param payload: the event: a JSON-serializable value, or a ``str``/``bytes`` holding JSON;
        ``None`` sends ``{}``.
    :param log_type: ``"tail"`` for the last 2000 bytes of the function's log, ``"none"``/``None`` for none.
    :param request_version: ``"v1"`` (JSON envelope) or ``"v0"`` (raw return value).
    :param instance_memory: instance memory in MB for this call (128, 256, ... 10240).
    :param timeout: read timeout in seconds; ``None`` follows the connection, else the function's timeout.
    :param deserialize: JSON-decode the result when it is JSON.
    """

    function_urn: str | None = None
    function_name: str | None = None
    package: str | None = None
    qualifier: str | None = None
    alias: str | None = None
    payload: Any = None
    log_type: str | None = "tail"
    request_version: str = "v1"
    instance_memory: int | str | None = None
    timeout: float | None = None
    deserialize: bool = True

    def check(self) -> Invocation:
        """
        Check everything that can be checked without the connection, and return the invocation with
        its payload encoded as JSON text (what is sent, and what a trigger stores).

        :raises InvalidRequestError: naming the bad or conflicting value.
        """
        check_function_arguments(
            self.function_urn, self.function_name, self.package, self.qualifier, self.alias
        )
        validate_options(self.log_type, self.request_version, self.instance_memory)
        if self.timeout is not None and (
            not isinstance(self.timeout, int | float) or isinstance(self.timeout, bool) or self.timeout <= 0
        ):
            raise InvalidRequestError(f"Invalid timeout {self.timeout!r}: expected a number of seconds > 0")
        body = encode_payload(self.payload).decode("utf-8")
        memory = None if self.instance_memory is None else int(self.instance_memory)
        return replace(self, payload=body, instance_memory=memory)

    def target(self) -> dict[str, str | None]:
        """The arguments naming the function (for ``FunctionGraphHook.resolve_urn``)."""
        return {
            "function_urn": self.function_urn,
            "function_name": self.function_name,
            "package": self.package,
            "qualifier": self.qualifier,
            "alias": self.alias,
        }

    def resolved_to(self, urn: str) -> Invocation:
        """The invocation with its function named by ``urn`` alone (the URN the connection resolved)."""
        return replace(self, function_urn=urn, function_name=None, package=None, qualifier=None, alias=None)

    def describe(self) -> str:
        """The function as given (URN or name), for messages before it is resolved."""
        return str(self.function_urn or self.function_name)

    def to_dict(self) -> dict[str, Any]:
        """The fields, for a trigger's arguments (call :meth:`check` first: the payload is then text)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Invocation:
        """
        Rebuild an invocation from :meth:`to_dict` (or from an operator's arguments of the same names).

        :raises InvalidRequestError: naming a key that is not an invocation's option.
        """
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidRequestError(
                f"Unknown invocation option(s) {', '.join(unknown)}: "
                f"expected some of {', '.join(sorted(known))}"
            )
        return cls(**data)

    @classmethod
    def operator_argument_names(cls) -> tuple[str, ...]:
        """The invocation's options as the operators name their arguments (``invoke_timeout``, ...)."""
        return tuple(OPERATOR_NAMES.get(item.name, item.name) for item in fields(cls))

    @classmethod
    def from_operator_arguments(cls, arguments: Mapping[str, Any]) -> Invocation:
        """The invocation described by an operator's arguments (any other argument is ignored)."""
        options = {}
        for item in fields(cls):
            name = OPERATOR_NAMES.get(item.name, item.name)
            if name in arguments:
                options[item.name] = arguments[name]
        return cls(**options)
