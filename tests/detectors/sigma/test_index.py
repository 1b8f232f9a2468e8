"""The rule index: an event meets only rules that can match it, and results do not depend on the index."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.sigma.engine import RuleEngine
from detectors.sigma.fields import FieldView

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def rule_zoo(kit: Any) -> Any:
    r = kit.rule
    return kit.load(
        r({"s": {"event.action": "user-login", "event.outcome": "failure"}, "condition": "s"}, name="eq"),
        r({"s": {"event.action": ["a", "B"]}, "condition": "s"}, name="eq_list"),
        r({"s": {"user_agent.original|contains": "sqlmap"}, "condition": "s"}, name="sub"),
        r({"s": {"url.path|endswith": "/admin", "http.request.method": "POST"}, "condition": "s"}, name="sub_and_eq"),
        r({"s": {"url.path|re": "^/v[0-9]+/files/"}, "condition": "s"}, name="regex"),
        r({"s": {"source.ip|cidr": ["10.0.0.0/8", "2001:db8::/32"]}, "condition": "s"}, name="net"),
        r({"s": {"http.response.bytes|gt": 1000}, "condition": "s"}, name="range"),
        r({"s": {"http.response.bytes|lte": 1000.5, "event.action": "a"}, "condition": "s"}, name="range_and_eq"),
        r(
            {"s": {"url.path|startswith": "/a"}, "t": {"http.response.status_code|lt": 400}, "condition": "s and t"},
            name="sub_and_range",
        ),
        r(
            {"s": {"http.response.status_code|gte": 500}, "f": {"user.name": "x"}, "condition": "s and not f"},
            name="range_and_not",
        ),
        r({"s": {"event.action": "a"}, "f": {"user.name": "x"}, "condition": "not f"}, name="negated"),
        r({"kw": ["union select"], "condition": "kw"}, name="keyword"),
        r({"s": {"user.name": None}, "condition": "s"}, name="null"),
        r({"s": {"http.response.status_code": 401}, "condition": "s"}, name="number"),
        r({"s": {"http.response.status_code": [401, 403.0]}, "condition": "s"}, name="numbers"),
        r({"s": {"url.path|startswith": "/a"}, "t": {"event.action": "b"}, "condition": "s or t"}, name="or"),
        r(
            {"s": {"event.action": "a"}, "condition": "s"},
            name="other_source",
            logsource={"product": "logwarden", "service": "audit"},
        ),
    )


def test_an_event_meets_only_the_rules_it_can_match(kit: Any) -> None:
    engine = RuleEngine(rule_zoo(kit))
    doc = kit.event(0, event__action="user-login", event__outcome="failure", user__name="bob").doc
    names = [r.meta.name for r in engine.candidates(doc)]
    assert names == ["eq", "negated", "null"]  # rules without index atoms (not, null) always meet events
    doc = kit.event(0, url__path="/v2/files/x", source__ip="10.1.1.1", user_agent__original="SQLMap/1").doc
    assert [r.meta.name for r in engine.candidates(doc)] == ["sub", "regex", "net", "negated", "null"]
    assert [r.meta.name for r in engine.rules_for(doc)] != [r.meta.name for r in engine.candidates(doc)]
    assert "other_source" not in [r.meta.name for r in engine.rules_for(doc)]


def test_every_indexed_part_of_an_and_narrows_the_candidates(kit: Any) -> None:
    engine = RuleEngine(rule_zoo(kit))
    doc = kit.event(0, url__path="/a/admin", http__request__method="GET", http__response__bytes=10).doc
    assert [r.meta.name for r in engine.candidates(doc)] == ["negated", "null", "or"]  # GET, 10 bytes
    doc = kit.event(0, url__path="/a/admin", http__request__method="post", http__response__bytes="2e3").doc
    assert [r.meta.name for r in engine.candidates(doc)] == ["sub_and_eq", "range", "negated", "null", "or"]
    doc = kit.event(0, url__path="/a", event__action="A", http__response__status_code=302, http__response__bytes=7).doc
    expected = ["eq_list", "range_and_eq", "sub_and_range", "negated", "null", "or"]  # 302 is not 401
    assert [r.meta.name for r in engine.candidates(doc)] == expected


def test_and_parts_beyond_the_chosen_keys_are_kept_for_the_index(kit: Any) -> None:
    also = {r.meta.name: r.also for r in rule_zoo(kit).rules}
    assert also["sub_and_eq"] == ({("eq", "http.request.method", "post")},)
    assert also["range_and_eq"] == ({("cmp", "http.response.bytes", "LTE 1000.5")},)
    assert also["sub_and_range"] == ({("cmp", "http.response.status_code", "LT 400")},)
    assert also["eq_list"] == also["or"] == also["negated"] == also["range_and_not"] == ()


def test_index_keys_per_rule(kit: Any) -> None:
    keys = {r.meta.name: r.keys for r in rule_zoo(kit).rules}
    assert keys["eq"] == {("eq", "event.action", "user-login")}  # the more specific of the two fields
    assert keys["eq_list"] == {("eq", "event.action", "a"), ("eq", "event.action", "b")}
    assert keys["sub"] == {("sub", "user_agent.original", "sqlmap")}
    assert keys["sub_and_eq"] == {("sub", "url.path", "/admin")}  # POST is too common to narrow much
    assert keys["net"] == {("net", "source.ip", "10.0.0.0/8"), ("net", "source.ip", "2001:db8::/32")}
    assert keys["range"] == {("cmp", "http.response.bytes", "GT 1000")}
    assert keys["range_and_not"] == {("cmp", "http.response.status_code", "GTE 500")}
    assert keys["number"] == {("cmp", "http.response.status_code", "EQ 401")}
    assert keys["negated"] is None and keys["null"] is None
    assert keys["keyword"] is not None and ("sub", "message", "union select") in keys["keyword"]


scalars = st.one_of(
    st.sampled_from(["user-login", "failure", "a", "B", "b", "/admin", "/a/x", "/v1/files/f", "sqlmap", "x", "401"]),
    st.sampled_from(["10.2.3.4", "11.0.0.1", "2001:db8::5", "POST", "union select *"]),
    st.integers(0, 2000),
    st.sampled_from(["1e3", "1000.5", "399", " 500 ", "nan", "-inf", "0x10", "403", "401.0"]),  # numbers as text
    st.sampled_from([401, 401.0, 403, -0.0, 0]),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
)
documents = st.fixed_dictionaries(
    {},
    optional={
        "event.action": scalars,
        "event.outcome": scalars,
        "user_agent.original": scalars,
        "url.path": st.one_of(scalars, st.lists(scalars, max_size=2)),
        "http.request.method": scalars,
        "source.ip": scalars,
        "http.response.bytes": scalars,
        "http.response.status_code": scalars,
        "user.name": scalars,
        "message": scalars,
    },
)


@SETTINGS
@given(docs=st.lists(documents, min_size=1, max_size=10))
def test_results_are_identical_with_and_without_the_index(kit: Any, docs: list[dict[str, Any]]) -> None:
    ruleset = rule_zoo(kit)
    indexed, full = RuleEngine(ruleset), RuleEngine(ruleset, use_index=False)
    for doc in docs:
        doc = kit.event(0, doc).doc
        candidates = {r.meta.name for r in indexed.candidates(doc)}
        matching = {r.meta.name for r in full.rules_for(doc) if r.predicate(FieldView.of(doc))}
        assert matching <= candidates, doc
    events = [kit.event(i, d) for i, d in enumerate(docs)]
    assert [d.id for d in kit.run(ruleset, events)] == [d.id for d in kit.run(ruleset, events, use_index=False)]


def test_timestamp_parts_are_not_indexed_as_numbers(kit: Any) -> None:
    """``|hour: 3`` is a SigmaNumber that tests a part of the value, not the value: no numeric atom for it."""
    ruleset = kit.load(
        kit.rule({"s": {"@timestamp|hour": 3}, "condition": "s"}, name="hour"),
        kit.rule({"s": {"@timestamp|minute": 15, "event.action": "a"}, "condition": "s"}, name="minute_and_eq"),
    )
    keys = {r.meta.name: r.keys for r in ruleset.rules}
    assert keys["hour"] == {("has", "@timestamp", "")}
    assert keys["minute_and_eq"] == {("eq", "event.action", "a")}
    assert {r.meta.name: r.also for r in ruleset.rules}["minute_and_eq"] == ({("has", "@timestamp", "")},)
    at_3_15 = (24 - 8 + 3) * 3600 + 15 * 60  # the kit's clock starts at 08:00
    events = [kit.event(at_3_15 + i, event__action="a") for i in range(3)]
    found = [d.rule_name for d in kit.run(ruleset, events)]
    assert found == [d.rule_name for d in kit.run(ruleset, events, use_index=False)]
    assert {"hour", "minute_and_eq"} <= set(found)
