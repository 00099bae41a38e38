"""SDK-HMAC-SHA256 request signing for AK/SK credentials (PROTOCOL.md section 2).

The same functions compute the signature on the client (:class:`Signer`) and check it in the
emulator (:func:`compute_signature`), so both sides agree by construction, and the emulator's
conformance test with the official SDK checks the algorithm itself.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote, unquote, urlsplit

ALGORITHM = "SDK-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
HEADER_DATE = "X-Sdk-Date"
HEADER_AUTHORIZATION = "Authorization"
HEADER_SECURITY_TOKEN = "X-Security-Token"


def _encode(value: str) -> str:
    return quote(value, safe="~")


def canonical_uri(path: str) -> str:
    """Percent-encode each path segment with only ``~`` safe; the result always ends with ``/``."""
    encoded = "/".join(_encode(segment) for segment in unquote(path).split("/"))
    return encoded if encoded.endswith("/") else encoded + "/"


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Sorted, percent-encoded ``key=value`` pairs joined by ``&`` (empty when there are none)."""
    return "&".join(f"{_encode(key)}={_encode(value)}" for key, value in sorted(pairs))


def query_pairs(query_string: str) -> list[tuple[str, str]]:
    """Decoded ``(key, value)`` pairs of a raw query string, in order (no ``=``: the value is ``""``)."""
    pairs = []
    for item in query_string.split("&"):
        if item:
            key, _, value = item.partition("=")
            pairs.append((unquote(key), unquote(value)))
    return pairs


def signable_header_names(headers: Iterable[str]) -> list[str]:
    """Lower-cased, sorted names of the headers that get signed (those without ``_``)."""
    return sorted({name.lower() for name in headers if "_" not in name})


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def compute_signature(
    *,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: list[str],
    body: bytes,
    sdk_date: str,
    secret_key: str,
) -> str:
    """
    Compute the hex signature of one request.

    :param headers: the request headers; looked up case-insensitively by the signed names.
    :param signed_headers: lower-cased header names, in the order of ``SignedHeaders``.
    :raises KeyError: when a signed header is missing from ``headers``.
    """
    lowered = {name.lower(): str(value).strip() for name, value in headers.items()}
    canonical_headers = "".join(f"{name}:{lowered[name]}\n" for name in signed_headers)
    canonical_request = "\n".join(
        [
            method.upper(),
            canonical_uri(path),
            canonical_query(query),
            canonical_headers,
            ";".join(signed_headers),
            _sha256_hex(body),
        ]
    )
    string_to_sign = f"{ALGORITHM}\n{sdk_date}\n{_sha256_hex(canonical_request.encode())}"
    return hmac.new(secret_key.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ParsedAuthorization:
    """The three fields of an ``SDK-HMAC-SHA256`` Authorization header."""

    access_key: str
    signed_headers: list[str]
    signature: str


def parse_authorization(value: str) -> ParsedAuthorization | None:
    """Parse an Authorization header value; ``None`` when it is not a well-formed SDK-HMAC-SHA256 one."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme != ALGORITHM:
        return None
    fields: dict[str, str] = {}
    for item in rest.split(","):
        key, sep, val = item.strip().partition("=")
        if not sep:
            return None
        fields[key] = val
    try:
        return ParsedAuthorization(
            access_key=fields["Access"],
            signed_headers=fields["SignedHeaders"].split(";"),
            signature=fields["Signature"],
        )
    except KeyError:
        return None


@dataclass(frozen=True)
class Signer:
    """
    Sign requests with an access key / secret key pair.

    :param access_key: the AK.
    :param secret_key: the SK; never part of the repr.
    :param security_token: the security token of temporary credentials, sent as ``X-Security-Token``.
    """

    access_key: str
    secret_key: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)

    def sign(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        now: datetime | None = None,
    ) -> dict[str, str]:
        """
        Return ``headers`` plus ``Host``, ``X-Sdk-Date``, the security token and ``Authorization``.

        The ``Host`` header is signed exactly as the HTTP client will send it: the URL's host, with the
        port only when it is not the scheme's default.
        """
        parts = urlsplit(url)
        signed = dict(headers)
        if not any(name.lower() == "host" for name in signed):
            signed["Host"] = _host_header(parts.scheme, parts.hostname or "", parts.port)
        signed[HEADER_DATE] = (now or datetime.now(UTC)).strftime(DATE_FORMAT)
        if self.security_token:
            signed[HEADER_SECURITY_TOKEN] = self.security_token
        names = signable_header_names(signed)
        signature = compute_signature(
            method=method,
            path=parts.path or "/",
            query=query_pairs(parts.query),
            headers=signed,
            signed_headers=names,
            body=body,
            sdk_date=signed[HEADER_DATE],
            secret_key=self.secret_key,
        )
        signed[HEADER_AUTHORIZATION] = (
            f"{ALGORITHM} Access={self.access_key}, SignedHeaders={';'.join(names)}, Signature={signature}"
        )
        return signed


def _host_header(scheme: str, host: str, port: int | None) -> str:
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    default_port = {"http": 80, "https": 443}.get(scheme)
    return host if port is None or port == default_port else f"{host}:{port}"
