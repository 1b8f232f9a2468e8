"""Redact secrets wherever they appear in the strings of a document: ``[REDACTED:<kind>]``.

What is found (``kind`` in brackets):

- key/value pairs whose key names a secret, with ``=`` or ``:`` (also URL-encoded ``%3D``/``%3A``, quoted
  JSON-style keys and values): ``password=``, ``passwd=``, ``pwd=``, ``passphrase`` [password];
  ``token=``, ``access_token=``, ``refresh_token=`` ... [token]; ``key=``, ``api_key=``, ``x-api-key:`` ...
  [api_key]; ``aws_secret_access_key``, ``SecretAccessKey`` [aws_secret_key]; ``secret``, ``credential(s)``
  [secret]; ``signature``, ``sig`` [signature]; ``Authorization:``, ``auth=`` [authorization] (scheme kept);
- ``Bearer <token>`` [bearer_token];
- JSON Web Tokens ``eyJ...``.``...``.``...`` [jwt];
- provider API keys: ``sk-...`` (OpenAI, Anthropic...), ``sk_live_``/``rk_live_`` (Stripe), ``ghp_``/``gho_``/
  ``github_pat_`` (GitHub), ``xox?-`` (Slack), ``AIza`` (Google), ``glpat-`` (GitLab), ``hf_`` (Hugging Face)
  [api_key];
- AWS access key ids ``AKIA``/``ASIA`` + 16 [aws_access_key_id];
- PEM private key blocks [private_key]; passwords in URLs ``scheme://user:<password>@host`` [url_password].

Cost: each string is first tested with a handful of substring checks (C speed) and searched in detail only
when one fires; results are cached per string (LRU), since most strings of a log stream repeat. Secrets that
are only recognizable by their context (a bare 40-character base64 string) are not found; a key name ending in
a secret word (``monkey=``) is redacted anyway (over-redaction in exchange for never missing ``my_api_key=``).

>>> redact_text("GET /v1/files?api_key=sk-abc&limit=10")
('GET /v1/files?api_key=[REDACTED:api_key]&limit=10', frozenset({'api_key'}))
>>> redact_text("Authorization: Bearer eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl")[0]
'Authorization: Bearer [REDACTED:authorization]'
>>> redact_text("nothing to see")
('nothing to see', frozenset())
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, Final

from ingest.privacy._doc import Tree, add_kinds, build_tree, iter_leaves

_NO_KINDS: Final[frozenset[str]] = frozenset()

# --- key/value pairs -----------------------------------------------------------------------------------

# a key whose name ends with one of these (case-insensitive) holds a secret
_KV_SUFFIXES: Final = (
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "token",
    "key",
    "secret",
    "credential",
    "credentials",
    "signature",
    "sig",
    "authorization",
    "auth",
)
_ENCODED_SEP: Final = re.compile(r"%3[dDaA]")
_VALUE: Final = re.compile(r"[ \t]*(\"(?:[^\"\\\r\n]|\\.)*\"|'(?:[^'\\\r\n]|\\.)*'|[^\s&\"',;<>]+)")
_ENCODED_VALUE: Final = re.compile(r"((?:(?!%26|%22|%27)[^\s&\"',;<>])+)", re.I)
_AUTH_SCHEME: Final = re.compile(
    r"[ \t]*[\"']?(?:bearer|basic|digest|negotiate|token|apikey|ntlm|hoba|mutual|aws4-hmac-sha256)(?:[ \t]+|%20|\+)",
    re.I | re.A,
)

# --- tokens recognizable by their shape -------------------------------------------------------------------

_BEARER: Final = re.compile(r"bearer(?:[ \t]+|%20|\+)([A-Za-z0-9._~+/-]{8,}=*)", re.I | re.A)
_JWT: Final = re.compile(r"eyJ[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_=-]*){1,4}")
_API_KEY: Final = re.compile(
    r"(?<![A-Za-z0-9])(?:sk-(?:[A-Za-z0-9]+-){0,3}[A-Za-z0-9_-]{16,}|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"
    r"|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,}|xox[abposr]-[A-Za-z0-9-]{10,}"
    r"|AIza[0-9A-Za-z_-]{30,}|glpat-[A-Za-z0-9_-]{20,}|hf_[A-Za-z0-9]{30,})"
)
_API_KEY_TRIGGERS: Final = (
    "sk-",
    "_live_",
    "_test_",
    "hp_",
    "ho_",
    "hu_",
    "hs_",
    "hr_",
    "github_pat_",
    "xox",
    "AIza",
    "glpat-",
    "hf_",
)
_AWS_KEY_ID: Final = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")
_PRIVATE_KEY: Final = re.compile(r"-----BEGIN[A-Z ]*PRIVATE KEY-----.*?(?:-----END[A-Z ]*PRIVATE KEY-----|\Z)", re.S)
_URL_PASSWORD: Final = re.compile(r"://[^/\s:@?#]*:([^/\s@?#]+)@")

#: Substrings of which every secret above contains at least one (checked on the joined strings of a document).
TRIGGERS: Final = (
    "=",
    ":",
    "%3",
    "earer",
    "EARER",
    "eyJ",
    "AKIA",
    "ASIA",
    "-----BEGIN",
    *_API_KEY_TRIGGERS,
)
#: :data:`TRIGGERS` as one alternation: one C-level scan of the string instead of one ``in`` per trigger.
_TRIGGER_RE: Final = re.compile("|".join(re.escape(t) for t in TRIGGERS))


def _kv_kind(name: str) -> str:
    if name.endswith(("password", "passwd", "pwd", "passphrase")):
        return "password"
    if "secret" in name and "access" in name:
        return "aws_secret_key"
    if name.endswith(("authorization", "auth")):
        return "authorization"
    if name.endswith("token"):
        return "token"
    if name.endswith("key"):
        return "api_key"
    if name.endswith(("signature", "sig")):
        return "signature"
    return "secret"


def _kv_spans(text: str, spans: list[tuple[int, int, str]]) -> None:
    for sep in ("=", ":"):
        i = text.find(sep)
        while i >= 0:
            _kv_at(text, i, i + 1, _VALUE, spans)
            i = text.find(sep, i + 1)
    if "%3" in text:
        for m in _ENCODED_SEP.finditer(text):
            _kv_at(text, m.start(), m.end(), _ENCODED_VALUE, spans)


def _kv_at(text: str, sep: int, pos: int, value_re: re.Pattern[str], spans: list[tuple[int, int, str]]) -> None:
    """A secret value after the separator at ``sep`` when the key before it names a secret."""
    j = sep
    while j > 0 and text[j - 1] in " \t":
        j -= 1
    if j > 0 and text[j - 1] in "\"'":
        j -= 1
    name = text[max(0, j - 24) : j].lower()
    if not name.endswith(_KV_SUFFIXES):
        return
    kind = _kv_kind(name)
    if kind == "authorization" and (scheme := _AUTH_SCHEME.match(text, pos)):
        pos = scheme.end()
    value = value_re.match(text, pos)
    if value is not None:
        spans.append((value.start(1), value.end(1), kind))


def _secret_spans(text: str) -> list[tuple[int, int, str]]:
    spans: list[tuple[int, int, str]] = []
    if "=" in text or ":" in text or "%3" in text:
        _kv_spans(text, spans)
        if "@" in text:
            spans.extend((m.start(1), m.end(1), "url_password") for m in _URL_PASSWORD.finditer(text))
    if "earer" in text or "EARER" in text:
        spans.extend((m.start(1), m.end(1), "bearer_token") for m in _BEARER.finditer(text))
    if "eyJ" in text:
        spans.extend((m.start(), m.end(), "jwt") for m in _JWT.finditer(text))
    for trigger in _API_KEY_TRIGGERS:
        if trigger in text:
            spans.extend((m.start(), m.end(), "api_key") for m in _API_KEY.finditer(text))
            break
    if "AKIA" in text or "ASIA" in text:
        spans.extend((m.start(), m.end(), "aws_access_key_id") for m in _AWS_KEY_ID.finditer(text))
    if "-----BEGIN" in text:
        spans.extend((m.start(), m.end(), "private_key") for m in _PRIVATE_KEY.finditer(text))
    return spans


def redact_text(text: str) -> tuple[str, frozenset[str]]:
    """``text`` with every secret replaced by ``[REDACTED:<kind>]``, and the kinds found."""
    if not might_hold_secret(text):
        return text, _NO_KINDS
    spans = _secret_spans(text)
    if not spans:
        return text, _NO_KINDS
    spans.sort()
    parts: list[str] = []
    kinds: set[str] = set()
    pos = 0
    cur_start, cur_end, cur_kind = spans[0]
    for start, end, kind in spans[1:]:
        if start < cur_end:  # overlapping: one redaction covering both, labelled with the first
            cur_end = max(cur_end, end)
            kinds.add(kind)
            continue
        parts += (text[pos:cur_start], f"[REDACTED:{cur_kind}]")
        kinds.add(cur_kind)
        pos = cur_end
        cur_start, cur_end, cur_kind = start, end, kind
    parts += (text[pos:cur_start], f"[REDACTED:{cur_kind}]", text[cur_end:])
    kinds.add(cur_kind)
    return "".join(parts), frozenset(kinds)


def might_hold_secret(text: str) -> bool:
    """The cheap test: False guarantees :func:`redact_text` would change nothing.

    True exactly when ``text`` contains one of :data:`TRIGGERS` (one regex scan, not one per trigger).
    """
    return _TRIGGER_RE.search(text) is not None


_SCAN: Final = object()  # marker: not in the skip tree, scan everything below


class Redactor:
    """Redact secrets in every string of a document, except the fields of ``skip_fields``.

    ``skip_fields`` are fields that cannot hold free text: pseudonymized fields (already hashed), IP and date
    fields, constant enumerations written by the parsers. ``secret_fields`` are replaced whole
    (``[REDACTED:secret]``): fields whose value is a secret by definition. The kinds found go into
    ``logwarden.privacy.redacted``.

    Strings known to hold no secret (most of a log stream: paths, user agents, ids) are remembered in a
    bounded set (``cache_size``, emptied when full) and skipped without calling :func:`redact_text` again;
    strings that do hold one go through an LRU cache of :func:`redact_text`.
    """

    def __init__(
        self, *, skip_fields: Iterable[str] = (), secret_fields: Iterable[str] = (), cache_size: int = 16_384
    ) -> None:
        self.skip_fields = tuple(skip_fields)
        self.secret_fields = tuple(secret_fields)
        self._skip: Tree = build_tree(self.skip_fields)
        self._secret: Tree = build_tree(self.secret_fields)
        self._redact_text = lru_cache(maxsize=cache_size)(redact_text)
        self._clean: set[str] = set()
        self._clean_max = cache_size

    def __repr__(self) -> str:
        return f"Redactor(skip_fields={len(self.skip_fields)}, secret_fields={len(self.secret_fields)})"

    def __call__(self, doc: dict[str, Any]) -> dict[str, Any]:
        kinds: set[str] = set()
        if self._secret:
            for container, key, _ in list(iter_leaves(doc, self._secret)):
                container[key] = "[REDACTED:secret]"
                kinds.add("secret")
        self._walk(doc, self._skip, kinds)
        if kinds:
            add_kinds(doc, "redacted", kinds)
        return doc

    def redact(self, text: str) -> tuple[str, frozenset[str]]:
        """:func:`redact_text` through the caches of this redactor (same result, cheaper on repeats)."""
        clean = self._clean
        if text in clean:
            return text, _NO_KINDS
        result = self._redact_text(text)
        if not result[1]:
            if len(clean) >= self._clean_max:
                clean.clear()
            clean.add(text)
        return result

    @property
    def clean_strings(self) -> set[str]:
        """Strings known to hold no secret (the bounded cache :meth:`redact` consults first)."""
        return self._clean

    def scan(self, value: Any, kinds: set[str]) -> Any:
        """``value`` (a string, list or object) with every string redacted, as the walk treats a field not skipped.

        Lists are copied when something changes, objects are changed in place; kinds found go into ``kinds``.
        """
        kind = type(value)
        if kind is str:
            new, found = self.redact(value)
            if found:
                kinds.update(found)
                return new
        elif kind is list:
            return self._walk_list(value, kinds)
        elif kind is dict:
            self._walk(value, None, kinds)
        return value

    def _walk(self, node: dict[str, Any], skip: Tree | None, kinds: set[str]) -> None:
        """One pass: every string not skipped goes through :meth:`redact`."""
        clean = self._clean
        for key, value in node.items():
            kind = type(value)
            if kind is str:
                if value in clean or (skip is not None and key in skip and skip[key] is None):
                    continue
                new, found = self.redact(value)
                if found:
                    node[key] = new
                    kinds.update(found)
            elif kind is dict:
                sub: Any = _SCAN if skip is None else skip.get(key, _SCAN)
                if sub is not None:
                    self._walk(value, None if sub is _SCAN else sub, kinds)
            elif kind is list and (skip is None or skip.get(key, _SCAN) is not None):
                node[key] = self._walk_list(value, kinds)

    def _walk_list(self, values: list[Any], kinds: set[str]) -> list[Any]:
        out = values
        for i, value in enumerate(values):
            kind = type(value)
            if kind is str:
                new, found = self.redact(value)
                if found:
                    if out is values:
                        out = list(values)
                    out[i] = new
                    kinds.update(found)
            elif kind is dict:
                self._walk(value, None, kinds)
            elif kind is list:
                replaced = self._walk_list(value, kinds)
                if replaced is not value:
                    if out is values:
                        out = list(values)
                    out[i] = replaced
        return out
