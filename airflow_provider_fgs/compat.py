"""
What differs between the Airflow lines this provider supports (3.1, 3.2, 3.3), in one place.

Each difference is chosen by the running Airflow's version, never by catching an ``ImportError``, so a
broken install fails loudly instead of silently taking the other branch.
"""

from __future__ import annotations

import re

from airflow import __version__ as AIRFLOW_VERSION_STRING


def _major_minor(version: str) -> tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", version)
    if match is None:
        raise RuntimeError(f"Cannot read the Airflow version from {version!r}")
    return int(match[1]), int(match[2])


#: ``(major, minor)`` of the running Airflow, e.g. ``(3, 1)``.
AIRFLOW_VERSION: tuple[int, int] = _major_minor(AIRFLOW_VERSION_STRING)


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
