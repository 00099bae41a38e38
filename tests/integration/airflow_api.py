"""A small client of Airflow 3's public REST API (``/api/v2``) for the integration tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import requests

TERMINAL_RUN_STATES = frozenset({"success", "failed"})
FINISHED_TASK_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
LOG_SETTLE_S = 30.0
"""How long a finished task's log may take to hold the last lines of its trigger (see ``task_log_events``)."""


def _trigger_log_complete(content: list[Any]) -> bool:
    """Whether the last trigger run the log shows (if any) has logged its end ("trigger completed")."""
    completed = True
    for item in content:
        event = str(item.get("event", "")) if isinstance(item, dict) else str(item)
        if event.startswith("trigger ") and event.endswith(" starting"):
            completed = False
        elif event == "trigger completed":
            completed = True
    return completed


class AirflowApiError(AssertionError):
    """The API answered with an unexpected status."""


class AirflowApi:
    """
    Airflow's public API with a JWT from the simple auth manager (``POST /auth/token``).

    :param base_url: the api-server's URL, e.g. ``http://127.0.0.1:8080``.
    :param username: a simple auth manager user.
    :param password: that user's password.
    :param on_timeout: returns text appended to timeout messages (the components' log tails).
    """

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        on_timeout: Callable[[], str] = lambda: "",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.on_timeout = on_timeout
        response = self.session.post(
            f"{self.base_url}/auth/token", json={"username": username, "password": password}, timeout=30
        )
        self._check(response, 201)
        self.token: str = response.json()["access_token"]
        self.session.headers["Authorization"] = f"Bearer {self.token}"

    # -- plumbing --------------------------------------------------------------------------------

    def _check(self, response: requests.Response, *expected: int) -> requests.Response:
        if response.status_code not in expected:
            raise AirflowApiError(
                f"{response.request.method} {response.url} -> {response.status_code}: {response.text[:2000]}"
            )
        return response

    def request(self, method: str, path: str, *expected: int, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        response = self.session.request(method, f"{self.base_url}/api/v2{path}", **kwargs)
        return self._check(response, *(expected or (200,)))

    def _wait(self, what: str, probe: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = probe()
            if last is not None:
                return last
            time.sleep(interval)
        raise AssertionError(f"Timed out after {timeout:.0f}s waiting for {what}.{self.on_timeout()}")

    # -- connections -----------------------------------------------------------------------------

    def create_connection(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create (or replace) a connection; ``body`` in the API's ConnectionBody shape."""
        self.session.delete(f"{self.base_url}/api/v2/connections/{quote(body['connection_id'])}", timeout=30)
        created: dict[str, Any] = self.request("POST", "/connections", 201, json=body).json()
        return created

    def get_connection(self, conn_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.request("GET", f"/connections/{quote(conn_id)}").json()
        return found

    def test_connection(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /connections/test``: ``{"status": bool, "message": str}``."""
        result: dict[str, Any] = self.request("POST", "/connections/test", json=body).json()
        return result

    # -- dags and runs ---------------------------------------------------------------------------

    def wait_for_dag(self, dag_id: str, timeout: float = 90.0) -> dict[str, Any]:
        """Wait until the dag-processor has parsed ``dag_id``; fail with its import errors if any."""

        def probe() -> dict[str, Any] | None:
            response = self.session.get(f"{self.base_url}/api/v2/dags/{dag_id}", timeout=30)
            if response.status_code == 200:
                found: dict[str, Any] = response.json()
                return found
            return None

        try:
            dag: dict[str, Any] = self._wait(f"DAG {dag_id} to be parsed", probe, timeout)
        except AssertionError as exc:
            errors = self.request("GET", "/importErrors").json()
            raise AssertionError(f"{exc}\nImport errors: {errors}") from None
        return dag

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def start_run(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Wait until the DAG is parsed, unpause it and trigger a run now; returns its run id."""
        self.wait_for_dag(dag_id)
        self.unpause(dag_id)
        return self.trigger(dag_id, conf=conf)

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Trigger a run now; returns its run id."""
        body: dict[str, Any] = {"logical_date": None, "conf": conf or {}}
        run = self.request("POST", f"/dags/{dag_id}/dagRuns", 200, json=body).json()
        run_id: str = run["dag_run_id"]
        return run_id

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        run: dict[str, Any] = self.request("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id)}").json()
        return run

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 120.0) -> str:
        """Wait for the run to finish; returns its final state (``success`` or ``failed``)."""

        def probe() -> str | None:
            state: str = self.dag_run(dag_id, run_id)["state"]
            return state if state in TERMINAL_RUN_STATES else None

        try:
            final: str = self._wait(f"run {run_id} of {dag_id} to finish", probe, timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nTask instances: {self.task_states(dag_id, run_id)}") from None
        return final

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run (mapped ones one by one), page by page."""
        path = f"/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances"
        instances: list[dict[str, Any]] = []
        while True:
            params = {"limit": 100, "offset": len(instances)}
            body = self.request("GET", path, params=params).json()
            instances += body["task_instances"]
            if not body["task_instances"] or len(instances) >= body["total_entries"]:
                return instances

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """``{task_id: state}``; a mapped task instance is named ``task_id[map_index]``."""
        return {
            ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else ""): ti["state"]
            for ti in self.task_instances(dag_id, run_id)
        }

    def _ti_path(self, dag_id: str, run_id: str, task_id: str) -> str:
        return f"/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances/{task_id}"

    def set_task_state(self, dag_id: str, run_id: str, task_id: str, state: str) -> None:
        """Mark a task instance ``failed``/``success`` as a user does in the UI."""
        self.request("PATCH", self._ti_path(dag_id, run_id, task_id), 200, json={"new_state": state})

    def xcom(
        self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1
    ) -> Any:
        """The XCom value, as the API returns it (JSON-native)."""
        path = f"{self._ti_path(dag_id, run_id, task_id)}/xcomEntries/{quote(key)}"
        return self.request("GET", path, params={"map_index": map_index}).json()["value"]

    def task_log_events(
        self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1
    ) -> list[Any]:
        """
        The task's whole log as the API serves it: structured events (dicts with ``level``) or text.

        The triggerer writes a trigger's lines to its log file as it reads them from a channel of its
        own, which may lag behind the task's end. So a finished task's log whose last trigger run has not
        logged "trigger completed" yet is read again, for up to ``LOG_SETTLE_S`` seconds; what is then
        asserted about it is the caller's. (Lines the triggerer reads after it has read the trigger's end
        go to its own log, never to the task's: the provider's triggers write their last lines before
        their XCom pushes, ``end_here_with_xcoms``.)
        """
        ti_path = self._ti_path(dag_id, run_id, task_id)
        instance = f"{ti_path}/{map_index}" if map_index >= 0 else ti_path
        params = {"full_content": "true", "map_index": str(map_index)}
        deadline = time.monotonic() + LOG_SETTLE_S
        while True:
            content: list[Any] = self.request("GET", f"{ti_path}/logs/{try_number}", params=params).json()[
                "content"
            ]
            if _trigger_log_complete(content) or time.monotonic() > deadline:
                return content
            if self.request("GET", instance).json().get("state") not in FINISHED_TASK_STATES:
                return content  # still deferred: its trigger is running
            time.sleep(0.5)

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1
    ) -> str:
        """The task's whole log, one line per structured event (``event`` plus its fields)."""
        lines = []
        for item in self.task_log_events(dag_id, run_id, task_id, try_number, map_index):
            if isinstance(item, dict):
                extra = {k: v for k, v in item.items() if k not in ("event", "timestamp")}
                lines.append(f"{item.get('event', '')} {extra}" if extra else str(item.get("event", "")))
            else:
                lines.append(str(item))
        return "\n".join(lines)

    def audit_log(self, dag_id: str, run_id: str, task_id: str, event: str) -> list[dict[str, Any]]:
        """The task's entries of Airflow's audit log (``/eventLogs``) with this ``event``."""
        params = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "event": event}
        entries: list[dict[str, Any]] = self.request("GET", "/eventLogs", params=params).json()["event_logs"]
        return entries

    def extra_links(
        self, dag_id: str, run_id: str, task_id: str, map_index: int = -1
    ) -> dict[str, str | None]:
        path = f"{self._ti_path(dag_id, run_id, task_id)}/links"
        body = self.request("GET", path, params={"map_index": map_index}).json()
        links: dict[str, str | None] = body["extra_links"]
        return links
