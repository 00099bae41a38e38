"""PostgreSQL and Redis for the production-shaped deployment, started by the harness in a temp directory.

Both come from Debian's packages (``postgresql``, ``redis-server``; ``.ci/install-services.sh``
installs them) and run as plain foreground processes on 127.0.0.1 and free ports, never as system
services. Each one's data, socket and config live in its own temporary directory, removed on stop.

``initdb`` and ``postgres`` refuse to run as root, and CI runs as root. So when the effective uid is
0 both are run through ``setpriv`` as the unprivileged ``postgres`` system user that Debian's package
creates (``.ci/install-services.sh`` makes sure it exists); as any other user they run as that user.
``setpriv`` execs the command, so the managed pid is the postmaster itself and the usual stop
(SIGTERM to the group, then SIGKILL) applies to it directly. The temporary directory is made in
``/tmp`` rather than under pytest's ``tmp_path`` because pytest's base directory is private to the
user running the tests (mode 0700), which the ``postgres`` user could not enter.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

from .deployment import free_port
from .processes import DeploymentError, ManagedProcess, tail, wait_for

POSTGRES_SERVICE_USER = os.environ.get("FGS_POSTGRES_USER", "postgres")
"""The unprivileged account that runs PostgreSQL when the tests run as root."""


_NO_POSTGRES = "PostgreSQL's server programs (initdb, postgres) were not found; run .ci/install-services.sh"
_NO_REDIS = "redis-server was not found; run .ci/install-services.sh"


def _find_postgres_bindir() -> Path | None:
    override = os.environ.get("FGS_POSTGRES_BINDIR")
    if override:
        return Path(override)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def _redis_server() -> Path:
    """``FGS_REDIS_SERVER``, else ``redis-server`` on the PATH, else Debian's."""
    return Path(os.environ.get("FGS_REDIS_SERVER") or shutil.which("redis-server") or "/usr/bin/redis-server")


def _no_service_user() -> str | None:
    """Why PostgreSQL cannot be dropped from root to its user here, or ``None``."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(POSTGRES_SERVICE_USER)
    except KeyError:
        return (
            f"running as root, PostgreSQL needs the unprivileged user {POSTGRES_SERVICE_USER!r}; "
            "run .ci/install-services.sh"
        )
    return None


def services_missing_reason() -> str | None:
    """Why PostgreSQL and Redis cannot run here (one line), or ``None`` when both can."""
    if _find_postgres_bindir() is None:
        return _NO_POSTGRES
    if not _redis_server().exists():
        return _NO_REDIS
    return _no_service_user()


def postgres_bindir() -> Path:
    """Where Debian's PostgreSQL server programs live (the newest major version installed)."""
    found = _find_postgres_bindir()
    if found is None:
        raise DeploymentError(_NO_POSTGRES)
    return found


def _as_service_user() -> list[str]:
    """The command prefix that drops root for PostgreSQL; empty when not running as root."""
    if os.geteuid() != 0:
        return []
    missing = _no_service_user()
    if missing is not None:
        raise DeploymentError(missing)
    return [
        "setpriv",
        f"--reuid={POSTGRES_SERVICE_USER}",
        f"--regid={POSTGRES_SERVICE_USER}",
        "--init-groups",
        "--",
    ]


def _give_to_service_user(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, user=POSTGRES_SERVICE_USER, group=POSTGRES_SERVICE_USER)


class PostgresServer:
    """
    A throwaway PostgreSQL cluster: ``initdb`` into a temp dir, ``postgres`` in the foreground.

    The server listens on 127.0.0.1 and a free port (and on a unix socket inside the temp dir), with
    password authentication for the one role ``airflow``, which owns the database ``airflow``.
    Durability is switched off (``fsync``, ``synchronous_commit``, ``full_page_writes``): the data
    lives as long as one test session.

    :param log_dir: where ``postgres.log`` (and ``initdb.log``) go.
    """

    user = "airflow"
    database = "airflow"

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.port = free_port()
        self.password = secrets.token_urlsafe(16)
        self.bindir = postgres_bindir()
        self.workdir = Path(tempfile.mkdtemp(prefix="fgs-postgres-"))
        self.process = ManagedProcess(
            "postgres",
            [
                *_as_service_user(),
                str(self.bindir / "postgres"),
                "-D",
                str(self.workdir / "data"),
                "-p",
                str(self.port),
                "-k",
                str(self.workdir),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            env={**os.environ, "LC_ALL": "C.UTF-8"},
            log_path=log_dir / "postgres.log",
            cwd=self.workdir,
        )

    def url(self, scheme: str = "postgresql+psycopg2") -> str:  # psycopg2: the driver the tests install
        """The SQLAlchemy URL of the ``airflow`` database (the password is URL-safe)."""
        return f"{scheme}://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    def start(self, timeout: float = 60.0) -> None:
        """Create the cluster, start the server, create the database; raises with the logs on failure."""
        _give_to_service_user(self.workdir)
        password_file = self.workdir / "password"
        password_file.write_text(self.password + "\n", encoding="utf-8")
        _give_to_service_user(password_file)
        initdb_log = self.log_dir / "initdb.log"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with initdb_log.open("wb") as log:
            done = subprocess.run(
                [
                    *_as_service_user(),
                    str(self.bindir / "initdb"),
                    "-D",
                    str(self.workdir / "data"),
                    "-U",
                    self.user,
                    f"--pwfile={password_file}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                ],
                cwd=self.workdir,
                env={**os.environ, "LC_ALL": "C.UTF-8"},
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        password_file.unlink()
        if done.returncode != 0:
            raise DeploymentError(f"initdb failed ({done.returncode}):\n{tail(initdb_log)}")
        self.process.start()
        wait_for("PostgreSQL to accept connections", self._create_database, timeout, [self.process])

    def _create_database(self) -> bool:
        import psycopg2  # a test extra; imported here so collection does not need it

        connection = psycopg2.connect(
            host="127.0.0.1",
            port=self.port,
            user=self.user,
            password=self.password,
            dbname="postgres",
            connect_timeout=5,
        )
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {self.database} OWNER {self.user}")
        finally:
            connection.close()
        return True

    def stop(self) -> None:
        self.process.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


class RedisServer:
    """
    A throwaway Redis (the Celery broker) from a temporary config: 127.0.0.1, a free port, a password,
    no persistence.

    :param log_dir: where ``redis.log`` goes.
    """

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.password = secrets.token_urlsafe(16)
        self.workdir = Path(tempfile.mkdtemp(prefix="fgs-redis-"))
        config = self.workdir / "redis.conf"
        config.write_text(
            "\n".join(
                [
                    "bind 127.0.0.1",
                    f"port {self.port}",
                    f"requirepass {self.password}",
                    f"dir {self.workdir}",
                    'save ""',
                    "appendonly no",
                    "daemonize no",
                    "protected-mode yes",
                    "",
                ]
            ),
            encoding="utf-8",
        )
        config.chmod(0o600)
        self.process = ManagedProcess(
            "redis",
            [str(_redis_server()), str(config)],
            dict(os.environ),
            log_dir / "redis.log",
            cwd=self.workdir,
        )

    def url(self, db: int = 0) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 30.0) -> None:
        if not Path(self.process.argv[0]).exists():
            raise DeploymentError(_NO_REDIS)
        self.process.start()
        wait_for("Redis to answer PING", self._ping, timeout, [self.process])

    def _ping(self) -> bool | None:
        import redis  # installed with the Celery provider (a test extra)

        client = redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_timeout=2)
        try:
            return bool(client.ping()) or None
        finally:
            client.close()

    def stop(self) -> None:
        self.process.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
