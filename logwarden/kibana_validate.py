"""Structural validation of Kibana saved-object NDJSON files, and what their panels use (no Kibana needed).

No Kibana can run on our machines, so the shipped dashboards (``dashboards/*.ndjson``) are proven by
structure here and by their fields and queries against the real Elasticsearch (``tests/integration``).
Checked, with every problem reported as ``path:line: message`` (all at once, not the first only):

- every line is one JSON object with ``type``, ``id``, ``attributes`` and ``references``; ``(type, id)`` is
  unique over all the files; ``typeMigrationVersion`` is a version not newer than Kibana 8.19 knows;
- every reference is ``{name, type, id}``, its name unique in the object, and it resolves to an object of
  that type in the files (or to one of ``external``);
- the JSON held in strings parses (``panelsJSON``, ``optionsJSON``, ``visState``, ``uiStateJSON``,
  ``kibanaSavedObjectMeta.searchSourceJSON``, and the data-view maps ``fields``, ``fieldFormatMap``...);
- a ``searchSourceJSON`` ``indexRefName`` (and a filter's ``meta.indexRefName``) names a data-view reference;
- dashboards: each panel has a unique ``panelIndex`` equal to ``gridData.i``, fits the 48-column grid without
  overlapping another, and its ``panelRefName`` has a reference ``<panelIndex>:<panelRefName>`` of the panel's
  type; no ``panel_`` reference is left unused;
- Lens: each ``formBased`` layer has its ``indexpattern-datasource-layer-<id>`` data-view reference, its
  ``columnOrder`` lists exactly its columns, every column names an operation (and a field unless it is a
  count), ``orderBy`` and the visualization's accessors point at existing columns;
- an export summary line (``exportedCount``), when present, matches the file and reports no missing references.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

#: Newest typeMigrationVersion per type that we know Kibana 8.19 accepts (newer ones are refused on import).
MAX_TYPE_MIGRATION_VERSION: Final = {"index-pattern": "8.0.0", "search": "8.0.0", "lens": "8.9.0",
                                     "dashboard": "8.7.0", "visualization": "8.5.0"}  # fmt: skip
JSON_STRING_ATTRIBUTES: Final = ("panelsJSON", "optionsJSON", "visState", "uiStateJSON", "fields", "fieldFormatMap",
                                 "fieldAttrs", "runtimeFieldMap", "sourceFilters", "typeMeta")  # fmt: skip
GRID_COLUMNS: Final = 48
_VERSION: Final = re.compile(r"^\d+\.\d+\.\d+$")
_ACCESSOR_KEYS: Final = ("xAccessor", "splitAccessor", "metricAccessor", "accessor", "breakdownByAccessor")


@dataclass(frozen=True)
class SavedObject:
    type: str
    id: str
    attributes: dict[str, Any]
    references: list[dict[str, Any]]
    where: str  # path:line

    def reference(self, name: str) -> dict[str, Any] | None:
        return next((r for r in self.references if r.get("name") == name), None)


def load(paths: Iterable[Path]) -> tuple[list[SavedObject], list[str]]:
    """Parse the files: the saved objects, and the problems of lines that are not saved objects."""
    objects: list[SavedObject] = []
    problems: list[str] = []
    for path in paths:
        in_file = 0
        lines = path.read_text(encoding="utf-8").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        for number, line in enumerate(lines, 1):
            where = f"{path}:{number}"
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(f"{where}: not JSON: {exc.msg}")
                continue
            if not isinstance(data, dict):
                problems.append(f"{where}: not a JSON object")
            elif "exportedCount" in data:
                if data["exportedCount"] != in_file or data.get("missingRefCount", 0):
                    problems.append(
                        f"{where}: export summary says {data['exportedCount']} objects and "
                        f"{data.get('missingRefCount', 0)} missing references; the file has {in_file}"
                    )
            elif (obj := _saved_object(data, where, problems)) is not None:
                objects.append(obj)
                in_file += 1
    return objects, problems


def _saved_object(data: dict[str, Any], where: str, problems: list[str]) -> SavedObject | None:
    missing = [k for k in ("type", "id", "attributes", "references") if k not in data]
    if missing:
        problems.append(f"{where}: missing {', '.join(missing)}")
        return None
    kind, oid, attributes, references = data["type"], data["id"], data["attributes"], data["references"]
    if not (isinstance(kind, str) and kind and isinstance(oid, str) and oid):
        problems.append(f"{where}: type and id must be non-empty strings")
        return None
    if not isinstance(attributes, dict) or not isinstance(references, list):
        problems.append(f"{where}: attributes must be an object and references a list")
        return None
    version = data.get("typeMigrationVersion")
    if version is not None and (not isinstance(version, str) or not _VERSION.match(version)):
        problems.append(f"{where}: typeMigrationVersion {version!r} is not a x.y.z version")
    elif version is not None and _semver(version) > _semver(MAX_TYPE_MIGRATION_VERSION.get(kind, version)):
        problems.append(
            f"{where}: typeMigrationVersion {version} of {kind} is newer than "
            f"{MAX_TYPE_MIGRATION_VERSION[kind]} (Kibana 8.19 may refuse it)"
        )
    return SavedObject(kind, oid, attributes, references, where)


def _semver(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def validate(paths: Iterable[Path], *, external: Iterable[tuple[str, str]] = ()) -> list[str]:
    """Every problem of the files taken together (empty: valid). ``external``: ``(type, id)`` known to exist."""
    objects, problems = load(list(paths))
    return problems + check(objects, external=external)


def check(objects: list[SavedObject], *, external: Iterable[tuple[str, str]] = ()) -> list[str]:
    problems: list[str] = []
    known: set[tuple[str, str]] = set()
    for obj in objects:
        if (obj.type, obj.id) in known:
            problems.append(f"{obj.where}: duplicate {obj.type} {obj.id!r}")
        known.add((obj.type, obj.id))
    known |= set(external)
    for obj in objects:
        problems += [f"{obj.where}: {obj.type} {obj.id!r}: {p}" for p in _check_object(obj, known)]
    return problems


def _check_object(obj: SavedObject, known: set[tuple[str, str]]) -> Iterator[str]:
    names: set[str] = set()
    for ref in obj.references:
        if not isinstance(ref, dict) or not all(isinstance(ref.get(k), str) and ref[k] for k in ("name", "type", "id")):
            yield f"reference {ref!r} needs non-empty name, type and id"
            continue
        if ref["name"] in names:
            yield f"reference name {ref['name']!r} used twice"
        names.add(ref["name"])
        if (ref["type"], ref["id"]) not in known:
            yield f"reference {ref['name']!r} -> {ref['type']} {ref['id']!r} does not resolve"
    parsed: dict[str, Any] = {}
    for key in JSON_STRING_ATTRIBUTES:
        if key in obj.attributes:
            yield from _parse(obj.attributes[key], key, parsed)
    meta = obj.attributes.get("kibanaSavedObjectMeta")
    if isinstance(meta, dict) and "searchSourceJSON" in meta:
        yield from _parse(meta["searchSourceJSON"], "searchSourceJSON", parsed)
        yield from _check_search_source(obj, parsed.get("searchSourceJSON"))
    checker = {"dashboard": _check_dashboard, "lens": _check_lens, "search": _check_search,
               "index-pattern": _check_data_view, "visualization": _check_visualization}.get(obj.type)  # fmt: skip
    if checker is not None:
        yield from checker(obj, parsed)


def _parse(value: Any, key: str, out: dict[str, Any]) -> Iterator[str]:
    if not isinstance(value, str):
        yield f"{key} must be a string holding JSON"
        return
    try:
        out[key] = json.loads(value)
    except json.JSONDecodeError as exc:
        yield f"{key} is not valid JSON: {exc.msg} at {exc.pos}"


def _data_view_ref(obj: SavedObject, name: Any, what: str) -> Iterator[str]:
    ref = obj.reference(name) if isinstance(name, str) else None
    if ref is None:
        yield f"{what} {name!r} has no reference of that name"
    elif ref.get("type") != "index-pattern":
        yield f"{what} {name!r} refers to a {ref.get('type')}, not an index-pattern"


def _check_search_source(obj: SavedObject, source: Any) -> Iterator[str]:
    if source is None:
        return
    if not isinstance(source, dict):
        yield "searchSourceJSON must hold an object"
        return
    if "indexRefName" in source:
        yield from _data_view_ref(obj, source["indexRefName"], "searchSourceJSON.indexRefName")
    for item in source.get("filter") or []:
        meta = item.get("meta") if isinstance(item, dict) else None
        if isinstance(meta, dict) and "indexRefName" in meta:
            yield from _data_view_ref(obj, meta["indexRefName"], "filter meta.indexRefName")


def _check_dashboard(obj: SavedObject, parsed: dict[str, Any]) -> Iterator[str]:
    panels = parsed.get("panelsJSON")
    if not isinstance(panels, list):
        yield "panelsJSON must hold a list of panels"
        return
    seen: set[str] = set()
    used: set[str] = set()
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        index = panel.get("panelIndex") if isinstance(panel, dict) else None
        if not isinstance(index, str) or not index or index in seen:
            yield f"panel {panel!r:.80}: panelIndex missing, not a string or not unique"
            continue
        seen.add(index)
        grid = panel.get("gridData")
        if not isinstance(grid, dict) or not all(isinstance(grid.get(k), int) for k in ("x", "y", "w", "h")):
            yield f"panel {index}: gridData needs integer x, y, w, h"
        else:
            if grid.get("i") != index:
                yield f"panel {index}: gridData.i {grid.get('i')!r} differs from panelIndex"
            if grid["x"] < 0 or grid["y"] < 0 or grid["w"] < 1 or grid["h"] < 1 or grid["x"] + grid["w"] > GRID_COLUMNS:
                yield f"panel {index}: gridData {grid} is outside the {GRID_COLUMNS}-column grid"
            yield from _place(index, grid, cells)
        ref_name = panel.get("panelRefName")
        if ref_name is None:
            config = panel.get("embeddableConfig")
            if not (isinstance(config, dict) and isinstance(config.get("attributes"), dict)):
                yield f"panel {index}: neither a panelRefName nor by-value attributes"
            continue
        ref = obj.reference(f"{index}:{ref_name}")
        used.add(f"{index}:{ref_name}")
        if ref is None:
            yield f"panel {index}: panelRefName {ref_name!r} has no reference {index}:{ref_name}"
        elif ref.get("type") != panel.get("type"):
            yield f"panel {index}: type {panel.get('type')!r} but its reference is a {ref.get('type')}"
    for ref in obj.references:
        name = ref.get("name") if isinstance(ref, dict) else None
        if isinstance(name, str) and ":panel_" in name and name not in used:
            yield f"reference {name!r} is used by no panel"


def _place(index: str, grid: dict[str, int], cells: dict[tuple[int, int], str]) -> Iterator[str]:
    """Mark the panel's grid cells; report the first panel it overlaps."""
    for x in range(grid["x"], grid["x"] + grid["w"]):
        for y in range(grid["y"], grid["y"] + grid["h"]):
            if (x, y) in cells:
                yield f"panel {index} overlaps panel {cells[(x, y)]}"
                return
            cells[(x, y)] = index


def _check_lens(obj: SavedObject, parsed: dict[str, Any]) -> Iterator[str]:
    state = obj.attributes.get("state")
    if not isinstance(state, dict) or not isinstance(obj.attributes.get("visualizationType"), str):
        yield "a Lens object needs a state object and a visualizationType"
        return
    layers = state.get("datasourceStates", {}).get("formBased", {}).get("layers")
    if not isinstance(layers, dict) or not layers:
        yield "no formBased layers"
        return
    all_columns: set[str] = set()
    for layer_id, layer in layers.items():
        yield from _data_view_ref(obj, f"indexpattern-datasource-layer-{layer_id}", f"layer {layer_id}")
        columns = layer.get("columns") if isinstance(layer, dict) else None
        if not isinstance(columns, dict) or not columns:
            yield f"layer {layer_id}: no columns"
            continue
        if sorted(layer.get("columnOrder") or []) != sorted(columns):
            yield f"layer {layer_id}: columnOrder {layer.get('columnOrder')} does not list exactly {sorted(columns)}"
        all_columns |= set(columns)
        for column_id, column in columns.items():
            yield from (f"layer {layer_id} column {column_id}: {p}" for p in _check_column(column, columns))
    visualization = state.get("visualization")
    for accessor in _accessors(visualization):
        if accessor not in all_columns:
            yield f"visualization accessor {accessor!r} names no column"
    if isinstance(visualization, dict):
        for vis_layer in visualization.get("layers") or [visualization]:
            layer_id = vis_layer.get("layerId") if isinstance(vis_layer, dict) else None
            if layer_id is not None and layer_id not in layers:
                yield f"visualization layer {layer_id!r} is not a datasource layer"


def _check_column(column: Any, columns: dict[str, Any]) -> Iterator[str]:
    if not isinstance(column, dict) or not isinstance(column.get("operationType"), str):
        yield "operationType missing"
        return
    if not all(k in column for k in ("dataType", "isBucketed", "label")):
        yield "dataType, isBucketed and label are required"
    if column["operationType"] not in {"count", "formula", "math", "static_value"} and not column.get("sourceField"):
        yield f"{column['operationType']} needs a sourceField"
    order = (column.get("params") or {}).get("orderBy")
    if isinstance(order, dict) and order.get("type") == "column" and order.get("columnId") not in columns:
        yield f"orderBy column {order.get('columnId')!r} does not exist"


def _accessors(visualization: Any) -> Iterator[str]:
    if not isinstance(visualization, dict):
        return
    for layer in visualization.get("layers") or [visualization]:
        if not isinstance(layer, dict):
            continue
        yield from (a for a in layer.get("accessors") or [] if isinstance(a, str))
        yield from (layer[k] for k in _ACCESSOR_KEYS if isinstance(layer.get(k), str))
        for col in layer.get("columns") or []:
            if isinstance(col, dict) and isinstance(col.get("columnId"), str):
                yield col["columnId"]
    sorting = visualization.get("sorting")
    if isinstance(sorting, dict) and isinstance(sorting.get("columnId"), str):
        yield sorting["columnId"]


def _check_search(obj: SavedObject, parsed: dict[str, Any]) -> Iterator[str]:
    columns, sort = obj.attributes.get("columns"), obj.attributes.get("sort", [])
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        yield "columns must be a list of field names"
    if not isinstance(sort, list) or not all(isinstance(s, list) and len(s) == 2 for s in sort):
        yield "sort must be a list of [field, direction] pairs"
    if "searchSourceJSON" not in parsed:
        yield "a saved search needs kibanaSavedObjectMeta.searchSourceJSON"


def _check_data_view(obj: SavedObject, parsed: dict[str, Any]) -> Iterator[str]:
    if not isinstance(obj.attributes.get("title"), str) or not obj.attributes["title"]:
        yield "a data view needs a title (its index pattern)"
    if "timeFieldName" in obj.attributes and not isinstance(obj.attributes["timeFieldName"], str):
        yield "timeFieldName must be a string"


def _check_visualization(obj: SavedObject, parsed: dict[str, Any]) -> Iterator[str]:
    vis = parsed.get("visState")
    if not isinstance(vis, dict) or not isinstance(vis.get("type"), str) or not isinstance(vis.get("aggs", []), list):
        yield "visState must hold an object with a type and a list of aggs"
