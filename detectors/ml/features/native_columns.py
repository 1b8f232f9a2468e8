"""The native columns step: ``ingest._native.ml_columns`` (Rust, ``native/src/ml_columns.rs``) read into arrays.

One pass over the documents in the extension, with the text columns' factorizations (what the windows step would
otherwise hash again with pandas). Optional: :func:`read` returns None when the extension is missing or lacks the
function, when ``LOGWARDEN_NATIVE=0``, and whenever the extension declines a batch (anything it does not reproduce
exactly: see the Rust module); the caller then runs the Python path. A document the extension does not read
exactly is skipped there and read by the caller (:func:`~detectors.ml.features.columns.columns_from_docs`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from detectors.ml.features.sketch import Factorized

try:
    from ingest import _native  # type: ignore[attr-defined]
except ImportError:  # built without cargo: pure Python
    _native = None

#: The text columns in the extension's order (names of :class:`EventColumns` fields or entity types).
TEXT_COLUMNS: Final = ("route", "path", "country", "asn", "user_agent", "api_key", "user", "source_ip", "org")
_ml_columns: Callable[[list[Any]], Any] | None = getattr(_native, "ml_columns", None)

Numbers = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
ObjArray = npt.NDArray[np.object_]
U32 = npt.NDArray[np.uint32]
#: numbers, text columns, factorizations of the coded ones and each event's sketch bit in those, positions of the
#: skipped documents
Native = tuple[Numbers, list[ObjArray | None], dict[str, Factorized], dict[str, U32], npt.NDArray[np.intp]]


def available() -> bool:
    """True when the extension has the native columns step and it is not switched off (``LOGWARDEN_NATIVE=0``)."""
    return _ml_columns is not None and os.environ.get("LOGWARDEN_NATIVE", "1") != "0"


@contextmanager
def python_only() -> Iterator[None]:
    """Within the block the Python path runs (for A/B benchmarks and tests)."""
    global _ml_columns
    saved, _ml_columns = _ml_columns, None
    try:
        yield
    finally:
        _ml_columns = saved


def read(docs: list[Any], epoch_minute: Callable[[Any], int]) -> Native | None:
    """The numeric columns (minute, status, bytes out, input and output tokens, latency), the nine text columns
    (:data:`TEXT_COLUMNS` order), the factorizations of those the extension coded with each event's bit in their
    distinct-value sketches (:func:`~detectors.ml.features.sketch.bits_of`), and the positions of the documents it
    skipped (their numbers are 0 and their text values None: the caller reads them); or None (run
    Python for the whole batch).

    ``epoch_minute`` parses the timestamps the extension left (any form other than the normalized one)."""
    if not docs or _ml_columns is None or not available():
        return None
    out = _ml_columns(docs)
    if out is None:
        return None
    buffer, odd, text, codes, skipped = out
    n = len(docs)
    ints = np.frombuffer(buffer, dtype=np.int64).reshape(6, n)
    floats = np.frombuffer(buffer, dtype=np.float64).reshape(6, n)
    minute = ints[0]
    for i, stamp in odd:
        minute[i] = epoch_minute(stamp)
    factorized: dict[str, Factorized] = {}
    bits: dict[str, U32] = {}
    columns: list[ObjArray | None] = []
    for name, values, coded in zip(TEXT_COLUMNS, text, codes, strict=True):
        if coded is None:
            columns.append(_obj(values))
            continue
        codes = np.frombuffer(coded[0], dtype=np.int64).astype(np.intp, copy=False)
        factorized[name] = (codes, coded[1])
        columns.append(None)  # decoded from its factorization when read (EventColumns.text)
        bits[name] = np.frombuffer(coded[2], dtype=np.uint32)  # each event's (0: no value)
    numbers = (minute, ints[1], floats[2], floats[3], floats[4], floats[5])
    return numbers, columns, factorized, bits, np.array(skipped, dtype=np.intp)


def _obj(values: list[Any]) -> ObjArray:
    """An object array of the values (``fromiter``: no search for nested sequences, 2x faster than setitem)."""
    return np.fromiter(values, dtype=object, count=len(values))
