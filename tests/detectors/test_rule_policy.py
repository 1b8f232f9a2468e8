"""Policy over every shipped rule in rules/: each test lists all offenders at once.

- every rule file loads without errors;
- every rule has id (a UUID), title, level and description;
- correlations and standalone rules of level medium or above carry ATT&CK tags (a tactic and a technique);
- rules may only use fields of the catalogue (``ingest.ecs.EVENT_FIELDS``), detection keys and group-by;
- files are named ``rules/<logsource>/<tactic>_<behaviour>.yml``;
- every rule file has test events beside it, with a positive and a negative case for each rule that alerts,
  and they pass; lint finds nothing (exceptions in ``rules/exceptions.yml`` have not expired).
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from detectors.sigma import testing
from detectors.sigma.lint import lint
from detectors.sigma.loader import PLACEHOLDER_FILE, TEST_SUFFIX, load_rules, rule_files
from detectors.sigma.rule_exceptions import is_exception_file
from ingest.ecs import EVENT_FIELDS

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"

TACTICS = (
    "reconnaissance",
    "resource_development",
    "initial_access",
    "execution",
    "persistence",
    "privilege_escalation",
    "defense_evasion",
    "credential_access",
    "discovery",
    "lateral_movement",
    "collection",
    "command_and_control",
    "exfiltration",
    "impact",
)
LEVELS = ("informational", "low", "medium", "high", "critical")
FILE_NAME = re.compile(rf"^(?:{'|'.join(TACTICS)})_[a-z0-9]+(?:_[a-z0-9]+)*\.yml$")
TECHNIQUE_TAG = re.compile(r"^attack\.t\d{4}(?:\.\d{3})?$")
TACTIC_TAG = re.compile(rf"^attack\.(?:{'|'.join(t.replace('_', '-') for t in TACTICS)})$")


def documents() -> list[tuple[Path, dict[str, Any]]]:
    """Every YAML document of every rule file (test-event files excluded)."""
    out = []
    for path in rule_files([RULES]):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict):
                out.append((path, doc))
    return out


def where(path: Path, doc: dict[str, Any]) -> str:
    return f"{path.relative_to(ROOT)} [{doc.get('name') or doc.get('id') or doc.get('title')}]"


def detection_fields(detection: dict[str, Any]) -> set[str]:
    """Field names of the search identifiers (``field|modifier`` -> ``field``); keyword lists have none."""
    fields: set[str] = set()
    for key, value in detection.items():
        if key == "condition":
            continue
        maps = value if isinstance(value, list) else [value]
        for item in maps:
            if isinstance(item, dict):
                fields.update(str(name).split("|", 1)[0] for name in item)
    return fields


def used_fields(doc: dict[str, Any]) -> set[str]:
    if "correlation" in doc:
        corr = doc["correlation"]
        fields = set(corr.get("group-by") or ())
        condition = corr.get("condition") or {}
        if isinstance(condition, dict) and "field" in condition:
            fields.add(condition["field"])
        return fields
    return detection_fields(doc.get("detection") or {})


@pytest.fixture(scope="module")
def docs() -> list[tuple[Path, dict[str, Any]]]:
    found = documents()
    assert found, f"no rules found under {RULES}"
    return found


def test_every_rule_file_loads_without_errors() -> None:
    ruleset = load_rules([RULES])
    assert ruleset.errors == [], "\n".join(str(e) for e in ruleset.errors)
    assert ruleset.files == len(rule_files([RULES])) > 0
    assert ruleset.loaded == len(documents())


def test_every_rule_has_id_title_level_description(docs: list[tuple[Path, dict[str, Any]]]) -> None:
    offenders = []
    for path, doc in docs:
        missing = [key for key in ("id", "title", "level", "description") if not doc.get(key)]
        if missing:
            offenders.append(f"{where(path, doc)}: missing {', '.join(missing)}")
        if doc.get("level") and doc["level"] not in LEVELS:
            offenders.append(f"{where(path, doc)}: unknown level {doc['level']!r}")
        try:
            uuid.UUID(str(doc.get("id")))
        except ValueError:
            offenders.append(f"{where(path, doc)}: id {doc.get('id')!r} is not a UUID")
    assert not offenders, "\n".join(offenders)


def test_rule_ids_and_names_are_unique(docs: list[tuple[Path, dict[str, Any]]]) -> None:
    seen: dict[str, str] = {}
    offenders = []
    for path, doc in docs:
        for key in ("id", "name"):
            value = doc.get(key)
            if value is None:
                continue
            ref = f"{key}={value}"
            if ref in seen:
                offenders.append(f"{where(path, doc)}: {ref} already used by {seen[ref]}")
            seen[ref] = where(path, doc)
    assert not offenders, "\n".join(offenders)


def test_alerting_rules_carry_attack_tags(docs: list[tuple[Path, dict[str, Any]]]) -> None:
    referenced = {ref for _, doc in docs if "correlation" in doc for ref in doc["correlation"].get("rules") or ()}
    offenders = []
    for path, doc in docs:
        is_base = doc.get("name") in referenced or doc.get("id") in referenced
        if is_base and "correlation" not in doc:
            continue  # only correlations use it: it raises no alert of its own
        if LEVELS.index(doc.get("level", "medium")) < LEVELS.index("medium"):
            continue
        tags = [str(t) for t in doc.get("tags") or ()]
        if not any(TECHNIQUE_TAG.match(t) for t in tags):
            offenders.append(f"{where(path, doc)}: no ATT&CK technique tag (attack.tNNNN[.NNN])")
        if not any(TACTIC_TAG.match(t) for t in tags):
            offenders.append(f"{where(path, doc)}: no ATT&CK tactic tag (attack.<tactic-name>)")
    assert not offenders, "\n".join(offenders)


def test_rules_only_use_catalogued_fields(docs: list[tuple[Path, dict[str, Any]]]) -> None:
    offenders = [
        f"{where(path, doc)}: {field}"
        for path, doc in docs
        for field in sorted(used_fields(doc))
        if field not in EVENT_FIELDS
    ]
    assert not offenders, "fields not in ingest.ecs.EVENT_FIELDS:\n" + "\n".join(offenders)


def test_rule_files_follow_the_naming_scheme() -> None:
    offenders = []
    for path in sorted(RULES.rglob("*")):
        if path.is_dir() or path.name.endswith(TEST_SUFFIX) or is_exception_file(path) or path.name == PLACEHOLDER_FILE:
            continue
        rel = path.relative_to(RULES)
        if len(rel.parts) != 2:
            offenders.append(f"rules/{rel}: expected rules/<logsource>/<tactic>_<behaviour>.yml")
            continue
        if not FILE_NAME.match(path.name):
            offenders.append(f"rules/{rel}: name must be <tactic>_<behaviour>.yml with an ATT&CK tactic")
            continue
        logsource = rel.parts[0]
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not isinstance(doc, dict) or "logsource" not in doc:
                continue
            source = doc["logsource"] or {}
            names = {source.get("service"), source.get("category"), source.get("product")}
            if logsource not in names:
                offenders.append(f"rules/{rel}: folder {logsource!r} does not match logsource {source}")
    assert not offenders, "\n".join(offenders)


def test_policy_helpers_find_fields_through_modifiers_and_lists() -> None:
    detection = {
        "selection": {"user.id|contains|all": ["a", "b"], "source.ip|cidr": "10.0.0.0/8"},
        "filter": [{"event.action": "x"}, {"url.path|startswith": "/v1"}],
        "keywords": ["just", "words"],
        "condition": "selection and not filter",
    }
    assert detection_fields(detection) == {"user.id", "source.ip", "event.action", "url.path"}
    corr = {"correlation": {"group-by": ["user.id"], "condition": {"gte": 3, "field": "source.ip"}}}
    assert used_fields(corr) == {"user.id", "source.ip"}


def test_every_alerting_rule_has_positive_and_negative_tests_that_pass() -> None:
    ruleset = load_rules([RULES])
    alerting = [r.meta for r in ruleset.rules if r.generate] + [c.meta for c in ruleset.correlations if c.output]
    offenders = []
    for meta in alerting:
        path = testing.rule_tests_path(Path(meta.path))
        if not path.exists():
            offenders.append(f"{meta.path}: no test events ({path.name})")
            continue
        cases = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("tests") or []
        wanted = [
            (spec if isinstance(spec, int) else spec.get("count", 1))
            for case in cases
            for ref, spec in (case.get("expect") or {}).items()
            if ref in (meta.name, meta.id)
        ]
        if not any(n > 0 for n in wanted) or 0 not in wanted:
            offenders.append(f"{path.relative_to(ROOT)} [{meta.name}]: needs a positive and a negative case")
    report = testing.run_rule_tests([RULES], ruleset)
    offenders += [f"{c.path}:{c.line}: {c.name}: {'; '.join(c.failures)}" for c in report.cases if not c.ok]
    offenders += [str(e) for e in report.errors]
    assert not offenders, "\n".join(offenders)


def test_lint_finds_nothing_in_the_shipped_rules() -> None:
    problems = lint([RULES]).problems
    assert not problems, "\n".join(str(p) for p in problems)
