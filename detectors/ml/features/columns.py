"""ECS documents to the columns the behaviour features need, in one pass per field.

Only catalogued fields are read (``ingest.ecs``; a test checks :data:`FIELDS_READ`). Event time is bucketed per
minute; ``@timestamp`` is the parsers' normalized form (``2026-11-02T08:00:00.123Z``), other ISO forms are parsed
too. Missing values are ``None`` (strings) or 0 (numbers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from itertools import repeat
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from detectors.ml.features import native_columns
from detectors.ml.features.sketch import Factorized, factorize, subset_factorized, values_of

ObjArray = npt.NDArray[np.object_]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
U32 = npt.NDArray[np.uint32]

#: Entity type -> the ECS field that identifies it.
ENTITY_FIELDS: Final[dict[str, str]] = {
    "api_key": "logwarden.api.key_id",
    "user": "user.id",
    "source_ip": "source.ip",
    "org": "organization.id",
}
FIELDS_READ: Final = (
    "@timestamp",
    "http.response.status_code",
    "http.response.bytes",
    "logwarden.api.route",
    "logwarden.api.latency_ms",
    "url.path",
    "source.geo.country_iso_code",
    "source.as.number",
    "user_agent.original",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    *ENTITY_FIELDS.values(),
)
_E: Final[Mapping[str, Any]] = {}


@lru_cache(maxsize=4096)
def _minute_of(prefix: str) -> int:
    """Epoch minute of ``YYYY-MM-DDTHH:MM`` (UTC)."""
    return int(datetime.fromisoformat(prefix + ":00+00:00").timestamp()) // 60


def epoch_minute(timestamp: str) -> int:
    """Epoch minute of an ISO timestamp (``Z`` or an offset; naive means UTC).

    >>> epoch_minute("2026-11-02T08:00:59.999Z") == epoch_minute("2026-11-02T09:00:00+01:00")
    True
    """
    if len(timestamp) == 24 and timestamp[-1] == "Z":
        return _minute_of(timestamp[:16])
    when = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp()) // 60


_TEXT: Final = ("route", "path", "country", "asn", "user_agent")


class EventColumns:
    """One batch of events as columns (row i = event i).

    A text column (a field or an entity type's) given as None is decoded from its known factorization on first use:
    the native columns step hands the factorizations over, and the windows step reads only those."""

    def __init__(
        self,
        minute: IntArray,
        status: IntArray,
        bytes_out: FloatArray,
        input_tokens: FloatArray,
        output_tokens: FloatArray,
        latency_ms: FloatArray,
        route: ObjArray | None,
        path: ObjArray | None,
        country: ObjArray | None,
        asn: ObjArray | None,
        user_agent: ObjArray | None,
        entities: Mapping[str, ObjArray | None],
        event_ids: list[str],
        factorized: dict[str, Factorized] | None = None,
        bits: dict[str, U32] | None = None,
    ) -> None:
        self.minute, self.status, self.bytes_out = minute, status, bytes_out
        self.input_tokens, self.output_tokens, self.latency_ms = input_tokens, output_tokens, latency_ms
        self.event_ids = event_ids
        #: Known factorizations of text columns (by field or entity type name), as :func:`factorize` gives them.
        self.factorized: dict[str, Factorized] = {} if factorized is None else factorized
        #: Known sketch bits of text columns' values (per event), as :func:`~detectors.ml.features.sketch.bits_of`
        #: gives them.
        self.bits: dict[str, U32] = {} if bits is None else bits
        self._text: dict[str, ObjArray | None] = dict(zip(_TEXT, (route, path, country, asn, user_agent), strict=True))
        self._text.update(entities)
        self._entity_types = tuple(entities)
        missing = [name for name, column in self._text.items() if column is None and name not in self.factorized]
        if missing:
            raise ValueError(f"text columns {missing} have neither values nor a factorization")

    def __len__(self) -> int:
        return int(self.minute.shape[0])

    def text(self, name: str) -> ObjArray:
        """A text column by field or entity type name (decoded from its factorization on first use)."""
        column = self._text[name]
        if column is None:
            column = self._text[name] = values_of(self.factorized[name])
        return column

    @property
    def route(self) -> ObjArray:
        return self.text("route")

    @property
    def path(self) -> ObjArray:
        return self.text("path")

    @property
    def country(self) -> ObjArray:
        return self.text("country")

    @property
    def asn(self) -> ObjArray:
        return self.text("asn")

    @property
    def user_agent(self) -> ObjArray:
        return self.text("user_agent")

    @property
    def entities(self) -> dict[str, ObjArray]:
        """Entity type -> the column of its identifiers."""
        return {etype: self.text(etype) for etype in self._entity_types}

    def factorize(self, name: str) -> Factorized:
        """:func:`factorize` of a text column (a field or an entity type), known or computed."""
        known = self.factorized.get(name)
        if known is not None:
            return known
        return factorize(self.text(name))

    def part(self, start: int, stop: int) -> EventColumns:
        """The events ``start:stop`` (views, no copies)."""
        return self._select(slice(start, stop), self.event_ids[start:stop])

    def take(self, index: npt.NDArray[np.intp]) -> EventColumns:
        """The events at ``index``, in that order."""
        return self._select(index, [self.event_ids[i] for i in index.tolist()])

    def _select(self, index: slice | npt.NDArray[np.intp], ids: list[str]) -> EventColumns:
        text = {name: None if column is None else column[index] for name, column in self._text.items()}
        return EventColumns(
            self.minute[index], self.status[index], self.bytes_out[index], self.input_tokens[index],
            self.output_tokens[index], self.latency_ms[index], text["route"], text["path"], text["country"],
            text["asn"], text["user_agent"], {etype: text[etype] for etype in self._entity_types}, ids,
            {k: subset_factorized(f, index) for k, f in self.factorized.items()},
            {k: v[index] for k, v in self.bits.items()},
        )  # fmt: skip


def _obj(values: list[Any]) -> ObjArray:
    """An object array of the values (``fromiter``: no search for nested sequences, 2x faster than setitem)."""
    return np.fromiter(values, dtype=object, count=len(values))


_IDS: Final[list[str]] = []  # "0", "1", ...: the default event ids, made once
_IDS_CACHED: Final = 100_000


def _default_ids(n: int) -> list[str]:
    """``[str(i) for i in range(n)]``."""
    if n > _IDS_CACHED:
        return list(map(str, range(n)))
    if len(_IDS) < n:
        _IDS.extend(map(str, range(len(_IDS), n)))
    return _IDS[:n]


def _get(maps: list[Any], key: str, default: Any = None) -> list[Any]:
    """``[m.get(key, default) for m in maps]``, looped in C when every map is a ``dict`` (the usual case)."""
    try:
        return list(map(dict.get, maps, repeat(key), repeat(default)))
    except TypeError:  # some other Mapping
        return [m.get(key, default) for m in maps]


_DIGITS: Final = np.array([0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15])  # YYYY MM DD HH MM in YYYY-MM-DDTHH:MM:SS.mmmZ
_SEPARATORS: Final = {4: b"-", 7: b"-", 10: b"T", 13: b":", 16: b":", 19: b".", 23: b"Z", 24: b"\0"}
_SEPARATOR_AT: Final = np.array(list(_SEPARATORS))
_MONTH_DAYS: Final = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
_SEPARATOR_CHARS: Final = np.frombuffer(b"".join(_SEPARATORS.values()), dtype=np.uint8)


def epoch_minutes(stamps: list[Any]) -> IntArray:
    """:func:`epoch_minute` of many timestamps: the normalized form is parsed with array arithmetic, others one by one.

    >>> epoch_minutes(["2026-11-02T08:00:59.999Z", "2026-11-02T09:00:00+01:00"]).tolist() == [29_893_440] * 2
    True
    """
    try:
        raw = np.array(stamps, dtype="S25").view(np.uint8).reshape(len(stamps), 25)
    except (UnicodeEncodeError, TypeError, ValueError):
        return np.array([epoch_minute(t) for t in stamps], dtype=np.int64)
    digits = raw[:, _DIGITS] - np.uint8(48)  # non-digits wrap around above 9
    ok = (digits <= 9).all(axis=1) & (raw[:, _SEPARATOR_AT] == _SEPARATOR_CHARS).all(axis=1)
    pairs = digits.reshape(len(stamps), 6, 2).astype(np.int64) @ np.array([10, 1])  # YY YY MM DD HH MM
    year, month, day = pairs[:, 0] * 100 + pairs[:, 1], pairs[:, 2], pairs[:, 3]
    y = year - (month <= 2)  # days from the civil date (H. Hinnant's algorithm), valid for years 0-9999
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    days = era * 146_097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719_468
    out = days * 1440 + pairs[:, 4] * 60 + pairs[:, 5]
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = _MONTH_DAYS[np.clip(month, 1, 12) - 1] + ((month == 2) & leap)
    ok &= (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
    ok &= (pairs[:, 4] <= 23) & (pairs[:, 5] <= 59)  # else fromisoformat raises (and so must this)
    for i in np.flatnonzero(~ok).tolist():
        out[i] = epoch_minute(stamps[i])
    return np.asarray(out, dtype=np.int64)


_CHUNK: Final = 64  # documents read at once: their dicts stay in the CPU cache across the ~27 passes


def _fields(docs: list[Any]) -> list[list[Any]]:
    """The read fields of documents, one list each in :func:`columns_from_docs` order (one ``map`` per level)."""
    e = _E
    response = _get(_get(docs, "http", e), "response", e)
    api = _get(_get(docs, "logwarden", e), "api", e)
    source = _get(docs, "source", e)
    usage = _get(_get(docs, "gen_ai", e), "usage", e)
    return [
        _get(docs, "@timestamp"), _get(response, "status_code", 0), _get(response, "bytes", 0),
        _get(usage, "input_tokens", 0), _get(usage, "output_tokens", 0), _get(api, "latency_ms", 0.0),
        _get(api, "route"), _get(_get(docs, "url", e), "path"), _get(_get(source, "geo", e), "country_iso_code"),
        _get(_get(source, "as", e), "number"), _get(_get(docs, "user_agent", e), "original"), _get(api, "key_id"),
        _get(_get(docs, "user", e), "id"), _get(source, "ip"), _get(_get(docs, "organization", e), "id"),
    ]  # fmt: skip


def _native(docs: list[Any], ids: list[str]) -> EventColumns | None:
    """The columns by the native extension, with the text columns' factorizations; None when it declines (or
    when a document it skipped fails in Python: the whole batch then runs in Python, which fails alike)."""
    native = native_columns.read(docs, epoch_minute)
    if native is None:
        return None
    numbers, text, factorized, bits, skipped = native
    if len(skipped) and not _patch(docs, skipped, numbers, text, factorized, bits):
        return None
    route, path, country, asn, agent, key, user, ip, org = text
    return EventColumns(*numbers, route, path, country, asn, agent,
                        {"api_key": key, "user": user, "source_ip": ip, "org": org}, ids, factorized, bits)  # fmt: skip


def _patch(docs: list[Any], skipped: npt.NDArray[np.intp], numbers: native_columns.Numbers,
           text: list[ObjArray | None], factorized: dict[str, Factorized], bits: dict[str, U32]) -> bool:  # fmt: skip
    """Read the documents the extension skipped with the Python path and put their values in the columns (a
    factorization and the sketch bits stay valid where they have no value: the extension coded them as missing).
    False when that fails or gives a column of another shape (the Python path over the whole batch decides)."""
    try:
        part = _python_path([docs[i] for i in skipped.tolist()], _default_ids(len(skipped)))
    except Exception:  # the Python path over the whole batch raises (or not) by itself
        return False
    part_numbers = (part.minute, part.status, part.bytes_out, part.input_tokens, part.output_tokens, part.latency_ms)
    if any(values.shape != skipped.shape for values in part_numbers):
        return False
    for column, values in zip(numbers, part_numbers, strict=True):
        column[skipped] = values
    part_text = [part.route, part.path, part.country, part.asn, part.user_agent, *part.entities.values()]
    for i, (name, obj_values) in enumerate(zip(native_columns.TEXT_COLUMNS, part_text, strict=True)):
        if any(v is not None for v in obj_values.tolist()):
            obj_column = text[i]
            if obj_column is None:  # coded: its values now (the factorization changes)
                obj_column = text[i] = values_of(factorized[name])
            obj_column[skipped] = obj_values
            bits.pop(name, None)  # their bits: by bits_of
            coded = factorized.pop(name, None)
            extended = _extended(coded, skipped, obj_values.tolist()) if coded is not None else None
            if extended is not None:
                factorized[name] = extended
    return True


def _extended(coded: Factorized, at: npt.NDArray[np.intp], values: list[Any]) -> Factorized | None:
    """The factorization of a column whose values ``at`` (coded as missing) became ``values``, when they are
    None or strings pandas codes alike (no NUL, no surrogate); else None (pandas factorizes the column)."""
    codes, uniques = coded
    codes, uniques = codes.copy(), list(uniques)
    known = {u: i for i, u in enumerate(uniques)}
    for i, value in zip(at.tolist(), values, strict=True):
        if value is None:
            continue
        if type(value) is not str or "\0" in value or not _encodable(value):
            return None
        code = known.setdefault(value, len(uniques))
        if code == len(uniques):
            uniques.append(value)
        codes[i] = code
    return subset_factorized((codes, uniques), slice(None))  # codes again in order of first appearance


def _encodable(value: str) -> bool:
    """Whether a string has no lone surrogate (the extension codes only such strings)."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def columns_from_docs(docs: Sequence[Mapping[str, Any]], event_ids: Sequence[str] | None = None) -> EventColumns:
    """Columns of ECS documents (the hot loop of feature extraction): by the native extension when it is built and
    takes the batch (:mod:`~detectors.ml.features.native_columns`), else one C-level ``map`` per field and level,
    over chunks of :data:`_CHUNK` documents."""
    docs = docs if isinstance(docs, list) else list(docs)
    ids = list(event_ids) if event_ids is not None else _default_ids(len(docs))
    native = _native(docs, ids)
    if native is not None:
        return native
    return _python_path(docs, ids)


def _python_path(docs: list[Any], ids: list[str]) -> EventColumns:
    """:func:`columns_from_docs` in Python: one C-level ``map`` per field and level, over chunks of documents."""
    fields = _fields(docs[:_CHUNK])
    for start in range(_CHUNK, len(docs), _CHUNK):
        for column, part in zip(fields, _fields(docs[start : start + _CHUNK]), strict=True):
            column += part
    stamps, status, bytes_out, tokens_in, tokens_out, latency, route, path, country, asn, agent, key, user, ip, org = (
        fields
    )
    return EventColumns(
        minute=epoch_minutes(stamps),
        status=np.array(status, dtype=np.int64),
        bytes_out=np.array(bytes_out, dtype=np.float64),
        input_tokens=np.array(tokens_in, dtype=np.float64),
        output_tokens=np.array(tokens_out, dtype=np.float64),
        latency_ms=np.array(latency, dtype=np.float64),
        route=_obj(route),
        path=_obj(path),
        country=_obj(country),
        asn=_obj(asn),
        user_agent=_obj(agent),
        entities={"api_key": _obj(key), "user": _obj(user), "source_ip": _obj(ip), "org": _obj(org)},
        event_ids=ids,
    )


def columns_from_docs_reference(docs: Sequence[Mapping[str, Any]], event_ids: Sequence[str] | None = None
                                ) -> EventColumns:  # fmt: skip
    """The plain per-document path (one comprehension per field): what :func:`columns_from_docs` must equal."""
    e = _E
    api = [d.get("logwarden", e).get("api", e) for d in docs]
    source = [d.get("source", e) for d in docs]
    response = [d.get("http", e).get("response", e) for d in docs]
    usage = [d.get("gen_ai", e).get("usage", e) for d in docs]
    return EventColumns(
        minute=np.array([epoch_minute(d["@timestamp"]) for d in docs], dtype=np.int64),
        status=np.array([r.get("status_code", 0) for r in response], dtype=np.int64),
        bytes_out=np.array([r.get("bytes", 0) for r in response], dtype=np.float64),
        input_tokens=np.array([u.get("input_tokens", 0) for u in usage], dtype=np.float64),
        output_tokens=np.array([u.get("output_tokens", 0) for u in usage], dtype=np.float64),
        latency_ms=np.array([a.get("latency_ms", 0.0) for a in api], dtype=np.float64),
        route=_obj([a.get("route") for a in api]),
        path=_obj([d.get("url", e).get("path") for d in docs]),
        country=_obj([s.get("geo", e).get("country_iso_code") for s in source]),
        asn=_obj([s.get("as", e).get("number") for s in source]),
        user_agent=_obj([d.get("user_agent", e).get("original") for d in docs]),
        entities={
            "api_key": _obj([a.get("key_id") for a in api]),
            "user": _obj([d.get("user", e).get("id") for d in docs]),
            "source_ip": _obj([s.get("ip") for s in source]),
            "org": _obj([d.get("organization", e).get("id") for d in docs]),
        },
        event_ids=list(event_ids) if event_ids is not None else [str(i) for i in range(len(docs))],
    )
