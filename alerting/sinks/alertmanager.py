"""Alertmanager v2 API client: POST /api/v2/alerts."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Sequence

import orjson

from alerting.alert import Alert
from alerting.errors import DeliveryError


class AlertmanagerSink:
    """Posts alerts to Alertmanager. Re-posting the same alert (same labels) refreshes it, never duplicates."""

    name = "alertmanager"

    def __init__(self, url: str, *, timeout_s: float = 5.0, kibana_url: str | None = None) -> None:
        self.url = url.rstrip("/")
        self._timeout_s = timeout_s
        self._kibana_url = kibana_url

    def emit(self, alerts: Sequence[Alert]) -> None:
        if not alerts:
            return
        payload = orjson.dumps([a.to_alertmanager(kibana_url=self._kibana_url) for a in alerts])
        request = urllib.request.Request(
            f"{self.url}/api/v2/alerts",
            data=payload,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            raise DeliveryError(f"Alertmanager at {self.url} answered {exc.code}: {detail}") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise DeliveryError(f"cannot reach Alertmanager at {self.url}: {exc}") from exc

    def close(self) -> None:
        """Nothing to release: one HTTP request per batch."""
