"""GeoIP enrichment against tiny databases built by the fixtures (conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ingest.enrich import EnrichmentConfigError
from ingest.enrich.config import EnrichmentConfig, build_enrichment_transforms
from ingest.enrich.geoip import GeoIPEnricher


@pytest.fixture
def enricher(city_db: Path, asn_db: Path) -> GeoIPEnricher:
    return GeoIPEnricher(city_db, asn_db)


def doc(ip: str) -> dict[str, Any]:
    return {"source": {"ip": ip, "address": ip}}


def test_city_and_asn(enricher: GeoIPEnricher) -> None:
    source = enricher(doc("81.2.69.142"))["source"]
    assert source["geo"] == {
        "country_iso_code": "GB",
        "country_name": "United Kingdom",
        "city_name": "London",
        "location": {"lat": 51.5142, "lon": -0.0931},
    }
    assert source["as"] == {"number": 20712, "organization": {"name": "Andrews & Arnold"}}


def test_ipv6_and_partial_records(enricher: GeoIPEnricher) -> None:
    source = enricher(doc("2a02:cf40::1"))["source"]
    assert source["geo"] == {"country_iso_code": "NO", "country_name": "Norway"}
    assert "as" not in source


@pytest.mark.parametrize("ip", ["10.1.2.3", "192.168.0.1", "127.0.0.1", "::1", "fe80::1", "203.0.113.5", "100.64.0.1"])
def test_private_and_reserved_addresses_are_skipped(enricher: GeoIPEnricher, ip: str) -> None:
    assert enricher(doc(ip)) == doc(ip)


def test_ipv4_mapped_ipv6_is_looked_up_as_ipv4(enricher: GeoIPEnricher) -> None:
    assert enricher(doc("::ffff:81.2.69.142"))["source"]["geo"]["city_name"] == "London"


@pytest.mark.parametrize("value", [None, 42, "not an ip", ""])
def test_missing_or_odd_addresses_change_nothing(enricher: GeoIPEnricher, value: Any) -> None:
    d = {"source": {"ip": value}}
    assert enricher(d) == {"source": {"ip": value}}
    assert enricher({"user": {"id": "u"}}) == {"user": {"id": "u"}}


def test_unknown_address(enricher: GeoIPEnricher) -> None:
    assert enricher(doc("8.8.8.8")) == doc("8.8.8.8")


def test_language_falls_back_to_english(city_db: Path) -> None:
    de = GeoIPEnricher(city_db, language="de")
    assert de(doc("81.2.69.142"))["source"]["geo"]["country_name"] == "Vereinigtes Königreich"
    assert de(doc("89.160.20.112"))["source"]["geo"]["country_name"] == "Sweden"


def test_lookups_are_cached_and_documents_do_not_share_objects(enricher: GeoIPEnricher) -> None:
    a, b = enricher(doc("81.2.69.1")), enricher(doc("81.2.69.1"))
    assert enricher.lookup.cache_info().hits >= 1
    a["source"]["geo"]["city_name"] = "changed"
    assert b["source"]["geo"]["city_name"] == "London"
    assert enricher(doc("81.2.69.1"))["source"]["geo"]["city_name"] == "London"


def test_other_prefixes(city_db: Path) -> None:
    e = GeoIPEnricher(city_db, prefixes=("source", "client"))
    out = e({"client": {"ip": "89.160.20.112"}})
    assert out["client"]["geo"]["country_iso_code"] == "SE"


def test_city_only_or_asn_only(city_db: Path, asn_db: Path) -> None:
    assert "as" not in GeoIPEnricher(city_db)(doc("81.2.69.1"))["source"]
    assert "geo" not in GeoIPEnricher(None, asn_db)(doc("81.2.69.1"))["source"]


def test_factory_geoip_off_without_databases() -> None:
    names = [type(t).__name__ for t in build_enrichment_transforms(EnrichmentConfig())]
    assert "GeoIPEnricher" not in names


def test_factory_with_databases(city_db: Path, asn_db: Path) -> None:
    transforms = build_enrichment_transforms(EnrichmentConfig(geoip_city_db=city_db, geoip_asn_db=asn_db))
    assert [type(t).__name__ for t in transforms] == ["RelatedEnricher", "UserAgentEnricher", "GeoIPEnricher"]


def test_factory_missing_or_bad_database(tmp_path: Path, city_db: Path) -> None:
    with pytest.raises(EnrichmentConfigError) as info:
        build_enrichment_transforms(EnrichmentConfig(geoip_city_db=tmp_path / "nope.mmdb"))
    assert info.value.field == "geoip_city_db"
    bad = tmp_path / "bad.mmdb"
    bad.write_bytes(b"not a database")
    with pytest.raises(EnrichmentConfigError) as info:
        build_enrichment_transforms(EnrichmentConfig(geoip_city_db=city_db, geoip_asn_db=bad))
    assert info.value.field == "geoip_asn_db"


def test_factory_refuses_uncatalogued_prefix(city_db: Path) -> None:
    with pytest.raises(EnrichmentConfigError, match=r"destination\.geo"):
        build_enrichment_transforms(EnrichmentConfig(geoip_city_db=city_db, geoip_prefixes=["destination"]))
