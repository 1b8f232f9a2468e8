"""The field catalogue and the index templates generated from it."""

from __future__ import annotations

from typing import Any

import pytest

from ingest.ecs import ALERT_FIELDS, ECS_VERSION, EVENT_FIELDS, FIELDS, index_template, mapping_properties

# types of the Elasticsearch server core (no module or x-pack plugin needed): our stripped test node has them
CORE_TYPES = {"keyword", "text", "date", "ip", "long", "double", "boolean", "geo_point"}


def leaf_types(properties: dict[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """Dotted field name -> mapping spec, from nested mapping properties."""
    out: dict[str, dict[str, Any]] = {}
    for name, spec in properties.items():
        if "properties" in spec:
            assert "type" not in spec, f"{prefix}{name} is both an object and a {spec['type']}"
            out.update(leaf_types(spec["properties"], f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = spec
    return out


def test_mapping_properties_nests_dotted_names() -> None:
    assert mapping_properties({"a.b.c": "long", "a.d": "ip", "e": "boolean"}) == {
        "a": {"properties": {"b": {"properties": {"c": {"type": "long"}}}, "d": {"type": "ip"}}},
        "e": {"type": "boolean"},
    }


def test_mapping_properties_keyword_ignore_above_and_timestamp_kept_whole() -> None:
    props = mapping_properties({"@timestamp": "date", "user.id": "keyword", "event.original": "keyword"})
    assert props["@timestamp"] == {"type": "date"}
    assert props["user"]["properties"]["id"] == {"type": "keyword", "ignore_above": 1024}
    # the raw original is kept in _source only: not indexed, no doc values
    assert props["event"]["properties"]["original"] == {"type": "keyword", "index": False, "doc_values": False}


@pytest.mark.parametrize("fields", [EVENT_FIELDS, ALERT_FIELDS], ids=["events", "alerts"])
def test_mapping_round_trips_every_catalogued_field(fields: dict[str, str]) -> None:
    leaves = leaf_types(mapping_properties(fields))
    assert {name: spec["type"] for name, spec in leaves.items()} == fields


def test_no_field_is_both_a_leaf_and_an_object() -> None:
    names = set(FIELDS)
    clashes = sorted(n for n in names for other in names if other.startswith(f"{n}."))
    assert not clashes, f"fields that are also object parents: {clashes}"


def test_catalogue_uses_only_core_types() -> None:
    odd = {name: t for name, t in FIELDS.items() if t not in CORE_TYPES}
    assert not odd, f"non-core field types: {odd}"


def test_shared_fields_have_the_same_type_in_events_and_alerts() -> None:
    differing = {n: (EVENT_FIELDS[n], ALERT_FIELDS[n]) for n in EVENT_FIELDS.keys() & ALERT_FIELDS.keys()}
    assert {n: ts for n, ts in differing.items() if ts[0] != ts[1]} == {}


def test_index_template_shape() -> None:
    body = index_template("logwarden-events-*", "logwarden-events", EVENT_FIELDS)
    assert body["index_patterns"] == ["logwarden-events-*"]
    assert body["priority"] == 200
    template = body["template"]
    assert template["mappings"]["dynamic"] is False
    assert template["mappings"]["date_detection"] is False
    assert template["aliases"] == {"logwarden-events": {}}
    assert template["settings"]["number_of_shards"] == 1
    assert body["_meta"] == {"managed_by": "logwarden", "ecs_version": ECS_VERSION}
    types = {spec["type"] for spec in leaf_types(template["mappings"]["properties"]).values()}
    assert types <= CORE_TYPES
    assert leaf_types(template["mappings"]["properties"])["source.ip"]["type"] == "ip"


def test_index_template_without_alias() -> None:
    body = index_template("logwarden-alerts", None, ALERT_FIELDS, priority=300)
    assert body["template"]["aliases"] == {}
    assert body["priority"] == 300
    assert leaf_types(body["template"]["mappings"]["properties"])["event.risk_score"]["type"] == "double"
