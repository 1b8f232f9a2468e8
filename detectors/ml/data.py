"""Training and evaluation inputs: ECS documents from JSON lines, Parquet (with pyarrow) or Elasticsearch.

JSON lines are what ``logwarden normalize`` prints (one ECS document per line). Parquet files may hold nested
columns or flat dotted column names (``http.response.status_code``); reading them needs pyarrow, which is not a
dependency of logwarden (``pip install pyarrow``). Elasticsearch: a time range of an index pattern, read with
the scroll helper.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from detectors.errors import DetectorError


class DataError(DetectorError):
    """Input data that cannot be read."""


def file_hash(path: Path) -> str:
    """sha256 of the file's bytes (recorded in the model's metadata)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_documents(path: Path) -> list[dict[str, Any]]:
    """ECS documents from a JSON-lines file (``.parquet``: a Parquet file), in file order."""
    if path.suffix == ".parquet":
        return _read_parquet(path)
    docs = []
    try:
        with path.open("rb") as f:
            for number, line in enumerate(f, start=1):
                if line.strip():
                    try:
                        doc = orjson.loads(line)
                    except orjson.JSONDecodeError as exc:
                        raise DataError(f"{path}:{number}: not JSON: {exc}") from None
                    if not isinstance(doc, dict) or "@timestamp" not in doc:
                        raise DataError(f"{path}:{number}: expected an ECS document with @timestamp")
                    docs.append(doc)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    return docs


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1}`` -> ``{"a": {"b": 1}}`` (None values dropped; ``@timestamp`` kept whole)."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        if value is None:
            continue
        node = out
        *parents, leaf = key.split(".") if key != "@timestamp" else [key]
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
    rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    return [nest(r) if any("." in k for k in r) else r for r in rows]


def read_elasticsearch(es: Any, index: str, start: str, end: str, size: int = 2000) -> Iterable[dict[str, Any]]:
    """Documents of ``index`` with ``start <= @timestamp < end``, in time order (scroll)."""
    from elasticsearch.helpers import scan

    query = {"query": {"range": {"@timestamp": {"gte": start, "lt": end}}}, "sort": [{"@timestamp": "asc"}]}
    for hit in scan(es, index=index, query=query, size=size, preserve_order=True):
        yield hit["_source"]


def get_field(doc: Mapping[str, Any], name: str) -> Any:
    """A dotted field of a nested document (also a flat dotted key), None when absent."""
    if name in doc:
        return doc[name]
    node: Any = doc
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node
