//! `ingest._native`: the native fast path of the `api_access` ingest chain (see `ingest/native.py`).
//!
//! One call turns the raw JSON bytes of a gateway event into the final ECS document (a Python dict), as
//! `Normalizer([...enrichers, PrivacyPass])` would, or returns `None`: "not handled here, run the Python
//! chain". The Python chain stays the reference semantics; this module only reproduces the cases it can
//! prove identical and falls back for everything else:
//!
//! - decoding: the input must be UTF-8 JSON with only the known gateway keys (no unknown or duplicate key),
//!   each of the expected JSON type (strings, non-negative integers up to 2^53, a finite non-negative
//!   number for `latency_ms`, a boolean for `mfa`, a list of strings or nulls for `forwarded_for`);
//! - timestamps already canonical (`YYYY-MM-DDTHH:MM:SS.mmmZ`, a valid date), IP addresses already in the
//!   canonical text of Python's `ipaddress` (dotted-quad IPv4 without leading zeros, compressed lower-case
//!   IPv6, no IPv4-mapped form), an ASCII method and TLS protocol name;
//! - anything else (every parse error included: Python writes the dead-letter reason) returns `None`.
//!
//! The privacy plan comes from Python (`ingest/native.py` compiles it from the `PrivacyPass` in use): per
//! leaf field, drop (minimized away), keep, pseudonymize (HMAC-SHA256 here, `ps_<key id>_<32 hex>`), check
//! (kept as is when a cheap test proves that redaction and masking change nothing, else asked from Python),
//! or call (always asked from Python). "Asked from Python" calls `PrivacyPass.string_leaf`, the very code
//! (and cache) of the reference pass, so the result is the reference result by construction. The user
//! agent enrichment is likewise a call of `UserAgentEnricher.parse`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};

use hmac::{Hmac, KeyInit, Mac};
use pyo3::BoundObject;
use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

mod corr_window;
mod ml_columns;
mod rule_mask;

// --- the leaf fields the chain can produce, in one fixed order shared with Python (`leaves()`) -----------

const LEAVES: [&str; 43] = [
    "@timestamp",
    "event.kind",
    "event.category",
    "event.type",
    "event.action",
    "event.outcome",
    "event.dataset",
    "event.module",
    "event.id",
    "event.duration",
    "http.request.method",
    "http.request.body.content",
    "http.request.id",
    "http.request.bytes",
    "http.response.status_code",
    "http.response.bytes",
    "url.path",
    "url.original",
    "url.query",
    "logwarden.source",
    "logwarden.api.route",
    "logwarden.api.latency_ms",
    "logwarden.api.key_id",
    "logwarden.api.auth_method",
    "logwarden.api.mfa",
    "source.ip",
    "source.address",
    "network.forwarded_ip",
    "user.id",
    "organization.id",
    "user_agent.original",
    "user_agent.name",
    "user_agent.version",
    "user_agent.os.name",
    "user_agent.os.version",
    "user_agent.device.name",
    "tls.version",
    "tls.version_protocol",
    "gen_ai.request.model.id",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "related.ip",
    "related.user",
];

const TIMESTAMP: usize = 0;
const EVENT_KIND: usize = 1;
const EVENT_CATEGORY: usize = 2;
const EVENT_TYPE: usize = 3;
const EVENT_ACTION: usize = 4;
const EVENT_OUTCOME: usize = 5;
const EVENT_DATASET: usize = 6;
const EVENT_MODULE: usize = 7;
const EVENT_ID: usize = 8;
const EVENT_DURATION: usize = 9;
const REQUEST_METHOD: usize = 10;
const REQUEST_BODY: usize = 11;
const REQUEST_ID: usize = 12;
const REQUEST_BYTES: usize = 13;
const RESPONSE_STATUS: usize = 14;
const RESPONSE_BYTES: usize = 15;
const URL_PATH: usize = 16;
const URL_ORIGINAL: usize = 17;
const URL_QUERY: usize = 18;
const LW_SOURCE: usize = 19;
const API_ROUTE: usize = 20;
const API_LATENCY: usize = 21;
const API_KEY_ID: usize = 22;
const API_AUTH_METHOD: usize = 23;
const API_MFA: usize = 24;
const SOURCE_IP: usize = 25;
const SOURCE_ADDRESS: usize = 26;
const FORWARDED_IP: usize = 27;
const USER_ID: usize = 28;
const ORG_ID: usize = 29;
const UA_ORIGINAL: usize = 30;
const UA_NAME: usize = 31;
const UA_VERSION: usize = 32;
const UA_OS_NAME: usize = 33;
const UA_OS_VERSION: usize = 34;
const UA_DEVICE_NAME: usize = 35;
const TLS_VERSION: usize = 36;
const TLS_PROTOCOL: usize = 37;
const MODEL_ID: usize = 38;
const INPUT_TOKENS: usize = 39;
const OUTPUT_TOKENS: usize = 40;
const RELATED_IP: usize = 41;
const RELATED_USER: usize = 42;

// what the plan does at a leaf (the codes of `ingest/native.py`)
const DROP: u8 = 0;
const KEEP: u8 = 1;
const PSEUDO: u8 = 2;
const CHECK: u8 = 3;
const CALL: u8 = 4;

#[derive(Clone, Copy)]
struct Op {
    action: u8,
    scan: bool,
    mask: bool,
    flags: i64,
}

// --- decoding and validation (no Python object is made before the event is known to be handled) ----------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw<'a> {
    #[serde(borrow)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow)]
    request_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    client_ip: Option<Cow<'a, str>>,
    #[serde(borrow)]
    forwarded_for: Option<Vec<Option<Cow<'a, str>>>>,
    #[serde(borrow)]
    api_key_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    org_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    auth_method: Option<Cow<'a, str>>,
    mfa: Option<bool>,
    #[serde(borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow)]
    path: Option<Cow<'a, str>>,
    #[serde(borrow)]
    route: Option<Cow<'a, str>>,
    #[serde(borrow)]
    query: Option<Cow<'a, str>>,
    status: Option<u64>,
    latency_ms: Option<serde_json::Number>,
    bytes_in: Option<u64>,
    bytes_out: Option<u64>,
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    #[serde(borrow)]
    user_agent: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tls_version: Option<Cow<'a, str>>,
    #[serde(borrow)]
    body: Option<Cow<'a, str>>,
}

const MAX_INT: u64 = 1 << 53;
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
];

/// The validated event: every value as the Python parser would compute it.
struct Event<'a> {
    timestamp: Cow<'a, str>,
    request_id: Option<Cow<'a, str>>,
    client_ip: Option<Cow<'a, str>>,
    forwarded: Vec<Cow<'a, str>>,
    api_key_id: Option<Cow<'a, str>>,
    user_id: Option<Cow<'a, str>>,
    org_id: Option<Cow<'a, str>>,
    auth_method: Option<Cow<'a, str>>,
    mfa: Option<bool>,
    method: &'static str,
    path: Cow<'a, str>,
    route: Cow<'a, str>,
    query: Option<Cow<'a, str>>,
    status: u64,
    latency_ms: Option<f64>,
    bytes_in: Option<u64>,
    bytes_out: Option<u64>,
    model: Option<Cow<'a, str>>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    user_agent: Option<Cow<'a, str>>,
    tls: Option<(Cow<'a, str>, Option<String>)>,
    body: Option<Cow<'a, str>>,
}

fn non_empty(value: Option<Cow<'_, str>>) -> Option<Cow<'_, str>> {
    value.filter(|v| !v.is_empty())
}

fn small_int(value: Option<u64>) -> Option<Option<u64>> {
    match value {
        Some(v) if v > MAX_INT => None,
        other => Some(other),
    }
}

fn decode(raw: &[u8]) -> Option<Event<'_>> {
    let text = std::str::from_utf8(raw).ok()?;
    let r: Raw<'_> = serde_json::from_str(text).ok()?;
    let status = small_int(r.status)??;
    let bytes_in = small_int(r.bytes_in)?;
    let bytes_out = small_int(r.bytes_out)?;
    let input_tokens = small_int(r.input_tokens)?;
    let output_tokens = small_int(r.output_tokens)?;
    let timestamp = r.timestamp?;
    if !canonical_timestamp(&timestamp) {
        return None;
    }
    let method = method(&r.method?)?;
    let path = non_empty(r.path)?;
    if !(100..=599).contains(&status) {
        return None;
    }
    let route = non_empty(r.route).unwrap_or_else(|| path.clone());
    let client_ip = match non_empty(r.client_ip) {
        None => None,
        Some(ip) if canonical_ip(&ip) => Some(ip),
        Some(_) => return None,
    };
    let mut forwarded = Vec::new();
    for hop in r.forwarded_for.unwrap_or_default().into_iter().flatten() {
        if hop.is_empty() {
            continue;
        }
        if !canonical_ip(&hop) {
            return None;
        }
        forwarded.push(hop);
    }
    let latency_ms = match r.latency_ms {
        None => None,
        Some(n) => {
            let value = if let Some(u) = n.as_u64() {
                if u > MAX_INT {
                    return None;
                }
                u as f64
            } else if n.is_f64() {
                let f = n.as_f64()?;
                // "-0" decodes to -0.0 here but to the integer 0 in orjson: not provably the same, fall back
                if !(f >= 0.0 && f.is_finite()) || (f == 0.0 && f.is_sign_negative()) {
                    return None;
                }
                f
            } else {
                return None;
            };
            if value * 1_000_000.0 >= 9_223_372_036_854_775_808.0 {
                return None;
            }
            Some(value)
        }
    };
    let tls = match non_empty(r.tls_version) {
        None => None,
        Some(version) => {
            let (protocol, number) = match version.find('v') {
                Some(i) => (&version[..i], &version[i + 1..]),
                None => (&version[..], ""),
            };
            if !protocol.is_ascii() {
                return None; // str.upper() of non-ASCII text can turn into "TLS"/"SSL"
            }
            let upper = protocol.to_ascii_uppercase();
            let protocol_lower = if (upper == "TLS" || upper == "SSL") && !number.is_empty() {
                Some(protocol.to_ascii_lowercase())
            } else {
                None
            };
            Some((version, protocol_lower))
        }
    };
    Some(Event {
        timestamp,
        request_id: non_empty(r.request_id),
        client_ip,
        forwarded,
        api_key_id: non_empty(r.api_key_id),
        user_id: non_empty(r.user_id),
        org_id: non_empty(r.org_id),
        auth_method: non_empty(r.auth_method),
        mfa: r.mfa,
        method,
        path,
        route,
        query: non_empty(r.query),
        status,
        latency_ms,
        bytes_in,
        bytes_out,
        model: non_empty(r.model),
        input_tokens,
        output_tokens,
        user_agent: non_empty(r.user_agent),
        tls,
        body: non_empty(r.body),
    })
}

fn method(value: &str) -> Option<&'static str> {
    if value.is_empty() || !value.is_ascii() {
        return None; // str.upper() of non-ASCII text can turn into ASCII ("ſ" -> "S")
    }
    let upper = value.to_ascii_uppercase();
    METHODS.iter().copied().find(|m| *m == upper)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` with ASCII digits and a date `datetime.fromisoformat` accepts.
fn canonical_timestamp(value: &str) -> bool {
    let b = value.as_bytes();
    if b.len() != 24 {
        return false;
    }
    for (i, &c) in b.iter().enumerate() {
        let ok = match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'.',
            23 => c == b'Z',
            _ => c.is_ascii_digit(),
        };
        if !ok {
            return false;
        }
    }
    let num = |from: usize, to: usize| {
        b[from..to]
            .iter()
            .fold(0u32, |acc, &c| acc * 10 + u32::from(c - b'0'))
    };
    let (year, month, day) = (num(0, 4), num(5, 7), num(8, 10));
    let (hour, minute, second) = (num(11, 13), num(14, 16), num(17, 19));
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    year >= 1 && day >= 1 && day <= days && hour < 24 && minute < 60 && second < 60
}

/// True when `value` is exactly the text `str(ipaddress.ip_address(value))` gives.
fn canonical_ip(value: &str) -> bool {
    if value.contains('.') {
        return canonical_ipv4(value);
    }
    if !value
        .bytes()
        .all(|c| c == b':' || c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    {
        return false;
    }
    match Ipv6Addr::from_str(value) {
        Ok(addr) => {
            let s = addr.segments();
            let mapped = s[..5].iter().all(|&x| x == 0) && s[5] == 0xffff; // printed differently by Python 3.13
            !mapped && python_ipv6_text(&s) == value
        }
        Err(_) => false,
    }
}

fn canonical_ipv4(value: &str) -> bool {
    let mut parts = 0;
    for part in value.split('.') {
        parts += 1;
        let b = part.as_bytes();
        if b.is_empty()
            || b.len() > 3
            || !b.iter().all(u8::is_ascii_digit)
            || (b.len() > 1 && b[0] == b'0')
        {
            return false;
        }
        if part.parse::<u32>().map_or(true, |n| n > 255) {
            return false;
        }
    }
    parts == 4
}

/// `ipaddress.IPv6Address.__str__`: lower-case hex groups, the longest run (first on ties) of two or more
/// zero groups replaced by `::`.
fn python_ipv6_text(segments: &[u16; 8]) -> String {
    let (mut best_start, mut best_len, mut start, mut len) = (0usize, 0usize, 0usize, 0usize);
    for (i, &seg) in segments.iter().enumerate() {
        if seg == 0 {
            if len == 0 {
                start = i;
            }
            len += 1;
            if len > best_len {
                best_start = start;
                best_len = len;
            }
        } else {
            len = 0;
        }
    }
    let hex: Vec<String> = segments.iter().map(|s| format!("{s:x}")).collect();
    if best_len > 1 {
        let head = hex[..best_start].join(":");
        let tail = hex[best_start + best_len..].join(":");
        format!("{head}::{tail}")
    } else {
        hex.join(":")
    }
}

// --- the cheap tests: false guarantees that redaction / masking leave the string unchanged -----------------

/// `ingest.privacy.redact._KV_SUFFIXES`
const KV_SUFFIXES: [&[u8]; 13] = [
    b"password",
    b"passwd",
    b"pwd",
    b"passphrase",
    b"token",
    b"key",
    b"secret",
    b"credential",
    b"credentials",
    b"signature",
    b"sig",
    b"authorization",
    b"auth",
];

/// One of `ingest.privacy.redact.TRIGGERS` other than "=" and ":" starts at `b[i..]`.
fn trigger_at(b: &[u8], i: usize) -> bool {
    let rest = &b[i..];
    let any = |words: &[&[u8]]| words.iter().any(|w| rest.starts_with(w));
    match b[i] {
        b'%' => rest.starts_with(b"%3"),
        b'e' => any(&[b"earer", b"eyJ"]),
        b'E' => rest.starts_with(b"EARER"),
        b'A' => any(&[b"AKIA", b"ASIA", b"AIza"]),
        b'-' => rest.starts_with(b"-----BEGIN"),
        b's' => rest.starts_with(b"sk-"),
        b'_' => any(&[b"_live_", b"_test_"]),
        b'h' => any(&[b"hp_", b"ho_", b"hu_", b"hs_", b"hr_", b"hf_"]),
        b'g' => any(&[b"github_pat_", b"glpat-"]),
        b'x' => rest.starts_with(b"xox"),
        _ => false,
    }
}

/// False only when `redact_text` provably returns `text` unchanged.
///
/// Without any of the trigger substrings (`might_hold_secret` in Python) nothing is searched. With only
/// "=" or ":" among them, only key/value pairs and URL passwords can be found: a key/value secret needs a
/// name ending with a secret word before the separator (tested here as Python does, on ASCII text), a URL
/// password needs "@".
fn might_hold_secret(text: &str) -> bool {
    let b = text.as_bytes();
    let mut separator = false;
    for i in 0..b.len() {
        match b[i] {
            b'=' | b':' => separator = true,
            _ if trigger_at(b, i) => return true,
            _ => {}
        }
    }
    if !separator {
        return false;
    }
    if !text.is_ascii() || b.contains(&b'@') {
        return true; // str.lower() of non-ASCII text, or a password in a URL: let Python decide
    }
    for (sep, &c) in b.iter().enumerate() {
        if c != b'=' && c != b':' {
            continue;
        }
        let mut j = sep;
        while j > 0 && (b[j - 1] == b' ' || b[j - 1] == b'\t') {
            j -= 1;
        }
        if j > 0 && (b[j - 1] == b'"' || b[j - 1] == b'\'') {
            j -= 1;
        }
        let name = b[j.saturating_sub(24)..j].to_ascii_lowercase();
        if KV_SUFFIXES.iter().any(|s| name.ends_with(s)) {
            return true;
        }
    }
    false
}

fn maybe_digit(c: char) -> bool {
    c.is_ascii_digit() || (!c.is_ascii() && c.is_numeric()) // \d is Unicode: any numeric character counts
}

/// False only when `mask_text` provably returns `text` unchanged.
///
/// Masking needs "@" or "%40" (e-mail), or else a run of 8 digits (`_NUMBER_RUN`) and then either a run of
/// digit groups at least 13 characters long (a card) or what a phone pattern needs: "+", four digits in a
/// row, or a "0" followed by a digit and not preceded by an ASCII word character.
fn might_mask(text: &str) -> bool {
    if text.contains('@') || text.contains("%40") {
        return true;
    }
    if text.is_ascii() {
        might_mask_chars(text.bytes().map(char::from), text.len())
    } else {
        might_mask_chars(text.chars(), text.chars().count())
    }
}

fn might_mask_chars<I: Iterator<Item = char> + Clone>(chars: I, len: usize) -> bool {
    // _NUMBER_RUN: \d(?:[ .()/-]{0,2}\d){7,}
    let (mut run, mut seps, mut number_run) = (0usize, 0usize, false);
    for c in chars.clone() {
        if maybe_digit(c) {
            run = if run > 0 && seps <= 2 { run + 1 } else { 1 };
            seps = 0;
            if run >= 8 {
                number_run = true;
                break;
            }
        } else if matches!(c, ' ' | '.' | '(' | ')' | '/' | '-') {
            if run > 0 {
                seps += 1;
                if seps > 2 {
                    run = 0;
                }
            }
        } else {
            run = 0;
        }
    }
    if !number_run {
        return false;
    }
    // card candidates: _DIGIT_GROUPS = \d+(?:[ -]\d+)* spanning 13 characters or more
    let (mut span, mut digits_in_a_row) = (0usize, 0usize);
    let mut prev: Option<char> = None;
    let mut pending_join = false; // a " " or "-" right after a digit: joins when a digit follows
    let mut zero_start = false; // a "0" not after an ASCII word character: a phone if a digit follows
    for c in chars.take(len) {
        if c == '+' {
            return true;
        }
        if maybe_digit(c) {
            if zero_start {
                return true;
            }
            span = if pending_join || prev.is_some_and(maybe_digit) {
                span + 1 + usize::from(pending_join)
            } else {
                1
            };
            pending_join = false;
            digits_in_a_row += 1;
            if span >= 13 || digits_in_a_row >= 4 {
                return true;
            }
            zero_start = c == '0' && !prev.is_some_and(|p| p.is_ascii_alphanumeric() || p == '_');
        } else {
            pending_join = matches!(c, ' ' | '-') && prev.is_some_and(maybe_digit);
            if !pending_join {
                span = 0;
            }
            digits_in_a_row = 0;
            zero_start = false;
        }
        prev = Some(c);
    }
    false
}

// --- the Python side ----------------------------------------------------------------------------------------

/// The fast path of one configuration (built by `ingest/native.py`, which decides when it applies).
#[pyclass(frozen, module = "ingest._native")]
struct ApiAccess {
    ops: Vec<Op>,
    mac: Option<HmacSha256>,
    prefix: String,
    /// `logwarden.privacy.key_id`, None when no pseudonymizer runs
    key_id: Option<Py<PyString>>,
    key_id_json: Option<Box<[u8]>>,
    string_leaf: Option<Py<PyAny>>,
    ua_parse: Option<Py<PyAny>>,
    cache: Mutex<Caches>,
}

/// Leaves whose values are unique per event: not cached.
const UNCACHED: [usize; 3] = [TIMESTAMP, EVENT_ID, REQUEST_ID];
/// Entries per cache; a full cache is emptied (as the Python caches of the privacy pass are).
const CACHE_SIZE: usize = 16_384;

type Cache<T> = HashMap<Box<str>, T, ahash::RandomState>;

/// The caches of one fast path: strings repeat all day (routes, user agents, users, IPs).
struct Caches {
    /// per leaf: input string -> final value
    leaves: Vec<Cache<Cached>>,
    /// whole `user_agent` objects as JSON text, by original string (JSON text only: a dict is never shared)
    user_agents: Cache<CachedJson>,
}

/// A final string value, as JSON text and as a Python string, and the kinds its computation found
/// (`logwarden.privacy.redacted` / `masked`).
struct Cached {
    json: Box<[u8]>,
    value: Py<PyString>,
    kinds: Option<Box<Kinds>>,
}

struct CachedJson {
    json: Box<[u8]>,
    kinds: Option<Box<Kinds>>,
}

#[derive(Default)]
struct Kinds {
    redacted: Vec<String>,
    masked: Vec<String>,
}

impl Kinds {
    fn add(&mut self, other: Option<&Kinds>) {
        if let Some(other) = other {
            add_kinds(&mut self.redacted, &other.redacted);
            add_kinds(&mut self.masked, &other.masked);
        }
    }

    fn is_empty(&self) -> bool {
        self.redacted.is_empty() && self.masked.is_empty()
    }

    fn boxed(self) -> Option<Box<Kinds>> {
        if self.is_empty() {
            None
        } else {
            Some(Box::new(self))
        }
    }
}

/// What one call collects besides the document.
struct Found<'c> {
    kinds: Kinds,
    cache: Option<MutexGuard<'c, Caches>>,
}

fn add_kinds(into: &mut Vec<String>, kinds: &[String]) {
    for kind in kinds {
        if !into.contains(kind) {
            into.push(kind.clone());
        }
    }
}

fn extract_kinds(kinds: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for kind in kinds.try_iter()? {
        out.push(kind?.extract()?);
    }
    Ok(out)
}

fn json_error(e: serde_json::Error) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// A member name or a parser constant: plain ASCII text (JSON) and its interned Python string (dict).
#[derive(Clone, Copy)]
struct Name<'py> {
    text: &'static str,
    py: &'py Bound<'py, PyString>,
}

macro_rules! name {
    ($py:expr, $text:literal) => {
        Name {
            text: $text,
            py: intern!($py, $text),
        }
    };
}

/// Where the document is written, member by member in the order the Python chain inserts them (the
/// self-check compares the bytes): JSON text ([`Json`]) or Python dicts ([`Dicts`]).
trait Sink<'py> {
    /// An object that stayed when closed (where the privacy entries go).
    type Closed;
    /// Opens the child object `name`; the mark it returns is for [`Sink::close`].
    fn open(&mut self, name: Name<'py>) -> usize;
    /// Closes the child opened at `mark`: an empty child is left out (the Python chain writes none).
    fn close(&mut self, mark: usize) -> PyResult<Option<Self::Closed>>;
    /// Starts the member `name`: its value (or list) comes next.
    fn key(&mut self, name: Name<'py>);
    fn string(&mut self, value: &str) -> PyResult<()>;
    fn cached(&mut self, hit: &Cached) -> PyResult<()>;
    fn constant(&mut self, value: Name<'py>) -> PyResult<()>;
    fn number<T: Serialize + IntoPyObject<'py>>(&mut self, value: T) -> PyResult<()>;
    fn list_start(&mut self);
    fn list_end(&mut self) -> PyResult<()>;
    /// `logwarden.privacy` as the last member of `lw` (the closed `logwarden`), or in a new `logwarden`
    /// at the end.
    fn privacy(&mut self, api: &ApiAccess, lw: Option<Self::Closed>, kinds: Kinds) -> PyResult<()>;
    /// The JSON writer, for what it caches whole.
    fn as_json(&mut self) -> Option<&mut Json> {
        None
    }
}

/// The document as JSON text. Member names are plain ASCII constants: written without escaping.
struct Json {
    buf: Vec<u8>,
}

impl Json {
    fn new() -> Self {
        let mut buf = Vec::with_capacity(1024);
        buf.push(b'{');
        Json { buf }
    }

    /// A comma before a list item that is not the first one (a member's value follows its colon).
    fn separate(&mut self) {
        if !matches!(self.buf.last(), Some(b':' | b'[')) {
            self.buf.push(b',');
        }
    }

    fn finish(mut self) -> Vec<u8> {
        self.buf.push(b'}');
        self.buf
    }
}

impl<'py> Sink<'py> for Json {
    type Closed = usize; // the position of its closing brace

    fn open(&mut self, name: Name<'py>) -> usize {
        let mark = self.buf.len();
        self.key(name);
        self.buf.push(b'{');
        mark
    }

    fn close(&mut self, mark: usize) -> PyResult<Option<usize>> {
        if self.buf.last() == Some(&b'{') {
            self.buf.truncate(mark);
            Ok(None)
        } else {
            self.buf.push(b'}');
            Ok(Some(self.buf.len() - 1))
        }
    }

    fn key(&mut self, name: Name<'py>) {
        if self.buf.last() != Some(&b'{') {
            self.buf.push(b',');
        }
        self.buf.push(b'"');
        self.buf.extend_from_slice(name.text.as_bytes());
        self.buf.extend_from_slice(b"\":");
    }

    fn string(&mut self, value: &str) -> PyResult<()> {
        self.separate();
        serde_json::to_writer(&mut self.buf, value).map_err(json_error)
    }

    fn cached(&mut self, hit: &Cached) -> PyResult<()> {
        self.separate();
        self.buf.extend_from_slice(&hit.json);
        Ok(())
    }

    fn constant(&mut self, value: Name<'py>) -> PyResult<()> {
        self.separate();
        self.buf.push(b'"');
        self.buf.extend_from_slice(value.text.as_bytes());
        self.buf.push(b'"');
        Ok(())
    }

    fn number<T: Serialize + IntoPyObject<'py>>(&mut self, value: T) -> PyResult<()> {
        self.separate();
        serde_json::to_writer(&mut self.buf, &value).map_err(json_error)
    }

    fn list_start(&mut self) {
        self.buf.push(b'[');
    }

    fn list_end(&mut self) -> PyResult<()> {
        self.buf.push(b']');
        Ok(())
    }

    fn privacy(&mut self, api: &ApiAccess, lw: Option<usize>, mut kinds: Kinds) -> PyResult<()> {
        let mut node = Vec::with_capacity(128);
        node.extend_from_slice(b"\"privacy\":{");
        let mut first = true;
        let mut member = |node: &mut Vec<u8>, key: &[u8]| {
            if !first {
                node.push(b',');
            }
            first = false;
            node.extend_from_slice(key);
        };
        if let Some(key_id) = &api.key_id_json {
            member(&mut node, b"\"key_id\":");
            node.extend_from_slice(key_id);
        }
        if !kinds.redacted.is_empty() {
            kinds.redacted.sort();
            member(&mut node, b"\"redacted\":");
            serde_json::to_writer(&mut node, &kinds.redacted).map_err(json_error)?;
        }
        if !kinds.masked.is_empty() {
            kinds.masked.sort();
            member(&mut node, b"\"masked\":");
            serde_json::to_writer(&mut node, &kinds.masked).map_err(json_error)?;
        }
        node.push(b'}');
        match lw {
            Some(end) => {
                node.insert(0, b',');
                self.buf.splice(end..end, node);
            }
            None => {
                if self.buf.last() != Some(&b'{') {
                    self.buf.push(b',');
                }
                self.buf.extend_from_slice(b"\"logwarden\":{");
                self.buf.extend_from_slice(&node);
                self.buf.push(b'}');
            }
        }
        Ok(())
    }

    fn as_json(&mut self) -> Option<&mut Json> {
        Some(self)
    }
}

/// The document as Python dicts (what the rules and ML read), built directly: the cached values are
/// shared string objects, the member names interned.
struct Dicts<'py> {
    py: Python<'py>,
    /// the objects being written, each with the name it goes under in its parent (the root has none)
    stack: Vec<(Option<&'py Bound<'py, PyString>>, Bound<'py, PyDict>)>,
    /// the member whose value comes next
    pending: Option<&'py Bound<'py, PyString>>,
    /// the list being written
    list: Option<Bound<'py, PyList>>,
}

impl<'py> Dicts<'py> {
    fn new(py: Python<'py>) -> Self {
        Dicts {
            py,
            stack: vec![(None, PyDict::new(py))],
            pending: None,
            list: None,
        }
    }

    fn top(&self) -> &Bound<'py, PyDict> {
        &self.stack[self.stack.len() - 1].1
    }

    fn put(&mut self, value: Bound<'py, PyAny>) -> PyResult<()> {
        if let Some(list) = &self.list {
            return list.append(value);
        }
        let Some(key) = self.pending.take() else {
            return Err(PyValueError::new_err("a value without a member name"));
        };
        self.top().set_item(key, value)
    }

    fn finish(mut self) -> Bound<'py, PyDict> {
        self.stack.swap_remove(0).1
    }
}

impl<'py> Sink<'py> for Dicts<'py> {
    type Closed = Bound<'py, PyDict>;

    fn open(&mut self, name: Name<'py>) -> usize {
        self.stack.push((Some(name.py), PyDict::new(self.py)));
        self.stack.len() - 1
    }

    fn close(&mut self, mark: usize) -> PyResult<Option<Bound<'py, PyDict>>> {
        if self.stack.len() != mark + 1 {
            return Err(PyValueError::new_err("objects closed out of order"));
        }
        let Some((Some(key), child)) = self.stack.pop() else {
            return Err(PyValueError::new_err("the root cannot be closed"));
        };
        if child.is_empty() {
            return Ok(None);
        }
        self.top().set_item(key, &child)?;
        Ok(Some(child))
    }

    fn key(&mut self, name: Name<'py>) {
        self.pending = Some(name.py);
    }

    fn string(&mut self, value: &str) -> PyResult<()> {
        self.put(PyString::new(self.py, value).into_any())
    }

    fn cached(&mut self, hit: &Cached) -> PyResult<()> {
        self.put(hit.value.bind(self.py).clone().into_any())
    }

    fn constant(&mut self, value: Name<'py>) -> PyResult<()> {
        self.put(value.py.clone().into_any())
    }

    fn number<T: Serialize + IntoPyObject<'py>>(&mut self, value: T) -> PyResult<()> {
        let value = value.into_pyobject(self.py).map_err(Into::into)?;
        self.put(value.into_any().into_bound())
    }

    fn list_start(&mut self) {
        self.list = Some(PyList::empty(self.py));
    }

    fn list_end(&mut self) -> PyResult<()> {
        let Some(list) = self.list.take() else {
            return Err(PyValueError::new_err("no list to end"));
        };
        self.put(list.into_any())
    }

    fn privacy(
        &mut self,
        api: &ApiAccess,
        lw: Option<Bound<'py, PyDict>>,
        mut kinds: Kinds,
    ) -> PyResult<()> {
        let py = self.py;
        let lw = match lw {
            Some(lw) => lw,
            None => {
                let lw = PyDict::new(py);
                self.top().set_item(intern!(py, "logwarden"), &lw)?;
                lw
            }
        };
        let node = PyDict::new(py);
        if let Some(key_id) = &api.key_id {
            node.set_item(intern!(py, "key_id"), key_id.bind(py))?;
        }
        if !kinds.redacted.is_empty() {
            kinds.redacted.sort();
            node.set_item(intern!(py, "redacted"), PyList::new(py, &kinds.redacted)?)?;
        }
        if !kinds.masked.is_empty() {
            kinds.masked.sort();
            node.set_item(intern!(py, "masked"), PyList::new(py, &kinds.masked)?)?;
        }
        lw.set_item(intern!(py, "privacy"), node)
    }
}

impl ApiAccess {
    fn pseudonym_text(&self, value: &str) -> PyResult<String> {
        let Some(mac) = &self.mac else {
            return Err(PyValueError::new_err("no pseudonymization key"));
        };
        let mut mac = mac.clone();
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut text = String::with_capacity(self.prefix.len() + 32);
        text.push_str(&self.prefix);
        for byte in &digest[..16] {
            text.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
            text.push(char::from_digit(u32::from(byte & 15), 16).unwrap_or('0'));
        }
        Ok(text)
    }

    /// `PrivacyPass.string_leaf(value, flags)`: the new value and the kinds found.
    fn call(&self, py: Python<'_>, value: &str, op: Op) -> PyResult<(String, Option<Box<Kinds>>)> {
        let Some(string_leaf) = &self.string_leaf else {
            return Err(PyValueError::new_err("no privacy pass to ask"));
        };
        let result = string_leaf.bind(py).call1((value, op.flags))?;
        let result = result.cast::<PyTuple>()?;
        let kinds = Kinds {
            redacted: extract_kinds(&result.get_item(1)?)?,
            masked: extract_kinds(&result.get_item(2)?)?,
        };
        Ok((result.get_item(0)?.extract()?, kinds.boxed()))
    }

    /// The final value of a string at a leaf with `op` (not dropped) and the kinds found, computed.
    fn compute<'v>(
        &self,
        py: Python<'_>,
        op: Op,
        value: &'v str,
    ) -> PyResult<(Cow<'v, str>, Option<Box<Kinds>>)> {
        Ok(match op.action {
            PSEUDO => (Cow::Owned(self.pseudonym_text(value)?), None),
            CALL => {
                let (new, kinds) = self.call(py, value, op)?;
                (Cow::Owned(new), kinds)
            }
            CHECK if (op.scan && might_hold_secret(value)) || (op.mask && might_mask(value)) => {
                let (new, kinds) = self.call(py, value, op)?;
                (Cow::Owned(new), kinds)
            }
            _ => (Cow::Borrowed(value), None),
        })
    }

    /// Writes the member `name`: the final value of the string `value` at `leaf` (nothing when dropped).
    fn text<'py, S: Sink<'py>>(
        &self,
        py: Python<'py>,
        out: &mut S,
        name: Name<'py>,
        leaf: usize,
        value: &str,
        found: &mut Found<'_>,
    ) -> PyResult<()> {
        let op = self.ops[leaf];
        if op.action == DROP {
            return Ok(());
        }
        out.key(name);
        self.string(py, out, leaf, op, value, found)
    }

    /// Writes the final value of the string `value` at `leaf` (not dropped), through the leaf's cache.
    fn string<'py, S: Sink<'py>>(
        &self,
        py: Python<'py>,
        out: &mut S,
        leaf: usize,
        op: Op,
        value: &str,
        found: &mut Found<'_>,
    ) -> PyResult<()> {
        let cache = match &mut found.cache {
            Some(caches) if !UNCACHED.contains(&leaf) => &mut caches.leaves[leaf],
            _ => {
                let (new, kinds) = self.compute(py, op, value)?;
                found.kinds.add(kinds.as_deref());
                return out.string(&new);
            }
        };
        if let Some(hit) = cache.get(value) {
            found.kinds.add(hit.kinds.as_deref());
            return out.cached(hit);
        }
        let (new, kinds) = self.compute(py, op, value)?;
        found.kinds.add(kinds.as_deref());
        let entry = Cached {
            json: serde_json::to_vec(new.as_ref()).map_err(json_error)?.into(),
            value: PyString::new(py, &new).unbind(),
            kinds,
        };
        out.cached(&entry)?;
        if cache.len() >= CACHE_SIZE {
            cache.clear();
        }
        cache.insert(value.into(), entry);
        Ok(())
    }

    /// Writes the member `name`: a parser constant, only looked at when the plan does more than keep it.
    fn constant<'py, S: Sink<'py>>(
        &self,
        py: Python<'py>,
        out: &mut S,
        name: Name<'py>,
        leaf: usize,
        value: Name<'py>,
        found: &mut Found<'_>,
    ) -> PyResult<()> {
        if self.ops[leaf].action != KEEP {
            return self.text(py, out, name, leaf, value.text, found);
        }
        out.key(name);
        out.constant(value)
    }

    /// Writes the member `name`: a list of the final values of `values` at `leaf` (nothing when dropped).
    fn texts<'py, S: Sink<'py>, V: AsRef<str>>(
        &self,
        py: Python<'py>,
        out: &mut S,
        name: Name<'py>,
        leaf: usize,
        values: &[V],
        found: &mut Found<'_>,
    ) -> PyResult<()> {
        let op = self.ops[leaf];
        if op.action == DROP {
            return Ok(());
        }
        out.key(name);
        out.list_start();
        for value in values {
            self.string(py, out, leaf, op, value.as_ref(), found)?;
        }
        out.list_end()
    }

    /// Writes the member `name`: a number or boolean, unchanged by every step (nothing when dropped).
    fn number<'py, S: Sink<'py>, T: Serialize + IntoPyObject<'py>>(
        &self,
        out: &mut S,
        name: Name<'py>,
        leaf: usize,
        value: T,
    ) -> PyResult<()> {
        if self.ops[leaf].action == DROP {
            return Ok(());
        }
        out.key(name);
        out.number(value)
    }

    /// Writes the final document into `out`; returns its final `@timestamp` (None when dropped).
    fn build<'py, S: Sink<'py>>(
        &self,
        py: Python<'py>,
        e: &Event<'_>,
        out: &mut S,
    ) -> PyResult<Option<String>> {
        // try_lock: a callback into Python may let another thread in, which then runs without the cache
        let mut found = Found {
            kinds: Kinds::default(),
            cache: self.cache.try_lock().ok(),
        };
        let f = &mut found;
        let o = out;

        let op = self.ops[TIMESTAMP];
        let stamp = if op.action == DROP {
            None
        } else {
            let (new, kinds) = self.compute(py, op, &e.timestamp)?;
            f.kinds.add(kinds.as_deref());
            o.key(name!(py, "@timestamp"));
            o.string(&new)?;
            Some(new.into_owned())
        };

        let (category, action, types): (&[&str], &str, &[&str]) = match e.route.as_ref() {
            "/v1/auth/login" | "/v1/auth/token" | "/v1/auth/sso/callback" => (
                &["authentication", "web"],
                "user-login",
                &["start", "access"],
            ),
            "/v1/auth/mfa/verify" => (
                &["authentication", "web"],
                "mfa-verify",
                &["info", "access"],
            ),
            _ => (&["web"], "api-request", &["access"]),
        };
        let event = o.open(name!(py, "event"));
        self.constant(py, o, name!(py, "kind"), EVENT_KIND, name!(py, "event"), f)?;
        self.texts(py, o, name!(py, "category"), EVENT_CATEGORY, category, f)?;
        self.texts(py, o, name!(py, "type"), EVENT_TYPE, types, f)?;
        self.text(py, o, name!(py, "action"), EVENT_ACTION, action, f)?;
        let outcome = if e.status < 400 {
            name!(py, "success")
        } else {
            name!(py, "failure")
        };
        self.constant(py, o, name!(py, "outcome"), EVENT_OUTCOME, outcome, f)?;
        let dataset = name!(py, "logwarden.api_access");
        self.constant(py, o, name!(py, "dataset"), EVENT_DATASET, dataset, f)?;
        let module = name!(py, "logwarden");
        self.constant(py, o, name!(py, "module"), EVENT_MODULE, module, f)?;
        if let Some(id) = &e.request_id {
            self.text(py, o, name!(py, "id"), EVENT_ID, id, f)?;
        }
        if let Some(latency) = e.latency_ms {
            let nanos = (latency * 1_000_000.0) as i64;
            self.number(o, name!(py, "duration"), EVENT_DURATION, nanos)?;
        }
        o.close(event)?;

        let http = o.open(name!(py, "http"));
        let request = o.open(name!(py, "request"));
        self.text(py, o, name!(py, "method"), REQUEST_METHOD, e.method, f)?;
        if let Some(body) = &e.body {
            let node = o.open(name!(py, "body"));
            self.text(py, o, name!(py, "content"), REQUEST_BODY, body, f)?;
            o.close(node)?;
        }
        if let Some(id) = &e.request_id {
            self.text(py, o, name!(py, "id"), REQUEST_ID, id, f)?;
        }
        if let Some(bytes) = e.bytes_in {
            self.number(o, name!(py, "bytes"), REQUEST_BYTES, bytes)?;
        }
        o.close(request)?;
        let response = o.open(name!(py, "response"));
        self.number(o, name!(py, "status_code"), RESPONSE_STATUS, e.status)?;
        if let Some(bytes) = e.bytes_out {
            self.number(o, name!(py, "bytes"), RESPONSE_BYTES, bytes)?;
        }
        o.close(response)?;
        o.close(http)?;

        let url = o.open(name!(py, "url"));
        self.text(py, o, name!(py, "path"), URL_PATH, &e.path, f)?;
        match &e.query {
            Some(query) => {
                let original = format!("{}?{}", e.path, query);
                self.text(py, o, name!(py, "original"), URL_ORIGINAL, &original, f)?;
                self.text(py, o, name!(py, "query"), URL_QUERY, query, f)?;
            }
            None => self.text(py, o, name!(py, "original"), URL_ORIGINAL, &e.path, f)?,
        }
        o.close(url)?;

        let lw = o.open(name!(py, "logwarden"));
        let source = name!(py, "api_access");
        self.constant(py, o, name!(py, "source"), LW_SOURCE, source, f)?;
        let api = o.open(name!(py, "api"));
        self.text(py, o, name!(py, "route"), API_ROUTE, &e.route, f)?;
        if let Some(latency) = e.latency_ms {
            self.number(o, name!(py, "latency_ms"), API_LATENCY, latency)?;
        }
        if let Some(key_id) = &e.api_key_id {
            self.text(py, o, name!(py, "key_id"), API_KEY_ID, key_id, f)?;
        }
        if let Some(auth) = &e.auth_method {
            self.text(py, o, name!(py, "auth_method"), API_AUTH_METHOD, auth, f)?;
        }
        if let Some(mfa) = e.mfa {
            self.number(o, name!(py, "mfa"), API_MFA, mfa)?;
        }
        o.close(api)?;
        let lw = o.close(lw)?;

        if let Some(ip) = &e.client_ip {
            let node = o.open(name!(py, "source"));
            self.text(py, o, name!(py, "ip"), SOURCE_IP, ip, f)?;
            self.text(py, o, name!(py, "address"), SOURCE_ADDRESS, ip, f)?;
            o.close(node)?;
        }
        if let Some(first) = e.forwarded.first() {
            let node = o.open(name!(py, "network"));
            self.text(py, o, name!(py, "forwarded_ip"), FORWARDED_IP, first, f)?;
            o.close(node)?;
        }
        if let Some(user) = &e.user_id {
            let node = o.open(name!(py, "user"));
            self.text(py, o, name!(py, "id"), USER_ID, user, f)?;
            o.close(node)?;
        }
        if let Some(org) = &e.org_id {
            let node = o.open(name!(py, "organization"));
            self.text(py, o, name!(py, "id"), ORG_ID, org, f)?;
            o.close(node)?;
        }
        if let Some(agent) = &e.user_agent {
            match o.as_json() {
                Some(json) => self.user_agent_json(py, json, agent, f)?,
                None => {
                    let node = o.open(name!(py, "user_agent"));
                    self.user_agent(py, o, agent, f)?;
                    o.close(node)?;
                }
            }
        }
        if let Some((version, protocol)) = &e.tls {
            let node = o.open(name!(py, "tls"));
            match protocol {
                Some(protocol) => {
                    let number = &version[version.find('v').map_or(0, |i| i + 1)..];
                    self.text(py, o, name!(py, "version"), TLS_VERSION, number, f)?;
                    let name = name!(py, "version_protocol");
                    self.text(py, o, name, TLS_PROTOCOL, protocol, f)?;
                }
                None => self.text(py, o, name!(py, "version"), TLS_VERSION, version, f)?,
            }
            o.close(node)?;
        }
        let gen_ai = o.open(name!(py, "gen_ai"));
        if let Some(model) = &e.model {
            let request = o.open(name!(py, "request"));
            let node = o.open(name!(py, "model"));
            self.text(py, o, name!(py, "id"), MODEL_ID, model, f)?;
            o.close(node)?;
            o.close(request)?;
        }
        if e.input_tokens.is_some() || e.output_tokens.is_some() {
            let usage = o.open(name!(py, "usage"));
            if let Some(n) = e.input_tokens {
                self.number(o, name!(py, "input_tokens"), INPUT_TOKENS, n)?;
            }
            if let Some(n) = e.output_tokens {
                self.number(o, name!(py, "output_tokens"), OUTPUT_TOKENS, n)?;
            }
            o.close(usage)?;
        }
        o.close(gen_ai)?;

        let mut related_ip: Vec<&str> = Vec::new();
        if let Some(ip) = &e.client_ip {
            related_ip.push(ip);
        }
        for ip in &e.forwarded {
            if !related_ip.contains(&ip.as_ref()) {
                related_ip.push(ip);
            }
        }
        if !related_ip.is_empty() || e.user_id.is_some() {
            let related = o.open(name!(py, "related"));
            if !related_ip.is_empty() {
                self.texts(py, o, name!(py, "ip"), RELATED_IP, &related_ip, f)?;
            }
            if let Some(user) = &e.user_id {
                self.texts(py, o, name!(py, "user"), RELATED_USER, &[user], f)?;
            }
            o.close(related)?;
        }

        let kinds = std::mem::take(&mut found.kinds);
        drop(found);
        if self.key_id.is_some() || !kinds.is_empty() {
            o.privacy(self, lw, kinds)?;
        }
        Ok(stamp)
    }

    /// Writes `user_agent` as JSON text: the whole object is cached by original string (the parse and
    /// every step on its parts are pure functions of it).
    fn user_agent_json(
        &self,
        py: Python<'_>,
        out: &mut Json,
        original: &str,
        found: &mut Found<'_>,
    ) -> PyResult<()> {
        if let Some(caches) = &found.cache
            && let Some(hit) = caches.user_agents.get(original)
        {
            found.kinds.add(hit.kinds.as_deref());
            Sink::key(out, name!(py, "user_agent"));
            out.buf.extend_from_slice(&hit.json);
            return Ok(());
        }
        // written into a scratch object with its own kinds, then copied out and cached
        let outer = std::mem::take(&mut found.kinds);
        let mut node = Json::new();
        let written = self.user_agent(py, &mut node, original, found);
        let kinds = std::mem::replace(&mut found.kinds, outer);
        written?;
        found.kinds.add(Some(&kinds));
        let json = node.finish();
        if json.len() <= 2 {
            return Ok(()); // an empty object is left out
        }
        Sink::key(out, name!(py, "user_agent"));
        out.buf.extend_from_slice(&json);
        if let Some(caches) = &mut found.cache {
            if caches.user_agents.len() >= CACHE_SIZE {
                caches.user_agents.clear();
            }
            let cached = CachedJson {
                json: json.into_boxed_slice(),
                kinds: kinds.boxed(),
            };
            caches.user_agents.insert(original.into(), cached);
        }
        Ok(())
    }

    /// The members of `user_agent`: the original, then what `UserAgentEnricher.parse` adds (when it runs).
    fn user_agent<'py, S: Sink<'py>>(
        &self,
        py: Python<'py>,
        o: &mut S,
        original: &str,
        f: &mut Found<'_>,
    ) -> PyResult<()> {
        self.text(py, o, name!(py, "original"), UA_ORIGINAL, original, f)?;
        let Some(parse) = &self.ua_parse else {
            return Ok(());
        };
        let parsed = parse.bind(py).call1((original,))?;
        let parsed = parsed.cast::<PyTuple>()?;
        let part = |i: usize| -> PyResult<Option<String>> { parsed.get_item(i)?.extract() };
        let (name, version, os_name, os_version, device) =
            (part(0)?, part(1)?, part(2)?, part(3)?, part(4)?);
        if let Some(name) = name {
            self.text(py, o, name!(py, "name"), UA_NAME, &name, f)?;
        }
        if let Some(version) = version {
            self.text(py, o, name!(py, "version"), UA_VERSION, &version, f)?;
        }
        if let Some(os_name) = os_name {
            let os = o.open(name!(py, "os"));
            self.text(py, o, name!(py, "name"), UA_OS_NAME, &os_name, f)?;
            if let Some(os_version) = os_version {
                self.text(py, o, name!(py, "version"), UA_OS_VERSION, &os_version, f)?;
            }
            o.close(os)?;
        }
        if let Some(device) = device {
            let dev = o.open(name!(py, "device"));
            self.text(py, o, name!(py, "name"), UA_DEVICE_NAME, &device, f)?;
            o.close(dev)?;
        }
        Ok(())
    }
}

#[pymethods]
impl ApiAccess {
    /// `ops`: per leaf of `leaves()`, `(action, scan, mask, flags)`; `key`/`key_id`: the pseudonymization key
    /// (None when no pseudonymizer runs); `string_leaf(value, flags) -> (new, redacted kinds, masked kinds)`
    /// and `ua_parse(original) -> 5-tuple`: the Python code asked for what is not done here.
    #[new]
    #[pyo3(signature = (ops, key, key_id, string_leaf, ua_parse))]
    fn new(
        ops: Vec<(u8, bool, bool, i64)>,
        key: Option<Vec<u8>>,
        key_id: Option<Bound<'_, PyString>>,
        string_leaf: Option<Py<PyAny>>,
        ua_parse: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        if ops.len() != LEAVES.len() {
            return Err(PyValueError::new_err(format!(
                "expected {} leaf ops, got {}",
                LEAVES.len(),
                ops.len()
            )));
        }
        let ops: Vec<Op> = ops
            .into_iter()
            .map(|(action, scan, mask, flags)| Op {
                action,
                scan,
                mask,
                flags,
            })
            .collect();
        if ops.iter().any(|op| op.action > CALL) {
            return Err(PyValueError::new_err("unknown leaf action"));
        }
        if ops.iter().any(|op| op.action == CALL || op.action == CHECK) && string_leaf.is_none() {
            return Err(PyValueError::new_err("checked leaves need string_leaf"));
        }
        let mac = match &key {
            Some(key) => Some(
                HmacSha256::new_from_slice(key)
                    .map_err(|e| PyValueError::new_err(e.to_string()))?,
            ),
            None => None,
        };
        if ops.iter().any(|op| op.action == PSEUDO) && mac.is_none() {
            return Err(PyValueError::new_err("pseudonymized leaves need a key"));
        }
        let (prefix, key_id_json) = match &key_id {
            Some(id) => {
                let id = id.to_str()?;
                let json = serde_json::to_vec(id).map_err(json_error)?;
                (format!("ps_{id}_"), Some(json.into_boxed_slice()))
            }
            None => (String::new(), None),
        };
        Ok(ApiAccess {
            ops,
            mac,
            prefix,
            key_id: key_id.map(Bound::unbind),
            key_id_json,
            string_leaf,
            ua_parse,
            cache: Mutex::new(Caches {
                leaves: (0..LEAVES.len()).map(|_| Cache::default()).collect(),
                user_agents: Cache::default(),
            }),
        })
    }

    /// The final document of one raw gateway event as JSON text (UTF-8 bytes) and its final `@timestamp`,
    /// or None: not handled here, run the Python chain.
    #[allow(clippy::type_complexity)]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        raw: &[u8],
    ) -> PyResult<Option<(Bound<'py, PyBytes>, Option<Bound<'py, PyString>>)>> {
        let Some(event) = decode(raw) else {
            return Ok(None);
        };
        let mut out = Json::new();
        let stamp = self.build(py, &event, &mut out)?;
        Ok(Some((
            PyBytes::new(py, &out.finish()),
            stamp.map(|s| PyString::new(py, &s)),
        )))
    }

    /// The same final document as a dict (for consumers that read it: rules, ML), or None.
    fn document<'py>(&self, py: Python<'py>, raw: &[u8]) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(event) = decode(raw) else {
            return Ok(None);
        };
        let mut out = Dicts::new(py);
        self.build(py, &event, &mut out)?;
        Ok(Some(out.finish()))
    }

    /// The pseudonym of `value` (for the self-check against `Pseudonymizer.pseudonym`).
    fn pseudonym(&self, value: &str) -> PyResult<String> {
        self.pseudonym_text(value)
    }
}

/// The dotted names of the leaf fields, in the order `ApiAccess` expects its ops.
#[pyfunction]
fn leaves() -> Vec<&'static str> {
    LEAVES.to_vec()
}

/// True when `redact_text(text)` provably returns `text` unchanged is NOT established (for the tests).
#[pyfunction]
#[pyo3(name = "might_hold_secret")]
fn py_might_hold_secret(text: &str) -> bool {
    might_hold_secret(text)
}

/// True when `mask_text(text)` provably returns `text` unchanged is NOT established (for the tests).
#[pyfunction]
#[pyo3(name = "might_mask")]
fn py_might_mask(text: &str) -> bool {
    might_mask(text)
}

/// True when `text` is exactly the canonical text of an IP address (for the tests).
#[pyfunction]
#[pyo3(name = "canonical_ip")]
fn py_canonical_ip(text: &str) -> bool {
    canonical_ip(text)
}

/// `ingest.pipeline.document_id(Record(source, raw))`: BLAKE2b with a 16-byte digest of `source`, a NUL byte
/// and `raw`, in lowercase hex (the same bytes hashlib gives; this implementation uses AVX2 when the CPU has it).
#[pyfunction]
fn document_id(source: &str, raw: &[u8]) -> String {
    let mut state = blake2b_simd::Params::new().hash_length(16).to_state();
    state.update(source.as_bytes());
    state.update(&[0]);
    state.update(raw);
    state.finalize().to_hex().to_string()
}

#[pymodule]
#[pyo3(name = "_native")]
fn native_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ApiAccess>()?;
    m.add_function(wrap_pyfunction!(leaves, m)?)?;
    m.add_function(wrap_pyfunction!(py_might_hold_secret, m)?)?;
    m.add_function(wrap_pyfunction!(py_might_mask, m)?)?;
    m.add_function(wrap_pyfunction!(py_canonical_ip, m)?)?;
    m.add_function(wrap_pyfunction!(document_id, m)?)?;
    m.add_function(wrap_pyfunction!(ml_columns::ml_columns, m)?)?;
    m.add_class::<rule_mask::RuleMask>()?;
    m.add_class::<corr_window::SlidingWindows>()?;
    m.add_class::<corr_window::SlideGroup>()?;
    m.add("ABI_VERSION", 1)?;
    Ok(())
}
