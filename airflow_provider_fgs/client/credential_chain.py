"""The Huawei SDK's credential chain: where a connection without a stored secret finds its credentials.

The sources, in huaweicloudsdkcore's order and with its variables, files and formats, so one setup serves
every Huawei tool (PROTOCOL.md section 5c):

1. ``oidc``: an OIDC agency: ``HUAWEICLOUD_OIDC_PROVIDER_URN``, ``HUAWEICLOUD_OIDC_AGENCY_URN``, the id
   token in ``HUAWEICLOUD_OIDC_ID_TOKEN`` or the file ``HUAWEICLOUD_OIDC_TOKEN_FILE`` (and
   ``_SESSION_NAME``, ``_DURATION_SECONDS``, ``_POLICY``, ``_POLICY_IDS``), exchanged at STS
   (``HUAWEICLOUD_SDK_STS_ENDPOINT``);
2. ``env``: ``HUAWEICLOUD_SDK_AK``, ``HUAWEICLOUD_SDK_SK`` (and ``HUAWEICLOUD_SDK_SECURITY_TOKEN``); or a
   federated id token, ``HUAWEICLOUD_SDK_IDP_ID`` and ``HUAWEICLOUD_SDK_ID_TOKEN_FILE``, exchanged at IAM
   (``HUAWEICLOUD_SDK_IAM_ENDPOINT``);
3. ``profile``: the ``[basic]`` section of ``~/.huaweicloud/credentials`` (or
   ``HUAWEICLOUD_SDK_CREDENTIALS_FILE``): ``ak``, ``sk``, ``security_token``, or ``idp_id`` and
   ``id_token_file`` (with ``iam_endpoint``);
4. ``metadata``: the agency bound to the ECS instance, from its metadata service (3 s timeouts);
5. ``pod_identity``: CCE's pod identity, ``HC_CONTAINER_CREDENTIALS_FULL_URI`` with the token in
   ``HC_CONTAINER_AUTHORIZATION_TOKEN_FILE``.

A source that is not set up here is passed over, and the reason kept: when no source has credentials,
one error lists what was tried, in order, and why each was passed over. A source that is set up and is
refused (an expired or invalid id token, a 401 from IAM or STS, an instance without an agency when the
connection names ``metadata``) raises :class:`AuthenticationError` naming it. The connection's extras
override the endpoints (``iam_endpoint``, ``sts_endpoint``, ``metadata_endpoint``), the token file
(``id_token_file``) and the profile file (``credentials_file``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from airflow_provider_fgs.client.profile_file import PROFILE_SECTION, profile_path, read_profile
from airflow_provider_fgs.client.retry import TransportError
from airflow_provider_fgs.client.settings import (
    CHAIN,
    CREDENTIAL_SOURCES,
    DEFAULT_STS_ENDPOINT,
    FunctionGraphSettings,
)
from airflow_provider_fgs.protocol import temporary_credentials as tc
from airflow_provider_fgs.protocol.errors import AuthenticationError
from airflow_provider_fgs.protocol.http import HttpRequest, Response, platform_error
from airflow_provider_fgs.protocol.temporary_credentials import TemporaryCredentials

Fetch = Callable[[HttpRequest, str, bool], Response]
"""Send one request: ``(request, what, probe) -> (status, headers, body)``; a probe is sent once, with
3 s timeouts, and a connection that cannot be made raises :class:`TransportError` at once."""
NEVER = datetime(9999, 1, 1, tzinfo=UTC)
"""The expiry of credentials that say none (an AK/SK pair from the environment or a profile)."""
DEFAULT_SESSION_NAME = "oidc-sts-session"


class SourceSkipped(Exception):
    """The source is not set up here; the message says what is missing."""


class NoCredentialSource(AuthenticationError):
    """No source of the chain is set up here (a setup to fix, not a refusal: no cool-down starts)."""


class CredentialChain:
    """
    The sources of one connection: all of them in order (``auth_type`` ``chain``, or none given), or the
    one that ``auth_type`` names.

    :param settings: the connection's settings.
    :param fetch: sends a request (see :data:`Fetch`).
    :param mask: registers a secret with the masker (id tokens read here).
    :param environ: the environment to read (the process's by default).
    """

    def __init__(
        self,
        settings: FunctionGraphSettings,
        fetch: Fetch,
        mask: Callable[[str], None],
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self._fetch = fetch
        self._mask = mask
        self._environ = os.environ if environ is None else environ

    @property
    def sources(self) -> tuple[str, ...]:
        return CREDENTIAL_SOURCES if self.settings.auth_type == CHAIN else (self.settings.auth_type,)

    def resolve(self) -> TemporaryCredentials:
        """
        Credentials from the first source that has them.

        :raises AuthenticationError: a source refused, or none has credentials (listing why, in order).
        """
        skipped: list[str] = []
        for name in self.sources:
            try:
                return getattr(self, f"_{name}")()  # type: ignore[no-any-return]
            except SourceSkipped as why:
                skipped.append(f"{name}: {why}")
        tried = "; ".join(skipped)
        raise NoCredentialSource(
            f"No credentials for {self.settings.principal}: tried, in order, {tried}. Set up one of them "
            "(docs/connection.md, 'Credentials without stored secrets'), or give the connection an AK/SK"
        )

    # -- the sources -----------------------------------------------------------------------------------

    def _oidc(self) -> TemporaryCredentials:
        provider, agency = (
            self._var("HUAWEICLOUD_OIDC_PROVIDER_URN"),
            self._var("HUAWEICLOUD_OIDC_AGENCY_URN"),
        )
        if not provider or not agency:
            raise SourceSkipped("HUAWEICLOUD_OIDC_PROVIDER_URN and HUAWEICLOUD_OIDC_AGENCY_URN are not set")
        source = f"OIDC agency {agency}"
        id_token = self._var("HUAWEICLOUD_OIDC_ID_TOKEN") or self._token_file(
            self.settings.id_token_file or self._var("HUAWEICLOUD_OIDC_TOKEN_FILE"), source
        )
        if id_token is None:
            raise AuthenticationError(
                f"{source}: neither HUAWEICLOUD_OIDC_ID_TOKEN nor HUAWEICLOUD_OIDC_TOKEN_FILE "
                "(nor the connection's id_token_file) gives an id token"
            )
        self._mask(id_token)
        policy_ids = [item.strip() for item in (self._var("HUAWEICLOUD_OIDC_POLICY_IDS") or "").split(",")]
        request = tc.assume_with_oidc_request(
            self.settings.sts_endpoint
            or self._var("HUAWEICLOUD_SDK_STS_ENDPOINT")
            or DEFAULT_STS_ENDPOINT.format(region=self.settings.region),
            provider_urn=provider,
            agency_urn=agency,
            id_token=id_token,
            session_name=self._var("HUAWEICLOUD_OIDC_SESSION_NAME") or DEFAULT_SESSION_NAME,
            duration_seconds=self._duration(source),
            policy=self._var("HUAWEICLOUD_OIDC_POLICY"),
            policy_ids=[item for item in policy_ids if item] or None,
        )
        return tc.parse_credentials(
            *self._fetch(request, f"the credentials of {source}", False), source=source
        )

    def _env(self) -> TemporaryCredentials:
        idp, token_file = self._var("HUAWEICLOUD_SDK_IDP_ID"), self._var("HUAWEICLOUD_SDK_ID_TOKEN_FILE")
        file = self.settings.id_token_file or token_file
        if idp and file:
            return self._federated(
                idp, file, self._var("HUAWEICLOUD_SDK_IAM_ENDPOINT"), "the environment's IdP"
            )
        access, secret = self._var("HUAWEICLOUD_SDK_AK"), self._var("HUAWEICLOUD_SDK_SK")
        if access and secret:
            token = self._var("HUAWEICLOUD_SDK_SECURITY_TOKEN") or ""
            return TemporaryCredentials(access, secret, token, NEVER, "the environment's AK/SK")
        raise SourceSkipped(
            "neither HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK nor HUAWEICLOUD_SDK_IDP_ID and "
            "HUAWEICLOUD_SDK_ID_TOKEN_FILE are set"
        )

    def _profile(self) -> TemporaryCredentials:
        path = profile_path(self.settings.credentials_file, self._environ)
        profile = read_profile(path)
        if profile is None:
            raise SourceSkipped(f"no credentials file with a [{PROFILE_SECTION}] section at {path}")
        source = f"the profile {path}"
        if profile.get("idp_id") and profile.get("id_token_file"):
            return self._federated(
                profile["idp_id"], profile["id_token_file"], profile.get("iam_endpoint"), source
            )
        if profile.get("ak") and profile.get("sk"):
            return TemporaryCredentials(
                profile["ak"], profile["sk"], profile.get("security_token") or "", NEVER, source
            )
        raise SourceSkipped(f"{path} [{PROFILE_SECTION}] has neither ak and sk nor idp_id and id_token_file")

    def _metadata(self) -> TemporaryCredentials:
        endpoint = self.settings.metadata_endpoint
        source = f"the ECS metadata service at {endpoint}"
        try:
            session = self._metadata_session(endpoint)
            status, headers, body = self._fetch(
                tc.metadata_security_key_request(endpoint, session), f"the credentials of {source}", True
            )
        except TransportError as err:
            raise SourceSkipped(
                f"no metadata service answered at {endpoint} (not an ECS instance?): {err}"
            ) from None
        if status == 401 and tc.NO_AGENCY.encode() in body:
            why = f"the instance has no agency ({tc.NO_AGENCY.lower()} on the instance)"
            if self.settings.auth_type == CHAIN:
                raise SourceSkipped(why)
            raise AuthenticationError(f"{source}: {why}", http_status=401)
        return tc.parse_credentials(status, headers, body, source=source)

    def _metadata_session(self, endpoint: str) -> str | None:
        """The metadata service's session token; ``None`` from an older service that issues none."""
        status, headers, body = self._fetch(
            tc.metadata_token_request(endpoint), "a metadata session token", True
        )
        if status == 200:
            return body.decode("utf-8").strip()
        if status in (404, 405, 503):
            return None
        raise platform_error(status, headers, body, what=f"the metadata session token request to {endpoint}")

    def _pod_identity(self) -> TemporaryCredentials:
        uri, file = (
            self._var("HC_CONTAINER_CREDENTIALS_FULL_URI"),
            self._var("HC_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
        )
        if not uri or not file:
            raise SourceSkipped(
                "HC_CONTAINER_CREDENTIALS_FULL_URI and HC_CONTAINER_AUTHORIZATION_TOKEN_FILE are not set"
            )
        source = f"CCE pod identity at {uri}"
        authorization = self._token_file(file, source)
        if authorization is None:
            raise AuthenticationError(f"{source}: HC_CONTAINER_AUTHORIZATION_TOKEN_FILE is empty")
        self._mask(authorization)
        request = tc.pod_identity_request(uri, authorization)
        return tc.parse_credentials(
            *self._fetch(request, f"the credentials of {source}", False), source=source
        )

    def _federated(
        self, idp: str, token_file: str, iam_endpoint: str | None, source: str
    ) -> TemporaryCredentials:
        """A federated id token exchanged at IAM: for an unscoped token, then for credentials."""
        id_token = self._token_file(token_file, source)
        if id_token is None:
            raise AuthenticationError(f"{source}: the id token file {token_file} is empty")
        self._mask(id_token)
        iam = (
            self.settings.iam_endpoint if self.settings.iam_endpoint_set or not iam_endpoint else iam_endpoint
        )
        response = self._fetch(
            tc.id_token_request(iam, idp, id_token), f"the id token exchange of {source}", False
        )
        token = tc.unscoped_token(*response, source=source)
        self._mask(token)
        response = self._fetch(tc.security_tokens_request(iam, token), f"the credentials of {source}", False)
        return tc.parse_credentials(*response, source=source)

    # -- reading ---------------------------------------------------------------------------------------

    def _var(self, name: str) -> str | None:
        value = self._environ.get(name)
        return value.strip() or None if value else None

    def _duration(self, source: str) -> int:
        text = self._var("HUAWEICLOUD_OIDC_DURATION_SECONDS")
        try:
            return int(text) if text else tc.OIDC_DURATION_S
        except ValueError:
            raise AuthenticationError(
                f"{source}: HUAWEICLOUD_OIDC_DURATION_SECONDS={text!r} is not a number"
            ) from None

    @staticmethod
    def _token_file(path: str | None, source: str) -> str | None:
        """The stripped content of a token file (``None`` when no path or an empty file)."""
        if not path:
            return None
        try:
            content = Path(path).expanduser().read_text(encoding="utf-8").strip()
        except OSError as err:
            raise AuthenticationError(
                f"{source}: the token file {path} cannot be read ({err.strerror})"
            ) from None
        return content or None
