"""A trigger's requests about its own task instance (XComs, state) and Variables, through its supervisor.

The requests are the Task SDK's ``GetXCom``/``SetXCom``/``GetTaskStates``, which the trigger runner of
Airflow 3.1, 3.2 and 3.3 forwards to the Execution API. XComs land in the metadata database exactly as a
worker's ``xcom_push`` puts them there (Airflow's own ``TaskSuccessEvent(xcoms=...)`` does not: it stores
them JSON-encoded, and a downstream task then pulls a string).

Each request is shielded from the trigger's cancellation: the runner's channel to its supervisor is one
stream of numbered request/response frames, and a request abandoned between sending and reading its
response leaves that response to the next reader, which then fails ("Response read out of order") and
takes the whole trigger runner down (seen on Airflow 3.1 when a user marked a deferred task failed).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import Any


class SupervisorUnavailableError(RuntimeError):
    """The trigger runs without an Airflow supervisor, so its task's XComs cannot be read or written."""


@dataclass(frozen=True)
class TaskTry:
    """
    One try of one task instance: whose XComs a trigger reads and writes, and which try it is for.

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


def supervisor_available() -> bool:
    """Whether this trigger runs under an Airflow supervisor (the triggerer, or ``dag.test()``)."""
    return _supervisor_comms() is not None


async def _supervisor_request(message: Any) -> Any:
    """Send one request to the supervisor of this trigger (triggerer, or ``dag.test()``'s in-process one)."""
    comms = _supervisor_comms()
    if comms is None:
        raise SupervisorUnavailableError("no Airflow supervisor is reachable from this trigger")
    from airflow.sdk.execution_time.comms import CommsDecoder

    asend = getattr(comms, "asend", None)
    if asend is not None and type(comms) is not CommsDecoder:  # the triggerer's trigger runner
        return await asyncio.shield(asend(message))
    # A worker's task runner (a batch running there), or dag.test()'s in-process supervisor: synchronous,
    # a few milliseconds on the caller's event loop (a worker's channel is its main thread's).
    return comms.send(message)


async def read_xcom(*, dag_id: str, run_id: str, task_id: str, map_index: int, key: str) -> Any:
    """The stored (serialized) value of an XCom of this DAG run, ``None`` when there is none."""
    from airflow.sdk.execution_time.comms import GetXCom

    response = await _supervisor_request(
        GetXCom(key=key, dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index)
    )
    return getattr(response, "value", None)


async def get_task_xcom(task_try: TaskTry, key: str) -> Any:
    """The XCom ``key`` of the task instance of ``task_try`` (``None`` when there is none)."""
    return await read_xcom(
        dag_id=task_try.dag_id,
        run_id=task_try.run_id,
        task_id=task_try.task_id,
        map_index=task_try.map_index,
        key=key,
    )


async def set_task_xcom(task_try: TaskTry, key: str, value: Any, *, mapped_length: int | None = None) -> None:
    """
    Write ``value`` (JSON-native) as the XCom ``key`` of the task instance of ``task_try``.

    :param mapped_length: the length a mapped task downstream expands over, recorded with the value
        as a worker records it for ``return_value``.
    """
    from airflow.sdk.execution_time.comms import SetXCom

    await _supervisor_request(
        SetXCom(
            key=key,
            value=value,
            dag_id=task_try.dag_id,
            run_id=task_try.run_id,
            task_id=task_try.task_id,
            map_index=task_try.map_index,
            mapped_length=mapped_length,
        )
    )


async def delete_task_xcom(task_try: TaskTry, key: str) -> None:
    """Delete the XCom ``key`` of the task instance of ``task_try`` (nothing happens when there is none)."""
    from airflow.sdk.execution_time.comms import DeleteXCom

    await _supervisor_request(
        DeleteXCom(
            key=key,
            dag_id=task_try.dag_id,
            run_id=task_try.run_id,
            task_id=task_try.task_id,
            map_index=task_try.map_index,
        )
    )


async def task_state(task_try: TaskTry) -> str | None:
    """The current state of the task instance of ``task_try`` (``None`` when it has none)."""
    from airflow.sdk.execution_time.comms import GetTaskStates

    response = await _supervisor_request(
        GetTaskStates(
            dag_id=task_try.dag_id,
            task_ids=[task_try.task_id],
            run_ids=[task_try.run_id],
            map_index=task_try.map_index,
        )
    )
    states = getattr(response, "task_states", None) or {}
    state = states.get(task_try.run_id, {}).get(task_try.task_id)
    return None if state is None else str(state)


async def get_variable(key: str) -> str | None:
    """The value of Airflow Variable ``key``, ``None`` when there is none."""
    from airflow.sdk.execution_time.comms import GetVariable

    response = await _supervisor_request(GetVariable(key=key))
    return getattr(response, "value", None)  # an ErrorResponse (not found) has none


async def put_variable(key: str, value: str, description: str | None = None) -> None:
    """Create or replace Airflow Variable ``key``."""
    from airflow.sdk.execution_time.comms import PutVariable

    await _supervisor_request(PutVariable(key=key, value=value, description=description))


async def delete_variable(key: str) -> None:
    """Delete Airflow Variable ``key`` (nothing happens when there is none)."""
    from airflow.sdk.execution_time.comms import DeleteVariable

    await _supervisor_request(DeleteVariable(key=key))
