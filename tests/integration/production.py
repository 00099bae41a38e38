"""The production-shaped Airflow deployment: PostgreSQL, CeleryExecutor with Redis, 2 workers, 2 triggerers.

Everything is a real process on loopback, as in :mod:`.deployment`: a throwaway PostgreSQL cluster is
the metadata database and the Celery result backend, a throwaway Redis is the Celery broker, and
Airflow runs as api-server, scheduler, dag-processor, two triggerers (``triggerer-1``,
``triggerer-2``) and two Celery workers (``worker-a``, ``worker-b``) on the ``default`` queue. Each
component logs to its own file, and every failure message quotes all of them.

The workers' task instances report the worker's own name as their ``hostname``
(:mod:`.worker_identity`), so a test can tell through the REST API which worker ran which task.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping
from pathlib import Path

from .deployment import AirflowDeployment, free_port
from .processes import ManagedProcess, stop_all, wait_for
from .services import PostgresServer, RedisServer

ROOT = Path(__file__).resolve().parents[2]
WORKERS = ("worker-a", "worker-b")
TRIGGERERS = ("triggerer-1", "triggerer-2")
QUEUE = "default"
WORKER_CONCURRENCY = 2
TRIGGERER_CAPACITY = 100


class CeleryDeployment(AirflowDeployment):
    """
    Airflow with the CeleryExecutor on PostgreSQL and Redis, two workers and two triggerers.

    :param home: an empty directory used as AIRFLOW_HOME (logs, config; the database is PostgreSQL).
    :param dags_folder: the DAG files to serve.
    :param extra_env: more environment variables for every Airflow component.
    :param startup_timeout: seconds allowed for the Airflow components to report healthy.
    """

    def __init__(
        self,
        home: Path,
        dags_folder: Path,
        extra_env: Mapping[str, str] | None = None,
        startup_timeout: float = 180.0,
    ) -> None:
        self.postgres = PostgresServer(home / "logs")
        self.redis = RedisServer(home / "logs")
        python_path = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.url(),
            "AIRFLOW__CELERY__BROKER_URL": self.redis.url(),
            # SQLAlchemy 2.1's plain postgresql:// means psycopg 3: name psycopg2 explicitly
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{self.postgres.url()}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
            # one process (not one per core) fetching task states from the result backend
            "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": QUEUE,
            # the workers' hostname callable (worker_identity) lives in tests/integration
            "PYTHONPATH": os.pathsep.join(python_path),
            **(extra_env or {}),
        }
        super().__init__(home, dags_folder, env, startup_timeout)

    def components(self) -> list[tuple[str, list[str], dict[str, str]]]:
        api_args = ["--host", "127.0.0.1", "--port", str(self.port)]
        components: list[tuple[str, list[str], dict[str, str]]] = [
            ("api-server", ["api-server", *api_args], {}),
            ("scheduler", ["scheduler"], {}),
            ("dag-processor", ["dag-processor"], {}),
        ]
        for name in TRIGGERERS:
            # each serves its triggers' logs on a port of its own
            env = {"AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port())}
            components.append((name, ["triggerer", "--capacity", str(TRIGGERER_CAPACITY)], env))
        for name in WORKERS:
            args = [
                "celery",
                "worker",
                "--celery-hostname",
                f"{name}@%h",
                "--queues",
                QUEUE,
                "--concurrency",
                str(WORKER_CONCURRENCY),
                "--without-mingle",
                "--without-gossip",
            ]
            env = {
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.integration.worker_identity.hostname",
                "FGS_WORKER_NAME": name,
            }
            components.append((name, args, env))
        return components

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start PostgreSQL and Redis, then Airflow; wait for both triggerers and both workers."""
        self.redis.start()
        self.postgres.start()
        super().start()
        watched = self.watched()
        wait_for("both triggerers to heartbeat", self.running_triggerers, self.startup_timeout, watched)
        wait_for("both Celery workers to answer a ping", self.ready_workers, 90, watched)

    def stop(self) -> None:
        """Stop the Airflow components, then Redis and PostgreSQL; safe to call more than once."""
        try:
            stop_all(self.processes)
        finally:
            try:
                self.redis.stop()
            finally:
                self.postgres.stop()

    # -- state -----------------------------------------------------------------------------------

    @property
    def services(self) -> list[ManagedProcess]:
        return [self.postgres.process, self.redis.process]

    def watched(self) -> list[ManagedProcess]:
        return [*self.services, *self.processes]

    def query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        """Rows of one read-only query on the metadata database (for checks the REST API lacks)."""
        import psycopg2  # a test extra; imported here so collection does not need it

        connection = psycopg2.connect(
            host="127.0.0.1",
            port=self.postgres.port,
            user=self.postgres.user,
            password=self.postgres.password,
            dbname=self.postgres.database,
            connect_timeout=5,
        )
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return list(cursor.fetchall())
        finally:
            connection.close()

    def running_triggerers(self) -> int | None:
        """How many triggerers heartbeat, once all of them do (else None)."""
        rows = self.query(
            "SELECT count(*) FROM job WHERE job_type = 'TriggererJob' AND state = 'running'"
            " AND latest_heartbeat > now() - interval '30 seconds'"
        )
        count = int(rows[0][0])  # type: ignore[call-overload]
        return count if count >= len(TRIGGERERS) else None

    def triggerer_heartbeats_since(self, started: datetime.datetime) -> bool | None:
        """True once a triggerer started after ``started`` (UTC) heartbeats steadily (else None)."""
        rows = self.query(
            "SELECT count(*) FROM job WHERE job_type = 'TriggererJob' AND state = 'running'"
            " AND start_date > %s AND latest_heartbeat > start_date + interval '3 seconds'"
            " AND latest_heartbeat > now() - interval '3 seconds'",
            started,
        )
        return True if int(rows[0][0]) else None  # type: ignore[call-overload]

    def ready_workers(self) -> list[str] | None:
        """The names of the Celery workers that answer a ping, once all of them do (else None)."""
        from celery import Celery  # installed with the Celery provider (a test extra)

        app = Celery(broker=self.redis.url())
        try:
            replies = app.control.ping(timeout=2.0)
        finally:
            app.close()
        names = sorted(name.split("@", 1)[0] for reply in replies for name in reply)
        return names if names == sorted(WORKERS) else None
