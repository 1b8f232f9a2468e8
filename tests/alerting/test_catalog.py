"""RuleCatalog: versions, runbooks, teams and windows of the rules, defaults for everything else."""

from __future__ import annotations

from pathlib import Path

from alerting.catalog import DEFAULT_RUNBOOKS, RuleCatalog, RuleInfo, anchor, rule_version
from detectors.sigma.loader import load_rules

RULES = Path(__file__).resolve().parents[2] / "rules"
BRUTE_FORCE = "7d1e9b35-6c2a-4e8f-b0d4-3a9c1f5e2b68"

RULE_FILE = """\
title: Failed sign-in
id: 11111111-1111-4111-8111-111111111111
name: failed_login
date: 2026-11-28
modified: 2026-12-01
logsource: {product: logwarden, service: api_access}
detection:
  selection: {event.action: user-login, event.outcome: failure}
  condition: selection
level: low
runbook: https://wiki.example/runbooks/failed-login
team: iam
logwarden: {suppress: 10m, suppress_by: user.id}
---
title: Many failed sign-ins
id: 22222222-2222-4222-8222-222222222222
name: many_failed_logins
date: 2026-11-28
correlation: {type: event_count, rules: [failed_login], group-by: [user.id], timespan: 5m, condition: {gte: 3}}
level: high
"""


def catalog_of(text: str, tmp_path: Path) -> RuleCatalog:
    path = tmp_path / "rules.yml"
    path.write_text(text)
    ruleset = load_rules([path])
    assert not ruleset.errors, ruleset.errors  # the custom attributes do not bother the loader
    return RuleCatalog.from_ruleset(ruleset, runbook_base="https://docs.example/runbooks.md")


def test_rule_files_give_version_runbook_team_and_window(tmp_path: Path) -> None:
    catalog = catalog_of(RULE_FILE, tmp_path)
    base = catalog.get("11111111-1111-4111-8111-111111111111", "failed_login")
    assert base.runbook_url == "https://wiki.example/runbooks/failed-login"
    assert base.team == "iam"
    assert base.window_s == 600.0  # the suppression window
    assert base.version is not None and base.version.startswith("2026-12-01+")  # modified wins over date
    corr = catalog.get("22222222-2222-4222-8222-222222222222", "many_failed_logins")
    assert corr.runbook_url == "https://docs.example/runbooks.md#many_failed_logins"  # the default, by name
    assert corr.team == "security"
    assert corr.window_s == 300.0
    assert corr.version is not None and corr.version.startswith("2026-11-28+")


def test_any_edit_of_a_rule_changes_its_version(tmp_path: Path) -> None:
    before = catalog_of(RULE_FILE, tmp_path).get("22222222-2222-4222-8222-222222222222", "x").version
    after = catalog_of(RULE_FILE.replace("gte: 3", "gte: 4"), tmp_path).get("22222222-2222-4222-8222-222222222222", "x")
    assert before != after.version and after.version is not None and after.version.startswith("2026-11-28+")


def test_the_shipped_brute_force_rule() -> None:
    catalog = RuleCatalog.from_ruleset(load_rules([RULES]))
    info = catalog.get(BRUTE_FORCE, "api_login_brute_force")
    assert info.window_s == 300.0
    assert info.version is not None and info.version.startswith("2026-11-28+")
    assert info.runbook_url == f"{DEFAULT_RUNBOOKS}#api_login_brute_force"
    assert len(catalog) >= 2


def test_unknown_ids_and_registered_models_get_a_runbook_link() -> None:
    catalog = RuleCatalog(runbook_base="https://docs.example/rb.md#")
    assert catalog.get("nope", "Some Model") == RuleInfo(runbook_url="https://docs.example/rb.md#some-model")
    catalog.register("iforest-behaviour", RuleInfo(version="3", team="data-science"))
    model = catalog.get("iforest-behaviour", "iforest_behaviour")
    assert (model.version, model.team, model.runbook_url) == (
        "3",
        "data-science",
        "https://docs.example/rb.md#iforest_behaviour",
    )


def test_version_without_dates_is_the_digest_alone() -> None:
    assert len(rule_version({"id": "x", "title": "t"})) == 8
    assert rule_version({"id": "x", "version": 3}).startswith("3+")


def test_anchor() -> None:
    assert anchor("api_login_brute_force") == "api_login_brute_force"
    assert anchor("Model: Isolation Forest (v2)") == "model-isolation-forest-v2"


def test_models_register_from_the_ml_engines_rules() -> None:
    catalog = RuleCatalog(runbook_base="https://docs.example/rb.md")
    catalog.register_models(
        {
            "m-1": {"name": "iforest_behaviour", "version": "7", "window_s": 3600},
            "m-2": {"name": "content", "version": 2, "runbook": "https://wiki.example/content", "team": "ml"},
        }
    )
    assert catalog.get("m-1", "x") == RuleInfo("7", "https://docs.example/rb.md#iforest_behaviour", "security", 3600.0)
    assert catalog.get("m-2", "x") == RuleInfo("2", "https://wiki.example/content", "ml", 0.0)
