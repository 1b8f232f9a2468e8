"""Tiny MaxMind-format databases built with mmdb-writer (dev dependency) for the GeoIP tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from mmdb_writer import MmdbU32, MMDBWriter
from netaddr import IPSet

# documentation-style examples of public addresses (MaxMind's own test data uses 81.2.69.0/24 and 2a02:cf40::)
CITY_NETWORKS = {
    "81.2.69.0/24": {
        "country": {"iso_code": "GB", "names": {"en": "United Kingdom", "de": "Vereinigtes Königreich"}},
        "city": {"names": {"en": "London", "de": "London"}},
        "location": {"latitude": 51.5142, "longitude": -0.0931},
    },
    "89.160.20.0/24": {
        "country": {"iso_code": "SE", "names": {"en": "Sweden"}},
        "city": {"names": {"en": "Linköping"}},
        "location": {"latitude": 58.4167, "longitude": 15.6167},
    },
    "2a02:cf40::/32": {"country": {"iso_code": "NO", "names": {"en": "Norway"}}},
    # a private range in the database: the enricher must still skip it
    "10.0.0.0/8": {"country": {"iso_code": "ZZ", "names": {"en": "Nowhere"}}},
}
ASN_NETWORKS = {
    "81.2.69.0/24": {"autonomous_system_number": MmdbU32(20712), "autonomous_system_organization": "Andrews & Arnold"},
    "89.160.20.0/24": {"autonomous_system_number": MmdbU32(29518), "autonomous_system_organization": "Bredband2 AB"},
}


def write_mmdb(path: Path, database_type: str, networks: dict[str, dict[str, object]]) -> Path:
    writer = MMDBWriter(
        ip_version=6,
        database_type=database_type,
        languages=["en"],
        description={"en": "logwarden test"},
        ipv4_compatible=True,
    )
    for network, record in networks.items():
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return path


@pytest.fixture(scope="session")
def city_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mmdb(tmp_path_factory.mktemp("geoip") / "city.mmdb", "GeoLite2-City", CITY_NETWORKS)


@pytest.fixture(scope="session")
def asn_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mmdb(tmp_path_factory.mktemp("geoip") / "asn.mmdb", "GeoLite2-ASN", ASN_NETWORKS)
