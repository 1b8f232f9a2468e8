"""Every field the dashboards use is catalogued (ingest/ecs.py) with a type its use accepts. Offline.

Uses: bucket and metric fields of Lens columns (``terms`` needs keyword/ip/long/boolean, ``date_histogram`` a
date, ``sum``/``average``/``percentile`` a number, ``min``/``max`` a number or date, ``unique_count`` anything
aggregatable), fields in KQL queries and column filters (searchable), saved-search columns (mapped) and sort
fields (aggregatable). Events data view -> EVENT_FIELDS, alerts data view -> ALERT_FIELDS.
"""

from __future__ import annotations

from fnmatch import fnmatch

import pytest

from alerting.sinks.elasticsearch import alerts_index
from ingest.ecs import ALERT_FIELDS, EVENT_FIELDS, SOURCE_ONLY_FIELDS
from logwarden.setup import events_alias
from tests.dashboards.panel_queries import ACCEPTS, AGGREGATING, FieldUse, field_uses, shipped

SHIPPED = shipped()
CATALOGUES = {"logwarden-events": EVENT_FIELDS, "logwarden-alerts": ALERT_FIELDS}
NOT_AGGREGATABLE = frozenset({"text", "geo_point"})
#: Lens column dataType for each catalogue type
LENS_TYPES = {"keyword": "string", "ip": "ip", "long": "number", "double": "number", "date": "date",
              "boolean": "boolean"}  # fmt: skip


def _problem(use: FieldUse) -> str | None:
    catalogue = CATALOGUES[use.data_view]
    kind = catalogue.get(use.field)
    if kind is None:
        return f"{use.panel}: {use.field} ({use.use}) is not in the catalogue of {use.data_view}"
    if use.field in SOURCE_ONLY_FIELDS and use.use != "column":
        return f"{use.panel}: {use.field} is kept in _source only (not indexed): cannot {use.use}"
    accepted = ACCEPTS[use.use]
    if accepted is not None and kind not in accepted:
        return f"{use.panel}: {use.use} on {use.field} needs {sorted(accepted)}, the catalogue says {kind}"
    if use.use in AGGREGATING and kind in NOT_AGGREGATABLE:
        return f"{use.panel}: {use.use} on {use.field} needs an aggregatable field, {kind} is not"
    return None


def test_the_data_views_are_the_events_and_alerts_views() -> None:
    assert set(SHIPPED.data_views) == set(CATALOGUES)


def test_every_used_field_is_catalogued_with_a_type_its_use_accepts() -> None:
    uses = list(field_uses(SHIPPED))
    assert len(uses) > 150
    problems = [p for use in uses if (p := _problem(use))]
    assert not problems, "\n".join(problems)


def test_lens_column_data_types_match_the_catalogue() -> None:
    problems = []
    for lens in SHIPPED.lens:
        for col in lens.columns:
            if col.field is None or col.operation in ("unique_count", "sum", "average", "percentile"):
                continue  # count-like and numeric results: number whatever the field
            obj = next(o for o in SHIPPED.objects if o.id == lens.id)
            layer = obj.attributes["state"]["datasourceStates"]["formBased"]["layers"]["main"]
            expected = LENS_TYPES[CATALOGUES[lens.data_view][col.field]]
            if layer["columns"][col.id]["dataType"] != expected:
                problems.append(f"{lens.id} {col.id}: dataType {layer['columns'][col.id]['dataType']}, want {expected}")
    assert not problems, problems


def test_time_fields_are_dates() -> None:
    for view_id, (_, time_field) in SHIPPED.data_views.items():
        assert CATALOGUES[view_id][time_field] == "date"


@pytest.mark.parametrize("prefix", ["logwarden"])
def test_data_view_patterns_match_the_indices_setup_creates(prefix: str) -> None:
    events, _ = SHIPPED.data_views["logwarden-events"]
    alerts, _ = SHIPPED.data_views["logwarden-alerts"]
    assert fnmatch(f"{prefix}-events-2026.11.02", events) and fnmatch(events_alias(prefix), events)
    assert fnmatch(alerts_index(prefix), alerts)
    assert not fnmatch(alerts_index(prefix), events) and not fnmatch(f"{prefix}-events-2026.11.02", alerts)


def test_the_checker_catches_uncatalogued_and_mistyped_fields() -> None:
    bad = [
        FieldUse("p", "logwarden-events", "user.nickname", "terms"),
        FieldUse("p", "logwarden-events", "message", "terms"),
        FieldUse("p", "logwarden-events", "user.id", "sum"),
        FieldUse("p", "logwarden-events", "source.ip", "date_histogram"),
        FieldUse("p", "logwarden-alerts", "logwarden.alert.explanation", "unique_count"),
        FieldUse("p", "logwarden-events", "event.original", "query"),
        FieldUse("p", "logwarden-alerts", "user.id", "column"),
    ]
    assert all(_problem(use) for use in bad)
    good = [FieldUse("p", "logwarden-alerts", "logwarden.alert.explanation", "column"),
            FieldUse("p", "logwarden-events", "@timestamp", "max"),
            FieldUse("p", "logwarden-events", "logwarden.api.mfa", "terms")]  # fmt: skip
    assert not any(_problem(use) for use in good)
