"""A real Airflow 3 deployment on loopback in a temporary AIRFLOW_HOME, for the integration tests.

Four components run as separate ``airflow`` commands (api-server, scheduler, dag-processor,
triggerer) with LocalExecutor on sqlite, the simple auth manager with an admin user and a viewer
restricted to one DAG (passwords generated here), and the connection Test button enabled. Separate
commands give one log file per component, which the failure messages quote.
``production.CeleryDeployment`` builds the production shape on this class by overriding
``components()`` (and ``start``/``stop`` for its services).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # an Airflow dependency; no stubs installed
import requests

from tests import loopback_guard

from .processes import DeploymentError, ManagedProcess, describe_logs, stop_all, tail, wait_for

LOOPBACK_SITE = Path(__file__).resolve().parent.parent / "loopback_site"

ADMIN_USER = "admin"
DAG_READER = "dag_reader"
"""A viewer that the deployment's auth manager lets read one DAG only, :data:`DAG_READER_DAG`."""
DAG_READER_DAG = "functiongraph_chain"
GRANTS_ENV = (
    "FGS_TEST_DAG_GRANTS"  # read by dag_restricted_auth (not imported here: it imports the API server)
)
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
HEALTH_KEYS = {"scheduler": "scheduler", "dag-processor": "dag_processor", "triggerer": "triggerer"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class AirflowDeployment:
    """
    Airflow's api-server, scheduler, dag-processor and triggerer, started and stopped together.

    :param home: an empty directory used as AIRFLOW_HOME (database, logs, config).
    :param dags_folder: the DAG files to serve.
    :param extra_env: more environment variables for every component (e.g. connections).
    :param startup_timeout: seconds allowed for all components to report healthy.
    """

    def __init__(
        self,
        home: Path,
        dags_folder: Path,
        extra_env: Mapping[str, str] | None = None,
        startup_timeout: float = 120.0,
    ) -> None:
        self.home = home
        self.dags_folder = dags_folder
        self.startup_timeout = startup_timeout
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.password = secrets.token_urlsafe(16)
        self.env = self._environment(extra_env or {})
        self.processes: list[ManagedProcess] = []
        self.stopped: list[ManagedProcess] = []
        """Components stopped on purpose (:meth:`stop_component`); their logs are still quoted."""

    def _environment(self, extra_env: Mapping[str, str]) -> dict[str, str]:
        passwords_file = self.home / "simple_auth_manager_passwords.json"
        passwords_file.write_text(
            json.dumps({ADMIN_USER: self.password, DAG_READER: self.password}), encoding="utf-8"
        )
        env = {
            key: value
            for key, value in os.environ.items()
            # nothing from the test session's own Airflow (home, config, connections, variables)
            if not key.startswith("AIRFLOW")
        }
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
                "AIRFLOW__CORE__AUTH_MANAGER": self._auth_manager(),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin,{DAG_READER}:viewer",
                GRANTS_ENV: json.dumps({DAG_READER: [DAG_READER_DAG]}),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
                "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "2",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "60",
                "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
                "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "600",
                # `airflow standalone` and task runners look for the `airflow` command on PATH
                "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
                "PYTHONUNBUFFERED": "1",
                "NO_COLOR": "1",
                # the provider's host-wide token cache and cool-downs, private to this deployment
                "AIRFLOW__FUNCTIONGRAPH__HOST_CACHE_DIR": str(self.home / "fgs-host-cache"),
            }
        )
        if "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in extra_env:
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"] = self._sqlite_connect_args()
        env["AIRFLOW__EMAIL__EMAIL_BACKEND"] = self._email_backend()
        env.update(extra_env)
        # Every component, and every process it starts, runs under the loopback guard.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(LOOPBACK_SITE), env.get("PYTHONPATH")]))
        env[loopback_guard.RECORD_ENV] = str(self.loopback_attempts_file)
        return env

    @property
    def loopback_attempts_file(self) -> Path:
        """Where the components record each attempt to reach an address off loopback (none expected)."""
        return self.home / "loopback-attempts.log"

    def check_loopback(self) -> None:
        """Fail when a component tried to reach an address off loopback (``tests/loopback_guard.py``)."""
        if self.loopback_attempts_file.exists():
            raise DeploymentError(
                "A component tried to leave loopback:\n" + self.loopback_attempts_file.read_text("utf-8")
            )

    @property
    def emails_file(self) -> Path:
        """Where the deployment's email backend writes each email it is asked to send, one JSON line each."""
        return self.home / "emails.jsonl"

    def _email_backend(self) -> str:
        """The import path of an email backend that records emails in :attr:`emails_file`, sending none."""
        config = self.home / "config"
        config.mkdir(exist_ok=True)
        (config / "fgs_recorded_email.py").write_text(
            "import json\n\n\n"
            "def send_email(to, subject, html_content, **kwargs):\n"
            f"    with open({str(self.emails_file)!r}, 'a', encoding='utf-8') as out:\n"
            "        out.write(json.dumps({'to': to, 'subject': subject}) + '\\n')\n",
            encoding="utf-8",
        )
        return "fgs_recorded_email.send_email"

    def _auth_manager(self) -> str:
        """The simple auth manager with per-user DAG grants (:mod:`.dag_restricted_auth`): its import path."""
        config = self.home / "config"
        config.mkdir(exist_ok=True)
        shutil.copy(Path(__file__).with_name("dag_restricted_auth.py"), config / "fgs_dag_restricted_auth.py")
        return "fgs_dag_restricted_auth.DagRestrictedSimpleAuthManager"

    def _sqlite_connect_args(self) -> str:
        """
        The import path of SQLite's connect arguments: a write waits up to 60 s for the database lock
        (sqlite3's default, 5 s, fails API calls with "database is locked" on a busy 2-core machine).
        Airflow puts ``$AIRFLOW_HOME/config`` on ``sys.path``.
        """
        config = self.home / "config"
        config.mkdir(exist_ok=True)
        (config / "fgs_sqlite_settings.py").write_text('CONNECT_ARGS = {"timeout": 60}\n', encoding="utf-8")
        return "fgs_sqlite_settings.CONNECT_ARGS"

    def _airflow(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "airflow", *args]

    def components(self) -> list[tuple[str, list[str], dict[str, str]]]:
        """Each component as (name, ``airflow`` arguments, environment on top of ``self.env``)."""
        api_args = ["--host", "127.0.0.1", "--port", str(self.port)]
        return [(name, [name, *(api_args if name == "api-server" else [])], {}) for name in COMPONENTS]

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Migrate the database, start the components, wait until all report healthy."""
        started = time.monotonic()
        migrate_log = self.home / "logs" / "db-migrate.log"
        migrate_log.parent.mkdir(parents=True, exist_ok=True)
        with migrate_log.open("wb") as log:
            done = subprocess.run(
                self._airflow("db", "migrate"),
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=self.startup_timeout,
                check=False,
            )
        if done.returncode != 0:
            raise DeploymentError(f"airflow db migrate failed ({done.returncode}):\n{tail(migrate_log)}")
        for name, args, env in self.components():
            process = ManagedProcess(
                name,
                self._airflow(*args),
                {**self.env, **env},
                self.home / "logs" / f"{name}.log",
                cwd=self.home,
            )
            self.processes.append(process)
            process.start()
        remaining = self.startup_timeout - (time.monotonic() - started)
        wait_for("Airflow components to report healthy", self._healthy, remaining, self.watched())

    def start_component(self, name: str, label: str | None = None) -> ManagedProcess:
        """
        Start one more ``airflow <name>`` process (e.g. a second or replacement triggerer).

        :param name: the component, one of :data:`COMPONENTS`.
        :param label: the process's name in messages and its log file; ``name`` when not given.
        """
        label = label or name
        args: list[str] = [name]
        if name == "api-server":
            args += ["--host", "127.0.0.1", "--port", str(self.port)]
        process = ManagedProcess(
            label, self._airflow(*args), self.env, self.home / "logs" / f"{label}.log", cwd=self.home
        )
        self.processes.append(process)
        process.start()
        return process

    def component(self, label: str) -> ManagedProcess:
        """The most recently started process named ``label``."""
        return [p for p in self.processes if p.name == label][-1]

    def stop_component(self, process: ManagedProcess, sig: signal.Signals, timeout: float = 60.0) -> None:
        """
        Send ``sig`` (SIGTERM: graceful, as a rolling deploy does; SIGKILL: a crash) to ``process`` and
        wait until it and its children are gone; it is no longer checked by :meth:`check_alive`.
        """
        family = process._family()
        if sig == signal.SIGKILL:
            for proc in family:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, sig)
        _, alive = psutil.wait_procs(family, timeout=timeout)
        if alive:
            raise DeploymentError(f"{process.name} did not exit within {timeout:.0f}s of {sig.name}")
        assert process.popen is not None
        process.popen.wait(timeout=5)
        self.processes.remove(process)
        self.stopped.append(process)

    def start_copy(self, process: ManagedProcess) -> ManagedProcess:
        """Start the command of a stopped ``process`` again in its place (same environment, same log)."""
        new = ManagedProcess(process.name, process.argv, process.env, process.log_path, process.cwd)
        self.processes.append(new)
        new.start()
        return new

    def replace_component(self, process: ManagedProcess, sig: signal.Signals) -> ManagedProcess:
        """Stop ``process`` with ``sig`` (see :meth:`stop_component`) and start its command in its place."""
        self.stop_component(process, sig)
        return self.start_copy(process)

    def stop(self) -> None:
        """Stop every component that was started; safe to call more than once."""
        stop_all(self.processes)

    def start_again(self, name: str) -> ManagedProcess:
        """Start component ``name`` anew (same command, environment and log file) after it stopped."""
        old = self.process(name)
        if old.exit_code() is None:
            raise DeploymentError(f"{name} is still running (pid {old.pid}); stop it first")
        self.processes.remove(old)
        return self.start_copy(old)

    def __enter__(self) -> AirflowDeployment:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        if exc_info[0] is None:
            self.check_loopback()

    # -- state -----------------------------------------------------------------------------------

    def _healthy(self) -> dict[str, Any] | None:
        response = requests.get(f"{self.url}/api/v2/monitor/health", timeout=5)
        if response.status_code != 200:
            return None
        health: dict[str, Any] = response.json()
        for key in ("metadatabase", *HEALTH_KEYS.values()):
            if (health.get(key) or {}).get("status") != "healthy":
                return None
        return health

    def process(self, name: str) -> ManagedProcess:
        """The component called ``name`` (``scheduler``, ``triggerer``; ``triggerer-2``, ``worker-a``...)."""
        for process in self.processes:
            if process.name == name:
                return process
        raise DeploymentError(f"no component {name!r}; there are {[p.name for p in self.processes]}")

    @property
    def triggerers(self) -> list[ManagedProcess]:
        """The triggerer processes: one in the local shape, two in the production shape."""
        return [p for p in self.processes if p.name.startswith("triggerer")]

    def trigger_owner(self, run_id: str, timeout: float = 30.0) -> ManagedProcess:
        """
        The triggerer running the trigger of a task of ``run_id``: the one whose process writes that task's
        trigger log (``...attempt=N.log.trigger.<job id>.log``, open while the trigger runs). While a
        loaded triggerer's trigger is handed to another one, both run it for a moment (the claim keeps
        the second from invoking): this waits until only one does.
        """

        def holds_the_log(process: ManagedProcess) -> bool:
            for proc in process._family():
                with contextlib.suppress(psutil.Error):
                    if any(run_id in f.path and ".trigger." in f.path for f in proc.open_files()):
                        return True
            return False

        def probe() -> ManagedProcess | None:
            holders = [process for process in self.triggerers if holds_the_log(process)]
            return holders[0] if len(holders) == 1 else None

        return wait_for(f"a triggerer to run the trigger of {run_id}", probe, timeout, self.triggerers)

    def watched(self) -> list[ManagedProcess]:
        """Every process whose death fails a wait and whose log a failure quotes."""
        return list(self.processes)

    def check_alive(self) -> None:
        """Raise with the logs when a component has exited."""
        dead = [p for p in self.watched() if p.exit_code() is not None]
        if dead:
            names = ", ".join(f"{p.name} (exit {p.exit_code()})" for p in dead)
            raise DeploymentError(f"Airflow component(s) died: {names}" + self.logs())

    def logs(self, lines: int = 40, extra: Sequence[ManagedProcess] = ()) -> str:
        """The tail of each component's log, for failure messages."""
        return describe_logs([*self.watched(), *self.stopped, *extra], lines)
