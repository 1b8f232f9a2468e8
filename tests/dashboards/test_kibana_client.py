"""``logwarden.kibana``: protocol shape and error handling against a FAKE Kibana (``conftest.py``).

This is not an integration test: no Kibana can run on our machines (see ../shared/notes/real-services.md §5).
The tests check what the real import API requires of a request (POST to ``/api/saved_objects/_import``,
``overwrite=true``, the ``kbn-xsrf`` header, a multipart ``file`` part named ``*.ndjson`` holding one JSON object
per line) and how each documented answer of Kibana is turned into an error; each test scripts one answer.
"""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path

import pytest

from logwarden.errors import ConfigError, ServiceUnavailable
from logwarden.kibana import (
    KibanaImportError,
    dashboard_files,
    import_saved_objects,
    prepare_ndjson,
    setup_kibana,
)
from tests.dashboards.conftest import FakeKibana
from tests.dashboards.panel_queries import DASHBOARD_FILES


def test_import_sends_one_multipart_ndjson_file_with_the_kibana_headers(kibana: FakeKibana) -> None:
    result = import_saved_objects(kibana.url, dashboard_files())
    (request,) = kibana.received
    assert request.path == "/api/saved_objects/_import"
    assert request.query == {"overwrite": ["true"]}
    assert request.headers["kbn-xsrf"] == "true"
    assert "authorization" not in request.headers
    assert request.file_name == "logwarden.ndjson"
    sent = [(o["type"], o["id"]) for o in request.lines]
    assert sent == result.objects
    assert len(sent) == sum(len(p.read_text().splitlines()) for p in DASHBOARD_FILES)
    assert sent[:2] == [("index-pattern", "logwarden-events"), ("index-pattern", "logwarden-alerts")]
    assert result.success_count == len(sent)
    assert result.summary() == f"kibana: {len(sent)} saved objects imported (6 dashboards)"


def test_data_view_titles_follow_the_index_prefix(kibana: FakeKibana) -> None:
    import_saved_objects(kibana.url, dashboard_files(), index_prefix="acme")
    titles = {o["id"]: o["attributes"]["title"] for o in kibana.received[0].lines if o["type"] == "index-pattern"}
    assert titles == {"logwarden-events": "acme-events*", "logwarden-alerts": "acme-alerts*"}


def test_space_basic_auth_from_the_url_and_api_key(kibana: FakeKibana) -> None:
    host = kibana.url.removeprefix("http://")
    import_saved_objects(f"http://elastic:s%40cret@{host}/", dashboard_files(), space="security team")
    import_saved_objects(kibana.url, dashboard_files(), username="u", password="p")
    import_saved_objects(kibana.url, dashboard_files(), api_key="a2V5OnNlY3JldA==")
    first, second, third = kibana.received
    assert first.path == "/s/security%20team/api/saved_objects/_import"
    assert first.headers["authorization"] == "Basic " + base64.b64encode(b"elastic:s@cret").decode()
    assert second.headers["authorization"] == "Basic " + base64.b64encode(b"u:p").decode()
    assert third.headers["authorization"] == "ApiKey a2V5OnNlY3JldA=="


def test_setup_kibana_imports_the_bundled_dashboards(kibana: FakeKibana) -> None:
    done = setup_kibana(kibana.url, "logwarden")
    assert done == [f"kibana: {len(kibana.received[0].lines)} saved objects imported (6 dashboards)"]


def test_refused_objects_are_listed_one_per_line(kibana: FakeKibana) -> None:
    errors = [
        {"id": "logwarden-security-overview", "type": "dashboard", "meta": {"title": "Overview"},
         "error": {"type": "missing_references", "references": [{"type": "index-pattern", "id": "nope"}]}},
        {"id": "logwarden-x", "type": "lens", "title": "X", "error": {"type": "unknown", "message": "boom"}},
    ]  # fmt: skip
    kibana.answer = (200, json.dumps({"success": False, "successCount": 3, "errors": errors}).encode())
    with pytest.raises(KibanaImportError) as info:
        import_saved_objects(kibana.url, dashboard_files())
    text = str(info.value)
    assert "dashboard logwarden-security-overview ('Overview'): missing_references index-pattern/nope" in text
    assert "lens logwarden-x ('X'): unknown: boom" in text


@pytest.mark.parametrize(
    ("status", "body", "error", "words"),
    [
        (401, b'{"statusCode":401,"error":"Unauthorized","message":"unable to authenticate user"}', ConfigError,
         "refused the credentials (401): unable to authenticate user"),
        (403, b'{"statusCode":403,"message":"forbidden"}', ConfigError, "refused the credentials (403)"),
        (404, b'{"statusCode":404,"message":"Not Found"}', KibanaImportError, "404; wrong URL or space"),
        (400, b'{"statusCode":400,"message":"Invalid file extension .txt"}', KibanaImportError,
         "refused the import (400): Invalid file extension .txt"),
        (503, b'Kibana server is not ready yet', ServiceUnavailable, "not ready or failed (503)"),
        (500, b'{"statusCode":500,"message":"An internal server error occurred."}', ServiceUnavailable, "(500)"),
        (200, b"<html>a proxy login page</html>", KibanaImportError, "unexpected answer"),
    ],
)  # fmt: skip
def test_http_errors_become_clear_errors(
    kibana: FakeKibana, status: int, body: bytes, error: type[Exception], words: str
) -> None:
    kibana.answer = (status, body)
    with pytest.raises(error) as info:
        import_saved_objects(kibana.url, dashboard_files())
    assert words in str(info.value)
    assert kibana.url.removeprefix("http://") in str(info.value)


def test_the_fake_refuses_what_kibana_refuses(kibana: FakeKibana) -> None:
    """The fake is strict: a request without kbn-xsrf gets Kibana's 400 (so the tests above prove the header)."""
    from urllib.error import HTTPError
    from urllib.request import Request, urlopen

    request = Request(kibana.url + "/api/saved_objects/_import", data=b"x", method="POST",
                      headers={"Content-Type": "multipart/form-data; boundary=b"})  # fmt: skip
    with pytest.raises(HTTPError) as info:
        urlopen(request, timeout=5)
    assert info.value.code == 400 and b"kbn-xsrf" in info.value.read()


def test_unreachable_kibana_and_password_not_shown() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    with pytest.raises(ServiceUnavailable) as info:
        import_saved_objects(f"http://admin:hunter2@127.0.0.1:{port}", dashboard_files(), timeout_s=2)
    assert f"cannot reach Kibana at http://admin:**********@127.0.0.1:{port}" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_timeout_is_service_unavailable(kibana: FakeKibana) -> None:
    kibana.delay_s = 1.5
    with pytest.raises(ServiceUnavailable, match="cannot reach Kibana"):
        import_saved_objects(kibana.url, dashboard_files(), timeout_s=0.5)


@pytest.mark.parametrize("url", ["kibana:5601", "ftp://kibana", "http://"])
def test_bad_url_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigError, match="not an http"):
        import_saved_objects(url, dashboard_files())


def test_invalid_files_are_refused_before_any_request(kibana: FakeKibana, tmp_path: Path) -> None:
    broken = tmp_path / "broken.ndjson"
    line = json.loads(DASHBOARD_FILES[0].read_text().splitlines()[-1])
    line["references"][0]["id"] = "no-such-object"
    broken.write_text(json.dumps(line) + "\n{not json\n")
    with pytest.raises(ConfigError) as info:
        import_saved_objects(kibana.url, [broken])
    assert "does not resolve" in str(info.value) and "not JSON" in str(info.value)
    assert kibana.received == []


def test_export_summary_lines_are_not_sent(tmp_path: Path) -> None:
    views = (Path(DASHBOARD_FILES[0]).parent / "data_views.ndjson").read_text()
    exported = tmp_path / "export.ndjson"
    exported.write_text(views + json.dumps({"exportedCount": 2, "missingRefCount": 0, "missingReferences": []}) + "\n")
    payload, objects = prepare_ndjson([exported])
    assert len(payload.decode().splitlines()) == len(objects) == 2


def test_dashboard_files_put_the_data_views_first() -> None:
    files = dashboard_files()
    assert files[0].name == "data_views.ndjson"
    assert sorted(files) == DASHBOARD_FILES
