"""Enrichment: transforms that add context to ECS documents before the privacy transforms run.

- :mod:`~ingest.enrich.related`: ``related.ip`` / ``related.user`` from the address and user fields;
- :mod:`~ingest.enrich.useragent`: ``user_agent.name``, ``.version``, ``.os.*``, ``.device.name`` (ua-parser);
- :mod:`~ingest.enrich.geoip`: ``source.geo.*`` and ``source.as.*`` from MaxMind-format databases.

:func:`ingest.enrich.config.build_enrichment_transforms` builds them from an :class:`EnrichmentConfig`.
"""

from __future__ import annotations

from ingest.errors import IngestError


class EnrichmentConfigError(IngestError):
    """The enrichment configuration cannot be used; ``field`` names the offending setting."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
