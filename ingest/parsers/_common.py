"""Small helpers shared by the parsers: JSON decoding, timestamps, IPs, typed field access."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
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


def iso_timestamp(value: Any, field: str) -> str:
    """Normalize an RFC 3339 timestamp (or epoch seconds) to UTC ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
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
        moment = moment.astimezone(UTC)
    else:
        raise ParseError("bad_timestamp", f"{field}: missing or not a timestamp")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def ip_or_none(value: Any, field: str) -> str | None:
    """A normalized IP address string, ``None`` when absent; a malformed address is a :class:`ParseError`."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ParseError("bad_ip", f"{field}: expected an IP address string")
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise ParseError("bad_ip", f"{field}: not an IP address: {value[:64]!r}") from None


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
    """Drop ``None`` values and empty containers, recursively, so documents carry only what is known."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            value = prune(value)
        if value is None or value == {} or value == []:
            continue
        out[key] = value
    return out
