"""
The credential chain, read by the official SDK and by the provider from one setup.

For each source, the environment (and files) are set up once, as on a Huawei Cloud host, with every
endpoint pointed at the emulator: the SDK's own ``CredentialProviderChain`` finds the source, fetches
temporary credentials from the emulator's IAM, STS, metadata or pod identity route, and its FunctionGraph
client lists the functions with them (signed, with ``X-Security-Token``); then a provider connection
with no stored secret, in the same environment, invokes a function through the same source. The
emulator counts what each source issued: the SDK's fetch and the provider's are one each.

The SDK reads the ECS metadata service at a class constant, not a variable: the test points that
constant at the emulator (and, for the sources after it in the chain, the emulated instance has no
agency, so both chains pass it over as on a host without one).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import Connection

from airflow_provider_fgs.client.settings import parse_connection
from airflow_provider_fgs.client.sync_client import FunctionGraphClient
from airflow_provider_fgs.emulator import FunctionGraphEmulator
from tests.conftest import FUNCTION_DIRS
from tests.credential_sources import SOURCES

pytest.importorskip("huaweicloudsdkcore")
from huaweicloudsdkcore.auth.internal import MetadataAccessor
from huaweicloudsdkcore.auth.provider import CredentialProviderChain
from huaweicloudsdkfunctiongraph.v2 import FunctionGraphClient as SdkFunctionGraphClient
from huaweicloudsdkfunctiongraph.v2 import ListFunctionsRequest


@pytest.fixture(scope="module")
def credentials_emulator() -> Iterator[FunctionGraphEmulator]:
    with FunctionGraphEmulator(FUNCTION_DIRS, prestart_workers=1) as emu:
        yield emu


@pytest.fixture
def host(
    credentials_emulator: FunctionGraphEmulator, clean_environment: pytest.MonkeyPatch
) -> Iterator[FunctionGraphEmulator]:
    """A host with no credential source yet; its ECS metadata service (the emulator's) has no agency."""
    clean_environment.setenv("HUAWEICLOUD_SDK_PROJECT_ID", credentials_emulator.project_id)
    clean_environment.setenv("HUAWEICLOUD_SDK_REGION", credentials_emulator.region)
    clean_environment.setattr(MetadataAccessor, "_METADATA_ENDPOINT", credentials_emulator.url)
    credentials_emulator.set_instance_agency(False)
    yield credentials_emulator
    credentials_emulator.set_instance_agency(True)


def issued(emulator: FunctionGraphEmulator) -> dict[str, int]:
    return {
        kind: emulator.credentials_issued(kind) for kind in ("oidc", "federated", "metadata", "pod_identity")
    }


def sdk_lists_functions(emulator: FunctionGraphEmulator) -> set[str]:
    """The SDK's chain finds credentials; its FunctionGraph client lists the functions with them."""
    credentials = CredentialProviderChain.get_basic().get_credentials()
    if not credentials.project_id:  # the metadata and pod identity providers leave the project to the caller
        credentials.with_project_id(emulator.project_id)
    client = (
        SdkFunctionGraphClient.new_builder()
        .with_credentials(credentials)
        .with_endpoints([emulator.url])
        .build()
    )
    return {function.func_name for function in client.list_functions(ListFunctionsRequest()).functions}


def provider_invokes(emulator: FunctionGraphEmulator) -> Any:
    """A connection with no secret (region and project from the SDK's variables) invokes ``echo``."""
    extra = {"endpoint": emulator.url, "metadata_endpoint": emulator.url}
    conn = Connection(
        conn_id=f"sdk_chain_{time.time_ns()}", conn_type="functiongraph", extra=json.dumps(extra)
    )
    result = FunctionGraphClient(parse_connection(conn)).invoke(function_name="echo", payload={"k": "v"})
    return result.result["event"]


@pytest.mark.parametrize("source", list(SOURCES))
def test_one_setup_serves_the_sdk_and_the_provider(
    host: FunctionGraphEmulator, clean_environment: pytest.MonkeyPatch, tmp_path: Path, source: str
) -> None:
    setup, kind = SOURCES[source]
    setup(host, clean_environment, tmp_path)
    before = issued(host)

    assert "echo" in sdk_lists_functions(host)
    after_sdk = issued(host)
    assert after_sdk == {**before, kind: before[kind] + 1}, "the SDK fetched from another source"

    assert provider_invokes(host) == {"k": "v"}
    assert issued(host) == {**after_sdk, kind: after_sdk[kind] + 1}, "the provider used another source"


def test_the_sdk_and_the_provider_take_the_first_source_in_the_same_order(
    host: FunctionGraphEmulator, clean_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """OIDC, a federated id token and pod identity all set up: both take OIDC; without it, the id token."""
    for source in ("pod-identity", "env-id-token", "oidc"):
        SOURCES[source][0](host, clean_environment, tmp_path)
    before = issued(host)
    sdk_lists_functions(host)
    provider_invokes(host)
    assert issued(host)["oidc"] == before["oidc"] + 2
    clean_environment.delenv("HUAWEICLOUD_OIDC_PROVIDER_URN")
    sdk_lists_functions(host)
    provider_invokes(host)
    assert issued(host)["federated"] == before["federated"] + 2
    assert issued(host)["pod_identity"] == before["pod_identity"]
