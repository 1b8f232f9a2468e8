"""Building blocks of the dashboard specs: data views, Lens columns and visualizations, saved searches, layout.

Only a small, well-understood part of Lens is used: ``formBased`` layers with ``date_histogram`` and
``terms`` buckets and ``count``/``sum``/``average``/``min``/``max``/``percentile``/``unique_count`` metrics
(optionally with a KQL column filter), shown as ``lnsXY``, ``lnsDatatable`` or ``lnsMetric``. Queries are KQL in
the subset ``tests/dashboards/kql.py`` translates (``field : value``, ``field : (a or b)``, ``field : *``,
prefix wildcards, ``>=``-style ranges, ``and``/``or``/``not``, parentheses).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

EVENTS = "logwarden-events"  # data view ids
ALERTS = "logwarden-alerts"
RECORDS = "___records___"  # Lens' pseudo-field of count


@dataclass(frozen=True)
class DataView:
    id: str
    title: str
    name: str
    time_field: str = "@timestamp"
    formats: dict[str, str] = field(default_factory=dict)  # field -> Kibana field format id


# --- Lens columns: (column id, column) pairs -----------------------------------------------------------

Column = tuple[str, dict[str, Any]]


def _filter(kql: str | None) -> dict[str, Any]:
    return {"filter": {"language": "kuery", "query": kql}} if kql else {}


def date_histogram(column_id: str = "time", source: str = "@timestamp", label: str = "Time") -> Column:
    params = {"dropPartials": False, "includeEmptyRows": True, "interval": "auto"}
    return column_id, {"dataType": "date", "isBucketed": True, "label": label, "operationType": "date_histogram",
                       "params": params, "scale": "interval", "sourceField": source}  # fmt: skip


def terms(
    column_id: str, source: str, label: str, *, order_by: str | None, size: int = 10, data_type: str = "string",
    direction: str = "desc", other: bool = False,
) -> Column:  # fmt: skip
    """Top values of ``source``; ``order_by`` is a metric column id (None: alphabetical)."""
    order = {"type": "column", "columnId": order_by} if order_by else {"type": "alphabetical", "fallback": False}
    params = {"missingBucket": False, "orderBy": order, "orderDirection": direction, "otherBucket": other,
              "parentFormat": {"id": "terms"}, "size": size}  # fmt: skip
    return column_id, {"dataType": data_type, "isBucketed": True, "label": label, "operationType": "terms",
                       "params": params, "scale": "ordinal", "sourceField": source}  # fmt: skip


def count(column_id: str = "count", label: str = "Events", *, kql: str | None = None) -> Column:
    column = {"dataType": "number", "isBucketed": False, "label": label, "operationType": "count",
              "params": {"emptyAsNull": False}, "scale": "ratio", "sourceField": RECORDS}  # fmt: skip
    return column_id, {**column, **_filter(kql)}


def metric(
    column_id: str, operation: str, source: str, label: str, *, kql: str | None = None, data_type: str = "number"
) -> Column:
    """``sum``, ``average``, ``min``, ``max``, ``median`` or ``unique_count`` of ``source``."""
    column = {"dataType": data_type, "isBucketed": False, "label": label, "operationType": operation,
              "params": {"emptyAsNull": True}, "scale": "ratio", "sourceField": source}  # fmt: skip
    return column_id, {**column, **_filter(kql)}


def percentile(column_id: str, source: str, pct: int, label: str) -> Column:
    return column_id, {"dataType": "number", "isBucketed": False, "label": label, "operationType": "percentile",
                       "params": {"percentile": pct}, "scale": "ratio", "sourceField": source}  # fmt: skip


# --- Lens visualizations -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lens:
    id: str
    title: str
    data_view: str
    columns: list[Column]
    visualization_type: str
    visualization: Callable[[], dict[str, Any]]
    query: str = ""
    description: str = ""
    layer_id: str = "main"


def xy(
    id: str, title: str, data_view: str, columns: list[Column], *, x: str, y: list[str], split: str | None = None,
    series: str = "bar_stacked", query: str = "", description: str = "",
) -> Lens:  # fmt: skip
    def visualization() -> dict[str, Any]:
        layer: dict[str, Any] = {"accessors": y, "layerId": "main", "layerType": "data", "position": "top",
                                 "seriesType": series, "showGridlines": False, "xAccessor": x}  # fmt: skip
        if split:
            layer["splitAccessor"] = split
        visible = {"x": True, "yLeft": True, "yRight": True}
        return {"axisTitlesVisibilitySettings": visible, "fittingFunction": "None",
                "gridlinesVisibilitySettings": visible, "layers": [layer],
                "legend": {"isVisible": True, "position": "right"}, "preferredSeriesType": series,
                "tickLabelsVisibilitySettings": visible, "valueLabels": "hide", "yLeftExtent": {"mode": "full"},
                "yRightExtent": {"mode": "full"}}  # fmt: skip

    return Lens(id, title, data_view, columns, "lnsXY", visualization, query, description)


def table(
    id: str, title: str, data_view: str, columns: list[Column], *, sort: str | None = None, query: str = "",
    description: str = "",
) -> Lens:  # fmt: skip
    def visualization() -> dict[str, Any]:
        state: dict[str, Any] = {
            "columns": [{"columnId": c, "isTransposed": False} for c, _ in columns],
            "layerId": "main",
            "layerType": "data",
            "rowHeight": "single",
            "rowHeightLines": 1,
        }
        if sort:
            state["sorting"] = {"columnId": sort, "direction": "desc"}
        return state

    return Lens(id, title, data_view, columns, "lnsDatatable", visualization, query, description)


def single_metric(
    id: str, title: str, data_view: str, column: Column, *, query: str = "", description: str = ""
) -> Lens:
    def visualization() -> dict[str, Any]:
        return {"layerId": "main", "layerType": "data", "metricAccessor": column[0]}

    return Lens(id, title, data_view, [column], "lnsMetric", visualization, query, description)


# --- saved searches and layout ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Search:
    id: str
    title: str
    data_view: str
    query: str
    columns: tuple[str, ...]
    sort: tuple[tuple[str, str], ...] = (("@timestamp", "desc"),)
    description: str = ""


@dataclass(frozen=True)
class Item:
    panel: Lens | Search
    width: int


@dataclass(frozen=True)
class Row:
    height: int
    panels: tuple[Item, ...]


def row(height: int, *panels: tuple[Lens | Search, int]) -> Row:
    return Row(height, tuple(Item(p, w) for p, w in panels))


@dataclass(frozen=True)
class Dashboard:
    id: str
    file: str  # dashboards/<file>.ndjson
    title: str
    description: str
    rows: tuple[Row, ...]
    time_from: str = "now-24h"
