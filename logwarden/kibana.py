"""Import the Kibana saved objects (data views, dashboards, saved searches) through Kibana's API.

``POST <kibana>[/s/<space>]/api/saved_objects/_import?overwrite=true`` with the NDJSON as a multipart file
and the ``kbn-xsrf`` header, optionally with basic auth (``username``/``password``, or ``user:pass@`` in
the URL) or an API key. The files are validated first (:mod:`logwarden.kibana_validate`) and sent as one
import, so references between files resolve; the data views' index patterns follow ``index_prefix``.

Errors: an unreachable Kibana or a 5xx is :class:`~logwarden.errors.ServiceUnavailable`; bad files, a bad
URL and rejected credentials are :class:`~logwarden.errors.ConfigError`; objects Kibana refused are
:class:`KibanaImportError`, listing each refused object and why.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlsplit, urlunsplit
from urllib.request import Request, urlopen

from logwarden.errors import ConfigError, LogwardenError, ServiceUnavailable
from logwarden.kibana_validate import check as check_objects
from logwarden.kibana_validate import load
from logwarden.settings import safe_url

DEFAULT_PREFIX: Final = "logwarden"
DATA_VIEWS_FILE: Final = "data_views.ndjson"


class KibanaImportError(LogwardenError):
    """Kibana answered, but refused the request or some of the objects."""


@dataclass(frozen=True)
class ImportResult:
    success_count: int
    objects: list[tuple[str, str]]  # (type, id) sent, in order

    def summary(self) -> str:
        dashboards = sum(1 for kind, _ in self.objects if kind == "dashboard")
        return f"kibana: {self.success_count} saved objects imported ({dashboards} dashboards)"


def bundled_dashboards_dir() -> Path:
    """``dashboards/`` of the source tree (or of the working directory, as in the Docker image)."""
    for candidate in (Path(__file__).resolve().parents[1] / "dashboards", Path.cwd() / "dashboards"):
        if (candidate / DATA_VIEWS_FILE).is_file():
            return candidate
    packaged = resources.files("logwarden").joinpath("bundled_dashboards")
    if packaged.is_dir():
        return Path(str(packaged))
    raise ConfigError(f"--kibana: no dashboards found (looked for dashboards/{DATA_VIEWS_FILE})")


def dashboard_files(directory: Path | None = None) -> list[Path]:
    """The NDJSON files to import: the data views first, then the dashboards in name order."""
    directory = directory or bundled_dashboards_dir()
    files = sorted(directory.glob("*.ndjson"), key=lambda p: (p.name != DATA_VIEWS_FILE, p.name))
    if not files:
        raise ConfigError(f"--kibana: no .ndjson files in {directory}")
    return files


def prepare_ndjson(paths: Sequence[Path], index_prefix: str = DEFAULT_PREFIX) -> tuple[bytes, list[tuple[str, str]]]:
    """Validate ``paths`` together and join them into one NDJSON payload; data-view titles follow the prefix."""
    objects, problems = load(paths)
    problems += check_objects(objects)
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise ConfigError(f"--kibana: the saved objects are not valid:\n  {shown}{more}")
    lines = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            data = json.loads(line)
            if "exportedCount" in data:
                continue  # an export summary line: not an object
            title = data["attributes"].get("title") if data["type"] == "index-pattern" else None
            if isinstance(title, str) and title.startswith(f"{DEFAULT_PREFIX}-") and index_prefix != DEFAULT_PREFIX:
                data["attributes"]["title"] = index_prefix + title.removeprefix(DEFAULT_PREFIX)
            lines.append(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
    return ("\n".join(lines) + "\n").encode(), [(o.type, o.id) for o in objects]


def _multipart(payload: bytes, filename: str) -> tuple[bytes, str]:
    boundary = f"logwarden-{uuid.uuid4().hex}"
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/ndjson\r\n\r\n"
    ).encode()
    return head + payload + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _endpoint(kibana_url: str, space: str | None) -> tuple[str, str | None]:
    """The import URL (credentials removed) and the basic-auth header taken from ``user:pass@``, if any."""
    parts = urlsplit(kibana_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--kibana: not an http(s) URL: {safe_url(kibana_url)!r}")
    auth = None
    netloc = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    if parts.username is not None:
        auth = _basic(parts.username, parts.password or "")
    base = urlunsplit(parts._replace(netloc=netloc, query="", fragment="")).rstrip("/")
    space_path = f"/s/{quote(space, safe='')}" if space else ""
    return f"{base}{space_path}/api/saved_objects/_import?overwrite=true", auth


def _basic(username: str, password: str) -> str:
    from urllib.parse import unquote

    token = f"{unquote(username)}:{unquote(password)}".encode()
    return "Basic " + base64.b64encode(token).decode()


def import_saved_objects(
    kibana_url: str,
    paths: Sequence[Path],
    *,
    username: str | None = None,
    password: str | None = None,
    api_key: str | None = None,
    space: str | None = None,
    index_prefix: str = DEFAULT_PREFIX,
    timeout_s: float = 30.0,
) -> ImportResult:
    """Import ``paths`` (NDJSON saved objects) into Kibana at ``kibana_url``, overwriting same-id objects."""
    payload, sent = prepare_ndjson(list(paths), index_prefix)
    url, auth = _endpoint(kibana_url, space)
    if username is not None:
        auth = _basic(username, password or "")
    if api_key is not None:
        auth = f"ApiKey {api_key}"
    body, content_type = _multipart(payload, "logwarden.ndjson")
    headers = {"kbn-xsrf": "true", "Content-Type": content_type, "Accept": "application/json"}
    if auth:
        headers["Authorization"] = auth
    shown = safe_url(kibana_url)
    try:
        with urlopen(Request(url, data=body, headers=headers, method="POST"), timeout=timeout_s) as response:
            status, raw = response.status, response.read()
    except HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (URLError, TimeoutError, OSError) as exc:
        reason = exc.reason if isinstance(exc, URLError) else exc
        raise ServiceUnavailable(f"--kibana: cannot reach Kibana at {shown}: {reason}") from None
    answer = _json(raw)
    message = str(answer.get("message") or raw[:200].decode("utf-8", "replace")).strip()
    if status in (401, 403):
        raise ConfigError(f"--kibana: Kibana at {shown} refused the credentials ({status}): {message}")
    if status == 404:
        raise KibanaImportError(f"Kibana at {shown}: no saved-objects import API (404; wrong URL or space?)")
    if status >= 500:
        raise ServiceUnavailable(f"--kibana: Kibana at {shown} is not ready or failed ({status}): {message}")
    if status != 200:
        raise KibanaImportError(f"Kibana at {shown} refused the import ({status}): {message}")
    if "success" not in answer:
        raise KibanaImportError(f"Kibana at {shown}: unexpected answer to the import: {message}")
    if not answer["success"]:
        raise KibanaImportError(f"Kibana at {shown} refused some saved objects:\n  " + "\n  ".join(_errors(answer)))
    return ImportResult(int(answer.get("successCount", 0)), sent)


def _json(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _errors(answer: dict[str, Any]) -> list[str]:
    """One line per refused object: ``dashboard logwarden-x ("Title"): missing_references index-pattern/y``."""
    lines = []
    for item in answer.get("errors") or []:
        error = item.get("error") or {}
        detail = error.get("type", "unknown")
        refs = error.get("references") or []
        if refs:
            detail += " " + ", ".join(f"{r.get('type')}/{r.get('id')}" for r in refs)
        elif error.get("message"):
            detail += f": {error['message']}"
        title = (item.get("meta") or {}).get("title") or item.get("title") or ""
        lines.append(f"{item.get('type')} {item.get('id')} ({title!r}): {detail}")
    return lines or ["(no details in Kibana's answer)"]


def setup_kibana(kibana_url: str, index_prefix: str = DEFAULT_PREFIX, *, space: str | None = None) -> list[str]:
    """``logwarden setup --kibana URL``: import the shipped dashboards; returns what was done."""
    result = import_saved_objects(kibana_url, dashboard_files(), index_prefix=index_prefix, space=space)
    return [result.summary()]
