"""What the credential chain's tests share: the Huawei SDK's variables, JWT-shaped id tokens, token files."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

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
