"""FunctionGraphHook: an Airflow ``functiongraph`` connection in, FunctionGraph client calls out."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook

from airflow_provider_fgs.client.calls import list_one_function_call
from airflow_provider_fgs.client.credentials import mask_secret, uses_fetched_tokens
from airflow_provider_fgs.client.settings import KNOWN_EXTRAS, FunctionGraphSettings, parse_connection
from airflow_provider_fgs.client.sync_client import FunctionGraphClient
from airflow_provider_fgs.client.tokens import TokenCache
from airflow_provider_fgs.compat import allow_xcom_deserialization
from airflow_provider_fgs.hooks.connection_form import legacy_field_behaviour, legacy_form_widgets
from airflow_provider_fgs.protocol.errors import FunctionGraphError
from airflow_provider_fgs.protocol.invoke import InvocationResult

# A TaskFlow task may return the hook's InvocationResult: let Airflow rebuild it from XCom in any process
# that uses the hook, without [core] allowed_deserialization_classes.
allow_xcom_deserialization(InvocationResult)


class FunctionGraphHook(FunctionGraphClient, BaseHook):
    """
    Calls Huawei Cloud FunctionGraph with the credentials of a ``functiongraph`` connection.

    The connection is read once per hook, and its secrets are registered with Airflow's secret masker;
    everything else is the :class:`~airflow_provider_fgs.client.sync_client.FunctionGraphClient`'s:
    ``requests`` with keep-alive and TCP keepalive, IAM tokens cached per process and shared on the host,
    AK/SK signing, cool-downs of rejected credentials, and retries only where re-sending is safe (a
    synchronous invocation is re-sent only when it provably never reached the function, unless the
    connection sets ``retry_sync_invoke``).

    The hook does not raise when the user's function fails: :meth:`invoke` returns an
    :class:`InvocationResult` with ``is_function_error`` set, and the caller decides.

    :param functiongraph_conn_id: the Airflow connection id.
    :param token_cache: the token cache; the process-wide one by default.
    """

    conn_name_attr = "functiongraph_conn_id"
    default_conn_name = "functiongraph_default"
    conn_type = "functiongraph"
    hook_name = "Huawei Cloud FunctionGraph"

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields of the connection form, for Airflow 3.1 (3.2+ reads ``conn-fields``)."""
        return legacy_form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Standard fields of the connection form, for Airflow 3.1 (3.2+ reads ``ui-field-behaviour``)."""
        return legacy_field_behaviour()

    def __init__(
        self,
        functiongraph_conn_id: str = default_conn_name,
        *,
        token_cache: TokenCache | None = None,
    ) -> None:
        BaseHook.__init__(self)
        FunctionGraphClient.__init__(self, token_cache=token_cache)
        self.functiongraph_conn_id = functiongraph_conn_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}(functiongraph_conn_id={self.functiongraph_conn_id!r})"

    @cached_property
    def settings(self) -> FunctionGraphSettings:
        """The parsed connection (read once per hook); its secrets are registered with the masker."""
        conn = self.get_connection(self.functiongraph_conn_id)
        settings = parse_connection(conn)
        for secret in settings.secrets:
            mask_secret(secret)
        unknown = sorted(set(conn.extra_dejson or {}) - KNOWN_EXTRAS)
        if unknown:
            self._logger.warning("Connection %r has unknown extra fields: %s", settings.conn_id, unknown)
        return settings

    def test_connection(self) -> tuple[bool, str]:
        """
        Check the connection for the UI's Test button.

        Password mode fetches an IAM token; AK/SK, pre-issued token and credential chain modes make a
        signed (or token-authenticated) read call listing one function; the chain's message names the
        source that served. Never raises.
        """
        try:
            settings = self.settings
            if uses_fetched_tokens(settings):
                self._tokens.token()
                return True, (
                    f"IAM issued a token for {settings.principal} at {settings.iam_endpoint}; "
                    f"project {self.project_id}"
                )
            self._call(list_one_function_call(settings, self.project_id))
            sourced = self._sourced.cached() if self._sourced is not None else None
            if sourced is not None:
                return True, (
                    f"FunctionGraph at {settings.endpoint} accepted the temporary credentials of "
                    f"{sourced.source} ({settings.principal})"
                )
            return True, f"FunctionGraph at {settings.endpoint} accepted {settings.principal}"
        except FunctionGraphError as err:
            return False, str(err)
        except Exception as err:  # the Test button must show a message, not a traceback
            return False, f"{type(err).__name__}: {err}"
