"""Write the Kibana saved objects (``dashboards/*.ndjson``) from the compact specs in ``dashboards/specs.py``.

The NDJSON files are the shipped artifact and are committed; this script is the only way they change
(``tests/dashboards/test_build.py`` fails when a file differs from what this script writes)::

    python -m dashboards.build            # rewrite the files (from the repository root)
    python -m dashboards.build --check    # exit 1 if a file is out of date

Targets Kibana 8.19 (docker-compose.yml). Objects carry the oldest ``typeMigrationVersion`` whose format they
use, so Kibana runs only the migrations after it on import (a version newer than Kibana knows is refused).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from dashboards.panels import Dashboard, Lens, Search
from dashboards.specs import DASHBOARDS, DATA_VIEWS

HERE = Path(__file__).resolve().parent

CORE_MIGRATION_VERSION = "8.8.0"
#: type -> the typeMigrationVersion written (the format of these objects; older than any 8.19 migration target)
TYPE_MIGRATION_VERSIONS = {"index-pattern": "8.0.0", "search": "8.0.0", "lens": "8.9.0", "dashboard": "8.7.0"}
PANEL_VERSION = "8.11.0"
GRID_COLUMNS = 48
DATA_VIEWS_FILE = "data_views.ndjson"


def saved_object(
    kind: str, object_id: str, attributes: dict[str, Any], references: list[dict[str, str]]
) -> dict[str, Any]:
    return {
        "attributes": attributes,
        "coreMigrationVersion": CORE_MIGRATION_VERSION,
        "id": object_id,
        "managed": False,
        "references": references,
        "type": kind,
        "typeMigrationVersion": TYPE_MIGRATION_VERSIONS[kind],
    }


def data_view_objects() -> list[dict[str, Any]]:
    out = []
    for view in DATA_VIEWS:
        attributes = {
            "allowNoIndex": True,
            "fieldAttrs": "{}",
            "fieldFormatMap": json.dumps({f: {"id": fmt} for f, fmt in sorted(view.formats.items())}),
            "fields": "[]",
            "name": view.name,
            "runtimeFieldMap": "{}",
            "sourceFilters": "[]",
            "timeFieldName": view.time_field,
            "title": view.title,
            "typeMeta": "{}",
        }
        out.append(saved_object("index-pattern", view.id, attributes, []))
    return out


def _query(kql: str) -> dict[str, str]:
    return {"language": "kuery", "query": kql}


def _column(column_id: str, spec: dict[str, Any]) -> dict[str, Any]:
    col = dict(spec)
    col.setdefault("customLabel", True)
    return {column_id: col}


def lens_object(lens: Lens) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    for column_id, spec in lens.columns:
        columns.update(_column(column_id, spec))
    layer = {"columnOrder": [c for c, _ in lens.columns], "columns": columns, "incompleteColumns": {}}
    state = {
        "adHocDataViews": {},
        "datasourceStates": {"formBased": {"layers": {lens.layer_id: layer}}},
        "filters": [],
        "internalReferences": [],
        "query": _query(lens.query),
        "visualization": lens.visualization(),
    }
    attributes = {
        "description": lens.description,
        "state": state,
        "title": lens.title,
        "visualizationType": lens.visualization_type,
    }
    references = [
        {"id": lens.data_view, "name": f"indexpattern-datasource-layer-{lens.layer_id}", "type": "index-pattern"}
    ]
    return saved_object("lens", lens.id, attributes, references)


def search_object(search: Search) -> dict[str, Any]:
    source = {
        "filter": [],
        "highlightAll": True,
        "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index",
        "query": _query(search.query),
        "version": True,
    }
    attributes = {
        "columns": list(search.columns),
        "description": search.description,
        "grid": {},
        "hideChart": False,
        "isTextBasedQuery": False,
        "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(source, sort_keys=True)},
        "sort": [list(s) for s in search.sort],
        "timeRestore": False,
        "title": search.title,
    }
    references = [
        {"id": search.data_view, "name": "kibanaSavedObjectMeta.searchSourceJSON.index", "type": "index-pattern"}
    ]
    return saved_object("search", search.id, attributes, references)


def dashboard_object(dashboard: Dashboard) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    references: list[dict[str, str]] = []
    y = 0
    for row in dashboard.rows:
        x = 0
        for item in row.panels:
            index = str(len(panels) + 1)
            ref_name = f"panel_{index}"
            kind = "lens" if isinstance(item.panel, Lens) else "search"
            panels.append(
                {
                    "embeddableConfig": {"enhancements": {}},
                    "gridData": {"h": row.height, "i": index, "w": item.width, "x": x, "y": y},
                    "panelIndex": index,
                    "panelRefName": ref_name,
                    "type": kind,
                    "version": PANEL_VERSION,
                }
            )
            references.append({"id": item.panel.id, "name": f"{index}:{ref_name}", "type": kind})
            x += item.width
        if x > GRID_COLUMNS:
            raise ValueError(f"{dashboard.id}: a row is {x} columns wide (max {GRID_COLUMNS})")
        y += row.height
    options = {"hidePanelTitles": False, "syncColors": False, "syncCursor": True, "syncTooltips": False,
               "useMargins": True}  # fmt: skip
    attributes = {
        "description": dashboard.description,
        "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps({"filter": [], "query": _query("")})},
        "optionsJSON": json.dumps(options, sort_keys=True),
        "panelsJSON": json.dumps(panels, sort_keys=True),
        "refreshInterval": {"pause": True, "value": 60000},
        "timeFrom": dashboard.time_from,
        "timeRestore": True,
        "timeTo": "now",
        "title": dashboard.title,
        "version": 1,
    }
    return saved_object("dashboard", dashboard.id, attributes, references)


def dashboard_file_objects(dashboard: Dashboard) -> list[dict[str, Any]]:
    """The panels' saved objects (in panel order, each once), then the dashboard itself."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for row in dashboard.rows:
        for item in row.panels:
            if item.panel.id in seen:
                continue
            seen.add(item.panel.id)
            out.append(lens_object(item.panel) if isinstance(item.panel, Lens) else search_object(item.panel))
    out.append(dashboard_object(dashboard))
    return out


def render(objects: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(o, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n" for o in objects)


def files() -> dict[str, str]:
    """File name -> NDJSON text: the data views, then one file per dashboard."""
    out = {DATA_VIEWS_FILE: render(data_view_objects())}
    for dashboard in DASHBOARDS:
        out[f"{dashboard.file}.ndjson"] = render(dashboard_file_objects(dashboard))
    return out


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, text in files().items():
        path = HERE / name
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not check:
            path.write_text(text, encoding="utf-8")
    if check and stale:
        print(f"out of date (run python -m dashboards.build): {', '.join(stale)}", file=sys.stderr)
        return 1
    print("\n".join(f"wrote {name}" for name in stale) or "up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
