"""Shared pieces of the release tests: a private emulator whose functions may be redeployed, code dirs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from airflow_provider_fgs.emulator import FunctionGraphEmulator

GREETER_V1 = """
def handler(event, context):
    return {"greeting": "hello v1", "version": context.getVersion()}
"""


def code_dir(parent: Path, greeting: str, *, file: str = "index.py") -> Path:
    """A directory holding ``file`` whose ``handler`` returns ``greeting`` and the version it runs as."""
    directory = parent / f"code_{greeting.replace(' ', '_')}"
    directory.mkdir()
    (directory / file).write_text(
        "def handler(event, context):\n"
        f"    return {{'greeting': {greeting!r}, 'version': context.getVersion()}}\n"
    )
    return directory


@contextmanager
def release_emulator(tmp_path: Path, *, seed: int = 1234) -> Iterator[FunctionGraphEmulator]:
    """An emulator of its own serving ``greeter`` (v1 code in ``greeter.py``), with a seeded alias split."""
    functions = tmp_path / "functions"
    functions.mkdir()
    (functions / "greeter.py").write_text(GREETER_V1)
    with FunctionGraphEmulator([functions], prestart_workers=1, seed=seed) as emu:
        yield emu
