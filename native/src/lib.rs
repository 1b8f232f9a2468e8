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
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use serde::Deserialize;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

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
    key_id: Option<Py<PyString>>,
    string_leaf: Option<Py<PyAny>>,
    ua_parse: Option<Py<PyAny>>,
    /// per leaf: input string -> final value (strings repeat all day: routes, user agents, users, IPs)
    cache: Mutex<Vec<LeafCache>>,
}

/// Leaves whose values are unique per event: not cached.
const UNCACHED: [usize; 3] = [TIMESTAMP, EVENT_ID, REQUEST_ID];
/// Entries per leaf cache; a full cache is emptied (as the Python caches of the privacy pass are).
const CACHE_SIZE: usize = 16_384;

type LeafCache = HashMap<Box<str>, Cached, ahash::RandomState>;

/// A final value and the kinds its computation found (`logwarden.privacy.redacted` / `masked`).
struct Cached {
    value: Py<PyAny>,
    kinds: Option<Box<Kinds>>,
}

#[derive(Default)]
struct Kinds {
    redacted: Vec<String>,
    masked: Vec<String>,
}

/// What one call collects besides the document.
struct Found<'c> {
    kinds: Kinds,
    cache: Option<MutexGuard<'c, Vec<LeafCache>>>,
}

fn add_kinds(into: &mut Vec<String>, kinds: &[String]) {
    for kind in kinds {
        if !into.contains(kind) {
            into.push(kind.clone());
        }
    }
}

fn set<'py>(
    dict: &Bound<'py, PyDict>,
    key: &Bound<'py, PyString>,
    value: Option<Bound<'py, PyAny>>,
) -> PyResult<()> {
    match value {
        Some(v) => dict.set_item(key, v),
        None => Ok(()),
    }
}

fn set_child<'py>(
    dict: &Bound<'py, PyDict>,
    key: &Bound<'py, PyString>,
    child: &Bound<'py, PyDict>,
) -> PyResult<()> {
    if child.len() > 0 {
        dict.set_item(key, child)
    } else {
        Ok(())
    }
}

fn extract_kinds(kinds: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for kind in kinds.try_iter()? {
        out.push(kind?.extract()?);
    }
    Ok(out)
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
    fn call<'py>(
        &self,
        py: Python<'py>,
        value: &str,
        op: Op,
    ) -> PyResult<(Bound<'py, PyAny>, Option<Box<Kinds>>)> {
        let Some(string_leaf) = &self.string_leaf else {
            return Err(PyValueError::new_err("no privacy pass to ask"));
        };
        let result = string_leaf.bind(py).call1((value, op.flags))?;
        let result = result.cast::<PyTuple>()?;
        let kinds = Kinds {
            redacted: extract_kinds(&result.get_item(1)?)?,
            masked: extract_kinds(&result.get_item(2)?)?,
        };
        let kinds = if kinds.redacted.is_empty() && kinds.masked.is_empty() {
            None
        } else {
            Some(Box::new(kinds))
        };
        Ok((result.get_item(0)?, kinds))
    }

    /// The final value of a string at `leaf` (not dropped) and the kinds found, computed.
    fn compute<'py>(
        &self,
        py: Python<'py>,
        op: Op,
        value: &str,
    ) -> PyResult<(Bound<'py, PyAny>, Option<Box<Kinds>>)> {
        Ok(match op.action {
            PSEUDO => (
                PyString::new(py, &self.pseudonym_text(value)?).into_any(),
                None,
            ),
            CALL => self.call(py, value, op)?,
            CHECK if (op.scan && might_hold_secret(value)) || (op.mask && might_mask(value)) => {
                self.call(py, value, op)?
            }
            _ => (PyString::new(py, value).into_any(), None),
        })
    }

    /// The final value of a string at `leaf`; None = removed.
    fn text<'py>(
        &self,
        py: Python<'py>,
        leaf: usize,
        value: &str,
        found: &mut Found<'_>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let op = self.ops[leaf];
        if op.action == DROP {
            return Ok(None);
        }
        let cache = match &mut found.cache {
            Some(caches) if !UNCACHED.contains(&leaf) => &mut caches[leaf],
            _ => {
                let (out, kinds) = self.compute(py, op, value)?;
                if let Some(kinds) = kinds {
                    add_kinds(&mut found.kinds.redacted, &kinds.redacted);
                    add_kinds(&mut found.kinds.masked, &kinds.masked);
                }
                return Ok(Some(out));
            }
        };
        if let Some(hit) = cache.get(value) {
            if let Some(kinds) = &hit.kinds {
                add_kinds(&mut found.kinds.redacted, &kinds.redacted);
                add_kinds(&mut found.kinds.masked, &kinds.masked);
            }
            return Ok(Some(hit.value.bind(py).clone()));
        }
        let (out, kinds) = self.compute(py, op, value)?;
        if let Some(kinds) = &kinds {
            add_kinds(&mut found.kinds.redacted, &kinds.redacted);
            add_kinds(&mut found.kinds.masked, &kinds.masked);
        }
        if cache.len() >= CACHE_SIZE {
            cache.clear();
        }
        cache.insert(
            value.into(),
            Cached {
                value: out.clone().unbind(),
                kinds,
            },
        );
        Ok(Some(out))
    }

    /// A parser constant: interned, and only looked at when the plan does more than keep it.
    fn constant<'py>(
        &self,
        py: Python<'py>,
        leaf: usize,
        value: &Bound<'py, PyString>,
        found: &mut Found,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        match self.ops[leaf].action {
            KEEP => Ok(Some(value.clone().into_any())),
            _ => self.text(py, leaf, value.to_str()?, found),
        }
    }

    fn texts<'py, S: AsRef<str>>(
        &self,
        py: Python<'py>,
        leaf: usize,
        values: &[S],
        found: &mut Found,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        if self.ops[leaf].action == DROP {
            return Ok(None);
        }
        let list = PyList::empty(py);
        for value in values {
            if let Some(item) = self.text(py, leaf, value.as_ref(), found)? {
                list.append(item)?;
            }
        }
        Ok(Some(list.into_any()))
    }

    fn number<'py, T: IntoPyObject<'py>>(
        &self,
        py: Python<'py>,
        leaf: usize,
        value: T,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        if self.ops[leaf].action == DROP {
            return Ok(None);
        }
        Ok(Some(
            value
                .into_pyobject(py)
                .map_err(Into::into)?
                .into_any()
                .into_bound(),
        ))
    }

    fn build<'py>(&self, py: Python<'py>, e: &Event<'_>) -> PyResult<Bound<'py, PyDict>> {
        // try_lock: a callback into Python may let another thread in, which then runs without the cache
        let mut found = Found {
            kinds: Kinds::default(),
            cache: self.cache.try_lock().ok(),
        };
        let f = &mut found;
        let doc = PyDict::new(py);
        set(
            &doc,
            intern!(py, "@timestamp"),
            self.text(py, TIMESTAMP, &e.timestamp, f)?,
        )?;

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
        let event = PyDict::new(py);
        set(
            &event,
            intern!(py, "kind"),
            self.constant(py, EVENT_KIND, intern!(py, "event"), f)?,
        )?;
        set(
            &event,
            intern!(py, "category"),
            self.texts(py, EVENT_CATEGORY, category, f)?,
        )?;
        set(
            &event,
            intern!(py, "type"),
            self.texts(py, EVENT_TYPE, types, f)?,
        )?;
        set(
            &event,
            intern!(py, "action"),
            self.text(py, EVENT_ACTION, action, f)?,
        )?;
        let outcome = if e.status < 400 {
            intern!(py, "success")
        } else {
            intern!(py, "failure")
        };
        set(
            &event,
            intern!(py, "outcome"),
            self.constant(py, EVENT_OUTCOME, outcome, f)?,
        )?;
        let dataset = intern!(py, "logwarden.api_access");
        set(
            &event,
            intern!(py, "dataset"),
            self.constant(py, EVENT_DATASET, dataset, f)?,
        )?;
        set(
            &event,
            intern!(py, "module"),
            self.constant(py, EVENT_MODULE, intern!(py, "logwarden"), f)?,
        )?;
        if let Some(id) = &e.request_id {
            set(&event, intern!(py, "id"), self.text(py, EVENT_ID, id, f)?)?;
        }
        if let Some(latency) = e.latency_ms {
            set(
                &event,
                intern!(py, "duration"),
                self.number(py, EVENT_DURATION, (latency * 1_000_000.0) as i64)?,
            )?;
        }
        set_child(&doc, intern!(py, "event"), &event)?;

        let http = PyDict::new(py);
        let request = PyDict::new(py);
        set(
            &request,
            intern!(py, "method"),
            self.text(py, REQUEST_METHOD, e.method, f)?,
        )?;
        if let Some(body) = &e.body {
            let node = PyDict::new(py);
            set(
                &node,
                intern!(py, "content"),
                self.text(py, REQUEST_BODY, body, f)?,
            )?;
            set_child(&request, intern!(py, "body"), &node)?;
        }
        if let Some(id) = &e.request_id {
            set(
                &request,
                intern!(py, "id"),
                self.text(py, REQUEST_ID, id, f)?,
            )?;
        }
        if let Some(bytes) = e.bytes_in {
            set(
                &request,
                intern!(py, "bytes"),
                self.number(py, REQUEST_BYTES, bytes)?,
            )?;
        }
        set_child(&http, intern!(py, "request"), &request)?;
        let response = PyDict::new(py);
        set(
            &response,
            intern!(py, "status_code"),
            self.number(py, RESPONSE_STATUS, e.status)?,
        )?;
        if let Some(bytes) = e.bytes_out {
            set(
                &response,
                intern!(py, "bytes"),
                self.number(py, RESPONSE_BYTES, bytes)?,
            )?;
        }
        set_child(&http, intern!(py, "response"), &response)?;
        set_child(&doc, intern!(py, "http"), &http)?;

        let url = PyDict::new(py);
        set(
            &url,
            intern!(py, "path"),
            self.text(py, URL_PATH, &e.path, f)?,
        )?;
        let original = match &e.query {
            Some(query) => self.text(py, URL_ORIGINAL, &format!("{}?{}", e.path, query), f)?,
            None => self.text(py, URL_ORIGINAL, &e.path, f)?,
        };
        set(&url, intern!(py, "original"), original)?;
        if let Some(query) = &e.query {
            set(
                &url,
                intern!(py, "query"),
                self.text(py, URL_QUERY, query, f)?,
            )?;
        }
        set_child(&doc, intern!(py, "url"), &url)?;

        let lw = PyDict::new(py);
        set(
            &lw,
            intern!(py, "source"),
            self.constant(py, LW_SOURCE, intern!(py, "api_access"), f)?,
        )?;
        let api = PyDict::new(py);
        set(
            &api,
            intern!(py, "route"),
            self.text(py, API_ROUTE, &e.route, f)?,
        )?;
        if let Some(latency) = e.latency_ms {
            set(
                &api,
                intern!(py, "latency_ms"),
                self.number(py, API_LATENCY, latency)?,
            )?;
        }
        if let Some(key_id) = &e.api_key_id {
            set(
                &api,
                intern!(py, "key_id"),
                self.text(py, API_KEY_ID, key_id, f)?,
            )?;
        }
        if let Some(auth) = &e.auth_method {
            set(
                &api,
                intern!(py, "auth_method"),
                self.text(py, API_AUTH_METHOD, auth, f)?,
            )?;
        }
        if let Some(mfa) = e.mfa {
            set(&api, intern!(py, "mfa"), self.number(py, API_MFA, mfa)?)?;
        }
        set_child(&lw, intern!(py, "api"), &api)?;
        set_child(&doc, intern!(py, "logwarden"), &lw)?;

        if let Some(ip) = &e.client_ip {
            let source = PyDict::new(py);
            set(&source, intern!(py, "ip"), self.text(py, SOURCE_IP, ip, f)?)?;
            set(
                &source,
                intern!(py, "address"),
                self.text(py, SOURCE_ADDRESS, ip, f)?,
            )?;
            set_child(&doc, intern!(py, "source"), &source)?;
        }
        if let Some(first) = e.forwarded.first() {
            let network = PyDict::new(py);
            set(
                &network,
                intern!(py, "forwarded_ip"),
                self.text(py, FORWARDED_IP, first, f)?,
            )?;
            set_child(&doc, intern!(py, "network"), &network)?;
        }
        if let Some(user) = &e.user_id {
            let node = PyDict::new(py);
            set(&node, intern!(py, "id"), self.text(py, USER_ID, user, f)?)?;
            set_child(&doc, intern!(py, "user"), &node)?;
        }
        if let Some(org) = &e.org_id {
            let node = PyDict::new(py);
            set(&node, intern!(py, "id"), self.text(py, ORG_ID, org, f)?)?;
            set_child(&doc, intern!(py, "organization"), &node)?;
        }
        if let Some(agent) = &e.user_agent {
            let node = self.user_agent(py, agent, f)?;
            set_child(&doc, intern!(py, "user_agent"), &node)?;
        }
        if let Some((version, protocol)) = &e.tls {
            let node = PyDict::new(py);
            match protocol {
                Some(protocol) => {
                    let number = &version[version.find('v').map_or(0, |i| i + 1)..];
                    set(
                        &node,
                        intern!(py, "version"),
                        self.text(py, TLS_VERSION, number, f)?,
                    )?;
                    set(
                        &node,
                        intern!(py, "version_protocol"),
                        self.text(py, TLS_PROTOCOL, protocol, f)?,
                    )?;
                }
                None => set(
                    &node,
                    intern!(py, "version"),
                    self.text(py, TLS_VERSION, version, f)?,
                )?,
            }
            set_child(&doc, intern!(py, "tls"), &node)?;
        }
        let gen_ai = PyDict::new(py);
        if let Some(model) = &e.model {
            let request = PyDict::new(py);
            let model_node = PyDict::new(py);
            set(
                &model_node,
                intern!(py, "id"),
                self.text(py, MODEL_ID, model, f)?,
            )?;
            set_child(&request, intern!(py, "model"), &model_node)?;
            set_child(&gen_ai, intern!(py, "request"), &request)?;
        }
        if e.input_tokens.is_some() || e.output_tokens.is_some() {
            let usage = PyDict::new(py);
            if let Some(n) = e.input_tokens {
                set(
                    &usage,
                    intern!(py, "input_tokens"),
                    self.number(py, INPUT_TOKENS, n)?,
                )?;
            }
            if let Some(n) = e.output_tokens {
                set(
                    &usage,
                    intern!(py, "output_tokens"),
                    self.number(py, OUTPUT_TOKENS, n)?,
                )?;
            }
            set_child(&gen_ai, intern!(py, "usage"), &usage)?;
        }
        set_child(&doc, intern!(py, "gen_ai"), &gen_ai)?;

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
            let related = PyDict::new(py);
            if !related_ip.is_empty() {
                set(
                    &related,
                    intern!(py, "ip"),
                    self.texts(py, RELATED_IP, &related_ip, f)?,
                )?;
            }
            if let Some(user) = &e.user_id {
                set(
                    &related,
                    intern!(py, "user"),
                    self.texts(py, RELATED_USER, &[user], f)?,
                )?;
            }
            set_child(&doc, intern!(py, "related"), &related)?;
        }

        self.privacy_entries(py, &doc, found)?;
        Ok(doc)
    }

    /// `user_agent`: the original, then what `UserAgentEnricher.parse` adds (when it runs).
    fn user_agent<'py>(
        &self,
        py: Python<'py>,
        original: &str,
        f: &mut Found,
    ) -> PyResult<Bound<'py, PyDict>> {
        let node = PyDict::new(py);
        set(
            &node,
            intern!(py, "original"),
            self.text(py, UA_ORIGINAL, original, f)?,
        )?;
        let Some(parse) = &self.ua_parse else {
            return Ok(node);
        };
        let parsed = parse.bind(py).call1((original,))?;
        let parsed = parsed.cast::<PyTuple>()?;
        let part = |i: usize| -> PyResult<Option<String>> { parsed.get_item(i)?.extract() };
        let (name, version, os_name, os_version, device) =
            (part(0)?, part(1)?, part(2)?, part(3)?, part(4)?);
        if let Some(name) = name {
            set(
                &node,
                intern!(py, "name"),
                self.text(py, UA_NAME, &name, f)?,
            )?;
        }
        if let Some(version) = version {
            set(
                &node,
                intern!(py, "version"),
                self.text(py, UA_VERSION, &version, f)?,
            )?;
        }
        if let Some(os_name) = os_name {
            let os = PyDict::new(py);
            set(
                &os,
                intern!(py, "name"),
                self.text(py, UA_OS_NAME, &os_name, f)?,
            )?;
            if let Some(os_version) = os_version {
                set(
                    &os,
                    intern!(py, "version"),
                    self.text(py, UA_OS_VERSION, &os_version, f)?,
                )?;
            }
            set_child(&node, intern!(py, "os"), &os)?;
        }
        if let Some(device) = device {
            let dev = PyDict::new(py);
            set(
                &dev,
                intern!(py, "name"),
                self.text(py, UA_DEVICE_NAME, &device, f)?,
            )?;
            set_child(&node, intern!(py, "device"), &dev)?;
        }
        Ok(node)
    }

    /// `logwarden.privacy`: key id, then the kinds redacted and masked (sorted), as the pass writes them.
    fn privacy_entries<'py>(
        &self,
        py: Python<'py>,
        doc: &Bound<'py, PyDict>,
        found: Found<'_>,
    ) -> PyResult<()> {
        let mut found = found.kinds;
        if self.key_id.is_none() && found.redacted.is_empty() && found.masked.is_empty() {
            return Ok(());
        }
        let lw = match doc.get_item(intern!(py, "logwarden"))? {
            Some(lw) => lw.cast_into::<PyDict>()?,
            None => {
                let lw = PyDict::new(py);
                doc.set_item(intern!(py, "logwarden"), &lw)?;
                lw
            }
        };
        let node = PyDict::new(py);
        if let Some(key_id) = &self.key_id {
            node.set_item(intern!(py, "key_id"), key_id.bind(py))?;
        }
        if !found.redacted.is_empty() {
            found.redacted.sort();
            node.set_item(intern!(py, "redacted"), PyList::new(py, &found.redacted)?)?;
        }
        if !found.masked.is_empty() {
            found.masked.sort();
            node.set_item(intern!(py, "masked"), PyList::new(py, &found.masked)?)?;
        }
        lw.set_item(intern!(py, "privacy"), node)
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
        let prefix = match &key_id {
            Some(id) => format!("ps_{}_", id.to_str()?),
            None => String::new(),
        };
        Ok(ApiAccess {
            ops,
            mac,
            prefix,
            key_id: key_id.map(Bound::unbind),
            string_leaf,
            ua_parse,
            cache: Mutex::new((0..LEAVES.len()).map(|_| LeafCache::default()).collect()),
        })
    }

    /// The final document of one raw gateway event, or None: not handled here, run the Python chain.
    fn __call__<'py>(&self, py: Python<'py>, raw: &[u8]) -> PyResult<Option<Bound<'py, PyDict>>> {
        match decode(raw) {
            Some(event) => self.build(py, &event).map(Some),
            None => Ok(None),
        }
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
    m.add("ABI_VERSION", 1)?;
    Ok(())
}
