from __future__ import annotations

from datetime import UTC, datetime

from airflow_provider_fgs.protocol.signing import (
    Signer,
    canonical_query,
    canonical_uri,
    compute_signature,
    parse_authorization,
)

VECTOR_URL = (
    "https://functiongraph.ap-southeast-1.myhuaweicloud.com/v2/proj123/fgs/functions/"
    "urn:fss:ap-southeast-1:proj123:function:default:myfunc:latest/invocations"
)
VECTOR_SIGNATURE = "742ed81ec03ae7e659175babb6377ddbf78b6cd63a5d99c67a368b646da02655"
VECTOR_HEADERS = {
    "Content-Type": "application/json",
    "X-Project-Id": "proj123",
    "X-CFF-Request-Version": "v1",
}
VECTOR_DATE = datetime(2024, 1, 1, tzinfo=UTC)


def test_protocol_test_vector() -> None:
    signed = Signer("MYAK", "MYSK").sign("POST", VECTOR_URL, VECTOR_HEADERS, b'{"k":"v"}', now=VECTOR_DATE)
    assert signed["X-Sdk-Date"] == "20240101T000000Z"
    assert signed["Host"] == "functiongraph.ap-southeast-1.myhuaweicloud.com"
    assert signed["Authorization"] == (
        "SDK-HMAC-SHA256 Access=MYAK, "
        "SignedHeaders=content-type;host;x-cff-request-version;x-project-id;x-sdk-date, "
        f"Signature={VECTOR_SIGNATURE}"
    )


def test_percent_encoded_urn_segment_signs_the_same() -> None:
    encoded = VECTOR_URL.replace(
        "urn:fss:ap-southeast-1:proj123:function:default:myfunc:latest",
        "urn%3Afss%3Aap-southeast-1%3Aproj123%3Afunction%3Adefault%3Amyfunc%3Alatest",
    )
    signed = Signer("MYAK", "MYSK").sign("POST", encoded, VECTOR_HEADERS, b'{"k":"v"}', now=VECTOR_DATE)
    assert signed["Authorization"].endswith(VECTOR_SIGNATURE)


def test_body_and_secret_change_the_signature() -> None:
    base = Signer("MYAK", "MYSK").sign("POST", VECTOR_URL, VECTOR_HEADERS, b'{"k":"v"}', now=VECTOR_DATE)
    other_body = Signer("MYAK", "MYSK").sign(
        "POST", VECTOR_URL, VECTOR_HEADERS, b'{"k":"w"}', now=VECTOR_DATE
    )
    other_key = Signer("MYAK", "OTHER").sign(
        "POST", VECTOR_URL, VECTOR_HEADERS, b'{"k":"v"}', now=VECTOR_DATE
    )
    assert len({base["Authorization"], other_body["Authorization"], other_key["Authorization"]}) == 3


def test_security_token_is_added_before_signing() -> None:
    signed = Signer("MYAK", "MYSK", "STS-TOKEN").sign("GET", "http://127.0.0.1:8080/v2/p?b=2&a=1", {}, b"")
    assert signed["X-Security-Token"] == "STS-TOKEN"
    assert signed["Host"] == "127.0.0.1:8080"
    parsed = parse_authorization(signed["Authorization"])
    assert parsed is not None
    assert "x-security-token" in parsed.signed_headers
    # the verifier side recomputes the same signature from what was sent
    assert parsed.signature == compute_signature(
        method="GET",
        path="/v2/p",
        query=[("b", "2"), ("a", "1")],
        headers=signed,
        signed_headers=parsed.signed_headers,
        body=b"",
        sdk_date=signed["X-Sdk-Date"],
        secret_key="MYSK",
    )


def test_default_port_is_not_in_host() -> None:
    assert Signer("A", "S").sign("GET", "https://h.example:443/x", {}, b"")["Host"] == "h.example"


def test_secrets_are_not_in_repr() -> None:
    text = repr(Signer("MYAK", "SUPERSECRETKEY", "SECURITYTOKENVALUE"))
    assert "MYAK" in text
    assert "SUPERSECRETKEY" not in text
    assert "SECURITYTOKENVALUE" not in text


def test_canonical_pieces() -> None:
    assert canonical_uri("/v2/p/fgs/functions/urn:fss:x/invocations") == (
        "/v2/p/fgs/functions/urn%3Afss%3Ax/invocations/"
    )
    assert canonical_uri("/") == "/"
    assert canonical_query([("b", "x y"), ("a", "1~")]) == "a=1~&b=x%20y"
    assert canonical_query([]) == ""


def test_parse_authorization_rejects_other_schemes() -> None:
    assert parse_authorization("Bearer abc") is None
    assert parse_authorization("SDK-HMAC-SHA256 Access=A, SignedHeaders=host") is None
