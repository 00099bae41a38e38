"""Release operators: deploy a function's code, publish a version, move an alias (with a canary split).

Every value that is not a template is checked when the DAG is parsed; templated values are checked
once rendered, before any call. Nothing that changes the function is sent twice by the provider (see
:mod:`airflow_provider_fgs.client.management`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator

from airflow_provider_fgs.client.code_package import load_code_package
from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
from airflow_provider_fgs.links.functiongraph import FunctionGraphConsoleLink
from airflow_provider_fgs.operators.function_target import FunctionTargetMixin
from airflow_provider_fgs.protocol import aliases
from airflow_provider_fgs.protocol import functions as fn
from airflow_provider_fgs.protocol.errors import InvalidRequestError
from airflow_provider_fgs.protocol.urn import LATEST

if TYPE_CHECKING:
    from airflow.sdk import Context

XCOM_DIGEST = "digest"
XCOM_VERSION = "version"


def is_template(value: Any) -> bool:
    """Whether ``value`` still holds a Jinja expression (checked after rendering instead)."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, Mapping):
        return any(is_template(k) or is_template(v) for k, v in value.items())
    return False


def _int_or_none(value: Any, what: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidRequestError(f"Invalid {what} {value!r}: expected an integer")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidRequestError(f"Invalid {what} {value!r}: expected an integer") from None
    if number != value and str(number) != str(value).strip():
        raise InvalidRequestError(f"Invalid {what} {value!r}: expected an integer")
    return number


def _mapping(value: Any, what: str) -> dict[str, Any] | None:
    """A rendered mapping (a template renders to text: JSON is decoded)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise InvalidRequestError(f"Invalid {what} {value!r}: expected a JSON object") from None
    if not isinstance(value, Mapping):
        raise InvalidRequestError(f"Invalid {what} {value!r}: expected a mapping")
    return dict(value)


class _FunctionReleaseOperator(FunctionTargetMixin, BaseOperator):
    """Names the function (``function_urn``, or ``function_name`` with the connection's region/project)."""

    ui_color = "#fdf0e2"
    operator_extra_links = (FunctionGraphConsoleLink(),)

    def __init__(
        self,
        *,
        function_urn: str | None = None,
        function_name: str | None = None,
        package: str | None = None,
        functiongraph_conn_id: str = FunctionGraphHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.set_function_target(
            function_urn=function_urn,
            function_name=function_name,
            package=package,
            qualifier=None,
            alias=None,
        )
        self.functiongraph_conn_id = functiongraph_conn_id


class UpdateFunctionCodeOperator(_FunctionReleaseOperator):
    """
    Deploy new code to a function's ``latest``, then the configuration changes given, if any.

    The code is a local directory (zipped for you, deterministically) or a ``.zip`` file; it is sent
    inline (base64), at most 50 MB. With ``handler`` the package must contain the handler's file, and the
    function's handler is set to it when it differs. A missing path, a file that is not a zip, or a zip
    without the handler's file fails the task before any call (at DAG parse time when not templated).

    XCom: ``return_value`` is ``{"digest", "code_size", "code_filename", "last_modified", "sha256"}``
    plus ``"config"`` (the configuration after the change) when the configuration was changed; key
    ``digest`` is the platform's code digest (what :class:`FunctionUpdatedSensor` waits for).

    :param code_path: a directory or a ``.zip`` file. (templated)
    :param function_urn: the function's URN. (templated)
    :param function_name: the function's name, with the connection's region and project. (templated)
    :param package: the function's package; ``default`` when not given.
    :param handler: ``file.function`` the code provides, e.g. ``index.handler``. (templated)
    :param memory_size: new memory size in MB. (templated)
    :param timeout: new timeout in seconds. (templated)
    :param runtime: new runtime, e.g. ``Python3.10``. (templated)
    :param environment: new environment variables (replacing the old ones). (templated)
    :param functiongraph_conn_id: the ``functiongraph`` connection to use.
    """

    template_fields: Sequence[str] = (
        "code_path",
        "function_urn",
        "function_name",
        "handler",
        "memory_size",
        "timeout",
        "runtime",
        "environment",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"environment": "json"}

    def __init__(
        self,
        *,
        code_path: str,
        handler: str | None = None,
        memory_size: int | str | None = None,
        timeout: int | str | None = None,
        runtime: str | None = None,
        environment: Mapping[str, str] | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.code_path = code_path
        self.handler = handler
        self.memory_size = memory_size
        self.timeout = timeout
        self.runtime = runtime
        self.environment = environment
        if not any(is_template(v) for v in (handler, memory_size, timeout, runtime, environment)):
            self._config_update()

    def _config_update(self) -> fn.ConfigUpdate:
        environment = _mapping(self.environment, "environment")
        return fn.ConfigUpdate(
            memory_size=_int_or_none(self.memory_size, "memory_size"),
            timeout=_int_or_none(self.timeout, "timeout"),
            handler=self.handler or None,
            runtime=self.runtime or None,
            environment={str(k): str(v) for k, v in environment.items()} if environment is not None else None,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        update = self._config_update()
        package = load_code_package(self.code_path, handler=self.handler or None)
        urn = self.resolve_function_urn()
        self.log.info(
            "Deploying %s (%d bytes, sha256 %s, %d files) to %s",
            self.code_path,
            len(package.data),
            package.sha256[:12],
            len(package.files),
            urn.unqualified,
        )
        answer = self.hook.update_function_code(urn, package)
        pushed: dict[str, Any] = {
            "digest": answer.get("digest"),
            "code_size": answer.get("code_size"),
            "code_filename": answer.get("code_filename"),
            "last_modified": answer.get("last_modified"),
            "sha256": package.sha256,
        }
        if not update.is_empty:
            current = self.hook.get_function_config(urn)
            if current.mismatches(update.expected()):
                config = self.hook.update_function_config(urn, update)
                self.log.info("Configuration of %s is now %s", urn.unqualified, config.to_dict())
                pushed["config"] = config.to_dict()
        context["ti"].xcom_push(key=XCOM_DIGEST, value=pushed["digest"])
        return pushed


class PublishFunctionVersionOperator(_FunctionReleaseOperator):
    """
    Publish the function's ``latest`` code and configuration as an immutable version.

    A publish is sent at most once. When ``version`` already exists with the same code digest as
    ``latest`` (e.g. a retry of a task whose publish went through), it is reused instead of failing;
    with other code the task fails naming the version.

    XCom: ``return_value`` is the version's name; key ``digest`` its code digest.

    :param version: the version's name; FunctionGraph names it ``yyyymmdd-HHMMSS`` when empty. (templated)
    :param description: the version's description. (templated)
    :param digest: publish only if ``latest`` still has this code digest, e.g. from
        :class:`UpdateFunctionCodeOperator`'s ``digest``. (templated)
    :param function_urn: the function's URN. (templated)
    :param function_name: the function's name. (templated)
    :param package: the function's package.
    :param functiongraph_conn_id: the ``functiongraph`` connection to use.
    """

    template_fields: Sequence[str] = ("version", "description", "digest", "function_urn", "function_name")

    def __init__(
        self,
        *,
        version: str | None = None,
        description: str | None = None,
        digest: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.version = version
        self.description = description
        self.digest = digest
        if version and not is_template(version):
            self._check_version(version)

    @staticmethod
    def _check_version(version: str) -> str:
        if version == LATEST:
            raise InvalidRequestError("Invalid version 'latest': that name is reserved for the live code")
        return fn.check_version_name(version)

    def execute(self, context: Context) -> str:
        version = self._check_version(self.version) if self.version else None
        urn = self.resolve_function_urn()
        if version is not None:
            existing = {v.version: v for v in self.hook.list_versions(urn)}
            if version in existing:
                latest = existing.get(LATEST) or self.hook.get_function_config(urn)
                if existing[version].digest != latest.digest:
                    raise InvalidRequestError(
                        f"Version {version!r} of {urn.unqualified} already exists with other code "
                        f"(digest {str(existing[version].digest)[:16]}..., "
                        f"latest has {str(latest.digest)[:16]}...)"
                    )
                self.log.info(
                    "Version %r of %s already holds the latest code: reusing it", version, urn.unqualified
                )
                context["ti"].xcom_push(key=XCOM_DIGEST, value=existing[version].digest)
                return version
        published = self.hook.publish_function_version(
            urn, version=version, description=self.description or None, digest=self.digest or None
        )
        self.log.info(
            "Published version %r of %s (digest %s)", published.version, urn.unqualified, published.digest
        )
        context["ti"].xcom_push(key=XCOM_DIGEST, value=published.digest)
        return published.version


class UpdateFunctionAliasOperator(_FunctionReleaseOperator):
    """
    Point an alias at a version, optionally sending a share of the calls to other versions (canary).

    The alias is created when missing. ``weights`` maps other versions to the percentage of calls they
    get (at most 100 in total); ``canary_version`` with ``canary_weight`` is the same for one version,
    convenient with templates (dictionary keys are not templated). Every named version must exist: an
    unknown one fails the task (after one read, before the alias is touched), naming it.

    XCom: ``return_value`` is ``{"name", "version", "weights", "alias_urn", "description", "created"}``.

    :param alias_name: the alias's name, e.g. ``canary``. (templated)
    :param version: the version the alias points at (gets the calls not given to others). (templated)
    :param weights: ``{other_version: percent}``. (templated)
    :param canary_version: one other version to give ``canary_weight`` percent of the calls. (templated)
    :param canary_weight: the canary's percentage, 0..100. (templated)
    :param description: the alias's description. (templated)
    :param function_urn: the function's URN. (templated)
    :param function_name: the function's name. (templated)
    :param package: the function's package.
    :param functiongraph_conn_id: the ``functiongraph`` connection to use.
    """

    template_fields: Sequence[str] = (
        "alias_name",
        "version",
        "weights",
        "canary_version",
        "canary_weight",
        "description",
        "function_urn",
        "function_name",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"weights": "json"}

    def __init__(
        self,
        *,
        alias_name: str,
        version: str,
        weights: Mapping[str, int] | str | None = None,
        canary_version: str | None = None,
        canary_weight: int | str | None = None,
        description: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.alias_name = alias_name
        self.version = version
        self.weights = weights
        self.canary_version = canary_version
        self.canary_weight = canary_weight
        self.description = description
        if not is_template(alias_name):
            aliases.check_alias_name(alias_name)
        if not any(is_template(v) for v in (version, weights, canary_version, canary_weight)):
            self._target()

    def _target(self) -> tuple[str, dict[str, int]]:
        version = fn.check_version_name(self.version, what="alias target version")
        weights = _mapping(self.weights, "weights") or {}
        weight = _int_or_none(self.canary_weight, "canary_weight")
        if self.canary_version:
            if weight is None:
                raise InvalidRequestError(f"canary_version {self.canary_version!r} needs a canary_weight")
            if self.canary_version in weights:
                raise InvalidRequestError(
                    f"Version {self.canary_version!r} is both canary_version and in weights {weights!r}"
                )
            weights[self.canary_version] = weight
        elif weight is not None:
            raise InvalidRequestError(f"canary_weight {self.canary_weight!r} needs a canary_version")
        return version, aliases.check_weights(weights, version=version)

    def execute(self, context: Context) -> dict[str, Any]:
        name = aliases.check_alias_name(self.alias_name)
        version, weights = self._target()
        urn = self.resolve_function_urn()
        known = {v.version for v in self.hook.list_versions(urn)} | {LATEST}
        unknown = [v for v in (version, *weights) if v not in known]
        if unknown:
            raise InvalidRequestError(
                f"Unknown version(s) {unknown} of {urn.unqualified} for alias {name!r} "
                f"(published: {sorted(known - {LATEST})})"
            )
        alias, created = self.hook.set_alias(
            urn, name, version, weights=weights, description=self.description
        )
        split = ", ".join(f"{v} {w}%" for v, w in alias.weights.items())
        self.log.info(
            "%s alias %r of %s -> version %r%s",
            "Created" if created else "Moved",
            name,
            urn.unqualified,
            alias.version,
            f" (canary: {split})" if split else "",
        )
        return {**alias.to_dict(), "created": created}


__all__ = ["PublishFunctionVersionOperator", "UpdateFunctionAliasOperator", "UpdateFunctionCodeOperator"]
