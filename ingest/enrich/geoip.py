"""``<prefix>.geo.*`` and ``<prefix>.as.*`` (default prefix ``source``) from MaxMind-format databases.

Reads a City database (GeoLite2-City / GeoIP2-City layout: ``country.iso_code``, ``country.names``,
``city.names``, ``location.latitude/longitude``) and an ASN database (``autonomous_system_number``,
``autonomous_system_organization``), each optional; with neither, :func:`ingest.enrich.config` builds no
GeoIP transform at all. Private, loopback, link-local, reserved and documentation addresses are skipped
(``not ipaddress.ip_address(ip).is_global``). Lookups are cached per address (LRU).

Fields written (when the database knows them): ``geo.country_iso_code``, ``geo.country_name``,
``geo.city_name``, ``geo.location`` (``{"lat": .., "lon": ..}``, a ``geo_point``), ``as.number``,
``as.organization.name``.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import maxminddb

# country iso, country name, city name, lat, lon, as number, as organization
Geo = tuple[str | None, str | None, str | None, float | None, float | None, int | None, str | None]
_NOTHING: Final[Geo] = (None, None, None, None, None, None, None)


def _name(record: Any, key: str, language: str) -> str | None:
    node = record.get(key) if isinstance(record, dict) else None
    names = node.get("names") if isinstance(node, dict) else None
    value = names.get(language) or names.get("en") if isinstance(names, dict) else None
    return value if isinstance(value, str) else None


class GeoIPEnricher:
    """Look up ``<prefix>.ip`` for each prefix in the City and ASN databases."""

    def __init__(
        self,
        city_db: Path | None = None,
        asn_db: Path | None = None,
        *,
        prefixes: tuple[str, ...] = ("source",),
        language: str = "en",
        cache_size: int = 65_536,
    ) -> None:
        self._city = maxminddb.open_database(str(city_db)) if city_db is not None else None
        self._asn = maxminddb.open_database(str(asn_db)) if asn_db is not None else None
        self.prefixes = prefixes
        self.language = language
        self.lookup = lru_cache(maxsize=cache_size)(self._lookup)

    def __repr__(self) -> str:
        return f"GeoIPEnricher(city={self._city is not None}, asn={self._asn is not None}, prefixes={self.prefixes})"

    def close(self) -> None:
        for reader in (self._city, self._asn):
            if reader is not None:
                reader.close()

    def _lookup(self, ip: str) -> Geo:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return _NOTHING
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if not address.is_global:
            return _NOTHING
        country_iso: str | None = None
        country = city = None
        lat = lon = None
        asn = None
        as_org = None
        if self._city is not None:
            record = self._city.get(address)
            if isinstance(record, dict):
                country_node = record.get("country")
                iso = country_node.get("iso_code") if isinstance(country_node, dict) else None
                country_iso = iso if isinstance(iso, str) else None
                country = _name(record, "country", self.language)
                city = _name(record, "city", self.language)
                location = record.get("location")
                if isinstance(location, dict):
                    la, lo = location.get("latitude"), location.get("longitude")
                    if isinstance(la, int | float) and isinstance(lo, int | float):
                        lat, lon = float(la), float(lo)
        if self._asn is not None:
            record = self._asn.get(address)
            if isinstance(record, dict):
                number = record.get("autonomous_system_number")
                org = record.get("autonomous_system_organization")
                asn = number if isinstance(number, int) else None
                as_org = org if isinstance(org, str) else None
        return country_iso, country, city, lat, lon, asn, as_org

    def __call__(self, doc: dict[str, Any]) -> dict[str, Any]:
        for prefix in self.prefixes:
            node = doc.get(prefix)
            if type(node) is not dict:
                continue
            ip = node.get("ip")
            if type(ip) is not str:
                continue
            geo = self.lookup(ip)
            if geo is _NOTHING:
                continue
            country_iso, country, city, lat, lon, asn, as_org = geo
            out: dict[str, Any] = {}
            if country_iso is not None:
                out["country_iso_code"] = country_iso
            if country is not None:
                out["country_name"] = country
            if city is not None:
                out["city_name"] = city
            if lat is not None and lon is not None:
                out["location"] = {"lat": lat, "lon": lon}
            if out:
                node["geo"] = out
            if asn is not None or as_org is not None:
                as_node: dict[str, Any] = {}
                if asn is not None:
                    as_node["number"] = asn
                if as_org is not None:
                    as_node["organization"] = {"name": as_org}
                node["as"] = as_node
        return doc
