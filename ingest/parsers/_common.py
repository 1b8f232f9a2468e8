"""Small helpers shared by the parsers: JSON decoding, timestamps, IPs, typed field access."""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

from ingest.errors import ParseError


def decode_json_object(raw: bytes) -> dict[str, Any]:
    """Decode one JSON object; anything else is a :class:`ParseError`."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ParseError("invalid_json", f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ParseError("not_an_object", f"expected a JSON object, got {type(value).__name__}")
    return value


#: Already canonical (UTC, milliseconds): only validated, not reformatted (the common case, 10x cheaper).
_CANONICAL_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def iso_timestamp(value: Any, field: str) -> str:
    """Normalize an RFC 3339 timestamp (or epoch seconds) to UTC ``YYYY-MM-DDTHH:MM:SS.mmmZ``.

    >>> iso_timestamp("2026-11-02T09:00:00.5+01:00", "t"), iso_timestamp("2026-11-02T08:00:00.000Z", "t")
    ('2026-11-02T08:00:00.500Z', '2026-11-02T08:00:00.000Z')
    """
    if type(value) is str and _CANONICAL_TS.fullmatch(value):
        try:
            datetime.fromisoformat(value)  # rejects impossible dates such as month 13
        except ValueError:
            raise ParseError("bad_timestamp", f"{field}: not an RFC 3339 timestamp: {value!r}") from None
        return value
    if isinstance(value, bool):
        raise ParseError("bad_timestamp", f"{field}: expected a timestamp, got a boolean")
    if isinstance(value, int | float):
        try:
            moment = datetime.fromtimestamp(float(value), tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise ParseError("bad_timestamp", f"{field}: epoch value {value!r} out of range") from None
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ParseError("bad_timestamp", f"{field}: not an RFC 3339 timestamp: {value[:64]!r}") from None
        if moment.tzinfo is None:
            raise ParseError("bad_timestamp", f"{field}: timestamp has no time zone: {value[:64]!r}")
        try:
            moment = moment.astimezone(UTC)
        except OverflowError:  # e.g. 0001-01-01T00:30:00+01:00 is before year 1 in UTC
            raise ParseError("bad_timestamp", f"{field}: out of range in UTC: {value[:64]!r}") from None
    else:
        raise ParseError("bad_timestamp", f"{field}: missing or not a timestamp")
    # isoformat, not strftime: strftime("%Y") writes year 385 as "385", which is not RFC 3339
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def ip_or_none(value: Any, field: str) -> str | None:
    """A normalized IP address string, ``None`` when absent; a malformed address is a :class:`ParseError`."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ParseError("bad_ip", f"{field}: expected an IP address string")
    normalized = normalize_ip(value)
    if normalized is None:
        raise ParseError("bad_ip", f"{field}: not an IP address: {value[:64]!r}")
    return normalized


@lru_cache(maxsize=65_536)
def normalize_ip(value: str) -> str | None:
    """Canonical text of an address (cached: the same clients come back all day)."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def opt_str(obj: dict[str, Any], key: str) -> str | None:
    """``obj[key]`` when it is a non-empty string, ``None`` when absent or null."""
    value = obj.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ParseError("bad_field", f"{key}: expected a string, got {type(value).__name__}")
    return value


def opt_int(obj: dict[str, Any], key: str) -> int | None:
    """``obj[key]`` as a non-negative int when present (integral floats accepted)."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ParseError("bad_field", f"{key}: expected a number, got {type(value).__name__}")
    if isinstance(value, float) and not value.is_integer():
        raise ParseError("bad_field", f"{key}: expected a whole number, got {value!r}")
    if value < 0 or value > 2**53:
        raise ParseError("bad_field", f"{key}: out of range: {value!r}")
    return int(value)


def opt_float(obj: dict[str, Any], key: str) -> float | None:
    """``obj[key]`` as a finite non-negative float when present."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParseError("bad_field", f"{key}: expected a number, got {type(value).__name__}")
    if not (0 <= value < float("inf")):
        raise ParseError("bad_field", f"{key}: out of range: {value!r}")
    return float(value)


def prune(doc: dict[str, Any]) -> dict[str, Any]:
    """Drop ``None`` values and empty dicts and lists, recursively; ``False``, ``0`` and ``""`` stay.

    >>> prune({"a": None, "b": {"c": None}, "d": [], "e": 0, "f": {"g": False}})
    {'e': 0, 'f': {'g': False}}
    """
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if value is None:
            continue
        if type(value) is dict:
            value = prune(value)
            if not value:
                continue
        elif type(value) is list and not value:
            continue
        out[key] = value
    return out


def split_json_array(raw: bytes) -> list[bytes]:
    """The events of a JSON array, each re-serialized compactly; anything else passes through whole.

    The bytes of a part depend only on the part (key order kept), so a replayed array yields the
    same document ids. An empty array holds no events. Shared by the sources whose APIs return arrays.

    >>> split_json_array(b'[{"a": 1}, {"b": 2}]')
    [b'{"a":1}', b'{"b":2}']
    >>> split_json_array(b'{"a": 1}')
    [b'{"a": 1}']
    """
    if raw[:1] != b"[" and raw.lstrip()[:1] != b"[":
        return [raw]
    try:
        values = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ParseError("invalid_json", f"not a valid JSON array: {exc}") from None
    try:
        return [orjson.dumps(value) for value in values]
    except orjson.JSONEncodeError:
        raise ParseError("too_deep", "an array element nests too deeply to re-serialize") from None
