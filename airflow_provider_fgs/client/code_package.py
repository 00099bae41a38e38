"""Code packages for a function update: a local directory zipped on the fly, or an existing zip file."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from airflow_provider_fgs.protocol.errors import InvalidRequestError
from airflow_provider_fgs.protocol.functions import MAX_INLINE_ZIP_BYTES, handler_file

_SKIPPED_DIRS = {"__pycache__", ".git", ".venv", ".mypy_cache", ".pytest_cache"}


@dataclass(frozen=True)
class CodePackage:
    """
    A zip ready to upload.

    :param data: the zip's bytes.
    :param filename: the name sent as ``code_filename``.
    :param sha256: hex SHA-256 of ``data`` (for logs and XCom; the platform computes its own digest).
    :param files: the names inside the zip.
    """

    data: bytes
    filename: str
    sha256: str
    files: tuple[str, ...]


def _zip_directory(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for root, dirs, files in os.walk(directory):
            dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
            for name in sorted(files):
                if name.endswith((".pyc", ".pyo")):
                    continue
                path = Path(root) / name
                arcname = path.relative_to(directory).as_posix()
                # A fixed timestamp makes the same directory give the same zip (and digest) every time.
                info = zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = (0o644 & 0xFFFF) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def load_code_package(path: str | os.PathLike[str], *, handler: str | None = None) -> CodePackage:
    """
    Read (or build) the zip to upload and check it holds the handler's file.

    :param path: a directory (zipped with its contents at the root) or a ``.zip`` file.
    :param handler: ``file.function``; when given, the zip must contain ``file.py`` at its root.
    :raises InvalidRequestError: the path is missing, is not a zip, is too large, or lacks the handler file.
    """
    source = Path(os.fspath(path)).expanduser()
    if source.is_dir():
        data = _zip_directory(source)
        filename = f"{source.resolve().name or 'code'}.zip"
    elif source.is_file():
        data = source.read_bytes()
        filename = source.name
    else:
        raise InvalidRequestError(
            f"Code package {os.fspath(path)!r} does not exist (expected a directory or a .zip)"
        )
    if len(data) > MAX_INLINE_ZIP_BYTES:
        raise InvalidRequestError(
            f"Code package {os.fspath(path)!r} is {len(data)} bytes; "
            f"at most {MAX_INLINE_ZIP_BYTES} can be uploaded"
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = tuple(archive.namelist())
    except zipfile.BadZipFile:
        raise InvalidRequestError(f"Code package {os.fspath(path)!r} is not a zip file") from None
    if not names:
        raise InvalidRequestError(f"Code package {os.fspath(path)!r} is an empty zip")
    if handler is not None:
        wanted = handler_file(handler)
        if wanted not in names:
            raise InvalidRequestError(
                f"Code package {os.fspath(path)!r} has no {wanted!r} at its root for handler {handler!r} "
                f"(it holds {sorted(names)[:10]})"
            )
    return CodePackage(data=data, filename=filename, sha256=hashlib.sha256(data).hexdigest(), files=names)
