"""Default identity and location of the emulator (kept import-light for the CLI's ``--help``)."""

from __future__ import annotations

DEFAULT_REGION = "ap-southeast-1"
DEFAULT_PROJECT_ID = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
DEFAULT_USERS: dict[str, dict[str, str]] = {"demo-domain": {"demo-user": "demo-password"}}
DEFAULT_ACCESS_KEYS: dict[str, str] = {"DEMOACCESSKEY": "demo-secret-key"}
DEFAULT_TOKEN_TTL = 86400.0
