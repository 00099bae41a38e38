"""Credentials without a stored secret: every source of the Huawei SDK's chain against the emulator (its
IAM, STS, metadata and pod identity routes over loopback), the chain's order and its error, refresh before
expiry and after a refusal, one fetch per host, cool-downs, masking, and the event loop's client."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import Connection
from airflow.sdk.log import redact

from airflow_provider_fgs.client.async_client import AsyncFunctionGraphClient
from airflow_provider_fgs.client.settings import parse_connection
from airflow_provider_fgs.client.sourced_credentials import SourcedCredentials
from airflow_provider_fgs.client.sync_client import FunctionGraphClient
from airflow_provider_fgs.emulator import FunctionGraphEmulator
from airflow_provider_fgs.protocol.errors import AuthenticationError, CredentialCoolDownError
from tests.connections import DEMO_KEY, emulator_extra
from tests.credential_sources import OIDC_AGENCY_URN, OIDC_PROVIDER_URN, SOURCES, jwt, token_file

CLOSED_PORT = "http://127.0.0.1:9"  # the discard port: nothing listens, the connection is refused at once


def client(
    emulator: FunctionGraphEmulator, klass: type[FunctionGraphClient] = FunctionGraphClient, **extra: Any
) -> Any:
    """A client of a connection with no secret: the chain, its metadata service on a closed port."""
    extras = {"metadata_endpoint": CLOSED_PORT, **emulator_extra(emulator), **extra}
    extras = {name: value for name, value in extras.items() if value is not None}
    conn = Connection(conn_id=f"chain_{time.time_ns()}", conn_type="functiongraph", extra=json.dumps(extras))
    return klass(parse_connection(conn))


def invoke_echo(fgs: FunctionGraphClient) -> Any:
    result = fgs.invoke(function_name="echo", payload={"k": "v"})
    assert not result.is_function_error
    return result.result["event"]


def test_a_connection_without_secrets_reads_the_environments_aksk(
    fresh_emulator: FunctionGraphEmulator, clean_environment: pytest.MonkeyPatch
) -> None:
    clean_environment.setenv("HUAWEICLOUD_SDK_AK", DEMO_KEY[0])
    clean_environment.setenv("HUAWEICLOUD_SDK_SK", DEMO_KEY[1])
    assert invoke_echo(client(fresh_emulator)) == {"k": "v"}


def test_an_oidc_agency_is_assumed_at_sts_and_its_credentials_shared_on_the_host(
    fresh_emulator: FunctionGraphEmulator, clean_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_environment.setenv("HUAWEICLOUD_OIDC_PROVIDER_URN", OIDC_PROVIDER_URN)
    clean_environment.setenv("HUAWEICLOUD_OIDC_AGENCY_URN", OIDC_AGENCY_URN)
    clean_environment.setenv("HUAWEICLOUD_OIDC_TOKEN_FILE", token_file(tmp_path, jwt()))
    clean_environment.setenv("HUAWEICLOUD_SDK_STS_ENDPOINT", fresh_emulator.url)

    assert invoke_echo(client(fresh_emulator)) == {"k": "v"}
    SourcedCredentials.clear()  # another process of the host: it finds the host's credentials
    assert invoke_echo(client(fresh_emulator, host_cache=True)) == {"k": "v"}

    assert fresh_emulator.credentials_issued("oidc") == 1
    assert fresh_emulator.request_count("assume_with_oidc") == 1


@pytest.mark.parametrize("where", ["environment", "profile"])
def test_a_federated_id_token_is_exchanged_at_iam(
    fresh_emulator: FunctionGraphEmulator, clean_environment: pytest.MonkeyPatch, tmp_path: Path, where: str
) -> None:
    token = token_file(tmp_path, jwt())
    if where == "environment":
        clean_environment.setenv("HUAWEICLOUD_SDK_IDP_ID", "airflow-idp")
        clean_environment.setenv("HUAWEICLOUD_SDK_ID_TOKEN_FILE", token)
        clean_environment.setenv("HUAWEICLOUD_SDK_IAM_ENDPOINT", fresh_emulator.url)
        fgs = client(fresh_emulator, iam_endpoint=None)
    else:
        profile = tmp_path / "credentials"
        profile.write_text(
            f"[basic]\nidp_id = airflow-idp\nid_token_file = {token}\niam_endpoint = {fresh_emulator.url}\n"
        )
        fgs = client(fresh_emulator, iam_endpoint=None, credentials_file=str(profile))

    assert invoke_echo(fgs) == {"k": "v"}
    assert fresh_emulator.credentials_issued("federated") == 1


def test_the_ecs_instances_agency_comes_from_its_metadata_service(
    fresh_emulator: FunctionGraphEmulator, clean_environment: pytest.MonkeyPatch
) -> None:
    assert invoke_echo(client(fresh_emulator, metadata_endpoint=fresh_emulator.url)) == {"k": "v"}
    assert fresh_emulator.request_count("metadata_token") == 1
    fresh_emulator.set_metadata_tokens(False)  # an older metadata service: no session token
    SourcedCredentials.clear()
    assert invoke_echo(client(fresh_emulator, metadata_endpoint=fresh_emulator.url, host_cache=False)) == {
        "k": "v"
    }
    assert fresh_emulator.credentials_issued("metadata") == 2


def test_cce_pod_identity(
    fresh_emulator: FunctionGraphEmulator, clean_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_environment.setenv(
        "HC_CONTAINER_CREDENTIALS_FULL_URI", f"{fresh_emulator.url}/pod-identity/v1/credentials"
    )
    clean_environment.setenv("HC_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_file(tmp_path, jwt()))
    assert invoke_echo(client(fresh_emulator)) == {"k": "v"}
    assert fresh_emulator.credentials_issued("pod_identity") == 1


def test_no_source_gives_one_error_that_says_what_was_tried_in_order(
    fresh_emulator: FunctionGraphEmulator, clean_environment: pytest.MonkeyPatch
) -> None:
    began = time.monotonic()
    with pytest.raises(AuthenticationError) as info:
        client(fresh_emulator).invoke(function_name="echo")
    message = str(info.value)
    order = [message.index(f"{name}: ") for name in ("oidc", "env", "profile", "metadata", "pod_identity")]
    assert order == sorted(order), message
    assert "HUAWEICLOUD_OIDC_PROVIDER_URN and HUAWEICLOUD_OIDC_AGENCY_URN are not set" in message
    assert "no credentials file with a [basic] section at" in message
    assert f"no metadata service answered at {CLOSED_PORT}" in message
    assert "HC_CONTAINER_CREDENTIALS_FULL_URI" in message
    assert time.monotonic() - began < 10  # sources that are not there are passed over quickly
    assert fresh_emulator.invocation_count() == 0


def test_an_instance_without_an_agency_is_passed_over_by_the_chain_and_refused_when_named(
    fresh_emulator: FunctionGraphEmulator, clean_environment: pytest.MonkeyPatch
) -> None:
    fresh_emulator.set_instance_agency(False)
    with pytest.raises(AuthenticationError, match="metadata: the instance has no agency"):
        client(fresh_emulator, metadata_endpoint=fresh_emulator.url).invoke(function_name="echo")
    named = client(
        fresh_emulator, metadata_endpoint=fresh_emulator.url, auth_type="metadata", credential_cooldown=0
    )
    with pytest.raises(AuthenticationError, match=r"ECS metadata service at .*: the instance has no agency"):
        named.invoke(function_name="echo")


def test_an_expired_id_token_fails_fast_naming_the_source_and_cools_down(
    fresh_emulator: FunctionGraphEmulator, clean_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_environment.setenv("HUAWEICLOUD_OIDC_PROVIDER_URN", OIDC_PROVIDER_URN)
    clean_environment.setenv("HUAWEICLOUD_OIDC_AGENCY_URN", OIDC_AGENCY_URN)
    clean_environment.setenv("HUAWEICLOUD_OIDC_TOKEN_FILE", token_file(tmp_path, jwt(lifetime=-60)))
    fgs = client(fresh_emulator, sts_endpoint=fresh_emulator.url)

    with pytest.raises(AuthenticationError, match=f"OIDC agency {OIDC_AGENCY_URN}") as info:
        fgs.invoke(function_name="echo")
    assert "the id token expired" in str(info.value)
    with pytest.raises(CredentialCoolDownError):
        client(fresh_emulator, sts_endpoint=fresh_emulator.url).invoke(function_name="echo")
    assert fresh_emulator.request_count("assume_with_oidc") == 1  # one refusal, no retry, no second try
    assert fresh_emulator.invocation_count() == 0


def test_credentials_are_replaced_before_they_expire_and_after_a_refusal(
    fresh_emulator: FunctionGraphEmulator, clean_environment: pytest.MonkeyPatch
) -> None:
    fresh_emulator.set_credential_lifetime(4.0)  # replaced after three quarters of it: 3 s
    fgs = client(fresh_emulator, metadata_endpoint=fresh_emulator.url)
    invoke_echo(fgs)
    invoke_echo(fgs)
    assert fresh_emulator.credentials_issued("metadata") == 1
    time.sleep(3.2)
    invoke_echo(fgs)
    assert fresh_emulator.credentials_issued("metadata") == 2

    fresh_emulator.state.clock_offset += 10  # the gateway sees them expired before the client does
    invoke_echo(fgs)  # refused once, fetched again, sent again
    assert fresh_emulator.credentials_issued("metadata") == 3


def test_temporary_secrets_are_masked(
    fresh_emulator: FunctionGraphEmulator,
    clean_environment: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fgs = client(fresh_emulator, metadata_endpoint=fresh_emulator.url)
    invoke_echo(fgs)
    credentials = fgs._sourced.cached()
    assert credentials is not None
    for secret in credentials.secrets():
        assert secret not in caplog.text
        assert redact(f"before {secret} after") == "before *** after"
    assert credentials.secret_key not in repr(credentials)


def test_the_event_loops_client_fetches_off_the_loop(
    fresh_emulator: FunctionGraphEmulator, clean_environment: pytest.MonkeyPatch
) -> None:
    async def invoke() -> Any:
        async with client(
            fresh_emulator, AsyncFunctionGraphClient, metadata_endpoint=fresh_emulator.url
        ) as fgs:
            return await fgs.ainvoke(function_name="echo", payload={"k": "async"})

    assert asyncio.run(invoke()).result["event"] == {"k": "async"}
    assert fresh_emulator.credentials_issued("metadata") == 1


def test_the_event_loops_client_replaces_them_before_they_expire(
    fresh_emulator: FunctionGraphEmulator, clean_environment: pytest.MonkeyPatch
) -> None:
    fresh_emulator.set_credential_lifetime(4.0)

    async def invoke_across_expiry() -> list[Any]:
        async with client(
            fresh_emulator, AsyncFunctionGraphClient, metadata_endpoint=fresh_emulator.url
        ) as fgs:
            first = await fgs.ainvoke(function_name="echo", payload={"n": 1})
            await asyncio.sleep(4.2)  # expired now: a request signed with them would be refused
            second = await fgs.ainvoke(function_name="echo", payload={"n": 2})
            return [first.result["event"], second.result["event"]]

    assert asyncio.run(invoke_across_expiry()) == [{"n": 1}, {"n": 2}]
    assert fresh_emulator.credentials_issued("metadata") == 2
    assert fresh_emulator.rejection_count() == 0  # replaced before use, not after a refusal


def test_the_connection_test_names_the_source_that_served_or_what_was_tried(
    fresh_emulator: FunctionGraphEmulator, clean_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook

    extras = {"metadata_endpoint": CLOSED_PORT, **emulator_extra(fresh_emulator)}
    clean_environment.setenv(
        "AIRFLOW_CONN_FGS_NO_SECRET", json.dumps({"conn_type": "functiongraph", "extra": extras})
    )
    ok, message = FunctionGraphHook("fgs_no_secret").test_connection()
    assert not ok
    assert "tried, in order, oidc:" in message

    SourcedCredentials.clear()
    clean_environment.setenv(
        "HC_CONTAINER_CREDENTIALS_FULL_URI", f"{fresh_emulator.url}/pod-identity/v1/credentials"
    )
    clean_environment.setenv("HC_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_file(tmp_path, jwt()))
    ok, message = FunctionGraphHook("fgs_no_secret").test_connection()
    assert ok, message
    assert "accepted the temporary credentials of CCE pod identity at" in message


@pytest.mark.parametrize("source", list(SOURCES))
def test_every_source_serves_the_hook_and_the_event_loops_client(
    fresh_emulator: FunctionGraphEmulator, clean_environment: pytest.MonkeyPatch, tmp_path: Path, source: str
) -> None:
    """The worker's hook and the triggers' client sign with each source's credentials, fetched once."""
    setup, kind = SOURCES[source]
    fresh_emulator.set_instance_agency(False)  # the chain passes the metadata service over...
    setup(fresh_emulator, clean_environment, tmp_path)  # ...unless this is the instance's agency

    assert invoke_echo(client(fresh_emulator, metadata_endpoint=fresh_emulator.url)) == {"k": "v"}

    async def invoke() -> Any:
        async with client(
            fresh_emulator, AsyncFunctionGraphClient, metadata_endpoint=fresh_emulator.url
        ) as fgs:
            return await fgs.ainvoke(function_name="echo", payload={"k": "async"})

    SourcedCredentials.clear()  # another process of the host: it reads them from the host's cache
    assert asyncio.run(invoke()).result["event"] == {"k": "async"}
    assert fresh_emulator.credentials_issued(kind) == 1
