"""Differential test of the Sigma engine (issue 4, "Proof"): the engine against Elasticsearch and a reference.

Single-event rules: the shipped rules (``rules/``, whatever exists at test time; their correlations are the second
part) and ours (``sigma_differential/rules``: every modifier, value form and condition construct) are converted
with pySigma's Elasticsearch backend (Lucene ``query_string``) and run on a fresh index of the real Elasticsearch
holding the corpus: the golden parser outputs, generated api_access traffic with every attack scenario, hand-made
edge cases (``sigma_differential/events.yml``) and the events of the shipped rules' own tests. The ids
Elasticsearch returns must equal the ids the engine matches (``RuleEngine.candidates`` and the compiled predicate:
log source, rule index, predicate; exceptions and suppression are alert-level and not part of it). Elasticsearch
sees only the events whose ``logwarden.source`` satisfies the rule's logsource, as an index per log source would.

The index mapping is generated from ``ingest.ecs.EVENT_FIELDS`` (``index_template``) with these changes, so that
Elasticsearch compares values the way Sigma does (:data:`MAPPING_CHANGES`):

1. string fields (keyword, and the text fields ``message``/``error.message``) are keywords with the built-in
   ``lowercase`` normalizer (Sigma strings are case-insensitive; ``analysis-common`` is absent in the test node
   but this normalizer is part of the server) plus a raw ``<field>.cased`` subfield;
2. the backend gets a processing pipeline that sends ``re`` (case-sensitive in Sigma) to ``<field>.cased``;
   ``cased`` cannot be converted (asserted) and is also checked through a test-side translation to a plain value
   on ``<field>.cased``;
3. ``event.original`` is indexed (``_source`` only in production, but the engine keyword-searches it);
4. ``index.query.default_field`` is the engine's keyword fields (``compile.KEYWORD_FIELDS``), where the backend's
   field-less (keyword) queries look. It also makes ``query_string`` strict: with the default (``*``)
   Elasticsearch parses leniently and a query it cannot run (a wildcard on a number, a regular expression Lucene
   does not know) silently matches nothing, which is what happens on the production mapping.

Everything that still differs is listed below with its reason and asserted exactly (:data:`KNOWN_DIFFERENCES`,
:data:`UNSUPPORTED_CONSTRUCTS`): a listed difference that disappears fails too, so the lists stay true. Engine
issues found this way are expected failures until fixed.

Correlations: the shipped correlations and ours (``sigma_differential/correlations``) run in the engine over a
time-ordered stream (generated traffic, the golden documents of its day and every event of the shipped rules'
tests) and are compared, detection by detection (id = rule, group and window; first and last event; count; event
ids), with the brute-force reference in ``sigma_differential/reference.py``.

The backend, ``pysigma-backend-elasticsearch`` 2.1.1, declares ``pysigma<2``, so it is not in the dev extras (pip
would go back to pySigma 1.5.1); it works with pySigma 2.0.1 for everything here. Install it with
``pip install --no-deps 'pysigma-backend-elasticsearch==2.1.1'``; without it this module fails to import.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from elasticsearch import ApiError, Elasticsearch, helpers
from sigma.exceptions import SigmaError
from sigma.filters import SigmaFilter
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations.base import DetectionItemTransformation
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import (
    SigmaCasedString,
    SigmaFieldReference,
    SigmaRegularExpression,
    SigmaString,
    SigmaTimestampPart,
)

from detectors.sigma.build import timespan_seconds
from detectors.sigma.compile import KEYWORD_FIELDS
from detectors.sigma.corr_base import Limits
from detectors.sigma.engine import RuleEngine
from detectors.sigma.fields import FieldView, nest
from detectors.sigma.loader import PLACEHOLDER_FILE, load_rules, rule_files
from detectors.sigma.rules import DetectionRule, RuleSet
from detectors.sigma.suppression import Suppressor
from detectors.sigma.taxonomy import EVENT_LOGSOURCES, build_pipeline, event_logsources, logsource_matches
from detectors.sigma.watermark import event_time, iso
from ingest.ecs import EVENT_FIELDS, index_template
from ingest.pipeline import Normalizer
from ingest.records import NormalizedEvent, Record
from ingest.sources.synthetic import SCENARIOS, generate_api_access, to_json_line

from .conftest import Services
from .sigma_differential.reference import Reference

try:
    from sigma.backends.elasticsearch.elasticsearch_lucene import LuceneBackend
except ImportError:  # pragma: no cover
    pytest.fail(
        "pysigma-backend-elasticsearch is missing: pip install --no-deps 'pysigma-backend-elasticsearch==2.1.1'",
        pytrace=False,
    )

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent / "sigma_differential"
REPO = Path(__file__).resolve().parents[2]
SHIPPED = [REPO / "rules"]
OWN = [HERE / "rules", HERE / "correlations"]
GOLDEN = REPO / "tests" / "ingest" / "parsers" / "golden"
MAX_HITS = 10_000
TRAFFIC_START = event_time("2026-11-02T08:00:00Z")  # generate_api_access's default start
WEEK = 7 * 86400.0

STRING_FIELDS = frozenset(name for name, kind in EVENT_FIELDS.items() if kind in ("keyword", "text"))
MAPPING_CHANGES = {
    "string fields": "keyword + built-in lowercase normalizer (Sigma is case-insensitive), raw <field>.cased subfield",
    "message, error.message": "keyword instead of text: Sigma compares whole values, not analyzed tokens",
    "event.original": "indexed (production keeps it in _source only; the engine keyword-searches it)",
    "index.query.default_field": "the engine's keyword fields: " + ", ".join(KEYWORD_FIELDS),
    "re": "queried on <field>.cased through a processing pipeline (Sigma regular expressions are case-sensitive)",
}
STRING_MAPPING = {
    "type": "keyword",
    "normalizer": "lowercase",
    "ignore_above": 1024,
    "fields": {"cased": {"type": "keyword", "ignore_above": 1024}},
}


# ---------------------------------------------------------------- what is known to differ, and why


@dataclass(frozen=True)
class Known:
    """A justified difference: ``backend`` (the conversion changes the meaning), ``lucene`` (Lucene's query
    semantics), ``mapping`` (the index mapping), ``engine`` (an engine bug or questionable choice, reported: the
    test is an expected failure until it is fixed). The sets are asserted exactly; ``es_error`` is a fragment of
    the Elasticsearch error when the query is refused."""

    kind: str
    why: str
    engine_only: frozenset[str] = frozenset()
    es_only: frozenset[str] = frozenset()
    es_error: str | None = None
    es_nothing: bool = False  # Elasticsearch finds nothing at all (whatever the corpus), the engine something


LUCENE_REGEX = "Lucene regular expressions match the whole term and have no ^/$ anchors"
NO_FLAGS = (
    "the backend writes re flags as a (?i)/(?m)/(?s) prefix, which Lucene does not know: the query matches nothing"
)
REFUSED = "Elasticsearch refuses the regular expression"
KNOWN_DIFFERENCES: dict[str, Known] = {
    # our rules
    "zz_re_anchored": Known(
        "lucene", LUCENE_REGEX + ": '^sqlmap/' looks for a literal '^'", frozenset({"hm-ua-sqlmap"})
    ),
    "zz_re_unanchored": Known(
        "lucene",
        LUCENE_REGEX + ": Sigma's re is a search, so 'zz-unanchored' also matches inside a longer value",
        frozenset({"hm-ua-unanchored-inside"}),
    ),
    "zz_re_i": Known("backend", NO_FLAGS, frozenset({"hm-ua-case"})),
    "zz_re_m": Known("backend", NO_FLAGS, frozenset({"hm-msg-multiline"})),
    "zz_re_s": Known("backend", NO_FLAGS, frozenset({"hm-msg-dotall"})),
    "zz_re_lucene_at": Known(
        "backend",
        "the backend escapes only '/' in regular expressions; '@' is Lucene's any-string operator, so "
        "'.*@zz\\.example' also matches 'eve-zz.example'",
        es_only=frozenset({"hm-email-dash"}),
    ),
    "zz_re_lucene_angle": Known(
        "backend", REFUSED + ": '<...>' is Lucene's numeric-range operator (not escaped)", es_error="not found"
    ),
    "zz_kw_number": Known(
        "backend",
        "a numeric keyword becomes a bare term (the exact value) while strings get *...* around them; the engine "
        "searches numbers as text inside the keyword fields, like strings",
        frozenset({"hm-kw-401-inside"}),
    ),
    "zz_long_value": Known(
        "mapping",
        "values longer than ignore_above (1024) are not indexed (the production template has the same limit)",
        frozenset({"hm-url-long"}),
    ),
    "zz_unicode_case": Known(
        "lucene",
        "the lowercase normalizer lowers code point by code point (capital sigma -> sigma); Python's str.lower, "
        "which the engine uses, writes a final sigma at the end of a word, and Lucene does not fold it to sigma",
        frozenset({"hm-name-greek"}),
    ),
    "zz_re_dot_newline": Known(
        "lucene",
        "'.' matches a newline in Lucene, not in Sigma (Python) without the s flag",
        es_only=frozenset({"hm-msg-multiline"}),
    ),
    "zz_num_on_keyword": Known(
        "lucene",
        "a comparison on a keyword field is a range of terms in Elasticsearch (text order: '2.0' >= '10'); the engine "
        "compares numbers (2.0 < 10)",
        es_only=frozenset({"hm-version-2"}),
    ),
    "zz_cloudtrail_cidr": Known(
        "mapping",
        "the taxonomy maps CloudTrail's sourceIPAddress to source.address, a keyword (it may hold a service name): "
        "cidr on a keyword is a plain term '203.0.113.0/24' in Elasticsearch, while the engine tests the address",
        es_nothing=True,
    ),
    "zz_num_wildcard": Known(
        "mapping", "wildcards on a long field are refused", es_error="Can only use prefix queries"
    ),
    "zz_re_ip_field": Known(
        "mapping", "regular expressions on an ip field are refused", es_error="Can only use regexp"
    ),
    "zz_wildcard_ip_field": Known("mapping", "wildcards on an ip field are refused", es_error="Can only use prefix"),
    # shipped rules (rules/): case-insensitive regular expressions, \\b and <...> do not survive the conversion
    "web_command_injection": Known("backend", NO_FLAGS, es_nothing=True),
    "web_jndi_injection": Known("backend", NO_FLAGS, es_nothing=True),
    "web_path_traversal": Known("backend", REFUSED + ": \\b is not Lucene syntax", es_error="invalid character class"),
    "web_sql_injection": Known("backend", REFUSED + ": \\b is not Lucene syntax", es_error="invalid character class"),
    "web_xss_attempt": Known("backend", REFUSED + ": '<...>' is Lucene's numeric-range operator", es_error="not found"),
}
#: Constructs pySigma's Lucene backend cannot express: a rule using one must fail to convert with this error.
UNSUPPORTED_CONSTRUCTS: dict[str, str] = {
    "cased": "Case-sensitive string matching is not supported",  # also checked through the test's translation
    "fieldref": "can't handle field references",
    "timestamp part": "timestamp part value expressions are not supported",
}
#: What the engine must match for our rules that cannot be converted (hand-made expectations).
ENGINE_EXPECTED: dict[str, frozenset[str]] = {
    "zz_cased": frozenset({"hm-name-mixed", "hm-name-list"}),
    "zz_cased_startswith": frozenset({"hm-name-upper", "hm-name-mixed", "hm-name-list", "hm-name-umlaut"}),
    "zz_fieldref": frozenset({"hm-name-lower", "hm-name-upper"}),
    "zz_hour": frozenset({"hm-ts-hour3"}),
}
#: Correlations whose detections differ from the reference because of an engine issue (reported; the test is an
#: expected failure while they differ, and fails when they stop differing so that the entry is removed).
KNOWN_CORRELATION_DIFFERENCES: dict[str, str] = {}  # first_seen memory bug found here: fixed in corr_custom


# ---------------------------------------------------------------- corpus


@dataclass
class Corpus:
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)  # _id -> ECS document
    origin: dict[str, str] = field(default_factory=dict)  # _id -> golden | generated | hand-made | rule-test

    def add(self, doc_id: str, doc: dict[str, Any], origin: str) -> None:
        assert doc_id not in self.docs, doc_id
        self.docs[doc_id] = doc
        self.origin[doc_id] = origin

    @property
    def sources(self) -> set[str]:
        return {str(doc.get("logwarden", {}).get("source")) for doc in self.docs.values()}


def golden_documents() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(GOLDEN.rglob("*.ecs.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        items = data if isinstance(data, list) else [data]
        stem = f"golden-{path.parent.name}-{path.name.removesuffix('.ecs.json')}"
        for i, doc in enumerate(items):
            yield (stem if len(items) == 1 else f"{stem}-{i}"), doc


def generated_documents() -> Iterator[tuple[str, dict[str, Any]]]:
    """40 minutes of api_access traffic with every attack scenario, parsed (no enrichment or privacy steps)."""
    normalizer = Normalizer()
    traffic = generate_api_access(seed=4, duration=timedelta(minutes=40), rate_per_s=2.5, scenarios=tuple(SCENARIOS))
    for event in traffic:
        result = normalizer.normalize(Record("api_access", to_json_line(event)))
        assert isinstance(result, NormalizedEvent), result
        yield result.doc_id, result.doc


def hand_made_documents() -> Iterator[tuple[str, dict[str, Any]]]:
    data = yaml.safe_load((HERE / "events.yml").read_text(encoding="utf-8"))
    for item in data["events"]:
        flat = {**data["defaults"], **item["doc"]}
        unknown = sorted(set(flat) - set(EVENT_FIELDS))
        assert not unknown, f"{item['id']}: fields outside ingest/ecs.py: {unknown}"
        yield item["id"], nest(flat)


def rule_test_documents() -> Iterator[tuple[str, dict[str, Any], int]]:
    """The events of the shipped rules' own tests (``<rule>.tests.yml``) with their repeat index, timed as
    ``logwarden rules test`` times them (``every``, ``after``, ``{i}``; ``logwarden.source`` defaulted the same way)
    and moved by whole weeks next to the generated traffic (hours and weekdays stay)."""
    ruleset = load_rules(SHIPPED)
    for rule_file in rule_files(SHIPPED):
        path = rule_file.with_name(rule_file.name.removesuffix(".yml") + ".tests.yml")
        if not path.exists():
            continue
        first = next((r for r in ruleset.rules if r.meta.path == str(rule_file)), None)
        sources = [s for s, ls in EVENT_LOGSOURCES.items() if first and logsource_matches(first.logsource, ls)]
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        defaults = {**({"logwarden.source": sources[0]} if sources else {}), **_flat(data.get("defaults") or {})}
        start = event_time(_text(data.get("start") or "2026-01-01T00:00:00Z"))
        shift = round((TRAFFIC_START - start) / WEEK) * WEEK
        stem = f"ruletest-{rule_file.parent.name}-{rule_file.stem}"
        for c, case in enumerate(data["tests"]):
            clock = start + shift
            for e, item in enumerate(case.get("events") or []):
                if e:
                    clock += timespan_seconds(item.get("after", "1s"), str(path), 0, "after")
                repeat = int(item.get("repeat", 1))
                for i in range(repeat):
                    doc = nest({**defaults, **_flat(_fill(item["event"], i))})
                    if "@timestamp" in doc:
                        clock = event_time(_text(doc["@timestamp"])) + shift
                    doc["@timestamp"] = iso(clock)
                    yield f"{stem}-{c}-{e}-{i}", doc, i
                    if i + 1 < repeat:
                        clock += timespan_seconds(item.get("every", "1s"), str(path), 0, "every")


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _fill(value: Any, i: int) -> Any:
    if isinstance(value, str):
        return value.replace("{i}", str(i))
    if isinstance(value, dict):
        return {k: _fill(v, i) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, i) for v in value]
    return value


def _flat(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def build_corpus() -> Corpus:
    corpus = Corpus()
    for origin, docs in (
        ("golden", golden_documents()),
        ("generated", generated_documents()),
        ("hand-made", hand_made_documents()),
        ("rule-test", ((i, d) for i, d, repeat in rule_test_documents() if repeat < 2)),
    ):
        for doc_id, doc in docs:
            corpus.add(doc_id, doc, origin)
    return corpus


def index_body() -> dict[str, Any]:
    """The test index: the production template's mapping with :data:`MAPPING_CHANGES`."""
    template = index_template("sigma-differential-*", None, EVENT_FIELDS)["template"]
    mappings = copy.deepcopy(template["mappings"])
    for name in STRING_FIELDS:
        node = mappings
        for part in name.split("."):
            node = node["properties"][part]
        node.clear()
        node.update(copy.deepcopy(STRING_MAPPING))
    settings = {**template["settings"], "refresh_interval": "-1", "index.query.default_field": list(KEYWORD_FIELDS)}
    return {"settings": settings, "mappings": mappings}


# ---------------------------------------------------------------- conversion with pySigma's backend


@dataclass
class RawSubfield(DetectionItemTransformation):
    """Regular expressions (and, with ``cased``, case-sensitive strings as plain ones) on ``<field>.cased``."""

    cased: bool = False

    def apply_detection_item(self, detection_item: SigmaDetectionItem) -> SigmaDetectionItem | None:
        name = detection_item.field
        values = detection_item.value
        regex = any(isinstance(v, SigmaRegularExpression) for v in values)
        cased = self.cased and any(isinstance(v, SigmaCasedString) for v in values)
        if name not in STRING_FIELDS or not (regex or cased):
            return None
        detection_item.field = f"{name}.cased"
        detection_item.value = [_uncased(v) if isinstance(v, SigmaCasedString) else v for v in values]
        return detection_item


def _uncased(value: SigmaCasedString) -> SigmaString:
    plain = SigmaString()
    plain.s = value.s
    plain.original = value.original
    return plain


@dataclass
class RuleSource:
    """The YAML documents of the rules under some paths, to parse afresh for each conversion."""

    rules: dict[str, dict[str, Any]]  # rule id -> document
    filters: list[dict[str, Any]]
    placeholders: dict[str, Any]

    @classmethod
    def read(cls, paths: list[Path]) -> RuleSource:
        rules: dict[str, dict[str, Any]] = {}
        filters: list[dict[str, Any]] = []
        for path in rule_files(paths):
            for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
                if not isinstance(doc, dict) or "correlation" in doc:
                    continue
                if "filter" in doc and "detection" not in doc:
                    filters.append(doc)
                else:
                    rules[str(doc.get("id"))] = doc
        placeholders: dict[str, Any] = {}
        for root in paths:
            for path in sorted(root.rglob(PLACEHOLDER_FILE)):
                placeholders.update(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
        return cls(rules, filters, placeholders)

    def constructs(self, rule_id: str) -> set[str]:
        """Which of :data:`UNSUPPORTED_CONSTRUCTS` the rule uses."""
        found: set[str] = set()

        def walk(item: SigmaDetection | SigmaDetectionItem) -> None:
            if isinstance(item, SigmaDetection):
                for child in item.detection_items:
                    walk(child)
                return
            for value in item.value:
                if isinstance(value, SigmaCasedString):
                    found.add("cased")
                elif isinstance(value, SigmaFieldReference):
                    found.add("fieldref")
                elif isinstance(value, SigmaTimestampPart):
                    found.add("timestamp part")

        for detection in SigmaRule.from_dict(self.rules[rule_id]).detection.detections.values():
            walk(detection)
        return found

    def convert(self, rule_id: str, *, cased: bool = False) -> list[str]:
        rule = SigmaRule.from_dict(self.rules[rule_id])
        for doc in self.filters:
            SigmaFilter.from_dict(doc).apply_on_rule(rule)
        raw = ProcessingItem(RawSubfield(cased=cased), identifier="differential_raw_subfield")
        pipeline = build_pipeline(self.placeholders) + ProcessingPipeline(items=[raw], name="differential")
        return [str(q) for q in LuceneBackend(processing_pipeline=pipeline).convert_rule(rule)]


# ---------------------------------------------------------------- running both sides


@dataclass
class Outcome:
    name: str
    origin: str  # shipped | own
    rule: DetectionRule
    engine: set[str]
    constructs: set[str] = field(default_factory=set)  # unsupported by the backend
    queries: list[str] = field(default_factory=list)
    es: set[str] | None = None
    conversion_error: str | None = None
    es_error: str | None = None
    translated: list[str] = field(default_factory=list)
    translated_es: set[str] | None = None


def engine_matches(ruleset: RuleSet, corpus: Corpus) -> dict[str, set[str]]:
    """Rule id -> matching event ids, through the engine's index (candidates) and predicates."""
    engine = RuleEngine(ruleset)
    found: dict[str, set[str]] = {r.meta.id: set() for r in ruleset.rules}
    for doc_id, doc in corpus.docs.items():
        view = FieldView.of(doc)
        for rule in engine.candidates(view):
            if rule.predicate(view):
                found[rule.meta.id].add(doc_id)
    return found


def brute_force_matches(ruleset: RuleSet, corpus: Corpus) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {r.meta.id: set() for r in ruleset.rules}
    for doc_id, doc in corpus.docs.items():
        logsources = event_logsources(doc)
        for rule in ruleset.rules:
            if logsource_matches(rule.logsource, logsources) and rule.matches(doc):
                found[rule.meta.id].add(doc_id)
    return found


def es_search(es: Elasticsearch, index: str, queries: list[str], sources: list[str]) -> set[str]:
    ids: set[str] = set()
    for query in queries:
        body = {
            "bool": {"must": [{"query_string": {"query": query}}], "filter": [{"terms": {"logwarden.source": sources}}]}
        }
        response = es.search(index=index, query=body, size=MAX_HITS, source=False, track_total_hits=True)
        assert response["hits"]["total"]["value"] < MAX_HITS, "corpus too large for one page of hits"
        ids.update(hit["_id"] for hit in response["hits"]["hits"])
    return ids


def es_error_text(exc: ApiError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    causes = body.get("error", {}).get("root_cause", []) if isinstance(body.get("error"), dict) else []
    return "; ".join(str(c.get("reason")) for c in causes) or str(exc)


def compare(es: Elasticsearch, index: str, corpus: Corpus, origin: str, paths: list[Path]) -> dict[str, Outcome]:
    ruleset = load_rules(paths)
    source = RuleSource.read(paths)
    matches = engine_matches(ruleset, corpus)
    outcomes: dict[str, Outcome] = {}
    for rule in ruleset.rules:
        out = outcomes[rule.meta.name] = Outcome(rule.meta.name, origin, rule, matches[rule.meta.id])
        out.constructs = source.constructs(rule.meta.id)
        sources = sorted(
            s
            for s in corpus.sources
            if logsource_matches(rule.logsource, event_logsources({"logwarden": {"source": s}}))
        )
        try:
            out.queries = source.convert(rule.meta.id)
        except (NotImplementedError, SigmaError) as exc:
            out.conversion_error = f"{type(exc).__name__}: {exc}"
        else:
            try:
                out.es = es_search(es, index, out.queries, sources)
            except ApiError as exc:
                out.es_error = es_error_text(exc)
        if out.constructs == {"cased"}:
            out.translated = source.convert(rule.meta.id, cased=True)
            out.translated_es = es_search(es, index, out.translated, sources)
    return outcomes


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return build_corpus()


@pytest.fixture(scope="module")
def es_index(services: Services, corpus: Corpus) -> Iterator[tuple[Elasticsearch, str]]:
    es = Elasticsearch(services.elasticsearch, request_timeout=60)
    index = f"sigma-differential-{uuid.uuid4().hex[:10]}"
    es.indices.create(index=index, **index_body())
    try:
        actions = ({"_index": index, "_id": i, "_source": d} for i, d in corpus.docs.items())
        ok, errors = helpers.bulk(es, actions, raise_on_error=False, chunk_size=2000)
        assert errors == [], errors
        es.indices.refresh(index=index)
        assert es.count(index=index)["count"] == len(corpus.docs) == ok
        yield es, index
    finally:
        es.indices.delete(index=index, ignore_unavailable=True)
        es.close()


@pytest.fixture(scope="module")
def outcomes(es_index: tuple[Elasticsearch, str], corpus: Corpus) -> dict[str, Outcome]:
    es, index = es_index
    return {**compare(es, index, corpus, "shipped", SHIPPED), **compare(es, index, corpus, "own", OWN)}


def _rule_names(paths: list[Path]) -> list[str]:
    return [r.meta.name for r in load_rules(paths).rules]


# ---------------------------------------------------------------- single-event rules


def test_rule_files_load_without_errors() -> None:
    for paths in (SHIPPED, OWN):
        ruleset = load_rules(paths)
        assert ruleset.errors == [], [str(e) for e in ruleset.errors]


def test_the_rule_index_never_changes_what_matches(corpus: Corpus) -> None:
    for paths in (SHIPPED, OWN):
        ruleset = load_rules(paths)
        assert engine_matches(ruleset, corpus) == brute_force_matches(ruleset, corpus)


@pytest.mark.parametrize("name", _rule_names(SHIPPED) + _rule_names(OWN))
def test_rule_matches_the_same_events_as_elasticsearch(name: str, outcomes: dict[str, Outcome], corpus: Corpus) -> None:
    out = outcomes[name]
    if out.constructs:
        assert out.conversion_error is not None, f"{name}: {out.constructs} converted: {out.queries}"
        assert any(UNSUPPORTED_CONSTRUCTS[c] in out.conversion_error for c in out.constructs), out.conversion_error
        if out.origin == "own":
            assert out.engine == ENGINE_EXPECTED[name]
        if out.translated_es is not None:
            assert out.translated_es == out.engine, _explain(out, out.translated_es, corpus)
        return
    assert out.conversion_error is None, out.conversion_error
    known = KNOWN_DIFFERENCES.get(name)
    if known is not None and known.es_error is not None:
        assert out.es_error is not None and known.es_error in out.es_error, out.es_error
        return
    assert out.es_error is None, f"{out.queries}: {out.es_error}"
    assert out.es is not None
    if known is None:
        assert out.es == out.engine, _explain(out, out.es, corpus)
    elif known.es_nothing:
        assert out.es == set() and out.engine, _explain(out, out.es, corpus)
    else:
        difference = (frozenset(out.engine - out.es), frozenset(out.es - out.engine))
        assert difference == (known.engine_only, known.es_only), _explain(out, out.es, corpus)
    if known is not None and known.kind == "engine":
        pytest.xfail(f"engine: {known.why}")


def _explain(out: Outcome, es: set[str], corpus: Corpus) -> str:
    lines = [f"{out.name} ({out.origin}) queries: {out.queries or out.translated}"]
    for label, ids in (("engine only", out.engine - es), ("Elasticsearch only", es - out.engine)):
        for doc_id in sorted(ids)[:8]:
            view = FieldView.of(corpus.docs[doc_id])
            shown = {f: view[f] for f in sorted(out.rule.fields | set(KEYWORD_FIELDS)) if view[f]}
            lines.append(f"  {label}: {doc_id} ({corpus.origin[doc_id]}) {shown}")
        if len(ids) > 8:
            lines.append(f"  ... {len(ids) - 8} more {label}")
    return "\n".join(lines)


def test_the_lists_of_differences_name_loaded_rules() -> None:
    loaded = set(_rule_names(OWN)) | set(_rule_names(SHIPPED))
    assert set(KNOWN_DIFFERENCES) | set(ENGINE_EXPECTED) <= loaded
    correlations = {c.meta.name for c in load_rules([*SHIPPED, HERE / "correlations"]).correlations}
    assert set(KNOWN_CORRELATION_DIFFERENCES) <= correlations


def test_our_rules_exercise_every_modifier() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in rule_files([HERE / "rules"]))
    modifiers = ["contains", "startswith", "endswith", "all", "re", "i", "m", "s", "cidr", "base64", "base64offset"]
    modifiers += ["wide", "windash", "exists", "cased", "gt", "gte", "lt", "lte", "neq", "fieldref", "expand", "hour"]
    used = {m for m in modifiers if re.search(rf"\|{m}[|:'\"]", text)}
    assert used == set(modifiers)
    for construct in ("1 of sel_*", "all of sel_*", "1 of them", "all of them", "not (", "keywords", "filter:"):
        assert construct in text, construct


def test_summary(outcomes: dict[str, Outcome], corpus: Corpus) -> None:
    """Prints what was compared (``pytest -s``); fails when nothing was."""
    origins = {o: sum(1 for v in corpus.origin.values() if v == o) for o in set(corpus.origin.values())}
    compared = [o for o in outcomes.values() if o.es is not None or o.translated_es is not None]
    print(f"\ncorpus: {len(corpus.docs)} events {origins}; rules: {len(outcomes)}, compared on Elasticsearch:")
    print(f"  {len(compared)}; matches: engine {sum(len(o.engine) for o in outcomes.values())}")
    for name, known in sorted(KNOWN_DIFFERENCES.items()):
        print(f"  known difference [{known.kind}] {name}: {known.why}")
    for out in sorted((o for o in outcomes.values() if o.constructs), key=lambda o: o.name):
        checked = "Elasticsearch (translated)" if out.translated_es is not None else "hand-made expectation"
        checked = checked if out.origin == "own" or out.translated_es is not None else "its own test events"
        print(f"  not convertible ({', '.join(sorted(out.constructs))}) {out.name}: engine checked by {checked}")
    assert len(compared) >= 50 and origins["generated"] > 1000


# ---------------------------------------------------------------- correlations


def correlation_stream(corpus: Corpus) -> list[tuple[str, dict[str, Any]]]:
    """Generated traffic, the golden documents of its day and every event of the shipped rules' tests (which make
    their correlations fire), in time order."""
    day = iso(TRAFFIC_START)[:10]
    events = [
        (i, d)
        for i, d in corpus.docs.items()
        if corpus.origin[i] == "generated" or (corpus.origin[i] == "golden" and str(d["@timestamp"])[:10] == day)
    ]
    events += [(i, d) for i, d, _ in rule_test_documents()]
    return sorted(events, key=lambda e: event_time(str(e[1]["@timestamp"])))


def test_correlations_match_the_reference(corpus: Corpus) -> None:
    ruleset = load_rules([*SHIPPED, HERE / "correlations"])
    assert ruleset.errors == [], [str(e) for e in ruleset.errors]
    stream = correlation_stream(corpus)

    engine = RuleEngine(ruleset, limits=Limits(max_groups=10**7, max_items=10**7))
    engine.suppressor = Suppressor({}, 0.0)  # alert-level; compared without it
    final = {}
    batch = [NormalizedEvent(i, d, Record("differential", b"")) for i, d in stream]
    for start in range(0, len(batch), 500):
        final.update({d.id: d for d in engine.process(batch[start : start + 500])})
    final.update({d.id: d for d in engine.flush()})
    assert engine.stats.late_events == 0 and engine.stats.bad_timestamps == 0

    correlation_ids = {c.meta.id: c.meta.name for c in ruleset.correlations}
    got = sorted(
        (
            d.id,
            d.rule_id,
            tuple(sorted(d.group.items())),
            d.first_seen,
            d.last_seen,
            d.event_count,
            tuple(sorted(d.event_ids)) if d.event_count <= 100 else None,
        )
        for d in final.values()
        if d.rule_id in correlation_ids
    )
    expected = sorted(det.key() for det in Reference(ruleset).run(stream))  # NotImplementedError: extend it
    by_rule: dict[str, int] = {}
    for det in got:
        by_rule[correlation_ids[det[1]]] = by_rule.get(correlation_ids[det[1]], 0) + 1
    print(f"\ncorrelations over {len(stream)} events: {len(got)} detections {dict(sorted(by_rule.items()))}")

    missing = [d for d in expected if d not in got]
    extra = [d for d in got if d not in expected]
    by = {name: (sum(d[1] == i for d in missing), sum(d[1] == i for d in extra)) for i, name in correlation_ids.items()}
    differing = {name: counts for name, counts in by.items() if any(counts)}
    unexplained = {name: counts for name, counts in differing.items() if name not in KNOWN_CORRELATION_DIFFERENCES}
    shown = [f"{correlation_ids[d[1]]}{d[2:6]}" for d in missing + extra if correlation_ids[d[1]] in unexplained]
    assert not unexplained, f"(reference only, engine only) per rule: {unexplained}\n" + "\n".join(shown[:10])
    assert set(differing) == set(KNOWN_CORRELATION_DIFFERENCES), "a known difference is gone: update the list"
    fired = {correlation_ids[d[1]] for d in got}
    own = {c.meta.name for c in ruleset.correlations if c.meta.name.startswith("zz_c_")}
    assert len(fired & own) >= len(own) - 2, f"too few of our correlations fired: {sorted(own - fired)}"
    if differing:
        pytest.xfail(
            "engine: " + "; ".join(f"{n}: {KNOWN_CORRELATION_DIFFERENCES[n]} {differing[n]}" for n in differing)
        )
