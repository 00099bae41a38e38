"""
The emulator's IAM answers read through the official SDK (``huaweicloudsdkiam``), with the checks of
``test_sdk_conformance.py``: each JSON key of a token answer must be one the SDK's response model knows,
of the model's type, and the ``X-Subject-Token`` header must be there.

Why the client carries credentials: ``IamClient`` signs every request with an AK/SK, token requests too
(its builder refuses to build without credentials), so it gets the emulator's demo AK/SK as
``GlobalCredentials`` (IAM is a global service; with explicit endpoints no domain id is looked up). The
emulator's token route does not check that signature: the token request authenticates by its body.

The agency token: IAM's docs require the caller's token in ``X-Auth-Token``, for which the SDK's request
model has no field, so a request handler of the SDK adds it.

IAM's refusals have no SDK model: the SDK's exception handler reads the code and message from the body.
The checks here are that it finds them in the Keystone ``{"error": {...}}`` body (not that it falls back
to the raw text), and that the provider's own parser reads the same code and message from the same
answer. The provider's parser also reads every token answer here, and the fullest shapes the SDK's
models allow (domain scope, ``assumed_by``, catalog endpoints, unset fields as ``null``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from airflow_provider_fgs.emulator import FunctionGraphEmulator
from airflow_provider_fgs.emulator.defaults import DEFAULT_ACCESS_KEYS, DEFAULT_USERS
from airflow_provider_fgs.emulator.lockout import LockoutRules
from airflow_provider_fgs.protocol.errors import AuthenticationError
from airflow_provider_fgs.protocol.iam import parse_token_response
from tests.conftest import FUNCTION_DIRS
from tests.emulator.conftest import function_url

pytest.importorskip("huaweicloudsdkiam")
from huaweicloudsdkcore.auth.credentials import GlobalCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcore.http.http_handler import HttpHandler
from huaweicloudsdkiam.v3 import (
    AgencyAssumedby,
    AgencyAssumedbyUser,
    AgencyAssumedbyUserDomain,
    AgencyTokenAssumerole,
    AgencyTokenAuth,
    AgencyTokenDomain,
    AgencyTokenIdentity,
    AgencyTokenResult,
    AgencyTokenScope,
    AgencyTokenScopeProject,
    AgencyTokenUser,
    AgencyTokenUserDomain,
    AuthScope,
    AuthScopeProject,
    IamClient,
    KeystoneCreateAgencyTokenRequest,
    KeystoneCreateAgencyTokenRequestBody,
    KeystoneCreateUserTokenByPasswordRequest,
    KeystoneCreateUserTokenByPasswordRequestBody,
    PwdAuth,
    PwdIdentity,
    PwdPassword,
    PwdPasswordUser,
    PwdPasswordUserDomain,
    TokenCatalog,
    TokenCatalogEndpoint,
    TokenDomainResult,
    TokenResult,
    TokenRole,
    TokenUserDomainResult,
    TokenUserResult,
)
from huaweicloudsdkiam.v3 import model as iam_models

from tests.emulator.test_sdk_conformance import assert_conforms, conforms

DOMAIN = "demo-domain"
USER = "demo-user"
PASSWORD = DEFAULT_USERS[DOMAIN][USER]
LOCKED_USER, LOCKED_PASSWORD = "lock-me", "lock-me-password"
MAX_FAILURES = 3
ACCESS_KEY, SECRET_KEY = next(iter(DEFAULT_ACCESS_KEYS.items()))


@pytest.fixture(scope="module")
def iam_emulator() -> Iterator[FunctionGraphEmulator]:
    """IAM locks a user after ``MAX_FAILURES`` wrong passwords; a user of its own is locked here."""
    users = {DOMAIN: {**DEFAULT_USERS[DOMAIN], LOCKED_USER: LOCKED_PASSWORD}}
    rules = LockoutRules(iam_max_failures=MAX_FAILURES)
    with FunctionGraphEmulator(
        FUNCTION_DIRS, max_workers=1, prestart_workers=1, users=users, lockout=rules
    ) as emu:
        yield emu


class _Answers:
    """The raw answers an SDK client received (its response handler), newest last."""

    def __init__(self) -> None:
        self.received: list[requests.Response] = []

    def record(self, response: requests.Response, **_: Any) -> None:
        self.received.append(response)


def _client(emu: FunctionGraphEmulator, handler: HttpHandler | None = None) -> Any:
    builder = (
        IamClient.new_builder()
        .with_credentials(GlobalCredentials(ACCESS_KEY, SECRET_KEY))
        .with_endpoints([emu.url])
    )
    if handler is not None:
        builder = builder.with_http_handler(handler)
    return builder.build()


@pytest.fixture(scope="module")
def answers() -> _Answers:
    return _Answers()


@pytest.fixture(scope="module")
def iam(iam_emulator: FunctionGraphEmulator, answers: _Answers) -> Any:
    return _client(iam_emulator, HttpHandler().add_response_handler(answers.record))


def _password_request(
    user: str = USER,
    password: str = PASSWORD,
    *,
    project_id: str | None = None,
    project_name: str | None = None,
) -> KeystoneCreateUserTokenByPasswordRequest:
    identity = PwdIdentity(
        methods=["password"],
        password=PwdPassword(
            user=PwdPasswordUser(domain=PwdPasswordUserDomain(name=DOMAIN), name=user, password=password)
        ),
    )
    scope = AuthScope(project=AuthScopeProject(id=project_id, name=project_name))
    body = KeystoneCreateUserTokenByPasswordRequestBody(auth=PwdAuth(identity=identity, scope=scope))
    return KeystoneCreateUserTokenByPasswordRequest(nocatalog="true", body=body)


def _agency_request(emu: FunctionGraphEmulator, agency: str) -> KeystoneCreateAgencyTokenRequest:
    identity = AgencyTokenIdentity(
        methods=["assume_role"], assume_role=AgencyTokenAssumerole(domain_name=DOMAIN, agency_name=agency)
    )
    scope = AgencyTokenScope(project=AgencyTokenScopeProject(id=emu.project_id))
    body = KeystoneCreateAgencyTokenRequestBody(auth=AgencyTokenAuth(identity=identity, scope=scope))
    return KeystoneCreateAgencyTokenRequest(body=body)


def _with_header(name: str, value: str) -> HttpHandler:
    def add(request: Any, **_: Any) -> None:
        request.header_params[name] = value

    return HttpHandler().add_request_handler(add)


def _token_works(emu: FunctionGraphEmulator, token: str) -> bool:
    response = requests.post(function_url(emu, "hello"), json={}, headers={"X-Auth-Token": token}, timeout=10)
    return response.status_code == 200


@pytest.mark.parametrize("scope", ["id", "name"])
def test_password_token(iam: Any, iam_emulator: FunctionGraphEmulator, scope: str) -> None:
    by = (
        {"project_id": iam_emulator.project_id}
        if scope == "id"
        else {"project_name": iam_emulator.project_name}
    )
    response = conforms(iam.keystone_create_user_token_by_password(_password_request(**by)))
    assert response.status_code == 201
    token = response.token
    assert token.methods == ["password"]
    assert (token.user.name, token.user.domain.name) == (USER, DOMAIN)
    assert (token.project.id, token.project.name) == (iam_emulator.project_id, iam_emulator.project_name)
    assert token.user.password_expires_at == ""
    assert _token_works(iam_emulator, response.x_subject_token)
    # The provider's parser reads the very answer the SDK read, to the same expiry.
    parsed = parse_token_response(201, {"X-Subject-Token": response.x_subject_token}, response.raw_content)
    assert parsed.value == response.x_subject_token
    assert parsed.expires_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ") == token.expires_at
    assert parsed.project_id == iam_emulator.project_id


def test_agency_token(iam: Any, iam_emulator: FunctionGraphEmulator) -> None:
    caller = iam.keystone_create_user_token_by_password(_password_request(project_id=iam_emulator.project_id))
    agency_client = _client(iam_emulator, _with_header("X-Auth-Token", caller.x_subject_token))
    response = conforms(
        agency_client.keystone_create_agency_token(_agency_request(iam_emulator, "fgs_agency"))
    )
    assert response.status_code == 201
    token = response.token
    assert token.methods == ["assume_role"]
    assert (token.user.name, token.user.domain.name) == (f"{DOMAIN}/fgs_agency", DOMAIN)
    assert (token.assumed_by.user.name, token.assumed_by.user.domain.name) == (USER, DOMAIN)
    assert token.project.id == iam_emulator.project_id
    assert response.x_subject_token != caller.x_subject_token
    assert _token_works(iam_emulator, response.x_subject_token)


def _refusal(call: Callable[[], Any], answers: _Answers) -> ClientRequestException:
    """The SDK's exception for a refused call; the provider's parser reads the same answer alike."""
    with pytest.raises(ClientRequestException) as caught:
        call()
    error = caught.value
    answer = answers.received[-1]
    assert "X-Subject-Token" not in answer.headers
    with pytest.raises(AuthenticationError) as provider:
        parse_token_response(answer.status_code, answer.headers, answer.content)
    assert provider.value.http_status == error.status_code
    assert (provider.value.error_code, provider.value.error_msg) == (str(error.error_code), error.error_msg)
    return error


def test_agency_token_without_the_callers_token_is_401(
    iam: Any, iam_emulator: FunctionGraphEmulator, answers: _Answers
) -> None:
    error = _refusal(
        lambda: iam.keystone_create_agency_token(_agency_request(iam_emulator, "fgs_agency")), answers
    )
    assert (error.status_code, error.error_code) == (401, 401)
    assert error.error_msg == "The request you have made requires authentication."


def test_wrong_password_is_401(iam: Any, iam_emulator: FunctionGraphEmulator, answers: _Answers) -> None:
    request = _password_request(password="wrong", project_id=iam_emulator.project_id)
    error = _refusal(lambda: iam.keystone_create_user_token_by_password(request), answers)
    assert (error.status_code, error.error_code) == (401, 401)
    assert error.error_msg == "The username or password is wrong."


def test_locked_user_is_401_even_with_the_right_password(
    iam: Any, iam_emulator: FunctionGraphEmulator, answers: _Answers
) -> None:
    project = {"project_id": iam_emulator.project_id}
    for _ in range(MAX_FAILURES):
        wrong = _password_request(LOCKED_USER, "wrong", **project)
        error = _refusal(lambda request=wrong: iam.keystone_create_user_token_by_password(request), answers)
        assert error.error_msg == "The username or password is wrong."
    right = _password_request(LOCKED_USER, LOCKED_PASSWORD, **project)
    error = _refusal(lambda: iam.keystone_create_user_token_by_password(right), answers)
    assert (error.status_code, error.error_code) == (401, 401)
    assert error.error_msg == "The account is locked. Try again later."
    assert iam_emulator.locks_triggered >= 1


def test_other_project_scope_is_401(iam: Any, answers: _Answers) -> None:
    request = _password_request(project_id="0" * 32)
    error = _refusal(lambda: iam.keystone_create_user_token_by_password(request), answers)
    assert (error.status_code, error.error_code) == (401, 401)
    assert "0" * 32 in error.error_msg


_EXPIRES = "2030-01-04T09:05:22.701000Z"


@pytest.mark.parametrize(
    "token",
    [
        TokenResult(  # domain scoped: no project at all
            catalog=[
                TokenCatalog(
                    type="identity",
                    id="c1",
                    name="iam",
                    endpoints=[
                        TokenCatalogEndpoint(url="https://iam", region="*", interface="public", id="e1")
                    ],
                )
            ],
            domain=TokenDomainResult(name=DOMAIN, id="d1"),
            expires_at=_EXPIRES,
            methods=["password"],
            roles=[TokenRole(name="te_admin", id="r1")],
            user=TokenUserResult(
                name=USER, id="u1", password_expires_at="", domain=TokenUserDomainResult(name=DOMAIN, id="d1")
            ),
        ),
        AgencyTokenResult(
            methods=["assume_role"],
            expires_at=_EXPIRES,
            issued_at="2030-01-03T09:05:22.701000Z",
            assumed_by=AgencyAssumedby(
                user=AgencyAssumedbyUser(
                    name=USER, id="u1", domain=AgencyAssumedbyUserDomain(name=DOMAIN, id="d1")
                )
            ),
            domain=AgencyTokenDomain(name=DOMAIN, id="d1"),
            user=AgencyTokenUser(
                name=f"{DOMAIN}/agency", id="a1", domain=AgencyTokenUserDomain(name=DOMAIN, id="d1")
            ),
        ),
    ],
    ids=["domain-scoped", "agency"],
)
def test_the_providers_parser_reads_the_sdks_shapes(token: Any) -> None:
    """Every field the SDK's models allow, unset ones as JSON null, as the SDK itself serialises them."""
    body = json.dumps({"token": token.to_dict()}).encode()
    parsed = parse_token_response(201, {"x-subject-token": "MIIabc"}, body)
    assert parsed.value == "MIIabc"
    assert parsed.expires_at == datetime(2030, 1, 4, 9, 5, 22, 701000, tzinfo=UTC)
    assert parsed.project_id is None


@pytest.mark.parametrize(
    ("raw", "model_type"),
    [
        ({"methods": ["password"], "audit_ids": []}, "TokenResult"),
        ({"user": {"name": "u", "id": "1", "password_expires_at": ""}}, "AgencyTokenResult"),
        ({"expires_at": 1}, "TokenResult"),
    ],
    ids=["unknown-key", "agency-user-has-no-password", "wrong-type"],
)
def test_conformance_check_can_fail(raw: dict[str, Any], model_type: str) -> None:
    """The checker rejects what the IAM SDK's models do not know (so the tests above can fail)."""
    with pytest.raises(AssertionError):
        assert_conforms(raw, model_type, models=iam_models)
