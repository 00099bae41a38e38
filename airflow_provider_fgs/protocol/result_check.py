"""``result_check``: whether a function that answered did its work, judged from its result (pure)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from airflow_provider_fgs.protocol.errors import FunctionError, InvalidRequestError

ResultCheckSpec = Callable[[Any], Any] | tuple[str, Any]
"""A callable taking the decoded result (true when it is good), or a ``(json_path, expected)`` pair."""

_MISSING = object()
_PATH_STEP = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]|\[\"([^\"]*)\"\]|\['([^']*)'\]")


class ResultCheckError(FunctionError):
    """The function answered, but its result failed the task's ``result_check``."""


def parse_json_path(path: str) -> list[str | int]:
    """
    The steps of a simple JSON path: ``$.status``, ``$.items[0].id``, ``$["a key"]`` (``$`` optional).

    :raises InvalidRequestError: naming the path, for anything else (filters, wildcards, slices).
    """
    if not isinstance(path, str) or not path.strip():
        raise InvalidRequestError(f"Invalid result_check path {path!r}: expected a string like '$.status'")
    text = path.strip()
    rest = text[1:] if text.startswith("$") else text
    if rest and rest[0] not in ".[":
        rest = "." + rest
    steps: list[str | int] = []
    position = 0
    while position < len(rest):
        match = _PATH_STEP.match(rest, position)
        if match is None:
            raise InvalidRequestError(
                f"Invalid result_check path {path!r} at {rest[position:]!r}: use keys and list indexes "
                "only, e.g. '$.status' or '$.items[0].id'"
            )
        key, index, quoted, single = match.groups()
        if index is not None:
            steps.append(int(index))
        else:
            steps.append(next(part for part in (key, quoted, single) if part is not None))
        position = match.end()
    return steps


def _follow(value: Any, steps: list[str | int]) -> Any:
    for step in steps:
        in_list = isinstance(step, int) and isinstance(value, list) and 0 <= step < len(value)
        in_object = isinstance(step, str) and isinstance(value, dict) and step in value
        if not (in_list or in_object):
            return _MISSING
        value = value[step]
    return value


class ResultCheck:
    """
    A check of an invocation's decoded result, evaluated in the worker (also after a deferral).

    :param spec: a callable taking the result and returning a true value when it is good (it may also
        raise), or a pair ``(json_path, expected)``: the value at the path must equal ``expected``.
    :raises InvalidRequestError: when ``spec`` is neither (at DAG parse time).
    """

    def __init__(self, spec: ResultCheckSpec) -> None:
        self.spec = spec
        if callable(spec):
            self._steps: list[str | int] = []
            self.name = getattr(spec, "__qualname__", None) or repr(spec)
        elif isinstance(spec, tuple | list) and len(spec) == 2 and isinstance(spec[0], str):
            self._steps = parse_json_path(spec[0])
            self.name = f"{spec[0]} == {spec[1]!r}"
        else:
            raise InvalidRequestError(
                f"Invalid result_check {spec!r}: expected a callable taking the result, "
                "or a pair (json_path, expected_value) such as ('$.status', 'ok')"
            )

    def failure(self, result: Any) -> str | None:
        """Why ``result`` fails the check, or ``None`` when it passes."""
        if callable(self.spec):
            try:
                passed = self.spec(result)
            except Exception as err:
                return f"the check raised {type(err).__name__}: {err}"
            return None if passed else f"the check returned {passed!r}"
        path, expected = self.spec
        if isinstance(result, str | bytes):  # deserialize_result=False keeps the result as text
            try:
                result = json.loads(result)
            except ValueError:
                return "the result is not JSON"
        found = _follow(result, self._steps)
        if found is _MISSING:
            return f"the result has no value at {path}"
        return None if found == expected else f"found {found!r}"

    def verify(self, result: Any, *, function: str, request_id: str | None) -> None:
        """Raise :class:`ResultCheckError` naming this check when ``result`` fails it."""
        reason = self.failure(result)
        if reason is None:
            return
        raise ResultCheckError(
            f"Result check {self.name} failed for request {request_id or 'unknown'} of {function}: "
            f"{reason}; result: {_preview(result)}",
            request_id=request_id,
            payload=result,
        )


def result_check_of(spec: ResultCheckSpec | None) -> ResultCheck | None:
    """``spec`` checked and wrapped, ``None`` for no check."""
    return None if spec is None else ResultCheck(spec)


def _preview(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"
