"""The alerts index: one document per alert id, overwritten as the alert grows and when it resolves."""

from __future__ import annotations

from collections.abc import Sequence

from elasticsearch import ApiError, Elasticsearch, TransportError

from alerting.alert import Alert
from alerting.errors import AlertRejected, DeliveryError
from ingest.sinks.elasticsearch import bulk_body

RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})


def alerts_index(prefix: str) -> str:
    return f"{prefix}-alerts"


class ElasticsearchAlertIndex:
    """Bulk-indexes alert documents with ``_id`` = alert id (``refresh=wait_for``: searchable when acked)."""

    name = "elasticsearch"
    expires = False

    def __init__(self, client: Elasticsearch, index_prefix: str = "logwarden") -> None:
        self._client = client
        self.index = alerts_index(index_prefix)

    def emit(self, alerts: Sequence[Alert]) -> None:
        if not alerts:
            return
        body = bulk_body([(self.index, a.id, a.to_document()) for a in alerts])
        try:
            response = self._client.bulk(
                operations=body,  # type: ignore[arg-type]  # NDJSON bytes pass through
                refresh="wait_for",
            )
        except (TransportError, ApiError) as exc:
            raise DeliveryError(f"cannot write alerts to Elasticsearch: {exc}") from exc
        if not response.get("errors"):
            return
        items = zip(alerts, response["items"], strict=False)
        failed = [(a.id, i["index"]) for a, i in items if i["index"].get("error")]
        if any(item.get("status") in RETRYABLE for _, item in failed):
            raise DeliveryError(f"Elasticsearch could not take {len(failed)} alerts now: {failed[0][1].get('error')}")
        raise AlertRejected(
            f"Elasticsearch rejected {len(failed)} alerts: {failed[0][1].get('error')}", [i for i, _ in failed]
        )

    def close(self) -> None:
        """The client is shared with the event sink, which closes it."""
