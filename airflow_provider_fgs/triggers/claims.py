"""Durable send claims: how a trigger that is started again knows an earlier run of it may have sent.

A trigger handed to another triggerer (after SIGTERM/SIGKILL, a missed heartbeat, or while two
triggerers briefly run it at once) starts again from the top of ``run()``. Before a trigger sends a
request that must not be sent twice, it writes a claim into an XCom of its own task instance; after
the response it writes the outcome (the event it is about to fire) into the same XCom. A run that
finds a claim for the same try knows an earlier run may have sent the request, and resumes with the
recorded outcome when there is one.

The XCom goes through the triggerer's supervisor to the Execution API (``GetXCom``/``SetXCom``, present
in the trigger runner of Airflow 3.1, 3.2 and 3.3), i.e. into the metadata database, which outlives
any triggerer. Airflow clears a task's XComs when a new try starts, never when a deferred task
resumes; the claim also records its try number, so a claim left by another try is ignored.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

CLAIM_XCOM_KEY = "functiongraph_invoke_claim"
"""The XCom key of the claim, on the deferred task instance itself."""


class ClaimStoreUnavailableError(RuntimeError):
    """The trigger runs without an Airflow supervisor, so no claim can be read or written."""


@dataclass(frozen=True)
class TaskTry:
    """
    One try of one task instance: where a claim is stored, and which try it is for.

    :param dag_id: the DAG id.
    :param run_id: the DAG run id.
    :param task_id: the task id.
    :param map_index: the map index (``-1`` when not mapped).
    :param try_number: the try number.
    """

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int

    @classmethod
    def of(cls, ti: Any) -> TaskTry:
        """The try of a task instance (runtime TI, DTO or ORM object)."""
        return cls(
            dag_id=str(ti.dag_id),
            run_id=str(ti.run_id),
            task_id=str(ti.task_id),
            map_index=int(ti.map_index if ti.map_index is not None else -1),
            try_number=int(ti.try_number),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        mapped = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.dag_id}.{self.task_id}{mapped} of run {self.run_id}, try {self.try_number}"


def _supervisor_comms() -> Any:
    from airflow.sdk.execution_time import task_runner

    return getattr(task_runner, "SUPERVISOR_COMMS", None)


def claim_store_available() -> bool:
    """Whether this trigger runs under an Airflow supervisor (the triggerer, or ``dag.test()``)."""
    return _supervisor_comms() is not None


async def _supervisor_request(message: Any) -> Any:
    """Send one request to the supervisor of this trigger (triggerer, or ``dag.test()``'s in-process one)."""
    comms = _supervisor_comms()
    if comms is None:
        raise ClaimStoreUnavailableError("no Airflow supervisor is reachable from this trigger")
    asend = getattr(comms, "asend", None)
    if asend is not None:  # the triggerer's trigger runner
        return await asend(message)
    return comms.send(message)  # dag.test()'s in-process supervisor: synchronous, no event loop of its own


async def read_claim(task_try: TaskTry) -> dict[str, Any] | None:
    """The claim recorded for ``task_try``, or ``None`` when none is (a claim of another try is ignored)."""
    from airflow.sdk.execution_time.comms import GetXCom

    response = await _supervisor_request(
        GetXCom(
            key=CLAIM_XCOM_KEY,
            dag_id=task_try.dag_id,
            run_id=task_try.run_id,
            task_id=task_try.task_id,
            map_index=task_try.map_index,
        )
    )
    value = getattr(response, "value", None)
    if not isinstance(value, dict) or value.get("try_number") != task_try.try_number:
        return None
    return value


async def write_claim(task_try: TaskTry, **record: Any) -> None:
    """Record ``record`` (JSON-serializable) as the claim of ``task_try``, replacing any earlier one."""
    from airflow.sdk.execution_time.comms import SetXCom

    value = {"try_number": task_try.try_number, "written_at": time.time(), **record}
    await _supervisor_request(
        SetXCom(
            key=CLAIM_XCOM_KEY,
            value=value,
            dag_id=task_try.dag_id,
            run_id=task_try.run_id,
            task_id=task_try.task_id,
            map_index=task_try.map_index,
        )
    )
