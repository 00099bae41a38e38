"""Fault injection for reliability tests: latency, throttling, 503, dropped connections, broken answers."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal, get_args

FaultKind = Literal[
    "throttle",
    "unavailable",
    "latency",
    "drop",
    "drop_after",
    "truncate",
    "garbage",
    "bad_log",
    "invalid_token",
    "error_500",
    "error_code_only",
    "error_bare",
    "stall",
]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
IAM_ROUTES = frozenset(
    {
        "token",
        "id_token",
        "security_tokens",
        "assume_with_oidc",
        "metadata_token",
        "metadata_security_key",
        "pod_identity",
    }
)
"""Routes a fault hits only when it names them: a fault without a route leaves IAM alone."""


@dataclass
class Fault:
    """
    One injected fault.

    :param kind: ``throttle`` (429 FSS.0429), ``unavailable`` (503 FSS.0503), ``latency`` (delay, then
        serve normally), ``drop`` (close the connection without answering, before the function runs) or
        ``drop_after`` (run the request, then close the connection instead of answering); after running
        the request: ``truncate`` (send the status line, the headers and half of the body, then close),
        ``garbage`` (200 with a body that is neither JSON nor UTF-8, the function's headers kept) or
        ``bad_log`` (the answer with a truncated, undecodable base64 ``X-Cff-Function-Log``);
        ``invalid_token`` (403 ``FSS.0403`` "invalid token", before the function runs); and shapes of a
        function failure the docs leave open (applied only when the function failed): ``error_500``
        (HTTP 500 with the same headers and body), ``error_code_only`` (no ``X-Is-Func-Err``, only a
        non-zero ``X-Func-Err-Code``) or ``error_bare`` (no ``X-Is-Func-Err`` / ``X-Func-Err-Code``
        and no v1 ``status``: only the payload's shape tells);
        or ``stall`` (hold the connection silent for ``delay`` seconds, then answer normally: a long
        function as an idle-dropping NAT sees it).
    :param remaining: how many more requests it hits; ``None`` for every request until cleared.
    :param function: only requests for this function name; ``None`` for every function.
    :param route: only this route (``invoke``, ``invoke_async``, ``async_status``, ``cancel``,
        ``config``, ``async_config``, ``update_async_config``, ``log_stream``, ``list``, or ``token``
        for IAM's token route); ``None`` for every
        FunctionGraph route.
    :param delay: seconds of added latency (``latency``, and before answering for the others; after
        running the request for ``stall``).
    :param retry_after: ``Retry-After`` seconds sent with ``throttle`` / ``unavailable``.
    """

    kind: FaultKind
    remaining: int | None = 1
    function: str | None = None
    route: str | None = None
    delay: float = 0.0
    retry_after: float | None = None

    def matches(self, function: str | None, route: str) -> bool:
        route_matches = self.route == route if self.route is not None else route not in IAM_ROUTES
        return route_matches and (self.function is None or self.function == function)


class FaultInjector:
    """Thread-safe list of faults; :meth:`take` consumes one hit of the first matching fault."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"Unknown fault kind {fault.kind!r}: expected one of {FAULT_KINDS}")
        if fault.remaining is not None and fault.remaining < 1:
            raise ValueError(f"Fault count must be at least 1 (or None for always), got {fault.remaining}")
        if fault.delay < 0:
            raise ValueError(f"Fault delay must not be negative, got {fault.delay}")
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, function: str | None, route: str) -> Fault | None:
        """The fault that hits this request, if any (its count goes down by one)."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(function, route):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            self._faults.remove(fault)
                    return fault
        return None


def parse_fault_spec(spec: str) -> Fault:
    """
    Parse a CLI fault spec ``KIND[,count=N|always][,function=NAME][,route=R][,delay=S][,retry_after=S]``.

    :raises ValueError: with a message naming the bad part.
    """
    kind, *options = [part.strip() for part in spec.split(",")]
    if kind not in FAULT_KINDS:
        raise ValueError(f"Unknown fault kind {kind!r} in {spec!r}: expected one of {FAULT_KINDS}")
    fault = Fault(kind=kind)  # type: ignore[arg-type]  # checked just above
    for option in options:
        key, sep, value = option.partition("=")
        if not sep:
            raise ValueError(f"Bad fault option {option!r} in {spec!r}: expected key=value")
        try:
            if key == "count":
                fault.remaining = None if value == "always" else int(value)
            elif key == "function":
                fault.function = value
            elif key == "route":
                fault.route = value
            elif key == "delay":
                fault.delay = float(value)
            elif key == "retry_after":
                fault.retry_after = float(value)
            else:
                raise ValueError(f"unknown option {key!r}")
        except ValueError as err:
            raise ValueError(f"Bad fault option {option!r} in {spec!r}: {err}") from None
    return fault
