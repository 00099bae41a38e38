"""Extra links from a task to its function in the FunctionGraph console and to its log in LTS."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

from airflow_provider_fgs.protocol.urn import LATEST, FunctionUrn
from airflow_provider_fgs.triggers.invocation_report import XCOM_REQUEST_ID

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
    an alias has no page of its own, so it links to the function's ``latest`` page.
    """
    # Checked against Huawei's docs: "Configuring and Viewing Function Invocation Logs"
    # (https://support.huaweicloud.com/intl/en-us/usermanual-functiongraph/functiongraph_01_1834.html)
    # enters the console at https://console.huaweicloud.com/functiongraph/ and reaches a function through
    # "Functions > Function List > <name>", its details page. The documentation gives no deep link:
    # the "#/serverless/functions/detail/<region>/<project id>/" fragment is the console's own address
    # as users quote it (shown in the address bar of the details page); the "PACKAGE/NAME/VERSION" tail
    # remains UNVERIFIED (one place to fix if it differs).
    version = LATEST if urn.alias is not None else urn.qualifier
    parts = "/".join(quote(part, safe="") for part in (urn.package, urn.name, version))
    region = quote(urn.region, safe="")
    return (
        f"{console_base_url(urn.region)}/functiongraph/?region={region}"
        f"#/serverless/functions/detail/{region}/{quote(urn.project_id, safe='')}/{parts}"
    )


def lts_log_stream_url(
    region: str, log_group_id: str, log_stream_id: str, request_id: str | None = None
) -> str:
    """The LTS console's log search page of one log stream, searching for ``request_id`` when given."""
    # Huawei's LTS docs, "Embedding Huawei Cloud services: URL rules" (华为云服务内嵌: URL拼接规则,
    # https://huaweicloud.com/guide/productsdesc-bms_bfbd3a37a0aa038388d2ef48200e6dd2support0): the log
    # query page is /lts/?region={regionId}#/cts/logEventsLeftMenu/events?groupId={groupId}&topicId={topicId}
    # (topicId is the log stream id) &condition={key:value;...}, special characters %-encoded. The
    # cfModuleHide parameter of that page only serves iframes. LTS's search syntax ("Using Search
    # Syntax", lts_05_0111) names "content" the built-in field of the raw log text, and a function's log
    # lines carry their request id: content:<request id> finds one invocation's lines.
    query = f"groupId={quote(log_group_id, safe='')}&topicId={quote(log_stream_id, safe='')}"
    if request_id:
        query += f"&condition=content:{quote(request_id, safe='')}"
    page = f"{console_base_url(region)}/lts/?region={quote(region, safe='')}#/cts/logEventsLeftMenu/events"
    return f"{page}?{query}"


class FunctionGraphLogLink(BaseOperatorLink):
    """
    Link from a task to its invocation's full log in LTS (Log Tank Service), beyond the 2 KB tail.

    The log group and stream come from the function's config, else from FunctionGraph's "Querying the
    Log Group and Stream of a Function" (``lts-log-detail``); without them there is no link. The page
    searches the stream for the invocation's request id (the task's XCom ``request_id``, or the
    sensor's ``request_id``); a task that has none yet, such as a deferred synchronous invocation whose
    trigger has not sent it, links to the whole stream.
    """

    name = "FunctionGraph Log (LTS)"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """The LTS page of the function's log stream, or ``""`` when it cannot be determined."""
        urn = _task_function(operator)
        hook = getattr(operator, "hook", None)
        if urn is None or hook is None:
            return ""
        try:
            stream = hook.function_log_stream(urn)
        except Exception:  # an unreachable connection or refused credentials: no link
            return ""
        if stream is None:
            return ""
        group_id, stream_id = stream
        return lts_log_stream_url(urn.region, group_id, stream_id, _invocation_request_id(operator, ti_key))


def _invocation_request_id(operator: BaseOperator, ti_key: TaskInstanceKey) -> str | None:
    """
    The operator's own ``request_id`` (a sensor's rendered field, or the invocation an
    ``InvokeFunctionOperator`` made; ``None`` while it defers), else the task's XCom ``request_id``.
    """
    if hasattr(operator, "request_id"):  # no XCom read: a missing XCom is logged as an error
        field = operator.request_id
        return field if isinstance(field, str) and field and "{{" not in field else None
    try:
        from airflow.sdk.execution_time.xcom import XCom

        pushed = XCom.get_value(ti_key=ti_key, key=XCOM_REQUEST_ID)
    except Exception:  # outside a task run (no supervisor), or the XCom cannot be read: no request id
        pushed = None
    return pushed if isinstance(pushed, str) and pushed else None


def _task_function(operator: BaseOperator) -> FunctionUrn | None:
    resolve = getattr(operator, "resolve_function_urn", None)
    if resolve is None:
        return None
    try:
        urn = resolve()
    except Exception:  # an unrendered template, a bad name, an unreachable connection: no link
        return None
    return urn if isinstance(urn, FunctionUrn) else None


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
        urn = _task_function(operator)
        return "" if urn is None else function_console_url(urn)
