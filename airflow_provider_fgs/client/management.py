"""Function management through the client: code, configuration, versions and aliases.

Mixed into :class:`~airflow_provider_fgs.client.sync_client.FunctionGraphClient` (and so into the hook);
every method builds its request with :mod:`airflow_provider_fgs.protocol.functions` and sends it as a
:class:`~airflow_provider_fgs.client.calls.PreparedCall` (authentication, the one-time token refresh, the
retry policy). Reads and
alias updates to a given version are retried; a code upload, a configuration change, a version publish,
an alias creation and deletes are re-sent only when they certainly did not arrive (no connection, 429,
503), as a synchronous invoke: a re-send after one may have arrived is not harmless (a second publish
makes a second version or fails, a second delete fails).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_fgs.client.calls import PreparedCall, function_config_call
from airflow_provider_fgs.client.settings import FunctionGraphSettings
from airflow_provider_fgs.protocol import aliases
from airflow_provider_fgs.protocol import functions as fn
from airflow_provider_fgs.protocol.errors import FunctionGraphApiError, InvalidRequestError
from airflow_provider_fgs.protocol.http import HttpRequest, Response
from airflow_provider_fgs.protocol.urn import FunctionUrn

if TYPE_CHECKING:
    from airflow_provider_fgs.client.code_package import CodePackage

T = TypeVar("T")
Parser = Callable[..., T]

ALIAS_NOT_FOUND = "FSS.1053"


class ManagementCalls:
    """
    Management calls of :class:`~airflow_provider_fgs.client.sync_client.FunctionGraphClient`, which
    gives them its settings, its URN resolution (:meth:`_function`) and its sending (:meth:`_call`).
    """

    @property
    def settings(self) -> FunctionGraphSettings:
        raise NotImplementedError

    def _call(self, call: PreparedCall[T]) -> T:
        raise NotImplementedError

    def _function(self, function: str | FunctionUrn) -> FunctionUrn:
        raise NotImplementedError

    @property
    def _endpoint(self) -> str:
        return self.settings.endpoint

    def _managed(self, request: HttpRequest, parse: Parser[T], what: str, *, idempotent: bool) -> T:
        def read(response: Response) -> T:
            return parse(*response, what=what)

        return self._call(PreparedCall(request, read, what=what, idempotent=idempotent))

    # -- code and configuration ---------------------------------------------------------------------

    def update_function_code(
        self,
        function: str | FunctionUrn,
        code: str | os.PathLike[str] | CodePackage,
        *,
        handler: str | None = None,
        depend_version_list: list[str] | None = None,
    ) -> dict[str, Any]:
        """
        Upload new code to the function's ``latest`` (sent once, never retried).

        :param function: a URN, or a function name in the connection's project.
        :param code: a directory (zipped for you), a ``.zip`` file, or a :class:`CodePackage`.
        :param handler: when given, the zip must hold the handler's file (checked before the upload).
        :return: the platform's answer (``digest``, ``code_size``, ``last_modified``, ...).
        """
        from airflow_provider_fgs.client.code_package import CodePackage, load_code_package

        package = code if isinstance(code, CodePackage) else load_code_package(code, handler=handler)
        urn = self._function(function)
        request = fn.build_update_code_request(
            self._endpoint,
            urn,
            package.data,
            code_filename=package.filename,
            depend_version_list=depend_version_list,
        )
        return self._managed(request, fn.parse_object, f"code update of {urn.unqualified}", idempotent=False)

    def get_function_config(self, function: str | FunctionUrn) -> fn.FunctionConfig:
        """The configuration of the function (or of the version its URN names)."""
        return self._call(function_config_call(self.settings, self._function(function)))

    def get_function_code(self, function: str | FunctionUrn) -> dict[str, Any]:
        """The code metadata of the function: ``digest``, ``code_size``, ``code_filename``, ..."""
        urn = self._function(function)
        request = fn.build_show_code_request(self._endpoint, urn)
        return self._managed(request, fn.parse_object, f"code read of {urn}", idempotent=True)

    def update_function_config(
        self,
        function: str | FunctionUrn,
        update: fn.ConfigUpdate | None = None,
        *,
        memory_size: int | None = None,
        timeout: int | None = None,
        handler: str | None = None,
        runtime: str | None = None,
        environment: Mapping[str, str] | None = None,
        description: str | None = None,
    ) -> fn.FunctionConfig:
        """
        Change some settings of the function, keeping the others (read first, then one update sent once).

        :param update: the changes, or give them as keyword arguments.
        :return: the configuration after the change.
        """
        if update is None:
            update = fn.ConfigUpdate(
                memory_size=memory_size,
                timeout=timeout,
                handler=handler,
                runtime=runtime,
                environment=environment,
                description=description,
            )
        if update.is_empty:
            raise InvalidRequestError(f"Nothing to change in the configuration of {function!s}")
        urn = self._function(function)
        current = self.get_function_config(FunctionUrn(urn.region, urn.project_id, urn.package, urn.name))
        request = fn.build_update_config_request(self._endpoint, urn, update, current)
        return self._managed(
            request, fn.parse_config, f"configuration update of {urn.unqualified}", idempotent=False
        )

    # -- versions -----------------------------------------------------------------------------------

    def publish_version(
        self,
        function: str | FunctionUrn,
        *,
        version: str | None = None,
        description: str | None = None,
        digest: str | None = None,
    ) -> str:
        """
        Publish the function's current code and configuration as an immutable version (sent once).

        :param version: the version's name; the platform names it (``yyyymmdd-HHMMSS``) when absent.
        :param digest: publish only if ``latest`` still has this code digest.
        :return: the published version's name.
        """
        return self.publish_function_version(
            function, version=version, description=description, digest=digest
        ).version

    def publish_function_version(
        self,
        function: str | FunctionUrn,
        *,
        version: str | None = None,
        description: str | None = None,
        digest: str | None = None,
    ) -> fn.FunctionConfig:
        """Like :meth:`publish_version`, returning the whole published configuration."""
        urn = self._function(function)
        request = fn.build_publish_version_request(
            self._endpoint, urn, version=version, description=description, digest=digest
        )
        return self._managed(
            request, fn.parse_config, f"version publish of {urn.unqualified}", idempotent=False
        )

    def list_versions(self, function: str | FunctionUrn) -> list[fn.FunctionConfig]:
        """The function's published versions (``latest`` included, as the platform lists it)."""
        urn = self._function(function)
        request = fn.build_list_versions_request(self._endpoint, urn)
        return self._managed(
            request, fn.parse_versions, f"version list of {urn.unqualified}", idempotent=True
        )

    def delete_function(self, function: str | FunctionUrn, *, version: str | None = None) -> None:
        """Delete the whole function, or only ``version`` of it (sent once)."""
        urn = self._function(function)
        request = fn.build_delete_function_request(self._endpoint, urn, version=version)
        what = (
            f"deletion of version {version!r} of {urn.unqualified}"
            if version
            else f"deletion of {urn.unqualified}"
        )
        self._managed(request, fn.parse_empty, what, idempotent=False)

    # -- aliases ------------------------------------------------------------------------------------

    def create_alias(
        self,
        function: str | FunctionUrn,
        name: str,
        version: str,
        *,
        weights: Mapping[str, Any] | None = None,
        description: str | None = None,
    ) -> aliases.AliasInfo:
        """Create alias ``name`` on ``version``, with optional canary ``weights`` (sent once)."""
        urn = self._function(function)
        request = aliases.build_create_alias_request(
            self._endpoint, urn, name, version, weights=weights, description=description
        )
        return self._managed(
            request, aliases.parse_alias, f"creation of alias {name!r} of {urn.unqualified}", idempotent=False
        )

    def update_alias(
        self,
        function: str | FunctionUrn,
        name: str,
        version: str,
        *,
        weights: Mapping[str, Any] | None = None,
        description: str | None = None,
    ) -> aliases.AliasInfo:
        """Point alias ``name`` at ``version`` with these ``weights`` (replacing the old ones; retried)."""
        urn = self._function(function)
        request = aliases.build_update_alias_request(
            self._endpoint, urn, name, version, weights=weights, description=description
        )
        return self._managed(
            request, aliases.parse_alias, f"update of alias {name!r} of {urn.unqualified}", idempotent=True
        )

    def list_aliases(self, function: str | FunctionUrn) -> list[aliases.AliasInfo]:
        """Every alias of the function, with its version and canary weights."""
        urn = self._function(function)
        request = aliases.build_list_aliases_request(self._endpoint, urn)
        return self._managed(
            request, aliases.parse_aliases, f"alias list of {urn.unqualified}", idempotent=True
        )

    def get_alias(self, function: str | FunctionUrn, name: str) -> aliases.AliasInfo | None:
        """Alias ``name``, or ``None`` when the function has no such alias."""
        urn = self._function(function)
        request = aliases.build_show_alias_request(self._endpoint, urn, name)
        try:
            return self._managed(
                request, aliases.parse_alias, f"read of alias {name!r} of {urn.unqualified}", idempotent=True
            )
        except FunctionGraphApiError as err:
            if err.error_code == ALIAS_NOT_FOUND:
                return None
            raise

    def set_alias(
        self,
        function: str | FunctionUrn,
        name: str,
        version: str,
        *,
        weights: Mapping[str, Any] | None = None,
        description: str | None = None,
    ) -> tuple[aliases.AliasInfo, bool]:
        """
        Point alias ``name`` at ``version``, creating it when missing.

        :return: the alias and whether it was created.
        """
        aliases.check_weights(weights, version=fn.check_version_name(version, what="alias target version"))
        aliases.check_alias_name(name)
        if self.get_alias(function, name) is None:
            return self.create_alias(function, name, version, weights=weights, description=description), True
        return self.update_alias(function, name, version, weights=weights, description=description), False

    def delete_alias(self, function: str | FunctionUrn, name: str) -> None:
        """Delete alias ``name`` (sent once)."""
        urn = self._function(function)
        request = aliases.build_delete_alias_request(self._endpoint, urn, name)
        self._managed(
            request, fn.parse_empty, f"deletion of alias {name!r} of {urn.unqualified}", idempotent=False
        )
