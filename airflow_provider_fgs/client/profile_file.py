"""The Huawei SDK's credentials file: ``~/.huaweicloud/credentials``, or ``HUAWEICLOUD_SDK_CREDENTIALS_FILE``.

An INI file whose ``[basic]`` section holds ``ak``, ``sk`` and ``security_token``, or ``idp_id``,
``id_token_file`` and ``iam_endpoint``, and the ``project_id`` they serve.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from pathlib import Path

from airflow_provider_fgs.protocol.errors import AuthenticationError

CREDENTIALS_FILE_ENV = "HUAWEICLOUD_SDK_CREDENTIALS_FILE"
DEFAULT_PROFILE = Path("~/.huaweicloud/credentials")
PROFILE_SECTION = "basic"


def profile_path(given: str | None, environ: Mapping[str, str] | None = None) -> Path:
    """The file to read: the connection's ``credentials_file``, else the SDK's variable, else its default."""
    environ = os.environ if environ is None else environ
    chosen = given or (environ.get(CREDENTIALS_FILE_ENV) or "").strip()
    return Path(chosen).expanduser() if chosen else DEFAULT_PROFILE.expanduser()


def read_profile(path: Path) -> dict[str, str] | None:
    """
    The ``[basic]`` section of ``path``; ``None`` when there is no such file or section.

    :raises AuthenticationError: the file is there and is not a valid INI file.
    """
    parser = configparser.ConfigParser()
    try:
        found = parser.read(path, encoding="utf-8")
    except configparser.Error as err:
        raise AuthenticationError(f"The credentials file {path} cannot be read: {err}") from None
    if not found or not parser.has_section(PROFILE_SECTION):
        return None
    return {key: value.strip() for key, value in parser.items(PROFILE_SECTION) if value.strip()}
