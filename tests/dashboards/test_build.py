"""The committed NDJSON is what ``python -m dashboards.build`` writes, and holds the dashboards analysts need."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alerting.alert import LEVELS
from dashboards import build
from logwarden.kibana_validate import load
from tests.dashboards.panel_queries import DASHBOARD_FILES

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = {
    "security_overview.ndjson": "[logwarden] Security overview",
    "authentication.ndjson": "[logwarden] Authentication",
    "api_usage.ndjson": "[logwarden] API usage",
    "admin_audit.ndjson": "[logwarden] Admin and audit",
    "anomalies.ndjson": "[logwarden] Anomalies",
    "alert_triage.ndjson": "[logwarden] Alert triage",
}


def test_the_committed_files_are_up_to_date() -> None:
    expected = build.files()
    assert sorted(expected) == sorted(p.name for p in DASHBOARD_FILES), "stale or missing .ndjson in dashboards/"
    stale = [name for name, text in expected.items() if (REPO / "dashboards" / name).read_text() != text]
    assert not stale, f"run `python -m dashboards.build`: {stale} differ from the specs"


def test_one_file_per_dashboard_plus_the_data_views() -> None:
    for path in DASHBOARD_FILES:
        objects, problems = load([path])
        assert not problems
        kinds = [o.type for o in objects]
        if path.name == "data_views.ndjson":
            assert kinds == ["index-pattern", "index-pattern"]
            continue
        assert kinds[-1] == "dashboard" and kinds.count("dashboard") == 1, path
        assert objects[-1].attributes["title"] == DASHBOARDS[path.name]
        own = {(o.type, o.id) for o in objects}
        for obj in objects:  # a file needs nothing but itself and the data views
            for ref in obj.references:
                assert (ref["type"], ref["id"]) in own or ref["type"] == "index-pattern", (path.name, ref)
        used = {(r["type"], r["id"]) for r in objects[-1].references}
        assert own - {("dashboard", objects[-1].id)} == used, f"{path.name}: objects no panel shows"


def test_ids_are_stable_and_prefixed() -> None:
    objects, _ = load(DASHBOARD_FILES)
    assert all(o.id.startswith("logwarden-") for o in objects)
    ids = {(o.type, o.id) for o in objects}
    assert ("index-pattern", "logwarden-events") in ids and ("index-pattern", "logwarden-alerts") in ids


def test_one_triage_search_per_alert_severity() -> None:
    """The ``generatorURL`` of an alert opens ``logwarden-alerts-<severity>``: one exists for every level."""
    objects, _ = load([REPO / "dashboards" / "alert_triage.ndjson"])
    searches = {o.id: o for o in objects if o.type == "search"}
    for level in LEVELS:
        search = searches[f"logwarden-alerts-{level}"]
        source = json.loads(search.attributes["kibanaSavedObjectMeta"]["searchSourceJSON"])
        assert source["query"] == {"language": "kuery", "query": f'logwarden.alert.severity : "{level}"'}
        assert {"rule.name", "logwarden.alert.entity", "logwarden.alert.id"} <= set(search.attributes["columns"])


def test_build_check_mode_reports_stale_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, "HERE", tmp_path)
    assert build.main(["--check"]) == 1
    assert build.main([]) == 0 and build.main(["--check"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in DASHBOARD_FILES)
