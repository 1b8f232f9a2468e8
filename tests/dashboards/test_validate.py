"""The structural validator on the shipped saved objects, and proof that it catches each kind of breakage."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from logwarden.kibana_validate import validate
from tests.dashboards.panel_queries import DASHBOARD_FILES

Obj = dict[str, Any]
REPO = Path(__file__).resolve().parents[2]


def test_the_shipped_saved_objects_are_valid() -> None:
    assert len(DASHBOARD_FILES) == 7
    assert validate(DASHBOARD_FILES) == []


def test_every_shipped_line_is_one_compact_object() -> None:
    for path in DASHBOARD_FILES:
        text = path.read_text(encoding="utf-8")
        assert text.endswith("\n") and "\n\n" not in text, path
        for line in text.splitlines():
            assert isinstance(json.loads(line), dict)


def _objects() -> dict[str, list[Obj]]:
    return {p.name: [json.loads(line) for line in p.read_text().splitlines()] for p in DASHBOARD_FILES}


def _find(files: dict[str, list[Obj]], kind: str, oid: str | None = None) -> Obj:
    return next(o for objs in files.values() for o in objs if o["type"] == kind and (oid is None or o["id"] == oid))


def _panels(dashboard: Obj) -> list[Obj]:
    panels: list[Obj] = json.loads(dashboard["attributes"]["panelsJSON"])
    return panels


def _set_panels(dashboard: Obj, panels: list[Obj]) -> None:
    dashboard["attributes"]["panelsJSON"] = json.dumps(panels)


def _lens_state(files: dict[str, list[Obj]]) -> dict[str, Any]:
    state: dict[str, Any] = _find(files, "lens", "logwarden-overview-top-rules")["attributes"]["state"]
    return state


def _break_reference_id(f: dict[str, list[Obj]]) -> None:
    _find(f, "lens")["references"][0]["id"] = "logwarden-nope"


def _break_reference_type(f: dict[str, list[Obj]]) -> None:
    _find(f, "dashboard")["references"][0]["type"] = "visualization"


def _drop_panel_reference(f: dict[str, list[Obj]]) -> None:
    _find(f, "dashboard")["references"].pop(0)


def _rename_panel_ref(f: dict[str, list[Obj]]) -> None:
    dashboard = _find(f, "dashboard")
    panels = _panels(dashboard)
    panels[0]["panelRefName"] = "panel_99"
    _set_panels(dashboard, panels)


def _panel_type_mismatch(f: dict[str, list[Obj]]) -> None:
    dashboard = _find(f, "dashboard")
    panels = _panels(dashboard)
    panels[0]["type"] = "search"
    _set_panels(dashboard, panels)


def _bad_panels_json(f: dict[str, list[Obj]]) -> None:
    _find(f, "dashboard")["attributes"]["panelsJSON"] = '[{"panelIndex": "1",'


def _bad_search_source(f: dict[str, list[Obj]]) -> None:
    _find(f, "search")["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"] = "{query: 1}"


def _index_ref_name_unresolved(f: dict[str, list[Obj]]) -> None:
    _find(f, "search")["references"][0]["name"] = "something-else"


def _duplicate_id(f: dict[str, list[Obj]]) -> None:
    f["security_overview.ndjson"].append(copy.deepcopy(_find(f, "index-pattern", "logwarden-alerts")))


def _lens_layer_without_reference(f: dict[str, list[Obj]]) -> None:
    _find(f, "lens")["references"] = []


def _accessor_to_nowhere(f: dict[str, list[Obj]]) -> None:
    _lens_state(f)["visualization"]["columns"].append({"columnId": "ghost"})


def _order_by_nowhere(f: dict[str, list[Obj]]) -> None:
    _lens_state(f)["datasourceStates"]["formBased"]["layers"]["main"]["columns"]["rule"]["params"]["orderBy"][
        "columnId"
    ] = "ghost"


def _column_order_mismatch(f: dict[str, list[Obj]]) -> None:
    _lens_state(f)["datasourceStates"]["formBased"]["layers"]["main"]["columnOrder"].pop()


def _overlapping_panels(f: dict[str, list[Obj]]) -> None:
    dashboard = _find(f, "dashboard")
    panels = _panels(dashboard)
    panels[1]["gridData"].update(x=panels[0]["gridData"]["x"], y=panels[0]["gridData"]["y"])
    _set_panels(dashboard, panels)


def _outside_grid(f: dict[str, list[Obj]]) -> None:
    dashboard = _find(f, "dashboard")
    panels = _panels(dashboard)
    panels[0]["gridData"]["w"] = 60
    _set_panels(dashboard, panels)


def _orphan_panel_reference(f: dict[str, list[Obj]]) -> None:
    dashboard = _find(f, "dashboard")
    dashboard["references"].append({"name": "99:panel_99", "type": "lens", "id": "logwarden-overview-events"})


def _too_new_migration_version(f: dict[str, list[Obj]]) -> None:
    _find(f, "dashboard")["typeMigrationVersion"] = "10.9.0"


def _missing_attributes(f: dict[str, list[Obj]]) -> None:
    del _find(f, "lens")["attributes"]


def _lens_column_without_field(f: dict[str, list[Obj]]) -> None:
    del _lens_state(f)["datasourceStates"]["formBased"]["layers"]["main"]["columns"]["rule"]["sourceField"]


BREAKAGES: list[tuple[Callable[[dict[str, list[Obj]]], None], str]] = [
    (_break_reference_id, "index-pattern 'logwarden-nope' does not resolve"),
    (_break_reference_type, "reference '1:panel_1' -> visualization"),
    (_drop_panel_reference, "panelRefName 'panel_1' has no reference 1:panel_1"),
    (_rename_panel_ref, "panelRefName 'panel_99' has no reference 1:panel_99"),
    (_panel_type_mismatch, "panel 1: type 'search' but its reference is a lens"),
    (_bad_panels_json, "panelsJSON is not valid JSON"),
    (_bad_search_source, "searchSourceJSON is not valid JSON"),
    (_index_ref_name_unresolved, "indexRefName 'kibanaSavedObjectMeta.searchSourceJSON.index' has no reference"),
    (_duplicate_id, "duplicate index-pattern 'logwarden-alerts'"),
    (_lens_layer_without_reference, "layer main 'indexpattern-datasource-layer-main' has no reference"),
    (_accessor_to_nowhere, "visualization accessor 'ghost' names no column"),
    (_order_by_nowhere, "orderBy column 'ghost' does not exist"),
    (_column_order_mismatch, "columnOrder"),
    (_overlapping_panels, "panel 2 overlaps panel 1"),
    (_outside_grid, "outside the 48-column grid"),
    (_orphan_panel_reference, "reference '99:panel_99' is used by no panel"),
    (_too_new_migration_version, "typeMigrationVersion 10.9.0 of dashboard is newer than 8.7.0"),
    (_missing_attributes, "missing attributes"),
    (_lens_column_without_field, "terms needs a sourceField"),
]


@pytest.mark.parametrize(("breakage", "expected"), BREAKAGES, ids=[b.__name__.strip("_") for b, _ in BREAKAGES])
def test_the_validator_catches(tmp_path: Path, breakage: Callable[[dict[str, list[Obj]]], None], expected: str) -> None:
    files = _objects()
    breakage(files)
    paths = []
    for name, objects in files.items():
        path = tmp_path / name
        path.write_text("".join(json.dumps(o) + "\n" for o in objects))
        paths.append(path)
    problems = validate(paths)
    assert any(expected in p for p in problems), problems
    assert all(str(tmp_path) in p for p in problems), "every problem says where (path:line)"


def test_lines_that_are_not_saved_objects(tmp_path: Path) -> None:
    path = tmp_path / "bad.ndjson"
    path.write_text('{"type": "lens"\n[1, 2]\n\n{"type": "x", "id": "", "attributes": {}, "references": []}\n')
    problems = validate([path])
    assert problems[0].startswith(f"{path}:1: not JSON")
    assert problems[1] == f"{path}:2: not a JSON object"
    assert problems[2].startswith(f"{path}:3: not JSON")  # a blank line inside the file
    assert problems[3] == f"{path}:4: type and id must be non-empty strings"


def test_export_summary_line(tmp_path: Path) -> None:
    views = (REPO / "dashboards" / "data_views.ndjson").read_text()
    good, bad = tmp_path / "good.ndjson", tmp_path / "bad.ndjson"
    good.write_text(views + '{"exportedCount": 2, "missingRefCount": 0, "missingReferences": []}\n')
    bad.write_text(views.splitlines()[0] + '\n{"exportedCount": 2, "missingRefCount": 1}\n')
    assert validate([good]) == []
    assert "export summary says 2 objects and 1 missing references; the file has 1" in validate([bad])[0]


def test_external_objects_resolve_references(tmp_path: Path) -> None:
    dashboards_only = [p for p in DASHBOARD_FILES if p.name != "data_views.ndjson"]
    assert any("does not resolve" in p for p in validate(dashboards_only))
    external = [("index-pattern", "logwarden-events"), ("index-pattern", "logwarden-alerts")]
    assert validate(dashboards_only, external=external) == []
