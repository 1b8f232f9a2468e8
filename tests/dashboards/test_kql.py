"""The KQL subset used by the dashboards and its translation to Elasticsearch DSL (helper of the dashboard tests)."""

from __future__ import annotations

import doctest

import pytest

from tests.dashboards import kql


def test_doctests() -> None:
    assert doctest.testmod(kql).failed == 0


@pytest.mark.parametrize(
    ("query", "dsl"),
    [
        ("", {"match_all": {}}),
        ('logwarden.source : "api_access"', {"match_phrase": {"logwarden.source": "api_access"}}),
        ("logwarden.api.mfa : true", {"match": {"logwarden.api.mfa": "true"}}),
        ("source.geo.country_iso_code : *", {"exists": {"field": "source.geo.country_iso_code"}}),
        ("rule.id : ml.*", {"wildcard": {"rule.id": {"value": "ml.*"}}}),
        ("http.response.status_code >= 400", {"range": {"http.response.status_code": {"gte": "400"}}}),
        ("a : 1 and (b : 2 or not c : 3)", {"bool": {"filter": [
            {"match": {"a": "1"}},
            {"bool": {"should": [{"match": {"b": "2"}}, {"bool": {"must_not": [{"match": {"c": "3"}}]}}],
                      "minimum_should_match": 1}}]}}),
        ("s : (401 OR 403)", {"bool": {"should": [{"match": {"s": "401"}}, {"match": {"s": "403"}}],
                                       "minimum_should_match": 1}}),
    ],
)  # fmt: skip
def test_translation(query: str, dsl: dict[str, object]) -> None:
    assert kql.to_dsl(query) == dsl


@pytest.mark.parametrize("query", ["a :", "a b", "(a : 1", "a : (1 and 2)", ": 1", "a : 1 or", 'a : "x" )', "a ~ 1"])
def test_outside_the_subset_is_an_error(query: str) -> None:
    with pytest.raises(kql.KqlError):
        kql.to_dsl(query)
