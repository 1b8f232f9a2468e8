"""nginx and Apache access logs (plain text, one request per line) to ECS.

Accepted line shapes (fields separated by one space; ``-`` means "none" in every field)::

    common:    %h %l %u [%t] "%r" %>s %b
    combined:  %h %l %u [%t] "%r" %>s %b "%{Referer}i" "%{User-Agent}i" [EXTRA ...]

which is nginx's ``combined`` (``$remote_addr - $remote_user [$time_local] "$request" $status
$body_bytes_sent "$http_referer" "$http_user_agent"``) and Apache's ``common``/``combined``.

=====================  =======================================================================
field                  ECS field
=====================  =======================================================================
%h remote address      ``source.ip`` and ``source.address`` (IPv4/IPv6); a host name (Apache
                       ``HostnameLookups``) goes to ``source.domain``/``source.address``, nginx's
                       ``unix:`` (UNIX socket) to ``source.address`` only
%l identd              ignored (always ``-`` in practice)
%u remote user         ``user.name``, ``related.user``
[%t] time              ``@timestamp`` (UTC, ms): ``10/Oct/2000:13:55:36 -0700``, optionally with a
                       fraction (``13:55:36.123``); nginx ``$time_iso8601`` is accepted too
"%r" request line      ``http.request.method``, ``url.original`` (the request target as sent),
                       ``url.path``, ``url.query``, ``http.version``; an absolute-form target
                       (proxy probe ``GET http://host/ HTTP/1.1``) also fills ``url.scheme``,
                       ``url.domain`` and ``url.port``
%>s status             ``http.response.status_code``, ``event.outcome`` (< 400 success)
%b body bytes          ``http.response.body.bytes`` (Apache's ``-`` means 0 bytes)
referrer / agent       ``http.request.referrer`` / ``user_agent.original``
=====================  =======================================================================

A request line that is not ``METHOD TARGET [HTTP/x.y]`` (TLS handshakes sent to a plain-HTTP port,
which nginx logs as ``"\\x16\\x03\\x01..."`` with status 400, binary garbage, smuggling attempts)
still yields a document: the request text is kept whole in ``url.original`` and
``logwarden.web.malformed_request`` is ``true``. A request of ``-`` (nothing received) has no
request fields.

Quoted fields are unescaped only for Apache's ``\\"`` and ``\\\\``; ``\\xHH`` sequences (how nginx
and Apache log non-printable bytes, and how nginx logs ``"``) are kept as logged. Bytes that are not
UTF-8 become ``\\xHH`` text as well.

EXTRA fields after the user agent (bare tokens, ``"quoted"`` strings or ``key="quoted"``) are
tolerated, and two are understood, matching nginx's sample ``main`` format and common timing
additions:

* the first unkeyed quoted extra is ``"$http_x_forwarded_for"``: its valid IP addresses go to
  ``network.forwarded_ip`` (the first) and ``related.ip`` (all); other entries (``unknown``,
  garbage: the header is client-controlled) are ignored;
* ``rt=`` / ``request_time=`` anywhere, or else a first unkeyed bare token shaped like nginx's
  ``$request_time`` (seconds with exactly three decimals, ``0.123``), is the request time:
  ``event.duration`` (ns). Integer tokens (Apache ``%D`` microseconds or ``%T`` seconds) are
  ambiguous and ignored.

Every other extra is ignored. Not supported (``unrecognized_line``): Apache ``vhost_combined`` (a
leading ``host:port``), custom orders, JSON access logs.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Final
from urllib.parse import urlsplit

from ingest.errors import ParseError
from ingest.parsers._common import iso_timestamp, normalize_ip, prune

#: The inside of a double-quoted field, as an unrolled loop (runs of plain characters between escapes).
_IN_QUOTES: Final = r'[^"\\]*+(?:\\.[^"\\]*+)*+'


def _quoted(name: str) -> str:
    """A double-quoted field whose only escapes are backslash pairs (Apache ``\\"``, nginx ``\\xHH``)."""
    return rf'"(?P<{name}>{_IN_QUOTES})"'


# Possessive quantifiers (*+, ++) and disjoint alternatives keep matching linear in the line length; the
# lazy user field cannot run past the first "[", so it has one place to stop.
_LINE: Final = re.compile(
    r"(?P<host>\S++) (?P<ident>\S++) (?P<user>[^\[]+?) \[(?P<time>[^\]]{1,64})\] "
    + _quoted("request")
    + r" (?P<status>\d{3}) (?P<bytes>\d{1,20}|-)"
    + rf"(?: {_quoted('referrer')} {_quoted('agent')}"
    + rf'(?P<extra>(?: ++(?:[^\s"]++|"{_IN_QUOTES}")++)*+))? *+',
    re.DOTALL | re.ASCII,
)
_EXTRA_TOKEN: Final = re.compile(
    rf'(?:(?P<key>[A-Za-z_]\w*+)=)?+(?:"(?P<quoted>{_IN_QUOTES})"|(?P<bare>[^\s"]++))', re.ASCII
)
_REQUEST: Final = re.compile(
    r"(?P<method>[A-Za-z][A-Za-z_-]{0,31}) (?P<target>\S++)(?: HTTP/(?P<version>\d(?:\.\d)?))?", re.ASCII
)
_CLF_TIME: Final = re.compile(
    r"(\d{2})/([A-Z][a-z]{2})/(\d{4}):(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))? ([+-])(\d{2})([0-5]\d)", re.ASCII
)
_UNESCAPE: Final = re.compile(r'\\([\\"])')
_HOSTNAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}")
_REQUEST_TIME: Final = re.compile(r"\d{1,9}\.\d{3}", re.ASCII)
_TIME_KEYS: Final = frozenset({"rt", "request_time"})
_MONTHS: Final = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_MAX_LONG: Final = 2**63 - 1
_ONE_DAY: Final = timedelta(days=1)


def parse_nginx(raw: bytes) -> dict[str, Any]:
    r"""Parse one nginx access-log line.

    >>> doc = parse_nginx(b'203.0.113.9 - - [10/Oct/2025:13:55:36 -0700] "GET /a?b=1 HTTP/1.1" 200 12 "-" "curl/8.5.0"')
    >>> doc["@timestamp"], doc["url"]["query"], doc["event"]["dataset"]
    ('2025-10-10T20:55:36.000Z', 'b=1', 'nginx.access')
    """
    return _parse(raw, "nginx")


def parse_apache(raw: bytes) -> dict[str, Any]:
    """Parse one Apache httpd access-log line (``common`` or ``combined``)."""
    return _parse(raw, "apache")


def _parse(raw: bytes, module: str) -> dict[str, Any]:
    line = raw.decode("utf-8", "backslashreplace").rstrip("\r\n")
    match = _LINE.fullmatch(line)
    if match is None:
        raise ParseError("unrecognized_line", f"not a common/combined access-log line: {line[:80]!r}")
    host = match["host"]
    source_ip, source_domain = _remote(host)
    user = _dash(match["user"])
    status = int(match["status"])
    body_bytes = 0 if match["bytes"] == "-" else int(match["bytes"])
    if body_bytes > _MAX_LONG:
        raise ParseError("bad_field", f"bytes: out of range: {match['bytes']}")
    method, version, url, malformed = _request(match["request"])
    forwarded, duration = _extras(match["extra"]) if match["extra"] else ([], None)
    return prune(
        {
            "@timestamp": _timestamp(match["time"]),
            "event": {
                "kind": "event",
                "category": ["web"],
                "type": ["access"],
                "outcome": "success" if status < 400 else "failure",
                "dataset": f"{module}.access",
                "module": module,
                "duration": duration,
            },
            "source": {
                "ip": source_ip,
                "domain": source_domain,
                "address": source_ip or source_domain or (None if host == "-" else host),
            },
            "network": {"forwarded_ip": forwarded[0] if forwarded else None},
            "user": {"name": user},
            "http": {
                "request": {"method": method, "referrer": _dash(match["referrer"])},
                "version": version,
                "response": {"status_code": status, "body": {"bytes": body_bytes}},
            },
            "url": url,
            "user_agent": {"original": _dash(match["agent"])},
            "related": {
                "ip": list(dict.fromkeys([source_ip, *forwarded])) if source_ip else forwarded,
                "user": [user] if user else None,
            },
            "logwarden": {"source": module, "web": {"malformed_request": malformed}},
        }
    )


def _dash(value: str | None) -> str | None:
    """A quoted or bare field's value, ``None`` for ``-`` or empty."""
    if value is None or value == "-" or value == "":
        return None
    return _UNESCAPE.sub(r"\1", value) if "\\" in value else value


def _remote(host: str) -> tuple[str | None, str | None]:
    """``(source.ip, source.domain)`` of the remote-address field."""
    if host == "-" or host == "unix:":
        return None, None
    ip = normalize_ip(host)
    if ip is not None:
        return ip, None
    if _HOSTNAME.fullmatch(host) and not host.replace(".", "").isdigit():
        return None, host.lower()
    raise ParseError("bad_ip", f"remote address: neither an IP address nor a host name: {host[:64]!r}")


def _timestamp(text: str) -> str:
    if text[:4].isdigit():  # nginx $time_iso8601
        return iso_timestamp(text, "time")
    stamp = _clf_timestamp(text)
    if stamp is None:
        raise ParseError("bad_timestamp", f"time: not a [dd/Mon/yyyy:HH:MM:SS +zzzz] timestamp: {text[:64]!r}")
    return stamp


@lru_cache(maxsize=4096)  # many lines share a second; the result depends only on the text
def _clf_timestamp(text: str) -> str | None:
    match = _CLF_TIME.fullmatch(text)
    month = _MONTHS.get(match[2]) if match else None
    if match is None or month is None:
        return None
    day, _, year, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
    offset = timedelta(hours=int(off_h), minutes=int(off_m))
    if offset >= _ONE_DAY:
        return None
    micros = int((fraction or "0").ljust(6, "0"))
    try:  # local time minus its UTC offset is UTC
        local = datetime(int(year), month, int(day), int(hour), int(minute), int(second), micros)
        moment = local - offset if sign == "+" else local + offset
    except (ValueError, OverflowError):  # 31/Feb, hour 25, before year 1 or after 9999 in UTC
        return None
    return moment.isoformat(timespec="milliseconds") + "Z"


def _request(request: str) -> tuple[str | None, str | None, dict[str, Any], bool | None]:
    """``(http.request.method, http.version, url, logwarden.web.malformed_request)`` of a request line."""
    request = _UNESCAPE.sub(r"\1", request) if "\\" in request else request
    if request in ("", "-"):
        return None, None, {}, None
    match = _REQUEST.fullmatch(request)
    if match is None:
        return None, None, {"original": request}, True
    return match["method"], match["version"], _url(match["target"]), None


def _url(target: str) -> dict[str, Any]:
    if target[0] == "/":
        path, _, query = target.partition("?")
        return {"original": target, "path": path, "query": query or None}
    if "://" in target:  # absolute-form: a proxy request (or a probe for an open proxy)
        try:
            parts = urlsplit(target)
            port = parts.port
        except ValueError:  # bad port or IPv6 literal
            return {"original": target}
        return {
            "original": target,
            "scheme": parts.scheme or None,
            "domain": parts.hostname,
            "port": port,
            "path": parts.path or None,
            "query": parts.query or None,
        }
    return {"original": target}  # authority-form (CONNECT host:443) or asterisk-form (OPTIONS *)


def _extras(extra: str) -> tuple[list[str], int | None]:
    """``(forwarded IPs, request time in ns)`` from the fields after the user agent."""
    forwarded: list[str] | None = None
    seconds: str | None = None
    first_bare = True
    for token in _EXTRA_TOKEN.finditer(extra):
        key, quoted, bare = token["key"], token["quoted"], token["bare"]
        if key is None and quoted is not None and forwarded is None:
            forwarded = _forwarded(quoted)
        elif key in _TIME_KEYS:
            value = quoted if quoted is not None else bare
            if value is not None and _REQUEST_TIME.fullmatch(value):
                seconds = value
        elif key is None and bare is not None and first_bare:
            first_bare = False
            if seconds is None and _REQUEST_TIME.fullmatch(bare):
                seconds = bare
    duration = None if seconds is None else int(seconds.replace(".", "")) * 1_000_000
    return forwarded or [], duration


def _forwarded(value: str) -> list[str]:
    ips = (normalize_ip(part) for part in value.split(",") if part.strip() not in ("", "-"))
    return list(dict.fromkeys(ip for ip in ips if ip))
