from __future__ import annotations

import pytest

from airflow_provider_fgs.protocol.errors import InvalidRequestError
from airflow_provider_fgs.protocol.urn import FunctionUrn

PROJECT = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"


def test_parse_full_urn_round_trips() -> None:
    text = f"urn:fss:ap-southeast-1:{PROJECT}:function:default:hello:latest"
    urn = FunctionUrn.parse(text)
    assert (urn.region, urn.project_id, urn.package, urn.name, urn.qualifier) == (
        "ap-southeast-1",
        PROJECT,
        "default",
        "hello",
        "latest",
    )
    assert str(urn) == text


def test_parse_without_qualifier_defaults_to_latest() -> None:
    urn = FunctionUrn.parse(f"urn:fss:ap-southeast-1:{PROJECT}:function:pkg:fn")
    assert urn.qualifier == "latest"
    assert urn.unqualified == f"urn:fss:ap-southeast-1:{PROJECT}:function:pkg:fn"


def test_alias_qualifier() -> None:
    urn = FunctionUrn.parse(f"urn:fss:ap-southeast-1:{PROJECT}:function:default:fn:!prod")
    assert urn.alias == "prod"
    assert FunctionUrn.parse(f"urn:fss:ap-southeast-1:{PROJECT}:function:default:fn:v1.2").alias is None


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"name": "fn"}, "default:fn:latest"),
        ({"name": "fn", "package": "apps", "qualifier": "3"}, "apps:fn:3"),
        ({"name": "fn", "alias": "prod"}, "default:fn:!prod"),
        ({"name": "fn", "alias": "!prod"}, "default:fn:!prod"),
    ],
)
def test_from_parts(kwargs: dict[str, str], expected: str) -> None:
    urn = FunctionUrn.from_parts(region="cn-north-4", project_id=PROJECT, **kwargs)
    assert str(urn) == f"urn:fss:cn-north-4:{PROJECT}:function:{expected}"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("urn:fss:ap-southeast-1:proj:function:default", "URN"),
        ("arn:fss:ap-southeast-1:proj:function:default:fn", "URN"),
        ("urn:fss:ap-southeast-1:proj:func:default:fn", "URN"),
        ("urn:fss:AP:proj:function:default:fn", "region"),
        ("urn:fss:ap-southeast-1:pr/oj:function:default:fn", "project id"),
        ("urn:fss:ap-southeast-1:proj:function:default:9fn", "function name"),
        ("urn:fss:ap-southeast-1:proj:function:default:fn:!9x", "alias"),
        ("urn:fss:ap-southeast-1:proj:function:default:fn:a b", "qualifier"),
    ],
)
def test_invalid_urns_name_the_bad_part(text: str, named: str) -> None:
    with pytest.raises(InvalidRequestError, match=named):
        FunctionUrn.parse(text)


def test_qualifier_and_alias_together_is_rejected() -> None:
    with pytest.raises(InvalidRequestError, match="not both"):
        FunctionUrn.from_parts(region="r-1", project_id=PROJECT, name="fn", qualifier="1", alias="prod")


def test_non_string_urn_is_rejected() -> None:
    with pytest.raises(InvalidRequestError, match="expected a string"):
        FunctionUrn.parse(42)  # type: ignore[arg-type]
