"""The README demo command, run as a user runs it: a fresh process, no Airflow environment set."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMAND = "python example_dags/run_demo.py"
# A line of Airflow's own structured logging, e.g. "2026-01-01T00:00:00.000000Z [info     ] ...".
AIRFLOW_LOG_LINE = re.compile(r"^\S+Z \[(debug|info|warning|error)\s*\]", re.MULTILINE)


def _fresh_shell_env() -> dict[str, str]:
    """What a fresh shell has: no AIRFLOW_* variables (this session's hermetic ones included)."""
    return {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}


# A cold Airflow start-up (its in-process API) dominates; leave room for a busy machine.
@pytest.mark.timeout(300)
def test_readme_demo_runs_the_chain_dag_end_to_end(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    demo_section = readme.split("## Demo", 1)[1].split("\n## ", 1)[0]
    assert f"\n{COMMAND}\n" in demo_section

    env = _fresh_shell_env()
    args = [sys.executable, *COMMAND.split()[1:], "--text", "a rose is a rose"]
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=280, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]

    # The emulator's URL first; nothing of Airflow's own start-up or task-runner output anywhere.
    assert re.match(r"FunctionGraph emulator at http://127\.0\.0\.1:\d+, Airflow home ", done.stdout)
    assert not AIRFLOW_LOG_LINE.search(output), output[:4000]
    assert "Creating ORM DAG" not in output
    assert done.stderr == ""

    report = done.stdout.split("=== functiongraph_chain: run ", 1)[1]
    assert "finished: success" in report.splitlines()[0]
    assert '\nsplit_words: success\n  return_value: {"words": ["a", "rose", "is", "a", "rose"]}\n' in report
    assert (
        '\ncount_words: success\n  return_value: {"total": 5, "distinct": 3, '
        '"top": [["a", 2], ["rose", 2], ["is", 1]]}\n' in report
    )
    assert "INFO counted 5 words, 3 distinct" in report  # the function's log, from XCom
    assert '\n  request_id: "' in report

    home = re.search(r"Airflow home (\S+)", done.stdout)
    assert home is not None
    assert not Path(home.group(1)).exists()  # the throw-away AIRFLOW_HOME is removed


@pytest.mark.timeout(300)
def test_demo_verbose_also_shows_airflows_output() -> None:
    args = [sys.executable, *COMMAND.split()[1:], "--dag", "functiongraph_single_invoke", "--verbose"]
    done = subprocess.run(
        args, cwd=ROOT, env=_fresh_shell_env(), capture_output=True, text=True, timeout=280, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert AIRFLOW_LOG_LINE.search(output), output[:4000]
    assert "=== functiongraph_single_invoke: run " in done.stdout
    assert "invoke_hello: success" in done.stdout
