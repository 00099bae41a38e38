"""The loopback guard refuses what would leave the machine, in the test session and in deployments."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests import loopback_guard

SITE = Path(__file__).resolve().parent / "loopback_site"


@pytest.mark.parametrize(
    "address",
    [("169.254.169.254", 80), ("functiongraph.ap-southeast-1.myhuaweicloud.com", 443), ("10.1.2.3", 443)],
)
def test_the_session_refuses_and_remembers_any_address_off_loopback(address: tuple[str, int]) -> None:
    with loopback_guard.expected_refusals() as refused:
        with pytest.raises(OSError, match="loopback guard"):
            socket.create_connection(address, timeout=0.5)
        with pytest.raises(requests.ConnectionError, match="loopback guard"):
            requests.get(f"http://{address[0]}:{address[1]}/", timeout=0.5)
        with socket.socket() as sock, pytest.raises(OSError, match="loopback guard"):
            sock.connect(address)  # no lookup first: the connection itself is refused
    assert len(refused) == 3
    assert all(address[0] in attempt for attempt in refused)


def test_loopback_stays_open() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        for host in ("127.0.0.1", "localhost"):
            socket.create_connection((host, server.getsockname()[1]), timeout=2).close()


def test_a_deployments_processes_record_what_they_tried(tmp_path: Path) -> None:
    record = tmp_path / "attempts.log"
    env = {**os.environ, "PYTHONPATH": str(SITE), loopback_guard.RECORD_ENV: str(record)}
    script = (
        "import socket\n"
        "try:\n"
        "    socket.create_connection(('169.254.169.254', 80), 0.5)\n"
        "except OSError as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert "loopback guard" in done.stdout
    assert "refused looking up 169.254.169.254" in record.read_text("utf-8")
