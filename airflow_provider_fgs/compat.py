"""What differs between the supported Airflow lines (3.1, 3.2, 3.3), in one place."""

from __future__ import annotations

try:  # Airflow 3.2+: the Task SDK defines it
    from airflow.sdk.exceptions import AirflowFailException
except ImportError:  # Airflow 3.1: only airflow-core does
    from airflow.exceptions import AirflowFailException  # type: ignore[no-redef,attr-defined,unused-ignore]

__all__ = ["AirflowFailException"]
