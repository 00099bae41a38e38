"""What the credential chain's tests share: the Huawei SDK's variables, JWT-shaped id tokens, token files."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

SDK_VARIABLES = (
    "HUAWEICLOUD_OIDC_PROVIDER_URN",
    "HUAWEICLOUD_OIDC_AGENCY_URN",
    "HUAWEICLOUD_OIDC_ID_TOKEN",
    "HUAWEICLOUD_OIDC_TOKEN_FILE",
    "HUAWEICLOUD_OIDC_SESSION_NAME",
    "HUAWEICLOUD_OIDC_DURATION_SECONDS",
    "HUAWEICLOUD_OIDC_POLICY",
    "HUAWEICLOUD_OIDC_POLICY_IDS",
    "HUAWEICLOUD_SDK_AK",
    "HUAWEICLOUD_SDK_SK",
    "HUAWEICLOUD_SDK_SECURITY_TOKEN",
    "HUAWEICLOUD_SDK_PROJECT_ID",
    "HUAWEICLOUD_SDK_REGION",
    "HUAWEICLOUD_SDK_DOMAIN_ID",
    "HUAWEICLOUD_SDK_IDP_ID",
    "HUAWEICLOUD_SDK_ID_TOKEN_FILE",
    "HUAWEICLOUD_SDK_IAM_ENDPOINT",
    "HUAWEICLOUD_SDK_STS_ENDPOINT",
    "HUAWEICLOUD_SDK_CREDENTIALS_FILE",
    "HC_CONTAINER_CREDENTIALS_FULL_URI",
    "HC_CONTAINER_AUTHORIZATION_TOKEN_FILE",
)
"""Every variable through which the Huawei SDK (and the provider's chain) finds credentials."""
OIDC_PROVIDER_URN = "iam::123:identity-provider:cce"
OIDC_AGENCY_URN = "iam::123:agency:airflow"


def jwt(lifetime: float = 3600.0) -> str:
    """A JWT-shaped id token (the emulator checks its shape and expiry, not its signature)."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    claims = {
        "iss": "https://idp.example",
        "sub": "system:serviceaccount:airflow:worker",
        "exp": time.time() + lifetime,
    }
    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


def token_file(directory: Path, content: str) -> str:
    """A new file in ``directory`` holding ``content`` (an id token, a service account token)."""
    path = directory / f"token-{time.time_ns()}"
    path.write_text(content, encoding="utf-8")
    return str(path)


Setup = Callable[[Any, pytest.MonkeyPatch, Path], None]


def _oidc(emulator: Any, env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv("HUAWEICLOUD_OIDC_PROVIDER_URN", OIDC_PROVIDER_URN)
    env.setenv("HUAWEICLOUD_OIDC_AGENCY_URN", OIDC_AGENCY_URN)
    env.setenv("HUAWEICLOUD_OIDC_TOKEN_FILE", token_file(tmp_path, jwt()))
    env.setenv("HUAWEICLOUD_SDK_STS_ENDPOINT", emulator.url)


def _environment_id_token(emulator: Any, env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv("HUAWEICLOUD_SDK_IDP_ID", "airflow-idp")
    env.setenv("HUAWEICLOUD_SDK_ID_TOKEN_FILE", token_file(tmp_path, jwt()))
    env.setenv("HUAWEICLOUD_SDK_IAM_ENDPOINT", emulator.url)


def _profile_id_token(emulator: Any, env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    profile = tmp_path / "credentials"
    profile.write_text(
        "[basic]\n"
        "idp_id = airflow-idp\n"
        f"id_token_file = {token_file(tmp_path, jwt())}\n"
        f"iam_endpoint = {emulator.url}\n"
        f"project_id = {emulator.project_id}\n",
        encoding="utf-8",
    )
    env.setenv("HUAWEICLOUD_SDK_CREDENTIALS_FILE", str(profile))
    # The SDK reads the profile's project; so does the provider.
    env.delenv("HUAWEICLOUD_SDK_PROJECT_ID", raising=False)


def _ecs_agency(emulator: Any, env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    emulator.set_instance_agency(True)


def _pod_identity(emulator: Any, env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv("HC_CONTAINER_CREDENTIALS_FULL_URI", f"{emulator.url}/pod-identity/v1/credentials")
    env.setenv("HC_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_file(tmp_path, jwt()))


SOURCES: dict[str, tuple[Setup, str]] = {
    "oidc": (_oidc, "oidc"),
    "env-id-token": (_environment_id_token, "federated"),
    "profile-id-token": (_profile_id_token, "federated"),
    "ecs-agency": (_ecs_agency, "metadata"),
    "pod-identity": (_pod_identity, "pod_identity"),
}
"""
Each source the SDK can be pointed at the emulator for: its setup (the environment and files of a host
with that source; the emulated instance has an agency only for ``ecs-agency``), and what the emulator
counts its credentials as.
"""
