"""The synthetic API-gateway traffic generator: determinism, order, schema, normal traffic, scenarios."""

from __future__ import annotations

import ipaddress
import re
import statistics
from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.sources.synthetic import (
    ATTACKER_NETWORKS,
    SCENARIOS,
    SyntheticEvent,
    generate_api_access,
    to_json_line,
)

ALL = tuple(SCENARIOS)
START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FIVE_MIN_MS = 300_000
LOGIN = "/v1/auth/login"

SCHEMA: dict[str, type | tuple[type, ...]] = {
    "timestamp": str,
    "request_id": str,
    "client_ip": str,
    "forwarded_for": list,
    "api_key_id": (str, type(None)),
    "user_id": str,
    "org_id": str,
    "auth_method": str,
    "mfa": bool,
    "method": str,
    "path": str,
    "route": str,
    "query": str,
    "status": int,
    "latency_ms": float,
    "bytes_in": int,
    "bytes_out": int,
    "model": (str, type(None)),
    "input_tokens": int,
    "output_tokens": int,
    "user_agent": str,
    "tls_version": str,
}
PATTERNS = {
    "timestamp": re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"),
    "request_id": re.compile(r"req_[0-9a-f]{24}"),
    "api_key_id": re.compile(r"key_[A-Za-z0-9]{16}"),
    "user_id": re.compile(r"user_[A-Za-z0-9]{12}"),
    "org_id": re.compile(r"org_[A-Za-z0-9]{12}"),
}
ATTACK_NETS = {name: [ipaddress.ip_network(n) for n in nets] for name, nets in ATTACKER_NETWORKS.items()}


@cache
def run(seed: int = 7, scenarios: tuple[str, ...] = ("brute_force",), minutes: int = 60) -> list[SyntheticEvent]:
    """One generated run, memoized: the generator is deterministic, so tests may share runs."""
    return list(generate_api_access(seed=seed, scenarios=scenarios, duration=timedelta(minutes=minutes)))


def ms(moment: str | datetime) -> int:
    """Epoch milliseconds, exactly (no float rounding)."""
    when = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return (when - EPOCH) // timedelta(milliseconds=1)


def max_in_window(times: Iterable[int], window_ms: int = FIVE_MIN_MS) -> int:
    """The largest number of ``times`` (sorted) inside any window of ``window_ms``."""
    best, inside = 0, deque[int]()
    for t in times:
        inside.append(t)
        while inside[0] <= t - window_ms:
            inside.popleft()
        best = max(best, len(inside))
    return best


def attacker_scenario(ip: str) -> str | None:
    address = ipaddress.ip_address(ip)
    return next((name for name, nets in ATTACK_NETS.items() if any(address in n for n in nets)), None)


def route_regex(route: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{[a-z_]+\\\}", "[A-Za-z0-9_]+", re.escape(route)))


def check_schema(raw: dict[str, Any]) -> None:
    assert list(raw) == list(SCHEMA), "keys exactly as the schema, in order"
    for key, kind in SCHEMA.items():
        assert isinstance(raw[key], kind), (key, raw[key])
    assert not isinstance(raw["status"], bool) and 100 <= raw["status"] <= 599
    for key, pattern in PATTERNS.items():
        assert raw[key] is None or pattern.fullmatch(raw[key]), (key, raw[key])
    assert ipaddress.ip_address(raw["client_ip"]).is_global, raw["client_ip"]
    assert str(ipaddress.ip_address(raw["client_ip"])) == raw["client_ip"], "canonical form"
    for hop in raw["forwarded_for"]:
        ipaddress.ip_address(hop)
    assert raw["auth_method"] in {"api_key", "password", "session", "oauth"}
    assert (raw["api_key_id"] is not None) == (raw["auth_method"] == "api_key")
    assert raw["method"] in {"GET", "POST"}
    assert route_regex(raw["route"]).fullmatch(raw["path"]), (raw["route"], raw["path"])
    assert not raw["query"].startswith("?")
    assert raw["latency_ms"] >= 0 and raw["bytes_in"] >= 0 and raw["bytes_out"] >= 0
    assert raw["input_tokens"] >= 0 and raw["output_tokens"] >= 0
    if raw["model"] is None:
        assert raw["input_tokens"] == raw["output_tokens"] == 0
    if raw["route"] in {LOGIN, "/v1/auth/mfa/verify"}:
        assert raw["method"] == "POST" and raw["auth_method"] == "password"
    if raw["route"] == LOGIN and raw["status"] >= 400:
        assert raw["mfa"] is False
    assert raw["user_agent"]
    assert raw["tls_version"] in {"TLSv1.3", "TLSv1.2"}


# --- determinism and order -------------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes() -> None:
    first = b"".join(map(to_json_line, generate_api_access(seed=11, scenarios=ALL)))
    second = b"".join(map(to_json_line, generate_api_access(seed=11, scenarios=ALL)))
    assert first == second
    assert first != b"".join(map(to_json_line, generate_api_access(seed=12, scenarios=ALL)))


def test_normal_traffic_does_not_depend_on_injected_scenarios() -> None:
    with_all = [e.raw for e in run(scenarios=ALL) if e.scenario is None]
    without = [e.raw for e in run(scenarios=())]
    assert with_all == without


def test_events_are_ordered_and_inside_the_window() -> None:
    events = run(scenarios=ALL)
    stamps = [ms(e.raw["timestamp"]) for e in events]
    assert stamps == sorted(stamps)
    assert ms("2026-11-02T08:00:00.000Z") <= stamps[0] and stamps[-1] < ms("2026-11-02T09:00:00.000Z")
    assert len({e.raw["request_id"] for e in events}) == len(events)


def test_generation_is_lazy() -> None:
    stream = generate_api_access(duration=timedelta(days=365), scenarios=())
    assert next(stream).raw["timestamp"].startswith("2026-11-02T08:00")


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    minutes=st.integers(1, 15),
    rate=st.floats(0.2, 8.0),
    scenarios=st.lists(st.sampled_from(ALL), max_size=4),
    n_orgs=st.integers(1, 30),
    offset_s=st.integers(-(10**6), 10**6),
)
def test_invariants_hold_for_any_arguments(
    seed: int, minutes: int, rate: float, scenarios: list[str], n_orgs: int, offset_s: int
) -> None:
    start = START + timedelta(seconds=offset_s, microseconds=offset_s % 7 * 1000)

    def generate() -> list[SyntheticEvent]:
        return list(generate_api_access(seed=seed, start=start, duration=timedelta(minutes=minutes),
                                        rate_per_s=rate, scenarios=scenarios, n_orgs=n_orgs))  # fmt: skip

    events = generate()
    assert list(map(to_json_line, events)) == list(map(to_json_line, generate()))
    stamps = [ms(e.raw["timestamp"]) for e in events]
    assert stamps == sorted(stamps)
    assert all(ms(start) <= t < ms(start + timedelta(minutes=minutes)) for t in stamps)
    for event in events:
        check_schema(event.raw)
        assert event.scenario is None or event.scenario in scenarios
        assert attacker_scenario(event.raw["client_ip"]) == event.scenario
    assert {e.scenario for e in events if e.scenario} == set(scenarios)


# --- schema ------------------------------------------------------------------------------------------------


def test_every_event_matches_the_schema() -> None:
    for event in run(scenarios=ALL):
        check_schema(event.raw)


def test_json_line_round_trips() -> None:
    event = run()[0]
    line = to_json_line(event)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert orjson.loads(line) == event.raw


# --- normal traffic -------------------------------------------------------------------------------------


def failures_per_user(events: Sequence[SyntheticEvent], route: str | None = LOGIN) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    for e in events:
        if e.scenario is None and e.raw["status"] == 401 and (route is None or e.raw["route"] == route):
            out[e.raw["user_id"]].append(ms(e.raw["timestamp"]))
    return out


def test_normal_users_never_reach_five_login_failures_in_five_minutes() -> None:
    events = run()
    assert sum(1 for e in events if e.scenario is None and e.raw["route"] == LOGIN) > 20
    worst = max((max_in_window(t) for t in failures_per_user(events).values()), default=0)
    assert worst < 5


def test_failure_cap_holds_under_heavy_login_load() -> None:
    # few users, high rate: many logins per user, so the cap on typos and bad keys is exercised
    events = list(generate_api_access(seed=3, rate_per_s=40, duration=timedelta(minutes=30), n_orgs=1,
                                      scenarios=()))  # fmt: skip
    per_user = failures_per_user(events, route=None)
    assert sum(map(len, per_user.values())) > 20
    assert max(max_in_window(t) for t in per_user.values()) <= 2


def test_normal_traffic_looks_like_an_llm_api() -> None:
    normal = [e.raw for e in run(scenarios=()) if e.raw["route"] != LOGIN]
    routes = Counter(r["route"] for r in normal)
    assert routes.most_common(1)[0][0] == "/v1/chat/completions"
    assert {"/v1/embeddings", "/v1/responses", "/v1/models", "/v1/files", "/v1/files/{file_id}/content",
            "/v1/batches", "/v1/auth/mfa/verify"} <= set(routes)  # fmt: skip
    statuses = Counter(r["status"] for r in normal)
    assert statuses[200] / len(normal) > 0.9 and statuses[429] > 0 and statuses[400] > 0
    orgs = Counter(r["org_id"] for r in normal).most_common()
    assert len(orgs) == 12 and orgs[0][1] > 5 * orgs[-1][1], "a few big orgs, many small ones"
    chat = [r for r in normal if r["route"] == "/v1/chat/completions" and r["status"] == 200]
    assert statistics.correlation([r["output_tokens"] for r in chat], [r["latency_ms"] for r in chat]) > 0.3
    assert statistics.correlation([r["output_tokens"] for r in chat], [r["bytes_out"] for r in chat]) > 0.9
    keys, ips = defaultdict(set), defaultdict(set)
    for r in normal:
        keys[r["user_id"]].add(r["api_key_id"])
        ips[r["user_id"]].add(r["client_ip"])
    assert max(len(k - {None}) for k in keys.values()) <= 4  # 1-3 keys and a rarely seen revoked one
    assert max(len(i) for i in ips.values()) <= 3
    assert any(":" in r["client_ip"] for r in normal), "some IPv6"
    assert any(r["forwarded_for"] for r in normal), "some corporate proxies"


# --- scenarios ------------------------------------------------------------------------------------------


def injected(events: Sequence[SyntheticEvent], name: str) -> list[dict[str, Any]]:
    return [e.raw for e in events if e.scenario == name]


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_brute_force_is_thirty_or_more_failures_against_one_user(seed: int) -> None:
    attack = injected(run(seed=seed), "brute_force")
    logins = [r for r in attack if r["route"] == LOGIN]
    failures = [r for r in logins if r["status"] == 401]
    assert len({r["user_id"] for r in logins}) == 1 and len({r["client_ip"] for r in attack}) == 1
    assert 30 <= len(failures) <= 60 and max_in_window(ms(r["timestamp"]) for r in failures) >= 30
    assert all(r["user_agent"] == "python-requests/2.31.0" for r in logins)
    assert all(r["status"] == 401 for r in logins[:-1]) and logins[-1]["status"] in {200, 401}
    assert ms(logins[-1]["timestamp"]) - ms(logins[0]["timestamp"]) <= 200_000
    target = logins[0]["user_id"]
    assert any(e.raw["user_id"] == target for e in run(seed=seed) if e.scenario is None), "an existing user"


def test_brute_force_fits_a_short_window() -> None:
    events = list(generate_api_access(duration=timedelta(minutes=2)))
    failures = [r for r in injected(events, "brute_force") if r["route"] == LOGIN and r["status"] == 401]
    assert len(failures) >= 30


def test_credential_stuffing_hits_forty_users_in_five_minutes() -> None:
    logins = [r for r in injected(run(scenarios=ALL), "credential_stuffing") if r["route"] == LOGIN]
    assert len({r["user_id"] for r in logins}) >= 40
    assert len({r["client_ip"] for r in logins}) <= 3
    assert sum(r["status"] == 401 for r in logins) / len(logins) > 0.9
    assert ms(logins[-1]["timestamp"]) - ms(logins[0]["timestamp"]) < FIVE_MIN_MS


def test_key_leak_uses_one_key_from_many_countries() -> None:
    attack = injected(run(scenarios=ALL), "key_leak")
    assert len({r["api_key_id"] for r in attack}) == 1
    assert len({r["client_ip"] for r in attack}) >= 20
    assert len({r["client_ip"].rsplit(".", 2)[0] for r in attack}) >= 10  # /16 prefixes in ten countries
    assert ms(attack[-1]["timestamp"]) - ms(attack[0]["timestamp"]) <= 15 * 60_000


def test_exfiltration_downloads_many_large_files() -> None:
    events = run(scenarios=ALL)
    content = "/v1/files/{file_id}/content"
    downloads = [r for r in injected(events, "exfiltration") if r["route"] == content]
    normal = [e.raw["bytes_out"] for e in events if e.scenario is None and e.raw["route"] == content]
    assert len({r["user_id"] for r in downloads}) == 1 and len({r["path"] for r in downloads}) >= 60
    assert statistics.median(r["bytes_out"] for r in downloads) > 5 * statistics.median(normal)
    assert sum(r["bytes_out"] for r in downloads) > 1_000_000_000


def test_token_spike_multiplies_output_tokens_of_one_key() -> None:
    events = run(scenarios=ALL)
    spike = [r for r in injected(events, "token_spike") if r["status"] == 200]
    assert len({r["api_key_id"] for r in spike}) == 1 and len(spike) > 50
    model = spike[0]["model"]
    normal = [e.raw["output_tokens"] for e in events if e.scenario is None and e.raw["model"] == model
              and e.raw["status"] == 200]  # fmt: skip
    assert statistics.median(r["output_tokens"] for r in spike) > 10 * statistics.median(normal)
    assert ms(spike[-1]["timestamp"]) - ms(spike[0]["timestamp"]) <= 10 * 60_000


def test_labels_only_on_injected_events() -> None:
    events = run(scenarios=ALL)
    labels = Counter(e.scenario for e in events)
    assert set(labels) == {None, *ALL}
    for event in events:
        assert attacker_scenario(event.raw["client_ip"]) == event.scenario
    assert all(e.scenario is None for e in run(scenarios=()))


def test_repeated_scenario_is_injected_twice() -> None:
    twice = ("brute_force", "brute_force")
    events = list(generate_api_access(scenarios=twice, duration=timedelta(minutes=30)))
    attack = injected(events, "brute_force")
    assert len({r["client_ip"] for r in attack}) == 2
    assert len({r["request_id"] for r in attack}) == len(attack)


def test_a_single_name_is_accepted_as_a_string() -> None:
    events = generate_api_access(scenarios="key_leak", duration=timedelta(minutes=20))
    assert {e.scenario for e in events} == {None, "key_leak"}


# --- argument errors ------------------------------------------------------------------------------------


def test_unknown_scenario_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"'ddos'.*valid scenarios: brute_force, credential_stuffing"):
        generate_api_access(scenarios=("brute_force", "ddos"))  # raised at call time, not on iteration


@pytest.mark.parametrize(
    "kwargs",
    [
        {"start": datetime(2026, 11, 2, 8, 0)},
        {"duration": timedelta(0)},
        {"rate_per_s": 0.0},
        {"n_orgs": 0},
    ],
)
def test_bad_arguments_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        generate_api_access(**kwargs)
