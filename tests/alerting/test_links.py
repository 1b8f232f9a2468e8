"""Kibana deep links: Discover on a detection's source events."""

from __future__ import annotations

import re
from dataclasses import replace
from urllib.parse import parse_qs, unquote, urlsplit

from hypothesis import given
from hypothesis import strategies as st

from alerting.links import MAX_IDS, discover_url, evidence_query, kql_string, rison_string
from detectors.detection import Detection

BASE = Detection(
    id="d1",
    rule_id="r1",
    rule_name="api_login_brute_force",
    title="Brute force",
    description="",
    level="high",
    group={"user.id": "ps_k1_abc", "source.ip": "203.0.113.7"},
    first_seen="2026-11-02T08:00:00.000Z",
    last_seen="2026-11-02T08:03:00.000Z",
    event_count=12,
    event_ids=[f"id{i}" for i in range(30)],
)


def state(url: str) -> dict[str, str]:
    """The rison app state (``_g``, ``_a``) of a Discover link, decoded."""
    fragment = urlsplit(url).fragment
    assert fragment.startswith("/?")
    return {k: unquote(v[0]) for k, v in parse_qs(fragment[2:], keep_blank_values=True).items()}


def rison_unquote(text: str) -> str:
    assert text[0] == text[-1] == "'"
    return re.sub(r"!(.)", r"\1", text[1:-1])


def test_grouped_detection_links_to_the_entitys_events_in_the_window() -> None:
    got = state(discover_url("http://kibana:5601/", BASE, "a" * 32))
    assert got["_g"] == "(time:(from:'2026-11-02T07:59:00.000Z',to:'2026-11-02T08:04:00.000Z'))"
    assert "dataViewId:'logwarden-events'" in got["_a"]
    assert 'query:\'source.ip : "203.0.113.7" and user.id : "ps_k1_abc"\'' in got["_a"]


def test_ungrouped_detection_links_to_its_first_source_events() -> None:
    query = evidence_query(replace(BASE, group={}))
    assert query is not None and query.startswith('_id : ("id0" or "id1"')
    assert query.count(" or ") == MAX_IDS - 1


def test_without_evidence_the_link_opens_the_alert_document() -> None:
    got = state(discover_url("http://kibana:5601", replace(BASE, group={}, event_ids=[]), "a" * 32))
    assert "dataViewId:'logwarden-alerts'" in got["_a"]
    assert f'logwarden.alert.id : \\"{"a" * 32}\\"'.replace("\\", "") in got["_a"]


@given(st.text())
def test_any_entity_value_round_trips_through_kql_and_rison(value: str) -> None:
    quoted = kql_string(value)
    assert quoted[0] == quoted[-1] == '"'
    assert re.sub(r"\\(.)", r"\1", quoted[1:-1]) == value
    assert rison_unquote(rison_string(quoted)) == quoted
    url = discover_url("http://kibana:5601", replace(BASE, group={"user.id": value}), "x")
    assert " " not in url and "#" not in url.split("#", 1)[1]
