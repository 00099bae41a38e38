"""The ``context`` object handed to a handler, and its logger (PROTOCOL.md section 6)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any


def iso_now() -> str:
    """UTC time as ``2024-01-01T00:00:00.123Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class RuntimeLogger:
    """
    Logger returned by ``context.getLogger()``: lines ``<ISO time> <request id> LEVEL msg``.

    :param request_id: the invocation's request id.
    :param write: where finished lines go (the invocation's log buffer).
    """

    def __init__(self, request_id: str, write: Callable[[str], Any]) -> None:
        self._request_id = request_id
        self._write = write

    def _log(self, level: str, message: object) -> None:
        self._write(f"{iso_now()} {self._request_id} {level} {message}\n")

    def debug(self, message: object) -> None:
        self._log("DEBUG", message)

    def info(self, message: object) -> None:
        self._log("INFO", message)

    def warn(self, message: object) -> None:
        self._log("WARN", message)

    warning = warn

    def error(self, message: object) -> None:
        self._log("ERROR", message)


class RuntimeContext:  # camelCase getters: the names of the FunctionGraph runtime
    """
    The FunctionGraph Python runtime context: the documented getters.

    :param request_id: the invocation's request id.
    :param function_name: the function's name.
    :param package: the function's package.
    :param version: the version that runs (``latest`` or a version name).
    :param alias: the alias used to call it, or ``""``.
    :param memory_size: memory in MB for this invocation.
    :param timeout: the function's timeout in seconds.
    :param deadline: ``time.monotonic()`` value when the timeout expires.
    :param user_data: the function's user data (environment variables of the console).
    :param project_id: the project id.
    :param logger: the invocation's logger.
    """

    def __init__(
        self,
        *,
        request_id: str,
        function_name: str,
        package: str,
        version: str,
        alias: str,
        memory_size: int,
        timeout: float,
        deadline: float,
        user_data: Mapping[str, str],
        project_id: str,
        logger: RuntimeLogger,
    ) -> None:
        self._request_id = request_id
        self._function_name = function_name
        self._package = package
        self._version = version
        self._alias = alias
        self._memory_size = memory_size
        self._timeout = timeout
        self._deadline = deadline
        self._user_data = dict(user_data)
        self._project_id = project_id
        self._logger = logger

    def getRequestID(self) -> str:
        return self._request_id

    def getRemainingTimeInMilliSeconds(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def getRunningTimeInSeconds(self) -> int:
        return int(self._timeout)

    def getFunctionName(self) -> str:
        return self._function_name

    def getVersion(self) -> str:
        return self._version

    def getAlias(self) -> str:
        return self._alias

    def getPackage(self) -> str:
        return self._package

    def getMemorySize(self) -> int:
        return self._memory_size

    def getCPUNumber(self) -> int:
        # FunctionGraph scales CPU with memory: 300 millicores per 128 MB.
        return max(1, self._memory_size * 300 // 128)

    def getProjectID(self) -> str:
        return self._project_id

    def getUserData(self, key: str, default: str | None = None) -> str | None:
        return self._user_data.get(key, default)

    def getLogger(self) -> RuntimeLogger:
        return self._logger

    # Credentials of the function's agency: the emulator has none.
    def getAccessKey(self) -> str:
        return ""

    def getSecretKey(self) -> str:
        return ""

    def getSecurityAccessKey(self) -> str:
        return ""

    def getSecuritySecretKey(self) -> str:
        return ""

    def getSecurityToken(self) -> str:
        return ""

    def getToken(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"RuntimeContext(function={self._function_name!r}, request_id={self._request_id!r})"
