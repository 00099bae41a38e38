"""A StatsD server for tests: what Airflow's metrics client sends, received on a loopback UDP port."""

from __future__ import annotations

import importlib.util
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType

STATSD_PREFIX = "airflow"
"""The ``[metrics] statsd_prefix`` the tests configure (Airflow's default)."""


def statsd_missing_reason() -> str | None:
    """Why Airflow cannot send StatsD here (its ``statsd`` extra is not installed), or ``None``."""
    if importlib.util.find_spec("statsd") is None:
        return "the statsd package is missing (Airflow's StatsD client): pip install 'apache-airflow[statsd]'"
    return None


@dataclass(frozen=True)
class Metric:
    """
    One received metric.

    :param name: its name without the deployment's prefix, e.g. ``functiongraph.invocation.success``.
    :param value: the count, the milliseconds of a timer, or the gauge's value.
    :param kind: ``c`` (counter), ``ms`` (timer) or ``g`` (gauge).
    :param tags: tags sent InfluxDB style (``[metrics] statsd_influxdb_enabled``), else empty.
    """

    name: str
    value: float
    kind: str
    tags: dict[str, str] = field(default_factory=dict)


def parse_line(line: str, prefix: str = STATSD_PREFIX) -> Metric | None:
    """A metric from one StatsD line ``name[,tag=value...]:value|kind[|@rate]``; ``None`` if malformed."""
    head, sep, rest = line.rpartition(":")
    if not sep or "|" not in rest:
        return None
    value, kind = rest.split("|")[:2]
    name, *tag_pairs = head.split(",")
    tags = dict(pair.split("=", 1) for pair in tag_pairs if "=" in pair)
    if name.startswith(f"{prefix}."):
        name = name[len(prefix) + 1 :]
    try:
        return Metric(name, float(value), kind, tags)
    except ValueError:
        return None


class StatsdListener:
    """
    Receives StatsD datagrams on a free UDP port of 127.0.0.1, in a thread, keeping the most recent lines.

    Use it as a context manager; :meth:`airflow_env` is the ``[metrics]`` configuration that points
    Airflow's metrics client at it.
    """

    def __init__(self, max_lines: int = 200_000) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.port: int = self._socket.getsockname()[1]
        self._lines: deque[str] = deque(maxlen=max_lines)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="statsd-listener", daemon=True)

    def __enter__(self) -> StatsdListener:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()

    def airflow_env(self, *, tags: bool = False) -> dict[str, str]:
        """
        Airflow's ``[metrics]`` settings that send StatsD here.

        :param tags: send the tags too, InfluxDB style (``statsd_influxdb_enabled``); plain StatsD drops them.
        """
        return {
            "AIRFLOW__METRICS__STATSD_ON": "True",
            "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(self.port),
            "AIRFLOW__METRICS__STATSD_PREFIX": STATSD_PREFIX,
            "AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED": str(tags),
        }

    def lines(self) -> list[str]:
        """Every line received so far (the oldest dropped past ``max_lines``)."""
        with self._lock:
            return list(self._lines)

    def metrics(self, name_prefix: str = "") -> list[Metric]:
        """The received metrics whose name starts with ``name_prefix``, in the order received."""
        parsed = (parse_line(line) for line in self.lines())
        return [metric for metric in parsed if metric is not None and metric.name.startswith(name_prefix)]

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                datagram = self._socket.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            text = datagram.decode("utf-8", errors="replace")
            with self._lock:
                self._lines.extend(line for line in text.splitlines() if line)
