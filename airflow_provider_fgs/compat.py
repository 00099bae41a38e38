"""
What differs between the Airflow lines this provider supports (3.1, 3.2, 3.3), in one place.

Everything else in the package imports Airflow's public API directly. Each difference here is chosen
by the running Airflow's version, never by catching an ``ImportError``, so a broken install fails
loudly instead of silently taking the other branch. ``docs/compatibility.md`` lists the differences.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from airflow import __version__ as AIRFLOW_VERSION_STRING

__all__ = [
    "AIRFLOW_VERSION",
    "AIRFLOW_V_3_2_PLUS",
    "AirflowFailException",
    "conf",
    "dag_bag",
    "get_fernet",
    "require_airflow",
]


def _major_minor(version: str) -> tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", version)
    if match is None:
        raise RuntimeError(f"Cannot read the Airflow version from {version!r}")
    return int(match[1]), int(match[2])


#: ``(major, minor)`` of the running Airflow, e.g. ``(3, 1)``.
AIRFLOW_VERSION: tuple[int, int] = _major_minor(AIRFLOW_VERSION_STRING)
AIRFLOW_V_3_2_PLUS: bool = AIRFLOW_VERSION >= (3, 2)


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


# The exception that fails a task without its retries: in the Task SDK's exceptions from 3.2 (the
# task runner of 3.1 catches the core one).
if TYPE_CHECKING or AIRFLOW_V_3_2_PLUS:
    from airflow.sdk.exceptions import AirflowFailException
else:
    from airflow.exceptions import AirflowFailException


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
