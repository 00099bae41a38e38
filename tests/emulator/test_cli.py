"""The ``fgs-emulator`` command and the pytest plugin, run as real subprocesses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from tests.credential_sources import jwt

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "example_dags" / "functions"


def _command() -> list[str]:
    script = shutil.which("fgs-emulator", path=os.path.dirname(sys.executable))
    return [script] if script else [sys.executable, "-m", "airflow_provider_fgs.emulator.cli"]


def test_help_documents_the_options() -> None:
    result = subprocess.run([*_command(), "--help"], capture_output=True, text=True, timeout=60, check=True)
    for option in (
        "--host",
        "--port",
        "--functions",
        "--project-id",
        "--region",
        "--user",
        "--access-key",
        "--token-ttl",
        "--credential-lifetime",
        "--max-workers",
        "--fault",
        "--gateway-timeout",
        "async_status_persistence",
        "dynamic_memory",
        "throttle",
        "error_bare",
        "retry_after",
    ):
        assert option in result.stdout


def test_bad_fault_spec_is_a_usage_error() -> None:
    result = subprocess.run(
        [*_command(), "--functions", str(FUNCTIONS), "--fault", "explode"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "explode" in result.stderr


def test_cli_serves_until_terminated() -> None:
    process = subprocess.Popen(
        [
            *_command(),
            "--port",
            "0",
            "--functions",
            str(FUNCTIONS),
            "--project-id",
            "cliproject",
            "--access-key",
            "CLIKEY:cli-secret",
            "--fault",
            "throttle,count=1,function=hello",
            "--credential-lifetime",
            "120",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        from airflow_provider_fgs.protocol.signing import Signer

        urn = "urn:fss:ap-southeast-1:cliproject:function:default:hello"
        invoke = f"{url}/v2/cliproject/fgs/functions/{urn}/invocations"
        body = json.dumps({"name": "cli"}).encode()

        def call() -> requests.Response:
            headers = Signer("CLIKEY", "cli-secret").sign(
                "POST", invoke, {"Content-Type": "application/json", "X-CFF-Request-Version": "v0"}, body
            )
            return requests.post(invoke, data=body, headers=headers, timeout=30)

        assert call().status_code == 429  # the --fault given on the command line
        response = call()
        assert response.status_code == 200
        assert response.json()["message"] == "Hello, cli!"
        pod = requests.post(f"{url}/pod-identity/v1/credentials", json={}, headers={"Authorization": jwt()})
        lifetime = datetime.fromisoformat(pod.json()["credential"]["expires_at"]) - datetime.now(UTC)
        assert 100 < lifetime.total_seconds() <= 120
    finally:
        process.terminate()
        code = process.wait(timeout=30)
    assert code == 0


def test_pytest_plugin_fixture(pytester: pytest.Pytester) -> None:
    handlers = pytester.mkdir("handlers")
    (handlers / "double.py").write_text("def handler(event, context):\n    return event['n'] * 2\n")
    pytester.makeini("[pytest]\nfgs_functions_dir = handlers\n")
    pytester.makepyfile(
        test_user=textwrap.dedent(
            """
            import requests

            def test_double(functiongraph_emulator):
                emu = functiongraph_emulator
                token = requests.post(emu.url + "/v3/auth/tokens", json={"auth": {"identity": {
                    "methods": ["password"], "password": {"user": {"domain": {"name": "demo-domain"},
                    "name": "demo-user", "password": "demo-password"}}}}}).headers["X-Subject-Token"]
                url = f"{emu.url}/v2/{emu.project_id}/fgs/functions/{emu.urn('double')}/invocations"
                response = requests.post(url, json={"n": 21}, headers={"X-Auth-Token": token})
                assert response.json() == 42
            """
        )
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("argv", [["--functions", "/does/not/exist", "--port", "0"]])
def test_missing_functions_dir_is_reported(argv: list[str]) -> None:
    result = subprocess.run([*_command(), *argv], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "does not exist" in result.stderr


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"double.py": "def handler(event, context):\n    return 2\n"}, "function:default:double:latest"),
        ({}, "no functions found"),
    ],
    ids=["no-hello", "empty"],
)
def test_banner_shows_an_example_urn_only_of_a_function_that_exists(
    tmp_path: Path, files: dict[str, str], expected: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    process = subprocess.Popen(
        [*_command(), "--port", "0", "--functions", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        # Airflow 3.1 logs a few lines when the provider imports it; the banner comes after them.
        banner = ""
        for _ in range(50):
            banner = process.stderr.readline()
            if not banner or banner.startswith("FunctionGraph + IAM emulator"):
                break
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert expected in banner
    assert "hello" not in banner
