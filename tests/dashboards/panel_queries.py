"""What each shipped panel asks Elasticsearch, harvested from the NDJSON (not from the specs that generate it).

A Lens panel becomes the search Kibana would run: its KQL query (``kql.to_dsl``) and its layer's columns as
aggregations (``terms``/``date_histogram`` buckets nested in ``columnOrder``, metrics inside the innermost
bucket, a column's KQL filter as a ``filter`` aggregation). A saved search becomes its query and sort.
``FieldUse`` lists every field with what it is used for, for the type checks (catalogue and ``_field_caps``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from logwarden.kibana_validate import SavedObject, load
from tests.dashboards import kql

REPO: Final = Path(__file__).resolve().parents[2]
DASHBOARD_FILES: Final = sorted((REPO / "dashboards").glob("*.ndjson"))

#: Elasticsearch field types each use accepts (None: any type; "query" needs a searchable field).
ACCEPTS: Final[dict[str, frozenset[str] | None]] = {
    "terms": frozenset({"keyword", "ip", "long", "integer", "short", "byte", "double", "float", "boolean"}),
    "date_histogram": frozenset({"date"}),
    "min": frozenset({"long", "integer", "double", "float", "date"}),
    "max": frozenset({"long", "integer", "double", "float", "date"}),
    "sum": frozenset({"long", "integer", "double", "float"}),
    "average": frozenset({"long", "integer", "double", "float"}),
    "median": frozenset({"long", "integer", "double", "float"}),
    "percentile": frozenset({"long", "integer", "double", "float"}),
    "unique_count": None,
    "sort": None,
    "query": None,
    "column": None,
}
#: Uses that need doc values (an aggregatable field); "query" needs an indexed one, "column" only a mapping.
AGGREGATING: Final = frozenset(ACCEPTS) - {"query", "column"}
_METRIC_AGG: Final = {"sum": "sum", "average": "avg", "min": "min", "max": "max", "unique_count": "cardinality"}


@dataclass(frozen=True)
class Column:
    id: str
    operation: str
    field: str | None  # None for count
    bucketed: bool
    params: dict[str, Any]
    filter: str | None  # the column's KQL filter


@dataclass(frozen=True)
class LensPanel:
    id: str
    title: str
    data_view: str
    query: str
    columns: tuple[Column, ...]  # columnOrder


@dataclass(frozen=True)
class SearchPanel:
    id: str
    title: str
    data_view: str
    query: str
    columns: tuple[str, ...]
    sort: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class FieldUse:
    panel: str
    data_view: str
    field: str
    use: str  # a key of ACCEPTS


@dataclass(frozen=True)
class Shipped:
    objects: list[SavedObject]
    data_views: dict[str, tuple[str, str]]  # id -> (index pattern, time field)
    lens: list[LensPanel]
    searches: list[SearchPanel]


def shipped(paths: list[Path] = DASHBOARD_FILES) -> Shipped:
    objects, problems = load(paths)
    assert not problems, problems
    views = {o.id: (o.attributes["title"], o.attributes.get("timeFieldName", "")) for o in objects
             if o.type == "index-pattern"}  # fmt: skip
    return Shipped(objects, views, [_lens(o) for o in objects if o.type == "lens"],
                   [_search(o) for o in objects if o.type == "search"])  # fmt: skip


def _ref_id(obj: SavedObject, name: str) -> str:
    ref = obj.reference(name)
    assert ref is not None, f"{obj.id}: no reference {name}"
    return str(ref["id"])


def _lens(obj: SavedObject) -> LensPanel:
    state = obj.attributes["state"]
    layers = state["datasourceStates"]["formBased"]["layers"]
    assert len(layers) == 1, f"{obj.id}: one layer per panel is what the ES translation handles"
    (layer_id, layer), *_ = layers.items()
    columns = tuple(
        Column(cid, (c := layer["columns"][cid])["operationType"], None if c["operationType"] == "count"
               else c["sourceField"], c["isBucketed"], c.get("params") or {}, (c.get("filter") or {}).get("query"))
        for cid in layer["columnOrder"]
    )  # fmt: skip
    view = _ref_id(obj, f"indexpattern-datasource-layer-{layer_id}")
    return LensPanel(obj.id, obj.attributes["title"], view, state["query"]["query"], columns)


def _search(obj: SavedObject) -> SearchPanel:
    import json

    source = json.loads(obj.attributes["kibanaSavedObjectMeta"]["searchSourceJSON"])
    view = _ref_id(obj, source["indexRefName"])
    sort = tuple((f, d) for f, d in obj.attributes.get("sort", []))
    return SearchPanel(obj.id, obj.attributes["title"], view, source["query"]["query"],
                       tuple(obj.attributes["columns"]), sort)  # fmt: skip


def field_uses(ship: Shipped) -> Iterator[FieldUse]:
    """Every (panel, data view, field, use): bucket and metric fields, query and filter fields, columns, sorts."""
    for lens in ship.lens:
        for query in (lens.query, *(c.filter for c in lens.columns if c.filter)):
            yield from (FieldUse(lens.id, lens.data_view, f, "query") for f in kql.fields(query or ""))
        for col in lens.columns:
            if col.field is not None:
                yield FieldUse(lens.id, lens.data_view, col.field, col.operation)
    for search in ship.searches:
        yield from (FieldUse(search.id, search.data_view, f, "query") for f in kql.fields(search.query))
        yield from (FieldUse(search.id, search.data_view, f, "column") for f in search.columns)
        yield from (FieldUse(search.id, search.data_view, f, "sort") for f, _ in search.sort)
    for view_id, (_, time_field) in ship.data_views.items():
        if time_field:
            yield FieldUse(view_id, view_id, time_field, "date_histogram")


# --- Lens panel -> Elasticsearch search ------------------------------------------------------------------------


def _metric_agg(col: Column) -> dict[str, Any] | None:
    if col.operation == "count":
        return None
    if col.operation in ("percentile", "median"):
        return {"percentiles": {"field": col.field, "percents": [col.params.get("percentile", 50)]}}
    return {_METRIC_AGG[col.operation]: {"field": col.field}}


def _column_agg(col: Column) -> dict[str, Any] | None:
    """The aggregation of a metric column (None: a plain count, the bucket's doc_count)."""
    agg = _metric_agg(col)
    if col.filter:
        return {"filter": kql.to_dsl(col.filter), **({"aggs": {"v": agg}} if agg else {})}
    return agg


def _bucket_agg(col: Column, by_id: dict[str, Column]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The bucket aggregation of ``col`` and the sub-aggregation its order needs.

    Like Kibana's terms ``orderAgg``: a terms ordered by a metric column gets its own copy of that metric as a
    direct child (``_order``), since the column itself may sit under a deeper bucket.
    """
    if col.operation == "date_histogram":
        return {"date_histogram": {"field": col.field, "fixed_interval": "10m", "min_doc_count": 1}}, {}
    if col.operation != "terms":
        raise NotImplementedError(f"bucket operation {col.operation}")
    order = col.params.get("orderBy") or {}
    direction = col.params.get("orderDirection", "desc")
    terms = {"field": col.field, "size": col.params.get("size", 10)}
    if order.get("type") != "column":
        return {"terms": {**terms, "order": {"_key": "asc"}}}, {}
    target = by_id[order["columnId"]]
    if target.operation in ("percentile", "median"):
        raise NotImplementedError(f"ordering by {target.operation} ({target.id})")
    agg = _column_agg(target)
    if agg is None:
        return {"terms": {**terms, "order": {"_count": direction}}}, {}
    key = "_order>v" if target.filter and target.operation != "count" else "_order"
    return {"terms": {**terms, "order": {key: direction}}}, {"_order": agg}


def lens_request(panel: LensPanel) -> dict[str, Any]:
    """The body of the search Kibana runs for ``panel`` (without the time-picker range)."""
    by_id = {c.id: c for c in panel.columns}
    aggs = {c.id: agg for c in panel.columns if not c.bucketed and (agg := _column_agg(c)) is not None}
    for col in reversed([c for c in panel.columns if c.bucketed]):
        bucket, order = _bucket_agg(col, by_id)
        children = {**aggs, **order}
        aggs = {col.id: {**bucket, **({"aggs": children} if children else {})}}
    return {"size": 0, "track_total_hits": True, "query": kql.to_dsl(panel.query), "aggs": aggs}


def _leaves(node: dict[str, Any], buckets: list[Column]) -> Iterator[dict[str, Any]]:
    if not buckets:
        yield node
        return
    for bucket in node[buckets[0].id]["buckets"]:
        yield from _leaves(bucket, buckets[1:])


def _value(leaf: dict[str, Any], col: Column) -> float | None:
    if col.operation == "count":
        return float(leaf[col.id]["doc_count"] if col.filter else leaf["doc_count"])
    agg = leaf[col.id]["v"] if col.filter else leaf[col.id]
    if col.operation in ("percentile", "median"):
        values = agg["values"]
        return next(iter(values.values()), None)
    value = agg.get("value")
    return None if value is None else float(value)


def empty_parts(panel: LensPanel, response: dict[str, Any]) -> list[str]:
    """What of ``panel`` would show nothing for ``response`` (empty list: every column has data)."""
    total = int(response["hits"]["total"]["value"])
    if total == 0:
        return ["no document matches the query"]
    buckets = [c for c in panel.columns if c.bucketed]
    leaves = list(_leaves({"doc_count": total, **response.get("aggregations", {})}, buckets))
    if not leaves:
        return [f"no {buckets[0].operation} bucket for {buckets[0].field}"] if buckets else ["no result"]
    problems = []
    for col in (c for c in panel.columns if not c.bucketed):
        values = [_value(leaf, col) for leaf in leaves]
        if not any(v for v in values if v is not None):
            problems.append(f"column {col.id} ({col.operation} {col.field or ''}) is empty or zero everywhere")
    return problems


def search_request(panel: SearchPanel) -> dict[str, Any]:
    """The body of the Discover query of a saved search."""
    return {"size": 5, "query": kql.to_dsl(panel.query), "sort": [{f: {"order": d}} for f, d in panel.sort],
            "_source": list(panel.columns)}  # fmt: skip
