"""Where a batch's ledger lives in Airflow: Variables, which outlive a task's try (its XComs do not).

A worker clears a task instance's XComs when it starts a new try, and a batch's retry must know what
the earlier tries did; so the ledger and its results chunks are Variables named after the task instance
(``functiongraph.batch.<hash>.ledger``, ``...results.0``, ...), written and read through the supervisor
of the worker or the triggerer (the Execution API), like any Variable a task uses. They are removed once
the batch succeeded and its XComs are pushed. While a batch is unfinished they show under Admin ->
Variables, with a description naming the task.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from airflow_provider_fgs.client.batch_ledger import LEDGER
from airflow_provider_fgs.triggers.supervisor import (
    TaskTry,
    delete_variable,
    get_task_xcom,
    get_variable,
    put_variable,
)

PREFIX = "functiongraph.batch."
SUMMARY_XCOM = "summary"
RUNNING = "running"


def running_summary(try_number: int) -> dict[str, Any]:
    """
    The ``summary`` a batch's task pushes before the batch starts: a run reading it finds a record (Airflow
    logs a missing XCom as an error), and it says the batch of this try has not ended.
    """
    return {"status": RUNNING, "try_number": try_number}


def ledger_prefix(task_try: TaskTry) -> str:
    """The Variable prefix of the batch of ``task_try``'s task instance (the same for every try)."""
    instance = "\x00".join([task_try.dag_id, task_try.run_id, task_try.task_id, str(task_try.map_index)])
    return PREFIX + hashlib.sha256(instance.encode("utf-8")).hexdigest()[:32] + "."


class VariableStore:
    """
    The batch's records as Airflow Variables (JSON text), one per record name.

    :param task_try: the task try running the batch.
    """

    def __init__(self, task_try: TaskTry) -> None:
        self.task_try = task_try
        self.prefix = ledger_prefix(task_try)
        mapped = f"[{task_try.map_index}]" if task_try.map_index >= 0 else ""
        self._description = (
            f"Ledger of the FunctionGraph batch {task_try.dag_id}.{task_try.task_id}{mapped} of run "
            f"{task_try.run_id}; removed when the batch succeeds"
        )

    def where(self) -> str:
        return f"Airflow Variable {self.prefix}{LEDGER}"

    async def get(self, name: str) -> Any:
        text = await get_variable(self.prefix + name)
        if text is None:
            return await self._recorded_success() if name == LEDGER else None
        return json.loads(text)

    async def put(self, name: str, value: Any) -> None:
        await put_variable(self.prefix + name, json.dumps(value, separators=(",", ":")), self._description)

    async def delete(self, name: str) -> None:
        await delete_variable(self.prefix + name)

    async def _recorded_success(self) -> dict[str, Any] | None:
        """
        The end of a batch whose ledger was removed in this try (it succeeded, and its XComs were pushed),
        from its ``summary`` XCom: a run of the same trigger that starts late then fires that end instead
        of starting the batch again.
        """
        summary = await get_task_xcom(self.task_try, SUMMARY_XCOM)
        if not (
            isinstance(summary, dict)
            and summary.get("try_number") == self.task_try.try_number
            and summary.get("status") == "success"
        ):
            return None
        message = "the batch succeeded in another run of this try"
        return {
            "try_number": self.task_try.try_number,
            "done": {"status": "success", "message": message, "summary": summary, "removed": True},
        }
