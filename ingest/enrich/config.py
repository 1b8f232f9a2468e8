"""Enrichment settings and the factory of the enrichment transforms.

GeoIP is on only when at least one database path is configured (no database ships with logwarden: the
MaxMind licence does not allow it); a configured path that cannot be opened is a configuration error,
not a silent skip.

>>> [type(t).__name__ for t in build_enrichment_transforms(EnrichmentConfig())]
['RelatedEnricher', 'UserAgentEnricher']
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import maxminddb
from pydantic import BaseModel, ConfigDict, Field

from ingest.ecs import EVENT_FIELDS
from ingest.enrich import EnrichmentConfigError
from ingest.enrich.geoip import GeoIPEnricher
from ingest.enrich.related import DEFAULT_IP_FIELDS, DEFAULT_USER_FIELDS, RelatedEnricher
from ingest.enrich.useragent import UserAgentEnricher
from ingest.pipeline import Transform

_GEO_LEAVES = (
    "geo.country_iso_code",
    "geo.country_name",
    "geo.city_name",
    "geo.location",
    "as.number",
    "as.organization.name",
)


class EnrichmentConfig(BaseModel):
    """Which enrichments run. Database paths unset = GeoIP off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    related: bool = True
    user_agent: bool = True
    user_agent_cache_size: int = Field(default=16_384, ge=0)
    geoip_city_db: Path | None = Field(default=None, description="GeoLite2-City / GeoIP2-City .mmdb")
    geoip_asn_db: Path | None = Field(default=None, description="GeoLite2-ASN .mmdb")
    geoip_prefixes: list[str] = Field(default_factory=lambda: ["source"], description="<prefix>.ip is looked up")
    geoip_language: str = "en"
    geoip_cache_size: int = Field(default=65_536, ge=0)


def build_enrichment_transforms(
    config: EnrichmentConfig, catalogue: Mapping[str, str] = EVENT_FIELDS
) -> list[Transform]:
    """related -> user agent -> GeoIP; run them before :func:`ingest.privacy.config.build_privacy_transforms`."""
    transforms: list[Transform] = []
    if config.related:
        transforms.append(
            RelatedEnricher(
                ip_fields=[f for f in DEFAULT_IP_FIELDS if f in catalogue],
                user_fields=[f for f in DEFAULT_USER_FIELDS if f in catalogue],
            )
        )
    if config.user_agent:
        transforms.append(UserAgentEnricher(cache_size=config.user_agent_cache_size))
    if config.geoip_city_db is not None or config.geoip_asn_db is not None:
        missing = [
            f"{p}.{leaf}" for p in config.geoip_prefixes for leaf in _GEO_LEAVES if f"{p}.{leaf}" not in catalogue
        ]
        if missing:
            raise EnrichmentConfigError("geoip_prefixes", f"fields missing from the catalogue: {missing}")
        for setting, path in (("geoip_city_db", config.geoip_city_db), ("geoip_asn_db", config.geoip_asn_db)):
            if path is not None:
                _check_database(setting, path)
        transforms.append(
            GeoIPEnricher(
                config.geoip_city_db,
                config.geoip_asn_db,
                prefixes=tuple(config.geoip_prefixes),
                language=config.geoip_language,
                cache_size=config.geoip_cache_size,
            )
        )
    return transforms


def _check_database(setting: str, path: Path) -> None:
    if not path.is_file():
        raise EnrichmentConfigError(setting, f"no such file: {path}")
    try:
        maxminddb.open_database(str(path)).close()
    except (maxminddb.InvalidDatabaseError, OSError, ValueError) as exc:
        raise EnrichmentConfigError(setting, f"not a MaxMind database: {exc}") from None
