//! `ml_columns`: the columns step of the ML behaviour features, native (see
//! `detectors/ml/features/native_columns.py`, which turns the result into `EventColumns`).
//!
//! One pass over a list of ECS documents reads the fields `columns_from_docs` reads. A document this path
//! does not reproduce exactly is skipped (its index is returned; Python reads it): a document or an
//! intermediate level that is present but not an exact `dict`, a missing `@timestamp`, a number that is
//! not an exact `int` (in the i64 range) or, for the float columns, an exact `float` or such an `int`.
//! Timestamps are parsed here only in the normalized form `YYYY-MM-DDTHH:MM:SS.mmmZ` (ASCII, a valid date
//! and time of day: the reference reads only the first 16 characters); any other value is handed back with
//! its position for Python's `epoch_minute`. Text columns are returned as their factorization (codes in
//! order of first appearance, `None` and skipped documents -> -1) when every value read is `None` or an
//! exact `str` without NUL (what `pandas.factorize` codes the same way), with each distinct value's bit in
//! the distinct-value sketches (`sketch.bits_of`: a bit from zlib's CRC-32 of its UTF-8): else as the list
//! of values, and Python factorizes that column.

use std::collections::HashMap;

use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// Text columns, in output order: route, path, country, ASN, user agent, API key, user, source IP, org.
const TEXT: usize = 9;

/// Why a batch is not converted here.
enum Stop {
    /// Something this path does not reproduce: the caller runs the Python path.
    Fallback,
    /// A Python error (a key's `__eq__` raising ...): propagated.
    Error(PyErr),
}

impl From<PyErr> for Stop {
    fn from(err: PyErr) -> Self {
        Stop::Error(err)
    }
}

type Level<'py> = Option<Bound<'py, PyDict>>;

/// `d.get(key, {})` where a present value must be an exact dict (`None` stands for the empty one).
fn level<'py>(d: &Level<'py>, key: &Bound<'py, PyString>) -> Result<Level<'py>, Stop> {
    let Some(d) = d else { return Ok(None) };
    match d.get_item(key)? {
        None => Ok(None),
        Some(v) => v
            .cast_into_exact::<PyDict>()
            .map(Some)
            .map_err(|_| Stop::Fallback),
    }
}

/// `d.get(key)`, or `None` when the level is missing.
fn leaf<'py>(d: &Level<'py>, key: &Bound<'py, PyString>) -> PyResult<Option<Bound<'py, PyAny>>> {
    d.as_ref().map_or(Ok(None), |d| d.get_item(key))
}

/// An integer leaf as numpy's int64 conversion gives it (missing: 0).
fn int_of(v: Option<Bound<'_, PyAny>>) -> Result<i64, Stop> {
    match v {
        None => Ok(0),
        Some(v) if v.is_exact_instance_of::<PyInt>() => {
            v.extract::<i64>().map_err(|_| Stop::Fallback)
        }
        Some(_) => Err(Stop::Fallback),
    }
}

/// A float leaf as numpy's float64 conversion gives it (missing: 0.0).
fn float_of(v: Option<Bound<'_, PyAny>>) -> Result<f64, Stop> {
    match v {
        None => Ok(0.0),
        Some(v) if v.is_exact_instance_of::<PyFloat>() => Ok(v
            .cast_into_exact::<PyFloat>()
            .map_err(|_| Stop::Fallback)?
            .value()),
        Some(v) if v.is_exact_instance_of::<PyInt>() => {
            // i64 -> f64 rounds to nearest, ties to even: as Python's int -> float
            v.extract::<i64>()
                .map(|i| i as f64)
                .map_err(|_| Stop::Fallback)
        }
        Some(_) => Err(Stop::Fallback),
    }
}

/// Days in a month of the proleptic Gregorian calendar.
fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a valid civil date (years 1 to 9999).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    era * 146_097 + year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year - 719_468
}

/// The epoch minute of a normalized timestamp (`YYYY-MM-DDTHH:MM:SS.mmmZ`, ASCII, valid), else `None`.
pub(crate) fn canonical_minute(text: &str) -> Option<i64> {
    let s = text.as_bytes();
    if s.len() != 24 || s[23] != b'Z' || !s.is_ascii() {
        return None;
    }
    if s[4] != b'-' || s[7] != b'-' || s[10] != b'T' || s[13] != b':' {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<i64> {
        s[from..to].iter().try_fold(0_i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute) = (number(11, 13)?, number(14, 16)?);
    let valid = year >= 1
        && (1..=12).contains(&month)
        && day >= 1
        && day <= days_in_month(year, month)
        && hour <= 23
        && minute <= 59;
    valid.then(|| days_from_civil(year, month, day) * 1440 + hour * 60 + minute)
}

/// The CRC-32 (IEEE, reflected: zlib's `crc32`) lookup table.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0_u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// zlib's `crc32` of some bytes.
fn crc32(bytes: &[u8]) -> u32 {
    !bytes.iter().fold(!0_u32, |c, &b| {
        CRC_TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8)
    })
}

/// A value's bit in the 32-bit distinct-value sketches (`sketch.bits_of`): `1 << (crc32(utf-8) & 31)`.
fn sketch_bit(text: &str) -> u32 {
    1 << (crc32(text.as_bytes()) & 31)
}

/// Codes in order of first appearance (`None` -> -1) and the position of each distinct value's first
/// appearance, when every value is `None` or an exact `str` without NUL; else `None`.
fn factorize(values: &[Option<Bound<'_, PyAny>>]) -> Option<(Vec<i64>, Vec<usize>, Vec<u32>)> {
    let mut index: HashMap<&str, i64, ahash::RandomState> =
        HashMap::with_capacity_and_hasher(64, ahash::RandomState::new());
    let mut codes = Vec::with_capacity(values.len());
    let mut firsts = Vec::new();
    let mut bits = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let Some(v) = v.as_ref().filter(|v| !v.is_none()) else {
            codes.push(-1);
            continue;
        };
        let text = v.cast_exact::<PyString>().ok()?.to_str().ok()?;
        let next = firsts.len() as i64;
        let code = *index.entry(text).or_insert(next);
        if code == next {
            if text.contains('\0') {
                return None; // pandas compares all-string columns as C strings
            }
            firsts.push(i);
            bits.push(sketch_bit(text));
        }
        codes.push(code);
    }
    Some((codes, firsts, bits))
}

/// The keys read, interned once per batch.
struct Keys<'py> {
    timestamp: Bound<'py, PyString>,
    http: Bound<'py, PyString>,
    response: Bound<'py, PyString>,
    status_code: Bound<'py, PyString>,
    bytes: Bound<'py, PyString>,
    logwarden: Bound<'py, PyString>,
    api: Bound<'py, PyString>,
    latency_ms: Bound<'py, PyString>,
    route: Bound<'py, PyString>,
    key_id: Bound<'py, PyString>,
    gen_ai: Bound<'py, PyString>,
    usage: Bound<'py, PyString>,
    input_tokens: Bound<'py, PyString>,
    output_tokens: Bound<'py, PyString>,
    url: Bound<'py, PyString>,
    path: Bound<'py, PyString>,
    source: Bound<'py, PyString>,
    geo: Bound<'py, PyString>,
    country: Bound<'py, PyString>,
    asn: Bound<'py, PyString>,
    number: Bound<'py, PyString>,
    ip: Bound<'py, PyString>,
    user_agent: Bound<'py, PyString>,
    original: Bound<'py, PyString>,
    user: Bound<'py, PyString>,
    id: Bound<'py, PyString>,
    org: Bound<'py, PyString>,
}

impl<'py> Keys<'py> {
    fn new(py: Python<'py>) -> Self {
        let k = |name: &str| PyString::intern(py, name);
        Keys {
            timestamp: k("@timestamp"),
            http: k("http"),
            response: k("response"),
            status_code: k("status_code"),
            bytes: k("bytes"),
            logwarden: k("logwarden"),
            api: k("api"),
            latency_ms: k("latency_ms"),
            route: k("route"),
            key_id: k("key_id"),
            gen_ai: k("gen_ai"),
            usage: k("usage"),
            input_tokens: k("input_tokens"),
            output_tokens: k("output_tokens"),
            url: k("url"),
            path: k("path"),
            source: k("source"),
            geo: k("geo"),
            country: k("country_iso_code"),
            asn: k("as"),
            number: k("number"),
            ip: k("ip"),
            user_agent: k("user_agent"),
            original: k("original"),
            user: k("user"),
            id: k("id"),
            org: k("organization"),
        }
    }
}

/// The values of one document (read whole before any is kept).
struct Doc<'py> {
    /// The epoch minute, or the timestamp left to Python.
    minute: Result<i64, Bound<'py, PyAny>>,
    status: i64,
    floats: [f64; 4],
    text: [Option<Bound<'py, PyAny>>; TEXT],
}

/// One document's values, or `Stop::Fallback` when it is not read here.
fn read_doc<'py>(doc: Bound<'py, PyAny>, k: &Keys<'py>) -> Result<Doc<'py>, Stop> {
    let doc = Some(
        doc.cast_into_exact::<PyDict>()
            .map_err(|_| Stop::Fallback)?,
    );
    let stamp = leaf(&doc, &k.timestamp)?.ok_or(Stop::Fallback)?;
    let parsed = match stamp.cast_exact::<PyString>() {
        Ok(s) => s.to_str().ok().and_then(canonical_minute),
        Err(_) => None,
    };
    let resp = level(&level(&doc, &k.http)?, &k.response)?;
    let lw_api = level(&level(&doc, &k.logwarden)?, &k.api)?;
    let use_ = level(&level(&doc, &k.gen_ai)?, &k.usage)?;
    let src = level(&doc, &k.source)?;
    let status = int_of(leaf(&resp, &k.status_code)?)?;
    let floats = [
        float_of(leaf(&resp, &k.bytes)?)?,
        float_of(leaf(&use_, &k.input_tokens)?)?,
        float_of(leaf(&use_, &k.output_tokens)?)?,
        float_of(leaf(&lw_api, &k.latency_ms)?)?,
    ];
    let text = [
        leaf(&lw_api, &k.route)?,
        leaf(&level(&doc, &k.url)?, &k.path)?,
        leaf(&level(&src, &k.geo)?, &k.country)?,
        leaf(&level(&src, &k.asn)?, &k.number)?,
        leaf(&level(&doc, &k.user_agent)?, &k.original)?,
        leaf(&lw_api, &k.key_id)?,
        leaf(&level(&doc, &k.user)?, &k.id)?,
        leaf(&src, &k.ip)?,
        leaf(&level(&doc, &k.org)?, &k.id)?,
    ];
    Ok(Doc {
        minute: parsed.ok_or(stamp),
        status,
        floats,
        text,
    })
}

/// A bytearray of the values' native-endian bytes.
fn bytes_of<'py, const W: usize>(
    py: Python<'py>,
    len: usize,
    values: impl Iterator<Item = [u8; W]>,
) -> PyResult<Bound<'py, PyByteArray>> {
    PyByteArray::new_with(py, W * len, |buf| {
        for (chunk, v) in buf.chunks_exact_mut(W).zip(values) {
            chunk.copy_from_slice(&v);
        }
        Ok(())
    })
}

/// The columns of a batch (see the module documentation), or `Stop`.
fn read<'py>(docs: &Bound<'py, PyList>) -> Result<Bound<'py, PyTuple>, Stop> {
    let py = docs.py();
    let keys = Keys::new(py);
    let n = docs.len();
    let mut ints: [Vec<i64>; 2] = std::array::from_fn(|_| Vec::with_capacity(n));
    let mut floats: [Vec<f64>; 4] = std::array::from_fn(|_| Vec::with_capacity(n));
    let mut text: [Vec<Option<Bound<'py, PyAny>>>; TEXT] =
        std::array::from_fn(|_| Vec::with_capacity(n));
    let odd = PyList::empty(py);
    let mut skipped: Vec<usize> = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let doc = match read_doc(doc, &keys) {
            Ok(doc) => doc,
            Err(Stop::Fallback) => {
                skipped.push(i); // read by Python; zeros and None here
                ints.iter_mut().for_each(|c| c.push(0));
                floats.iter_mut().for_each(|c| c.push(0.0));
                text.iter_mut().for_each(|c| c.push(None));
                continue;
            }
            Err(err) => return Err(err),
        };
        ints[0].push(*doc.minute.as_ref().unwrap_or(&0));
        if let Err(stamp) = doc.minute {
            odd.append((i, stamp))?;
        }
        ints[1].push(doc.status);
        for (column, value) in floats.iter_mut().zip(doc.floats) {
            column.push(value);
        }
        for (column, value) in text.iter_mut().zip(doc.text) {
            column.push(value);
        }
    }
    if skipped.len() == n {
        return Err(Stop::Fallback);
    }
    let numbers = bytes_of(
        py,
        6 * n,
        ints.iter()
            .flatten()
            .map(|v| v.to_ne_bytes())
            .chain(floats.iter().flatten().map(|v| v.to_ne_bytes())),
    )?;
    let columns = PyList::empty(py);
    let codes = PyList::empty(py);
    for column in &text {
        match factorize(column) {
            Some((c, firsts, bits)) => {
                let uniques = PyList::new(py, firsts.iter().map(|&i| &column[i]))?;
                codes.append((
                    bytes_of(py, c.len(), c.iter().map(|v| v.to_ne_bytes()))?,
                    uniques,
                    bytes_of(py, bits.len(), bits.iter().map(|v| v.to_ne_bytes()))?,
                ))?;
                columns.append(py.None())?; // Python builds it from the codes
            }
            None => {
                codes.append(py.None())?;
                columns.append(PyList::new(py, column)?)?;
            }
        }
    }
    Ok(PyTuple::new(
        py,
        [
            numbers.into_any(),
            odd.into_any(),
            columns.into_any(),
            codes.into_any(),
            PyList::new(py, skipped)?.into_any(),
        ],
    )?)
}

/// `(numbers, odd timestamps, text columns, factorizations, skipped documents)` of a list of ECS
/// documents, or `None` (run the Python path for the whole batch: every document was skipped). `numbers`:
/// a bytearray of six native-endian 8-byte columns (epoch minute and status as int64, then bytes out,
/// input tokens, output tokens and latency as float64); `odd timestamps`: `(index, value)` of the
/// timestamps left to Python (their minute is 0 here); `text columns`: nine items, each `None` where the
/// column is factorized (its values are the distinct values at their codes) or else the list of values;
/// each factorization: `(int64 codes as a bytearray, distinct values, their uint32 sketch bits as a
/// bytearray)` or `None`; `skipped documents`:
/// the indices of the documents not read here (a level or number this path does not reproduce exactly:
/// their numbers are 0 and their text values `None` here; Python reads them).
#[pyfunction]
pub fn ml_columns<'py>(docs: &Bound<'py, PyList>) -> PyResult<Option<Bound<'py, PyTuple>>> {
    match read(docs) {
        Ok(out) => Ok(Some(out)),
        Err(Stop::Fallback) => Ok(None),
        Err(Stop::Error(err)) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalized_timestamps_parse_to_epoch_minutes() {
        assert_eq!(canonical_minute("1970-01-01T00:00:59.999Z"), Some(0));
        assert_eq!(
            canonical_minute("2026-11-02T08:00:00.123Z"),
            Some(29_893_440)
        );
        assert_eq!(
            canonical_minute("2024-02-29T00:01:00.000Z"),
            Some(days_from_civil(2024, 2, 29) * 1440 + 1)
        );
        assert_eq!(
            canonical_minute("0001-01-01T00:00:00.000Z"),
            Some(-719_162 * 1440)
        );
    }

    #[test]
    fn crc32_is_zlibs() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(sketch_bit("/v1/models"), 1 << (crc32(b"/v1/models") & 31));
    }

    #[test]
    fn other_forms_are_left_to_python() {
        for text in [
            "2023-02-29T00:00:00.000Z",
            "2026-13-01T00:00:00.000Z",
            "2026-11-31T00:00:00.000Z",
            "2026-11-02T24:00:00.000Z",
            "2026-11-02T08:60:00.000Z",
            "0000-01-01T00:00:00.000Z",
            "2026-11-02 08:00:00.000Z",
            "2026-11-02T08:00:00.000+",
            "2026-11-02T08:00:00.00Z",
            "2026-11-02T08:00:00.é0Z",
            "+026-11-02T08:00:00.000Z",
        ] {
            assert_eq!(canonical_minute(text), None, "{text}");
        }
    }
}
