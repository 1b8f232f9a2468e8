"""Every value modifier of the Sigma specification, null and empty values, keywords, placeholders, filters."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from detectors.sigma.compile import KEYWORD_FIELDS


def sel(**fields: Any) -> dict[str, Any]:
    return {"selection": {k.replace("__", "."): v for k, v in fields.items()}, "condition": "selection"}


def test_contains_startswith_endswith_are_case_insensitive(kit: Any) -> None:
    rule = kit.compile({"selection": {"url.query|contains": "Union Select"}, "condition": "selection"})
    assert rule.matches({"url": {"query": "id=1 UNION SELECT pw"}})
    assert not rule.matches({"url": {"query": "id=1 union  select"}})
    starts = kit.compile({"selection": {"url.path|startswith": "/Admin"}, "condition": "selection"})
    assert starts.matches({"url.path": "/admin/users"}) and not starts.matches({"url.path": "/x/admin"})
    ends = kit.compile({"selection": {"url.path|endswith": ".PHP"}, "condition": "selection"})
    assert ends.matches({"url.path": "/index.php"}) and not ends.matches({"url.path": "/index.php5"})


def test_contains_all_needs_every_value_and_plain_lists_need_one(kit: Any) -> None:
    every = kit.compile({"s": {"message|contains|all": ["alpha", "beta"]}, "condition": "s"})
    any_ = kit.compile({"s": {"message|contains": ["alpha", "beta"]}, "condition": "s"})
    assert every.matches({"message": "beta then alpha"}) and not every.matches({"message": "alpha only"})
    assert any_.matches({"message": "alpha only"}) and not any_.matches({"message": "gamma"})


def test_all_on_plain_values(kit: Any) -> None:
    rule = kit.compile({"s": {"tags|all": ["a", "b"]}, "condition": "s"})
    assert rule.matches({"tags": ["b", "x", "A"]})
    assert not rule.matches({"tags": ["a"]})


@pytest.mark.parametrize(
    ("flags", "text", "expected"),
    [
        ("", "ADMIN", False),
        ("|i", "ADMIN", True),
        ("", "x\nadmin", False),  # ^ anchors the whole text
        ("|m", "x\nadmin", True),
        ("", "adm\nin", False),
        ("|s", "adm\nin", True),
    ],
)
def test_regex_flags(kit: Any, flags: str, text: str, expected: bool) -> None:
    pattern = "^adm.in" if "s" in flags or text == "adm\nin" else "^admin"
    rule = kit.compile({"s": {f"message|re{flags}": pattern}, "condition": "s"})
    assert rule.matches({"message": text}) is expected


def test_regex_long_flag_names_and_contains_on_regex(kit: Any) -> None:
    rule = kit.compile({"s": {"message|re|ignorecase|multiline|dotall": "^a.b$"}, "condition": "s"})
    assert rule.matches({"message": "x\nA\nB"})
    anchored = kit.compile({"s": {"message|re": "a|b"}, "condition": "s"})
    assert anchored.matches({"message": "zzb"})


def test_cidr_ipv4_ipv6_and_junk(kit: Any) -> None:
    rule = kit.compile({"s": {"source.ip|cidr": ["192.168.0.0/16", "fd00::/8"]}, "condition": "s"})
    assert rule.matches({"source": {"ip": "192.168.3.4"}})
    assert rule.matches({"source": {"ip": "fd12::1"}})
    assert not rule.matches({"source": {"ip": "192.169.0.1"}})
    assert not rule.matches({"source": {"ip": "::ffff:10.0.0.1"}})
    assert not rule.matches({"source": {"ip": 3232235777}})  # a number is not an address
    assert not rule.matches({"source": {"ip": "192.168.0.1/24"}})


def test_base64_and_base64offset(kit: Any) -> None:
    plain = kit.compile({"s": {"message|base64": "secret"}, "condition": "s"})
    assert plain.matches({"message": base64.b64encode(b"secret").decode()})
    offset = kit.compile({"s": {"message|base64offset|contains": "secret"}, "condition": "s"})
    for prefix in (b"", b"a", b"ab", b"abc"):
        encoded = base64.b64encode(prefix + b"secret" + b" and more").decode()
        assert offset.matches({"message": f"cmd {encoded} end"}), prefix
    assert not offset.matches({"message": base64.b64encode(b"public").decode()})


def test_wide_and_utf16_encodings_before_base64(kit: Any) -> None:
    wide = kit.compile({"s": {"message|wide|base64offset|contains": "ping"}, "condition": "s"})
    assert wide.matches({"message": base64.b64encode("x ping y".encode("utf-16le")).decode()})
    be = kit.compile({"s": {"message|utf16be|base64": "ab"}, "condition": "s"})
    assert be.matches({"message": base64.b64encode("ab".encode("utf-16be")).decode()})
    bom = kit.compile({"s": {"message|utf16|base64": "ab"}, "condition": "s"})
    assert bom.matches({"message": base64.b64encode(b"\xff\xfe" + "ab".encode("utf-16le")).decode()})


def test_windash_expands_dash_and_slash_variants(kit: Any) -> None:
    rule = kit.compile({"s": {"process.command_line|windash|contains": "-exec bypass"}, "condition": "s"})
    for dash in ("-", "/", "\u2013", "\u2014", "\u2015"):
        assert rule.matches({"process": {"command_line": f"powershell {dash}exec bypass"}}), dash
    assert not rule.matches({"process": {"command_line": "powershell exec bypass"}})


def test_exists(kit: Any) -> None:
    present = kit.compile({"s": {"user.id|exists": True}, "condition": "s"})
    absent = kit.compile({"s": {"user.id|exists": False}, "condition": "s"})
    for doc, has in (
        ({"user": {"id": "u"}}, True),
        ({"user": {"id": None}}, False),
        ({}, False),
        ({"user.id": ""}, True),
    ):
        assert present.matches(doc) is has
        assert absent.matches(doc) is not has


def test_cased(kit: Any) -> None:
    rule = kit.compile({"s": {"user.name|cased": "Admin", "url.path|contains|cased": "/Root"}, "condition": "s"})
    assert rule.matches({"user": {"name": "Admin"}, "url": {"path": "/x/Root/y"}})
    assert not rule.matches({"user": {"name": "admin"}, "url": {"path": "/x/Root/y"}})
    assert not rule.matches({"user": {"name": "Admin"}, "url": {"path": "/x/root/y"}})


@pytest.mark.parametrize(
    ("modifier", "yes", "no"),
    [("gt", [11, "12.5"], [10, 9, True, "x"]), ("gte", [10, 10.0], [9.99]), ("lt", [9, -1], [10]), ("lte", [10], [11])],
)
def test_numeric_comparisons(kit: Any, modifier: str, yes: list[Any], no: list[Any]) -> None:
    rule = kit.compile({"s": {f"http.response.bytes|{modifier}": 10}, "condition": "s"})
    assert all(rule.matches({"http": {"response": {"bytes": v}}}) for v in yes)
    assert not any(rule.matches({"http": {"response": {"bytes": v}}}) for v in no)


@pytest.mark.parametrize(
    ("modifier", "value", "stamp"),
    [
        ("minute", 42, "2026-11-02T08:42:10Z"),
        ("hour", 23, "2026-11-02T23:00:00.000Z"),
        ("day", 2, "2026-11-02T08:00:00Z"),
        ("week", 45, "2026-11-02T08:00:00Z"),
        ("month", 11, "2026-11-02T08:00:00Z"),
        ("year", 2026, "2026-11-02T08:00:00Z"),
    ],
)
def test_timestamp_part_modifiers(kit: Any, modifier: str, value: int, stamp: str) -> None:
    rule = kit.compile({"s": {f"event.created|{modifier}": value}, "condition": "s"})
    assert rule.matches({"event": {"created": stamp}})
    assert not rule.matches({"event": {"created": "2025-01-01T00:00:00Z"}})
    assert not rule.matches({"event": {"created": "not a time"}})


def test_fieldref(kit: Any) -> None:
    same = kit.compile({"s": {"user.name|fieldref": "user.target.name"}, "condition": "s"})
    assert same.matches({"user": {"name": "Bob", "target": {"name": "bob"}}})
    assert not same.matches({"user": {"name": "Bob", "target": {"name": "alice"}}})
    assert not same.matches({"user": {"name": "Bob"}})
    contains = kit.compile({"s": {"url.original|fieldref|contains": "user.name"}, "condition": "s"})
    assert contains.matches({"url": {"original": "/home/bob/x"}, "user": {"name": "bob"}})
    starts = kit.compile({"s": {"url.original|fieldref|startswith": "user.name"}, "condition": "s"})
    assert not starts.matches({"url": {"original": "/home/bob/x"}, "user": {"name": "bob"}})


def test_neq_negates_the_item(kit: Any) -> None:
    rule = kit.compile({"s": {"event.action": "login", "event.outcome|neq": "success"}, "condition": "s"})
    assert rule.matches({"event": {"action": "login", "outcome": "failure"}})
    assert rule.matches({"event": {"action": "login"}})
    assert not rule.matches({"event": {"action": "login", "outcome": "success"}})


def test_expand_placeholders_from_the_mapping(kit: Any) -> None:
    doc = kit.rule({"s": {"user.name|expand": "%admins%"}, "condition": "s"})
    ruleset = kit.load(doc, placeholders={"admins": ["root", "Admin"]})
    (rule,) = ruleset.rules
    assert rule.matches({"user": {"name": "ADMIN"}}) and not rule.matches({"user": {"name": "bob"}})


def test_placeholders_file_and_unknown_placeholder(kit: Any, tmp_path: Any) -> None:
    (tmp_path / "placeholders.yml").write_text("svc_accounts: [ci, deploy]\n", encoding="utf-8")
    good = kit.rule({"s": {"user.name|expand": "%svc_accounts%"}, "condition": "s"})
    bad = kit.rule({"s": {"user.name|expand": "%nobody_defined_this%"}, "condition": "s"})
    kit.write(good, bad, name="rules.yml")
    from detectors.sigma.loader import load_rules

    ruleset = load_rules([tmp_path])
    assert [r.meta.name for r in ruleset.rules] == [good["name"]]
    (error,) = ruleset.errors
    assert "nobody_defined_this" in error.message and error.line > 1
    assert ruleset.rules[0].matches({"user": {"name": "deploy"}})


def test_null_empty_and_empty_list(kit: Any) -> None:
    null = kit.compile({"s": {"user.id": None}, "condition": "s"})
    empty = kit.compile({"s": {"user.id": ""}, "condition": "s"})
    empty_list = kit.compile({"s": {"user.id": []}, "condition": "s"})
    assert null.matches({}) and null.matches({"user": {"id": None}}) and not null.matches({"user": {"id": ""}})
    assert empty.matches({"user": {"id": ""}}) and not empty.matches({}) and not empty.matches({"user": {"id": "x"}})
    assert empty_list.matches({}) and not empty_list.matches({"user": {"id": "x"}})


def test_wildcards_and_escapes(kit: Any) -> None:
    star = kit.compile({"s": {"message": "a\\*b*"}, "condition": "s"})
    assert star.matches({"message": "a*bcd"}) and not star.matches({"message": "axbcd"})
    question = kit.compile({"s": {"message": "a\\?b?"}, "condition": "s"})
    assert question.matches({"message": "a?bc"}) and not question.matches({"message": "axbc"})
    backslash = kit.compile({"s": {"message": "c:\\\\windows\\*"}, "condition": "s"})
    assert backslash.matches({"message": "c:\\windows*"})
    plain_backslash = kit.compile({"s": {"message": "c:\\temp"}, "condition": "s"})
    assert plain_backslash.matches({"message": "C:\\TEMP"})


def test_keyword_search_looks_into_the_free_text_fields(kit: Any) -> None:
    assert KEYWORD_FIELDS == ("message", "event.original", "url.original", "user_agent.original")
    rule = kit.compile({"keywords": ["union select", "sqlmap"], "condition": "keywords"})
    assert rule.matches({"url": {"original": "/x?id=1%20UNION SELECT pw"}})
    assert rule.matches({"user_agent": {"original": "sqlmap/1.7"}})
    assert rule.matches({"message": "... union select ..."})
    assert not rule.matches({"user": {"name": "sqlmap"}})  # not a free-text field
    anded = kit.compile({"kw": {"|all": ["alpha", "beta"]}, "condition": "kw"})
    assert anded.matches({"message": "beta alpha"}) and not anded.matches({"message": "alpha"})
    regex = kit.compile({"kw": {"|re": "^GET /admin"}, "condition": "kw"})
    assert regex.matches({"event": {"original": "GET /admin HTTP/1.1"}})


def test_keyword_fields_are_configurable(kit: Any) -> None:
    ruleset = kit.load(kit.rule({"kw": ["needle"], "condition": "kw"}), keyword_fields=("user.name",))
    (rule,) = ruleset.rules
    assert rule.matches({"user": {"name": "a needle"}}) and not rule.matches({"message": "needle"})


def test_condition_grammar(kit: Any) -> None:
    rule = kit.compile(
        {
            "sel_a": {"event.action": "a"},
            "sel_b": {"event.action": "b"},
            "filter_x": {"user.name": "x"},
            "other": {"user.name": "y"},
            "condition": "(1 of sel_* and not filter_x) or (all of sel_* ) or other",
        }
    )
    assert rule.matches({"event": {"action": "a"}})
    assert not rule.matches({"event": {"action": "a"}, "user": {"name": "x"}})
    assert rule.matches({"user": {"name": "y"}})
    them = kit.compile({"a": {"event.action": "a"}, "b": {"user.name": "x"}, "condition": "1 of them"})
    assert them.matches({"user": {"name": "x"}})
    anyof = kit.compile({"a": {"event.action": "a"}, "b": {"user.name": "x"}, "condition": "any of them"})
    assert anyof.matches({"event": {"action": "a"}})


def test_sigma_filter_documents_apply_to_the_rules_they_name(kit: Any) -> None:
    target = kit.rule({"s": {"event.action": "login"}, "condition": "s"}, name="logins")
    other = kit.rule({"s": {"event.action": "login"}, "condition": "s"}, name="other_logins")
    sigma_filter = {
        "title": "ignore the CI user",
        "id": "99999999-9999-4999-8999-999999999999",
        "logsource": {"product": "logwarden"},
        "filter": {"rules": ["logins"], "ci": {"user.name": "ci"}, "condition": "not ci"},
    }
    ruleset = kit.load(target, other, sigma_filter)
    rules = {r.meta.name: r for r in ruleset.rules}
    doc = {"event": {"action": "login"}, "user": {"name": "ci"}}
    assert not rules["logins"].matches(doc)
    assert rules["other_logins"].matches(doc)
    assert rules["logins"].matches({"event": {"action": "login"}, "user": {"name": "bob"}})


def test_bad_modifier_and_bad_regex_and_bad_cidr_are_load_errors(kit: Any) -> None:
    bad = [
        kit.rule({"s": {"a|nope": "x"}, "condition": "s"}),
        kit.rule({"s": {"a|re": "(unclosed"}, "condition": "s"}),
        kit.rule({"s": {"a|cidr": "10.0.0.0/33"}, "condition": "s"}),
        kit.rule({"s": {"a|base64": "wild*card"}, "condition": "s"}),
        kit.rule({"s": {"a": "x"}, "condition": "s and missing"}),
    ]
    good = kit.rule({"s": {"a": "x"}, "condition": "s"})
    ruleset = kit.load(*bad, good, errors_ok=True)
    assert len(ruleset.errors) == len(bad), [str(e) for e in ruleset.errors]
    assert len({e.line for e in ruleset.errors}) == len(bad)
    assert [r.meta.name for r in ruleset.rules] == [good["name"]]
