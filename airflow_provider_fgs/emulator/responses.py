"""Response helpers: the platform's error body shapes and a bounded body reader."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

# Bodies larger than the limit are read (and dropped) up to this size so the client sees the 413
# answer instead of a connection reset; beyond it the connection is closed.
_DRAIN_LIMIT = 64 * 1024 * 1024


def json_response(
    status: int, body: Any, headers: Mapping[str, str] | None = None, request_id: str | None = None
) -> Response:
    all_headers = dict(headers or {})
    if request_id:
        all_headers.setdefault("X-Request-Id", request_id)
    return Response(
        json.dumps(body, ensure_ascii=False).encode("utf-8"),
        status_code=status,
        headers=all_headers,
        media_type="application/json",
    )


def fss_error(
    status: int,
    error_code: str,
    error_msg: str,
    *,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
) -> Response:
    """The FunctionGraph / API gateway error body ``{"error_code", "error_msg"}`` with an X-Request-Id."""
    body = {"error_code": error_code, "error_msg": error_msg}
    return json_response(status, body, headers, request_id or str(uuid.uuid4()))


class BodyTooLarge(Exception):
    """The request body is over the route's limit."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"The request body is {size} bytes or more; the limit is {limit} bytes")


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or :class:`BodyTooLarge` once it passes ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > _DRAIN_LIMIT:
        raise BodyTooLarge(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > _DRAIN_LIMIT:
            break
        if size <= limit:
            chunks.append(chunk)
    if size > limit:
        raise BodyTooLarge(size, limit)
    return b"".join(chunks)
