"""nginx / Apache access-log lines -> ECS documents, or ParseError with a reason code."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.ecs import EVENT_FIELDS
from ingest.errors import ParseError
from ingest.parsers import PARSERS, SPLITTERS
from ingest.parsers.web_access import parse_apache, parse_nginx

COMBINED = (
    b'198.51.100.23 - alice [02/Nov/2026:09:14:07 +0100] "GET /v1/models?limit=20 HTTP/1.1" 200 5123 '
    b'"https://console.example.com/" "Mozilla/5.0 (X11; Linux x86_64)"'
)
COMMON = b'192.0.2.14 - - [02/Nov/2026:13:55:36 -0700] "GET /logo.png HTTP/1.0" 200 2326'
PREFIX = b'192.0.2.1 - - [02/Nov/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "ua"'


def flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def reason_of(line: bytes) -> str:
    with pytest.raises(ParseError) as info:
        parse_nginx(line)
    return info.value.reason


def line_with(
    request: str = "GET / HTTP/1.1",
    *,
    host: str = "192.0.2.1",
    time_: str = "02/Nov/2026:00:00:00 +0000",
    user: str = "-",
    status: str = "200",
    size: str = "1",
    tail: str = ' "-" "ua"',
) -> bytes:
    return f'{host} - {user} [{time_}] "{request}" {status} {size}{tail}'.encode()


def test_sources_are_registered_without_splitters() -> None:
    assert PARSERS["nginx"] is parse_nginx
    assert PARSERS["apache"] is parse_apache
    assert "nginx" not in SPLITTERS and "apache" not in SPLITTERS


def test_combined_line_maps_every_field() -> None:
    assert flatten(parse_nginx(COMBINED)) == {
        "@timestamp": "2026-11-02T08:14:07.000Z",
        "event.kind": "event",
        "event.category": ["web"],
        "event.type": ["access"],
        "event.outcome": "success",
        "event.dataset": "nginx.access",
        "event.module": "nginx",
        "source.ip": "198.51.100.23",
        "source.address": "198.51.100.23",
        "user.name": "alice",
        "http.request.method": "GET",
        "http.request.referrer": "https://console.example.com/",
        "http.version": "1.1",
        "http.response.status_code": 200,
        "http.response.body.bytes": 5123,
        "url.original": "/v1/models?limit=20",
        "url.path": "/v1/models",
        "url.query": "limit=20",
        "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64)",
        "related.ip": ["198.51.100.23"],
        "related.user": ["alice"],
        "logwarden.source": "nginx",
    }


def test_apache_common_line_and_module() -> None:
    doc = flatten(parse_apache(COMMON))
    assert doc["event.dataset"] == "apache.access"
    assert doc["event.module"] == "apache"
    assert doc["logwarden.source"] == "apache"
    assert doc["@timestamp"] == "2026-11-02T20:55:36.000Z"
    assert doc["http.version"] == "1.0"
    assert "user_agent.original" not in doc and "http.request.referrer" not in doc


@pytest.mark.parametrize("line", [COMBINED, COMMON, COMBINED + b' "203.0.113.7" rt=0.120', COMMON + b"\r\n"])
def test_every_emitted_field_is_catalogued(line: bytes) -> None:
    assert set(flatten(parse_apache(line))) <= set(EVENT_FIELDS)


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("10/Oct/2000:13:55:36 -0700", "2000-10-10T20:55:36.000Z"),
        ("31/Dec/2025:23:30:00 -0130", "2026-01-01T01:00:00.000Z"),
        ("01/Jan/2026:00:30:00 +0100", "2025-12-31T23:30:00.000Z"),
        ("02/Nov/2026:09:14:07.123 +0000", "2026-11-02T09:14:07.123Z"),
        ("02/Nov/2026:09:14:07.123456 +0000", "2026-11-02T09:14:07.123Z"),
        ("2026-11-02T09:14:07+01:00", "2026-11-02T08:14:07.000Z"),  # nginx $time_iso8601
    ],
)
def test_timestamps_are_normalized_to_utc_milliseconds(stamp: str, expected: str) -> None:
    assert parse_nginx(line_with(time_=stamp))["@timestamp"] == expected


@pytest.mark.parametrize(
    "stamp",
    [
        "31/Feb/2026:00:00:00 +0000",
        "02/Foo/2026:00:00:00 +0000",
        "02/nov/2026:00:00:00 +0000",
        "02/Nov/2026:24:00:00 +0000",
        "02/Nov/2026:00:00:00 +2400",
        "02/Nov/2026:00:00:00",
        "01/Jan/0001:00:30:00 +0100",  # before year 1 in UTC
        "31/Dec/9999:23:30:00 -0100",  # after 9999 in UTC
        "02/Nov/2026:00:00:00 +0160",
        "2026-11-02T09:14:07",  # ISO without zone
        "yesterday",
    ],
)
def test_bad_timestamps_are_refused(stamp: str) -> None:
    assert reason_of(line_with(time_=stamp)) == "bad_timestamp"


def test_dashes_mean_absent_and_apache_dash_bytes_mean_zero() -> None:
    doc = flatten(parse_apache(line_with(user="-", size="-", tail=' "-" "-"')))
    assert doc["http.response.body.bytes"] == 0
    for field in ("user.name", "related.user", "http.request.referrer", "user_agent.original"):
        assert field not in doc


def test_remote_user_with_space_is_kept() -> None:
    assert parse_nginx(line_with(user="john doe"))["user"]["name"] == "john doe"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2001:DB8::1", {"source.ip": "2001:db8::1", "source.address": "2001:db8::1"}),
        ("host-7.Example.NET", {"source.domain": "host-7.example.net", "source.address": "host-7.example.net"}),
        ("unix:", {"source.address": "unix:"}),
        ("-", {}),
    ],
)
def test_remote_address_forms(host: str, expected: dict[str, str]) -> None:
    doc = flatten(parse_nginx(line_with(host=host)))
    assert {k: v for k, v in doc.items() if k.startswith("source.")} == expected
    assert doc.get("related.ip") == ([expected["source.ip"]] if "source.ip" in expected else None)


@pytest.mark.parametrize("host", ["999.1.2.3", "www.example.org:443", "bad/host", "1.2.3"])
def test_remote_address_that_is_neither_ip_nor_host_name_is_refused(host: str) -> None:
    assert reason_of(line_with(host=host)) == "bad_ip"


@pytest.mark.parametrize(
    ("status", "outcome"),
    [("101", "success"), ("399", "success"), ("400", "failure"), ("499", "failure"), ("503", "failure")],
)
def test_outcome_follows_status(status: str, outcome: str) -> None:
    doc = parse_nginx(line_with(status=status))
    assert doc["event"]["outcome"] == outcome
    assert doc["http"]["response"]["status_code"] == int(status)


def test_body_bytes_beyond_a_long_are_refused() -> None:
    assert reason_of(line_with(size=str(2**63))) == "bad_field"
    assert parse_nginx(line_with(size=str(2**63 - 1)))["http"]["response"]["body"]["bytes"] == 2**63 - 1


@pytest.mark.parametrize(
    "request_line",
    [
        r"\x16\x03\x01\x00\xF7\x01\x00\x00\xF3\x03\x03",  # TLS ClientHello on a plain-HTTP port
        "GET /a b HTTP/1.1",  # unencoded space in the target
        "GET / RTSP/1.0",
        "GET / HTTP/1.1 trailing",
        "SSH-2.0-OpenSSH_9.6",
        "GET",
        "0 / HTTP/1.1",
    ],
)
def test_malformed_request_lines_still_make_a_document(request_line: str) -> None:
    doc = flatten(parse_nginx(line_with(request_line, status="400")))
    assert doc["url.original"] == request_line
    assert doc["logwarden.web.malformed_request"] is True
    assert doc["event.outcome"] == "failure"
    assert "http.request.method" not in doc and "url.path" not in doc


def test_invalid_utf8_becomes_escaped_text() -> None:
    raw = b'192.0.2.1 - - [02/Nov/2026:00:00:00 +0000] "\x16\x03\xff\xfe" 400 0 "-" "-"'
    doc = parse_nginx(raw)
    assert doc["url"]["original"] == "\x16\x03\\xff\\xfe"
    assert doc["logwarden"]["web"]["malformed_request"] is True


@pytest.mark.parametrize("request_line", ["-", ""])
def test_empty_request_has_no_request_fields(request_line: str) -> None:
    doc = flatten(parse_nginx(line_with(request_line, status="400")))
    assert not any(k.startswith(("url.", "http.request.", "logwarden.web.")) for k in doc)
    assert "http.version" not in doc


@pytest.mark.parametrize(
    ("request_line", "expected"),
    [
        ("GET /", {"http.request.method": "GET", "url.original": "/", "url.path": "/"}),
        (
            "get /a?b=1&c= HTTP/2.0",
            {
                "http.request.method": "get",
                "http.version": "2.0",
                "url.original": "/a?b=1&c=",
                "url.path": "/a",
                "url.query": "b=1&c=",
            },
        ),
        (
            "GET /a? HTTP/1.1",
            {"http.request.method": "GET", "http.version": "1.1", "url.original": "/a?", "url.path": "/a"},
        ),
        (
            "GET http://proxy.example.net:8080/p?q=1 HTTP/1.1",
            {
                "http.request.method": "GET",
                "http.version": "1.1",
                "url.original": "http://proxy.example.net:8080/p?q=1",
                "url.scheme": "http",
                "url.domain": "proxy.example.net",
                "url.port": 8080,
                "url.path": "/p",
                "url.query": "q=1",
            },
        ),
        (
            "GET http://x.example:99999/ HTTP/1.1",
            {"http.request.method": "GET", "http.version": "1.1", "url.original": "http://x.example:99999/"},
        ),
        (
            "CONNECT api.example.com:443 HTTP/1.1",
            {"http.request.method": "CONNECT", "http.version": "1.1", "url.original": "api.example.com:443"},
        ),
        ("OPTIONS * HTTP/1.1", {"http.request.method": "OPTIONS", "http.version": "1.1", "url.original": "*"}),
    ],
)
def test_request_line_forms(request_line: str, expected: dict[str, Any]) -> None:
    doc = flatten(parse_nginx(line_with(request_line)))
    got = {k: v for k, v in doc.items() if k.startswith(("url.", "http.request.method", "http.version"))}
    assert got == expected
    assert "logwarden.web.malformed_request" not in doc


def test_apache_escapes_are_undone_nginx_hex_escapes_are_kept() -> None:
    tail = r' "http://r.example/\"x\"" "say \"hi\" \\o/ \x22nginx\x22"'
    doc = parse_apache(line_with(r"GET /a\\b HTTP/1.1", tail=tail))
    assert doc["url"]["original"] == "/a\\b"
    assert doc["http"]["request"]["referrer"] == 'http://r.example/"x"'
    assert doc["user_agent"]["original"] == 'say "hi" \\o/ \\x22nginx\\x22'


@pytest.mark.parametrize(
    ("extra", "forwarded", "duration"),
    [
        (' "203.0.113.7, 10.0.0.1"', ["203.0.113.7", "10.0.0.1"], None),
        (' "-"', [], None),
        (' "unknown, 203.0.113.7 , not-an-ip"', ["203.0.113.7"], None),
        (' "203.0.113.7" 0.125', ["203.0.113.7"], 125_000_000),
        (' "-" rt=0.004 uct="0.001" uht="0.003" urt="0.003"', [], 4_000_000),
        (' "-" request_time=12.500', [], 12_500_000_000),
        (' "-" 0.010 0.020', [], 10_000_000),  # request time first, then upstream time
        (" 0.250", [], 250_000_000),
        (' "-" 1234', [], None),  # integers are ambiguous (Apache %D us / %T s)
        (' "-" 0.1', [], None),  # not nginx's millisecond resolution
        (' "-" example.com "1.2.3.4"', [], None),  # only the first unkeyed quoted extra is X-Forwarded-For
        ('  "203.0.113.7"   ', ["203.0.113.7"], None),
    ],
)
def test_trailing_extras(extra: str, forwarded: list[str], duration: int | None) -> None:
    doc = flatten(parse_nginx(PREFIX + extra.encode()))
    assert doc.get("network.forwarded_ip") == (forwarded[0] if forwarded else None)
    assert doc["related.ip"] == ["192.0.2.1", *forwarded]
    assert doc.get("event.duration") == duration


def test_forwarded_ips_are_unique_and_the_source_is_not_repeated() -> None:
    doc = parse_nginx(PREFIX + b' "192.0.2.1, 203.0.113.7, 203.0.113.7"')
    assert doc["related"]["ip"] == ["192.0.2.1", "203.0.113.7"]
    assert doc["network"]["forwarded_ip"] == "192.0.2.1"


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"\n",
        b'{"remote_addr": "192.0.2.1"}',
        b'192.0.2.1 - - [02/Nov/2026:00:00:00 +0000] "GET / HTTP/1.1" 200',  # no size
        b'192.0.2.1 - - [02/Nov/2026:00:00:00 +0000] "GET / HTTP/1.1" 2000 1',
        b'192.0.2.1 - - [02/Nov/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-"',  # referrer without agent
        b'192.0.2.1 - - [02/Nov/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "ua" "unterminated',
        b'192.0.2.1 - - [02/Nov/2026:00:00:00 +0000] "GET / HTTP/1.1 200 1',  # unterminated request
        b'192.0.2.1 - - 02/Nov/2026:00:00:00 +0000 "GET / HTTP/1.1" 200 1',
        COMMON + b"\n" + COMMON,  # two lines in one record
        '192.0.2.1 - - [02/Nov/2026:00:00:00 +0000] "GET / HTTP/1.1" ٢٠٠ 1'.encode(),  # non-ASCII digits
        b"[Sun Nov 02 14:10:00 2026] [core:error] [pid 1] AH00126: Invalid URI",
    ],
)
def test_lines_that_are_not_access_log_lines(line: bytes) -> None:
    assert reason_of(line) == "unrecognized_line"


def test_trailing_newline_and_spaces_are_tolerated() -> None:
    assert parse_nginx(COMBINED + b"  \r\n") == parse_nginx(COMBINED)


@pytest.mark.parametrize(
    "line",
    [
        b"1.2.3.4 " + b"- " * 100_000,
        b"1.2.3.4 - - [" + b'"' * 200_000,
        b'1.2.3.4 - - [02/Nov/2026:00:00:00 +0000] "' + b'\\"' * 100_000,
        b"1.2.3.4 - " + b"a " * 100_000 + b"[",
        PREFIX + b' "x' * 60_000,
        PREFIX + b" x" * 100_000 + b'"',
        PREFIX + b' a="' * 60_000,
        b" " * 200_000,
        b"[" * 200_000,
        b'1.2.3.4 - - [02/Nov/2026:00:00:00 +0000] "GET /' + b"a" * 200_000 + b' HTTP/1.1" 200 1',
    ],
)
def test_adversarial_long_lines_are_handled_in_linear_time(line: bytes) -> None:
    started = time.perf_counter()
    try:
        parse_nginx(line)
    except ParseError as exc:
        assert exc.reason in {"unrecognized_line", "bad_ip"}
    # a backtracking blow-up on ~200 kB takes minutes; linear matching takes milliseconds
    assert time.perf_counter() - started < 2.0


# --- property: generated valid combined lines round-trip their fields ---------------------------------------------

_token = st.text(
    st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-"), min_size=1, max_size=20
).filter(lambda s: s != "-")
_free_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=60).filter(
    lambda s: s != "-"
)
_path = st.text(st.sampled_from("abcxyz019/-._~%!$&'()*+,;=:@"), max_size=30).map(lambda s: "/" + s)
_query = st.none() | st.text(st.sampled_from("abcxyz019=&%-._~/?"), min_size=1, max_size=30)
_ips = st.ip_addresses().map(str)
_offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(lambda m: timedelta(minutes=m))
_moments = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31)).map(
    lambda d: d.replace(microsecond=0)
)


def _apache_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _clf(moment: datetime, offset: timedelta) -> str:
    minutes = int(offset.total_seconds()) // 60
    sign, minutes = ("-", -minutes) if minutes < 0 else ("+", minutes)
    return moment.strftime("%d/%b/%Y:%H:%M:%S") + f" {sign}{minutes // 60:02d}{minutes % 60:02d}"


@settings(max_examples=300, deadline=None)
@given(
    ip=_ips,
    user=st.none() | _token,
    moment=_moments,
    offset=_offsets,
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "PROPFIND"]),
    path=_path,
    query=_query,
    version=st.sampled_from(["1.0", "1.1", "2.0", "3.0"]),
    status=st.integers(100, 599),
    size=st.integers(0, 2**63 - 1),
    referrer=st.none() | _free_text,
    agent=st.none() | _free_text,
)
def test_generated_combined_lines_round_trip(
    ip: str,
    user: str | None,
    moment: datetime,
    offset: timedelta,
    method: str,
    path: str,
    query: str | None,
    version: str,
    status: int,
    size: int,
    referrer: str | None,
    agent: str | None,
) -> None:
    target = path if query is None else f"{path}?{query}"
    line = (
        f"{ip} - {user or '-'} [{_clf(moment, offset)}] "
        f'"{method} {_apache_escape(target)} HTTP/{version}" {status} {size} '
        f'"{_apache_escape(referrer or "-")}" "{_apache_escape(agent or "-")}"'
    )
    doc = flatten(parse_apache(line.encode()))
    utc = moment.replace(tzinfo=timezone(offset)).astimezone(UTC).replace(tzinfo=None)
    assert doc["@timestamp"] == utc.isoformat(timespec="milliseconds") + "Z"
    assert doc["source.ip"] == ip
    assert doc.get("user.name") == user
    assert doc["http.request.method"] == method
    assert doc["url.original"] == target
    assert doc["url.path"] == path
    assert doc.get("url.query") == (query or None)
    assert doc["http.version"] == version
    assert doc["http.response.status_code"] == status
    assert doc["http.response.body.bytes"] == size
    assert doc.get("http.request.referrer") == referrer
    assert doc.get("user_agent.original") == agent
    assert doc["event.outcome"] == ("success" if status < 400 else "failure")
    assert set(doc) <= set(EVENT_FIELDS)
