"""Sigma matching semantics, through small rules loaded from files like the shipped ones."""

from __future__ import annotations

from itertools import count
from pathlib import Path
from typing import Any

import pytest
import yaml

from detectors.sigma.fields import field_getter
from detectors.sigma.loader import load_rules
from detectors.sigma.rules import DetectionRule

_ids = count(1)


def compile_rule(tmp_path: Path, detection: dict[str, Any]) -> DetectionRule:
    """Load one single-event rule with ``detection`` through :func:`load_rules`."""
    n = next(_ids)
    rule = {
        "title": f"rule {n}",
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "name": f"rule_{n}",
        "description": "test rule",
        "logsource": {"product": "logwarden", "service": "api_access"},
        "detection": detection,
        "level": "low",
    }
    path = tmp_path / f"rule_{n}.yml"
    path.write_text(yaml.safe_dump(rule, sort_keys=False), encoding="utf-8")
    ruleset = load_rules([path])
    assert ruleset.errors == [], [str(e) for e in ruleset.errors]
    (compiled,) = ruleset.rules
    return compiled


def select(**fields: Any) -> dict[str, Any]:
    return {"selection": fields, "condition": "selection"}


def doc(**dotted: Any) -> dict[str, Any]:
    """A nested document from dotted names (``user__id`` -> ``user.id``)."""
    out: dict[str, Any] = {}
    for name, value in dotted.items():
        *parents, leaf = name.split("__")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def test_equality_is_case_insensitive(tmp_path: Path) -> None:
    rule = compile_rule(tmp_path, select(**{"event.outcome": "Failure"}))
    assert rule.matches(doc(event__outcome="failure"))
    assert rule.matches(doc(event__outcome="FAILURE"))
    assert not rule.matches(doc(event__outcome="failures"))
    assert not rule.matches(doc(event__outcome="success"))
    assert not rule.matches(doc(user__id="failure"))


def test_cased_modifier_is_case_sensitive(tmp_path: Path) -> None:
    rule = compile_rule(tmp_path, select(**{"user.id|cased": "User_1"}))
    assert rule.matches(doc(user__id="User_1"))
    assert not rule.matches(doc(user__id="user_1"))


def test_wildcards(tmp_path: Path) -> None:
    rule = compile_rule(tmp_path, select(**{"url.path": "/v1/files/*/cont?nt"}))
    assert rule.matches(doc(url__path="/v1/files/file_1/content"))
    assert rule.matches(doc(url__path="/V1/FILES/x/y/CONTENT"))  # * spans slashes, case-insensitive
    assert rule.matches(doc(url__path="/v1/files//contant"))
    assert not rule.matches(doc(url__path="/v1/files/file_1/contnt"))  # ? is exactly one character
    assert not rule.matches(doc(url__path="/v1/files/file_1/content/extra"))  # anchored


def test_regex_metacharacters_in_plain_values_are_literal(tmp_path: Path) -> None:
    rule = compile_rule(tmp_path, select(**{"url.query": "a.b+(c)*"}))
    assert rule.matches(doc(url__query="a.b+(c)"))
    assert rule.matches(doc(url__query="A.B+(C)xyz"))
    assert not rule.matches(doc(url__query="aXbb(c)"))


def test_contains_startswith_endswith(tmp_path: Path) -> None:
    contains = compile_rule(tmp_path, select(**{"user_agent.original|contains": "python-requests"}))
    starts = compile_rule(tmp_path, select(**{"url.path|startswith": "/v1/auth/"}))
    ends = compile_rule(tmp_path, select(**{"url.path|endswith": "/content"}))
    assert contains.matches(doc(user_agent__original="Python-Requests/2.31.0 (x)"))
    assert not contains.matches(doc(user_agent__original="curl/8"))
    assert starts.matches(doc(url__path="/V1/Auth/login"))
    assert not starts.matches(doc(url__path="/v2/v1/auth/login"))
    assert ends.matches(doc(url__path="/v1/files/f/content"))
    assert not ends.matches(doc(url__path="/v1/files/f/content/x"))


def test_contains_all(tmp_path: Path) -> None:
    rule = compile_rule(tmp_path, select(**{"url.query|contains|all": ["admin", "delete"]}))
    assert rule.matches(doc(url__query="x=admin&op=delete"))
    assert not rule.matches(doc(url__query="x=admin"))


def test_value_list_is_or(tmp_path: Path) -> None:
    rule = compile_rule(tmp_path, select(**{"http.request.method": ["PUT", "delete"]}))
    assert rule.matches(doc(http__request__method="DELETE"))
    assert rule.matches(doc(http__request__method="put"))
    assert not rule.matches(doc(http__request__method="GET"))


def test_regex(tmp_path: Path) -> None:
    rule = compile_rule(tmp_path, select(**{"user.id|re": "^user_[0-9]{3}$"}))
    assert rule.matches(doc(user__id="user_123"))
    assert not rule.matches(doc(user__id="user_12"))
    assert not rule.matches(doc(user__id="USER_123"))  # |re is case-sensitive without |i
    insensitive = compile_rule(tmp_path, select(**{"user.id|re|i": "^user_[0-9]{3}$"}))
    assert insensitive.matches(doc(user__id="USER_123"))


def test_regex_search_is_unanchored(tmp_path: Path) -> None:
    rule = compile_rule(tmp_path, select(**{"url.query|re": "union\\s+select"}))
    assert rule.matches(doc(url__query="id=1 union  select *"))
    assert not rule.matches(doc(url__query="id=1"))
    assert not rule.matches(doc(url__query=123))


def test_cidr(tmp_path: Path) -> None:
    rule = compile_rule(tmp_path, select(**{"source.ip|cidr": ["10.0.0.0/8", "2001:db8::/32"]}))
    assert rule.matches(doc(source__ip="10.20.30.40"))
    assert rule.matches(doc(source__ip="2001:db8::1"))
    assert not rule.matches(doc(source__ip="11.0.0.1"))
    assert not rule.matches(doc(source__ip="not an ip"))
    assert not rule.matches(doc(source__ip=None))


def test_numeric_comparisons(tmp_path: Path) -> None:
    gte = compile_rule(tmp_path, select(**{"http.response.bytes|gte": 1000}))
    lt = compile_rule(tmp_path, select(**{"http.response.status_code|lt": 400}))
    assert gte.matches(doc(http__response__bytes=1000))
    assert gte.matches(doc(http__response__bytes=1e6))
    assert not gte.matches(doc(http__response__bytes=999))
    assert not gte.matches(doc(http__response__bytes="lots"))
    assert not gte.matches(doc(http__response__bytes=True))
    assert not gte.matches(doc())
    assert lt.matches(doc(http__response__status_code=399))
    assert not lt.matches(doc(http__response__status_code=400))


def test_number_equality(tmp_path: Path) -> None:
    rule = compile_rule(tmp_path, select(**{"http.response.status_code": 401}))
    assert rule.matches(doc(http__response__status_code=401))
    assert not rule.matches(doc(http__response__status_code=4010))
    assert not rule.matches(doc(http__response__status_code=200))


def test_boolean(tmp_path: Path) -> None:
    rule = compile_rule(tmp_path, select(**{"logwarden.api.mfa": False}))
    assert rule.matches(doc(logwarden__api__mfa=False))
    assert not rule.matches(doc(logwarden__api__mfa=True))
    assert not rule.matches(doc(logwarden__api__mfa=0))
    assert not rule.matches(doc())


def test_list_fields_match_any_element(tmp_path: Path) -> None:
    rule = compile_rule(tmp_path, select(**{"event.category": "authentication"}))
    assert rule.matches(doc(event__category=["authentication", "web"]))
    assert rule.matches(doc(event__category=["web", "Authentication"]))
    assert not rule.matches(doc(event__category=["web"]))
    assert not rule.matches(doc(event__category=[]))


def test_lists_of_objects_are_searched(tmp_path: Path) -> None:
    rule = compile_rule(tmp_path, select(**{"threat.technique.id": "T1110"}))
    assert rule.matches({"threat": [{"technique": {"id": "T1078"}}, {"technique": {"id": ["T1110"]}}]})


def test_null_matches_an_absent_field(tmp_path: Path) -> None:
    rule = compile_rule(tmp_path, select(**{"user.id": None}))
    assert rule.matches(doc(url__path="/"))
    assert rule.matches(doc(user__id=None))
    assert rule.matches(doc(user__name="x"))
    assert not rule.matches(doc(user__id="user_1"))


def test_and_not_filter(tmp_path: Path) -> None:
    rule = compile_rule(
        tmp_path,
        {
            "selection": {"event.outcome": "failure"},
            "filter": {"source.ip|cidr": "10.0.0.0/8"},
            "condition": "selection and not filter",
        },
    )
    assert rule.matches(doc(event__outcome="failure", source__ip="203.0.113.1"))
    assert rule.matches(doc(event__outcome="failure"))  # no IP: not filtered out
    assert not rule.matches(doc(event__outcome="failure", source__ip="10.1.2.3"))
    assert not rule.matches(doc(event__outcome="success", source__ip="203.0.113.1"))


def test_one_of_selection_pattern(tmp_path: Path) -> None:
    rule = compile_rule(
        tmp_path,
        {
            "selection_login": {"event.action": "user-login", "event.outcome": "failure"},
            "selection_mfa": {"event.action": "mfa-verify"},
            "other": {"user.id": "u1"},
            "condition": "1 of selection_*",
        },
    )
    assert rule.matches(doc(event__action="user-login", event__outcome="failure"))
    assert rule.matches(doc(event__action="mfa-verify"))
    assert not rule.matches(doc(event__action="user-login", event__outcome="success"))
    assert not rule.matches(doc(user__id="u1"))  # "other" is not a selection_*


def test_all_of_them(tmp_path: Path) -> None:
    rule = compile_rule(
        tmp_path,
        {"a": {"user.id": "u1"}, "b": {"event.outcome": "failure"}, "condition": "all of them"},
    )
    assert rule.matches(doc(user__id="u1", event__outcome="failure"))
    assert not rule.matches(doc(user__id="u1"))


def test_selection_list_of_maps_is_or(tmp_path: Path) -> None:
    rule = compile_rule(tmp_path, {"selection": [{"user.id": "u1"}, {"user.name": "alice"}], "condition": "selection"})
    assert rule.matches(doc(user__id="u1"))
    assert rule.matches(doc(user__name="ALICE"))
    assert not rule.matches(doc(user__id="u2", user__name="bob"))


def test_several_conditions_are_or(tmp_path: Path) -> None:
    rule = compile_rule(tmp_path, {"a": {"user.id": "u1"}, "b": {"user.name": "bob"}, "condition": ["a", "b"]})
    assert rule.matches(doc(user__id="u1"))
    assert rule.matches(doc(user__name="bob"))
    assert not rule.matches(doc(user__id="u2"))


def test_flat_dotted_keys_work_too(tmp_path: Path) -> None:
    rule = compile_rule(tmp_path, select(**{"user.id": "u1"}))
    assert rule.matches({"user.id": "u1"})


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"a": {"b": [1, {"c": 2}]}}, [1, {"c": 2}]),
        ({"a": [{"b": 1}, {"b": [2, 3]}, {"x": 0}]}, [1, 2, 3]),
        ({"a": {"c": 1}}, []),
        ({"a": "not an object"}, []),
        ({"a.b": 5}, [5]),
    ],
)
def test_field_getter(document: dict[str, Any], expected: list[Any]) -> None:
    assert field_getter("a.b")(document) == expected
