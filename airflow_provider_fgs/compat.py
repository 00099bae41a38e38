"""
What differs between the Airflow lines this provider supports (3.1, 3.2, 3.3), in one place.

Everything else in the package imports Airflow's public API directly. Each difference here is chosen
by the running Airflow's version, never by catching an ``ImportError``, so a broken install fails
loudly instead of silently taking the other branch. ``docs/compatibility.md`` lists the differences.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from airflow import __version__ as AIRFLOW_VERSION_STRING

__all__ = [
    "AIRFLOW_VERSION",
    "AIRFLOW_V_3_2_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "AirflowFailException",
    "Stats",
    "TaskDeferred",
    "allow_xcom_deserialization",
    "conf",
    "dag_bag",
    "determine_kwargs",
    "get_fernet",
    "require_airflow",
    "store_dag",
    "task_listeners_registered",
    "to_thread",
    "uses_default_xcom_backend",
]


def _major_minor(version: str) -> tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", version)
    if match is None:
        raise RuntimeError(f"Cannot read the Airflow version from {version!r}")
    return int(match[1]), int(match[2])


#: ``(major, minor)`` of the running Airflow, e.g. ``(3, 1)``.
AIRFLOW_VERSION: tuple[int, int] = _major_minor(AIRFLOW_VERSION_STRING)
AIRFLOW_V_3_2_PLUS: bool = AIRFLOW_VERSION >= (3, 2)
#: From 3.3 the triggerer calls ``BaseTrigger.on_kill()`` when a user marks a deferred task failed or
#: success or clears it, and never on a triggerer shutdown or redistribution.
AIRFLOW_V_3_3_PLUS: bool = AIRFLOW_VERSION >= (3, 3)

_T = TypeVar("_T")


def require_airflow(minimum: tuple[int, int], feature: str) -> None:
    """
    Fail clearly when ``feature`` needs a newer Airflow line than the running one.

    :param minimum: the oldest ``(major, minor)`` line the feature works on.
    :param feature: what the user asked for, named in the message.
    :raises RuntimeError: when the running Airflow is older than ``minimum``.
    """
    if minimum > AIRFLOW_VERSION:
        raise RuntimeError(
            f"{feature} needs Airflow {minimum[0]}.{minimum[1]} or newer; "
            f"this is Airflow {AIRFLOW_VERSION_STRING}."
        )


# Configuration: the Task SDK's ``airflow.sdk.conf`` from 3.2; before that only the core parser.
# mypy checks against the newest line (``TYPE_CHECKING`` takes the first branch).
if TYPE_CHECKING or AIRFLOW_V_3_2_PLUS:
    from airflow.sdk import conf
else:
    from airflow.configuration import conf

# A blocking call of a trigger (reading the connection, fetching a token) runs in a worker thread. 3.1's
# triggerer answers the Task SDK's sync calls there (a connection, a secret to mask) through asgiref's
# ``async_to_sync``, which finds the trigger's event loop only from a ``sync_to_async`` thread: from a plain
# thread the replies interleave with the loop's own and the trigger runner dies ("Response read out of
# order"). 3.2 made those calls thread-safe, so ``asyncio.to_thread`` does there.
if TYPE_CHECKING or AIRFLOW_V_3_2_PLUS:
    from asyncio import to_thread
else:
    import asyncio

    from asgiref.sync import sync_to_async

    async def to_thread(func: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
        # Shielded: asgiref passes a cancellation on to the supervisor request the call may be making,
        # which would leave its response unread on the runner's one channel and kill the runner.
        return await asyncio.shield(sync_to_async(func, thread_sensitive=False)(*args, **kwargs))


# Airflow's metrics client, which sends to what the deployment's ``[metrics]`` section turns on (StatsD,
# Datadog's DogStatsD or OpenTelemetry). 3.1 has one, configured when ``airflow.stats`` is imported. From
# 3.2 the Task SDK has its own, which the task runner initialises and ``airflow.sdk.serde`` initialises
# when it is imported; a 3.2 triggerer never imports it itself (its own metrics go through core's client),
# so it is imported here: without it the provider's metrics from a 3.2 triggerer would go nowhere.
if TYPE_CHECKING or AIRFLOW_V_3_2_PLUS:
    import airflow.sdk.serde  # noqa: F401  (initialises Stats from [metrics])
    from airflow.sdk.observability.stats import Stats
else:
    from airflow.stats import Stats

# The exception that fails a task without its retries: in the Task SDK's exceptions from 3.2 (the
# task runner of 3.1 catches the core one).
if TYPE_CHECKING or AIRFLOW_V_3_2_PLUS:
    from airflow.sdk.exceptions import AirflowFailException
else:
    from airflow.exceptions import AirflowFailException

# What BaseOperator.defer() raises: in the Task SDK's exceptions from 3.2, in the core ones before.
if TYPE_CHECKING or AIRFLOW_V_3_2_PLUS:
    from airflow.sdk.exceptions import TaskDeferred
else:
    from airflow.exceptions import TaskDeferred

# The keyword arguments a TaskFlow callable takes from its op_kwargs and the context: in the Task SDK's
# decorator module from 3.2, in core's operator helpers before.
if TYPE_CHECKING or AIRFLOW_V_3_2_PLUS:
    from airflow.sdk.bases.decorator import determine_kwargs
else:
    from airflow.utils.operator_helpers import determine_kwargs


def dag_bag(dag_folder: str) -> Any:
    """
    Parse the DAG files of ``dag_folder`` into a ``DagBag`` (for tests and the demo; never at runtime).

    The class moved to ``airflow.dag_processing.dagbag`` in 3.2 (the old path warns there).

    :param dag_folder: directory of the DAG files.
    """
    if TYPE_CHECKING or AIRFLOW_V_3_2_PLUS:
        from airflow.dag_processing.dagbag import DagBag
    else:
        from airflow.models.dagbag import DagBag
    return DagBag(dag_folder=dag_folder)


def store_dag(dag: Any) -> None:
    """
    Write ``dag`` to the metadata DB as the DAG processor does, so ``dag.test()`` can run a DAG defined in a
    test (for tests; never at runtime). ``sync_bag_to_db`` moved with ``DagBag`` in 3.2.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    if TYPE_CHECKING or AIRFLOW_V_3_2_PLUS:
        from airflow.dag_processing.dagbag import sync_bag_to_db
    else:
        from airflow.models.dagbag import sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()  # type: ignore[no-untyped-call]
    bag = dag_bag(os.devnull)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)


def allow_xcom_deserialization(cls: type) -> None:
    """
    Let Airflow rebuild ``cls`` from XCom in this process, without ``[core] allowed_deserialization_classes``.

    Airflow 3.3 has the public ``airflow.sdk.serde.allow_class``; 3.1 (``airflow.serialization.serde``)
    and 3.2 (``airflow.sdk.serde``) check the same process-wide set of extra allowed class names.
    """
    if AIRFLOW_VERSION >= (3, 3):
        from airflow.sdk.serde import allow_class

        allow_class(cls)
        return
    if AIRFLOW_VERSION >= (3, 2):
        from airflow.sdk import serde
    else:
        from airflow.serialization import serde  # type: ignore[attr-defined,no-redef,unused-ignore]
    serde._extra_allowed.add(f"{cls.__module__}.{cls.__qualname__}")


def get_fernet() -> Any | None:
    """
    Airflow's Fernet (the ``[core] fernet_key``) as used for connections and variables, or ``None``
    when no key is configured.

    It moved to the Task SDK (``airflow.sdk.crypto``) in 3.2, whose configuration leaves the key's
    ``{FERNET_KEY}`` default unexpanded when there is no ``airflow.cfg``: that means no key, too.
    """
    if TYPE_CHECKING or AIRFLOW_V_3_2_PLUS:
        from airflow.sdk.crypto import get_fernet as airflow_get_fernet
    else:
        from airflow.models.crypto import get_fernet as airflow_get_fernet
    key = conf.get("core", "fernet_key", fallback="")
    if not key or key == "{FERNET_KEY}":
        return None
    fernet = airflow_get_fernet()
    return fernet if getattr(fernet, "is_encrypted", False) else None


def task_listeners_registered() -> bool:
    """
    Whether listeners (plugins, OpenLineage) are registered in this task process: a task that ends in
    the triggerer never reaches their task hooks. The Task SDK has its own listener manager from 3.2.
    """
    if TYPE_CHECKING or AIRFLOW_V_3_2_PLUS:
        from airflow.sdk.listener import get_listener_manager
    else:
        from airflow.listeners.listener import get_listener_manager
    return bool(get_listener_manager().has_listeners)


def uses_default_xcom_backend() -> bool:
    """
    Whether ``[core] xcom_backend`` is Airflow's own: XComs pushed from the triggerer are written to the
    metadata database directly, past any custom backend.
    """
    from airflow.sdk.bases.xcom import BaseXCom
    from airflow.sdk.execution_time.xcom import resolve_xcom_backend

    return resolve_xcom_backend() is BaseXCom  # type: ignore[no-untyped-call]
