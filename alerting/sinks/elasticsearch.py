"""The alerts index: one document per alert id, overwritten as the alert grows."""

from __future__ import annotations

from collections.abc import Sequence

from elasticsearch import ApiError, Elasticsearch, TransportError

from alerting.alert import Alert
from alerting.errors import DeliveryError
from ingest.sinks.elasticsearch import bulk_body


def alerts_index(prefix: str) -> str:
    return f"{prefix}-alerts"


class ElasticsearchAlertIndex:
    name = "elasticsearch"

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
        if response.get("errors"):
            errors = [i["index"].get("error") for i in response["items"] if i["index"].get("error")]
            raise DeliveryError(f"Elasticsearch rejected {len(errors)} alerts: {errors[:1]}")

    def close(self) -> None:
        """The client is shared with the event sink, which closes it."""
