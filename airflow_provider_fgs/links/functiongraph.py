"""Extra link from a task to its function in the Huawei Cloud FunctionGraph console."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

from airflow_provider_fgs.protocol.urn import LATEST, FunctionUrn

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

# Chinese-mainland regions live on the Chinese console; every other region on the international one.
CHINA_CONSOLE = "https://console.huaweicloud.com"
INTERNATIONAL_CONSOLE = "https://console-intl.huaweicloud.com"


def console_base_url(region: str) -> str:
    """The FunctionGraph console host serving ``region``."""
    return CHINA_CONSOLE if region.startswith("cn-") else INTERNATIONAL_CONSOLE


def function_console_url(urn: FunctionUrn) -> str:
    """
    The console page of the function named by ``urn``.

    The console is a single-page app addressed as
    ``/functiongraph/?region=R#/serverless/functions/detail/R/PROJECT/PACKAGE/NAME/VERSION``;
    an alias has no page of its own, so it links to the function's ``latest`` page. The part up to the
    project id is the console's documented-by-use shape; the ``PACKAGE/NAME/VERSION`` tail is UNVERIFIED
    against the live console (one place to fix if it differs).
    """
    version = LATEST if urn.alias is not None else urn.qualifier
    parts = "/".join(quote(part, safe="") for part in (urn.package, urn.name, version))
    region = quote(urn.region, safe="")
    return (
        f"{console_base_url(urn.region)}/functiongraph/?region={region}"
        f"#/serverless/functions/detail/{region}/{quote(urn.project_id, safe='')}/{parts}"
    )


class FunctionGraphConsoleLink(BaseOperatorLink):
    """
    Link from an :class:`~airflow_provider_fgs.operators.functiongraph.InvokeFunctionOperator` task to
    its function in the FunctionGraph console.

    Airflow 3 asks for the link in the worker when the task finishes (success or failure) and stores it
    for the UI; the link is built from the function the task resolved, or from the operator's fields and
    its connection's region and project when the task failed before resolving it.
    """

    name = "FunctionGraph Console"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """The console URL of the task's function, or ``""`` when it cannot be determined."""
        resolve = getattr(operator, "resolve_function_urn", None)
        if resolve is None:
            return ""
        try:
            urn = resolve()
        except Exception:  # an unrendered template, a bad name, an unreachable connection: no link
            return ""
        return function_console_url(urn) if isinstance(urn, FunctionUrn) else ""
