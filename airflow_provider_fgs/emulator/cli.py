"""``fgs-emulator``: run the FunctionGraph + IAM emulator from the command line."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from airflow_provider_fgs.emulator.credentials_api import DEFAULT_LIFETIME_S
from airflow_provider_fgs.emulator.defaults import (
    DEFAULT_ACCESS_KEYS,
    DEFAULT_PROJECT_ID,
    DEFAULT_REGION,
    DEFAULT_TOKEN_TTL,
    DEFAULT_USERS,
)
from airflow_provider_fgs.emulator.faults import parse_fault_spec
from airflow_provider_fgs.emulator.pool import DEFAULT_MAX_WORKERS

if TYPE_CHECKING:
    from airflow_provider_fgs.emulator.server import FunctionGraphEmulator

_EPILOG = """\
Every handler file DIR/<name>.py with `def handler(event, context)` is the function <name> of package
`default`, URN urn:fss:{region}:{project_id}:function:default:<name>:latest, invoked with
POST {url}/v2/{project_id}/fgs/functions/{urn}/invocations (the URN raw or percent-encoded).
An optional DIR/<name>.json sets handler, timeout (default 3), memory_size, user_data, environment,
versions, aliases, async_status_persistence and dynamic_memory (both off by default, as on FunctionGraph)
and max_requests_per_instance (default 1).
IAM tokens: POST {url}/v3/auth/tokens. Defaults: user demo-domain/demo-user/demo-password,
access key DEMOACCESSKEY / secret demo-secret-key.

Fault spec: KIND[,count=N|always][,function=NAME][,route=ROUTE][,delay=SECONDS][,retry_after=SECONDS]
  KIND: throttle (429 FSS.0429), unavailable (503 FSS.0503), latency (delay, then serve), drop (close
  the connection without an answer), drop_after (run the function, then close without an answer),
  truncate (run it, send the headers and half of the body, then close), garbage (run it, answer 200
  with a body that is neither JSON nor UTF-8), bad_log (run it, cut the base64 X-Cff-Function-Log),
  invalid_token (403 FSS.0403 "invalid token"); a function failure answered as error_500 (HTTP 500),
  error_code_only (no X-Is-Func-Err) or error_bare (no error headers, no v1 status); stall (run it, keep
  the connection silent for delay seconds, then answer).
  ROUTE: invoke, invoke_async, async_status, cancel, config, log_stream, list; token (IAM) only when
  named.
  Example: --fault throttle,count=2,function=hello,retry_after=1
"""


def _pair(value: str, what: str, parts: int) -> list[str]:
    items = value.split(":", parts - 1)
    if len(items) != parts or not all(items):
        raise argparse.ArgumentTypeError(f"expected {what}, got {value!r}")
    return items


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fgs-emulator",
        description="Local Huawei Cloud FunctionGraph + IAM emulator running real Python handlers. "
        "Prints its base URL (http://HOST:PORT) on the first line of standard output, then serves "
        "until interrupted (Ctrl-C or SIGTERM).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=8000, help="port; 0 picks a free one (default: %(default)s)"
    )
    parser.add_argument(
        "--functions",
        "-f",
        action="append",
        metavar="DIR",
        required=True,
        help="directory of handler files <name>.py (repeatable; the first holding a name wins)",
    )
    parser.add_argument("--region", default=DEFAULT_REGION, help="region in URNs (default: %(default)s)")
    parser.add_argument("--project-id", default=DEFAULT_PROJECT_ID, help="project id (default: %(default)s)")
    parser.add_argument(
        "--project-name", default=None, help="project name accepted in IAM scopes (default: the region)"
    )
    parser.add_argument(
        "--user",
        action="append",
        metavar="DOMAIN:USER:PASSWORD",
        help="IAM user (repeatable; replaces the default demo user)",
    )
    parser.add_argument(
        "--access-key",
        action="append",
        metavar="AK:SK",
        help="access key pair for signed requests (repeatable; replaces the default demo key)",
    )
    parser.add_argument(
        "--token-ttl",
        type=float,
        default=DEFAULT_TOKEN_TTL,
        help="IAM token lifetime in seconds (default: %(default)s)",
    )
    parser.add_argument(
        "--credential-lifetime",
        type=float,
        default=DEFAULT_LIFETIME_S,
        help="lifetime in seconds of the temporary credentials issued by the IAM, STS, ECS metadata and "
        "pod identity routes (default: %(default)s)",
    )
    parser.add_argument(
        "--max-workers",
        type=int,
        default=DEFAULT_MAX_WORKERS,
        help="most invocations running at once, one worker process each (default: %(default)s)",
    )
    parser.add_argument(
        "--lockout",
        action="store_true",
        help="lock an access key after 5 failed signatures and an IAM user after 5 wrong passwords "
        "in 15 minutes, as Huawei Cloud does",
    )
    parser.add_argument(
        "--aksk-lock-seconds", type=float, default=300.0, help="with --lockout (default: %(default)s)"
    )
    parser.add_argument(
        "--iam-lock-seconds", type=float, default=900.0, help="with --lockout (default: %(default)s)"
    )
    parser.add_argument(
        "--gateway-timeout",
        type=float,
        default=None,
        help="seconds after which synchronous answers are cut with 504 APIG.0201 (default: 90)",
    )
    parser.add_argument(
        "--fault", action="append", metavar="SPEC", default=[], help="inject a fault (repeatable; see below)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        users: dict[str, dict[str, str]] = {}
        for spec in args.user or []:
            domain, user, password = _pair(spec, "DOMAIN:USER:PASSWORD", 3)
            users.setdefault(domain, {})[user] = password
        keys = dict(_pair(spec, "AK:SK", 2) for spec in args.access_key or [])
        faults = [parse_fault_spec(spec) for spec in args.fault]
    except (argparse.ArgumentTypeError, ValueError) as err:
        parser.error(str(err))
    for directory in args.functions:
        if not Path(directory).is_dir():
            parser.error(f"functions directory {directory} does not exist")
    # Imported late: the server pulls in Airflow (through the protocol's exceptions), slow for --help.
    from airflow_provider_fgs.emulator.lockout import LockoutRules
    from airflow_provider_fgs.emulator.server import FunctionGraphEmulator
    from airflow_provider_fgs.protocol.invoke import SYNC_GATEWAY_TIMEOUT_S

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        emulator = FunctionGraphEmulator(
            functions_dir=args.functions,
            host=args.host,
            port=args.port,
            region=args.region,
            project_id=args.project_id,
            project_name=args.project_name,
            users=users or DEFAULT_USERS,
            access_keys=keys or DEFAULT_ACCESS_KEYS,
            token_ttl=args.token_ttl,
            max_workers=args.max_workers,
            lockout=LockoutRules(
                aksk_lock_seconds=args.aksk_lock_seconds, iam_lock_seconds=args.iam_lock_seconds
            )
            if args.lockout
            else None,
            gateway_timeout=args.gateway_timeout or SYNC_GATEWAY_TIMEOUT_S,
        )
    except (OSError, ValueError) as err:
        print(f"fgs-emulator: {err}", file=sys.stderr)
        return 2
    with emulator:
        emulator.set_credential_lifetime(args.credential_lifetime)
        for fault in faults:
            emulator.state.faults.add(fault)
        print(emulator.url, flush=True)
        print(_banner(emulator, args.functions), file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
    return 0


def _banner(emulator: FunctionGraphEmulator, directories: list[str]) -> str:
    """Where the functions come from, and an example URN of one that exists (never a made-up one)."""
    names = emulator.state.registry.names()
    head = (
        f"FunctionGraph + IAM emulator: region {emulator.region}, project {emulator.project_id}, "
        f"functions from {', '.join(directories)}"
    )
    if not names:
        return f"{head}: no functions found (add <name>.py files with a handler(event, context))."
    example = "hello" if "hello" in names else names[0]
    return f"{head}: {len(names)} function(s). Example URN: {emulator.urn(example)}"


if __name__ == "__main__":
    sys.exit(main())
