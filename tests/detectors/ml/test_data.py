"""Reading training data: JSON lines, Parquet (needs pyarrow), dotted fields."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from detectors.ml.data import DataError, file_hash, get_field, nest, read_documents


def test_json_lines_in_file_order_with_errors_located(tmp_path: Path) -> None:
    good = tmp_path / "d.jsonl"
    good.write_bytes(b'{"@timestamp": "2026-11-02T08:00:00.000Z", "a": 1}\n\n{"@timestamp": "2026-11-02T07:00Z"}\n')
    assert [d.get("a") for d in read_documents(good)] == [1, None]
    assert len(file_hash(good)) == 64
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"@timestamp": "x"}\nnot json\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2"):
        read_documents(bad)
    with pytest.raises(DataError, match="@timestamp"):
        bad.write_bytes(b'{"a": 1}\n')
        read_documents(bad)


def test_dotted_fields() -> None:
    assert nest({"@timestamp": "t", "a.b": 1, "a.c": None, "d": 2}) == {"@timestamp": "t", "a": {"b": 1}, "d": 2}
    assert get_field({"labels": {"scenario": "x"}}, "labels.scenario") == "x"
    assert get_field({"labels.scenario": "y"}, "labels.scenario") == "y"
    assert get_field({"labels": "x"}, "labels.scenario") is None


def test_parquet_without_pyarrow_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as on a machine without pyarrow, installed or not here
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    path = tmp_path / "d.parquet"
    path.write_bytes(b"PAR1")
    with pytest.raises(DataError, match="pyarrow"):
        read_documents(path)
