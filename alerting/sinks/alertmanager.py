"""Alertmanager v2 API client: POST /api/v2/alerts."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence

import orjson

from alerting.alert import Alert
from alerting.errors import AlertRejected, DeliveryError
from detectors.sigma.watermark import iso


class AlertmanagerSink:
    """Posts alerts to Alertmanager. Re-posting the same alert (same labels) refreshes it, never duplicates.

    Open alerts get ``endsAt`` = now + ``ttl_s`` (the dispatcher re-sends them before that), resolved
    ones their ``resolved_at``, so Alertmanager shows them resolved at once.
    """

    name = "alertmanager"
    expires = True

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5.0,
        kibana_url: str | None = None,
        ttl_s: float = 300.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.url = url.rstrip("/")
        self._timeout_s = timeout_s
        self._kibana_url = kibana_url
        self._ttl_s = ttl_s
        self._wall = wall

    def emit(self, alerts: Sequence[Alert]) -> None:
        if not alerts:
            return
        expiry = iso(self._wall() + self._ttl_s)
        payload = orjson.dumps(
            [a.to_alertmanager(ends_at=a.resolved_at or expiry, kibana_url=self._kibana_url) for a in alerts]
        )
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
            message = f"Alertmanager at {self.url} answered {exc.code}: {detail}"
            if exc.code == 400:  # a payload it will never accept (which alert: unknown)
                raise AlertRejected(message) from exc
            raise DeliveryError(message) from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise DeliveryError(f"cannot reach Alertmanager at {self.url}: {exc}") from exc

    def close(self) -> None:
        """Nothing to release: one HTTP request per batch."""
