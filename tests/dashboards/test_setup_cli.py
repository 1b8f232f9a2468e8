"""``logwarden setup --kibana URL`` imports the dashboards (against the FAKE Kibana of ``conftest.py``).

Needs the ``--kibana`` option in ``logwarden/cli.py`` (added by the lead together with this file).
"""

from __future__ import annotations

import sys

import pytest

from logwarden import cli
from tests.dashboards.conftest import FakeKibana


def _setup(monkeypatch: pytest.MonkeyPatch, url: str) -> int | str | None:
    monkeypatch.setattr(sys, "argv", ["logwarden", "setup", "--no-kafka", "--no-elasticsearch", "--kibana", url])
    with pytest.raises(SystemExit) as info:
        cli.main()
    return info.value.code


def test_setup_imports_the_dashboards_with_the_index_prefix(
    kibana: FakeKibana, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOGWARDEN_INDEX_PREFIX", "acme")
    assert _setup(monkeypatch, kibana.url) in (0, None)
    assert "saved objects imported (6 dashboards)" in capsys.readouterr().err
    titles = {o["attributes"]["title"] for o in kibana.received[0].lines if o["type"] == "index-pattern"}
    assert titles == {"acme-events*", "acme-alerts*"}


def test_setup_with_an_unreachable_kibana_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _setup(monkeypatch, "http://127.0.0.1:9") == 1
    assert "--kibana: cannot reach Kibana at http://127.0.0.1:9" in capsys.readouterr().err
