//! `ml_columns`: the columns step of the ML behaviour features, native (see
//! `detectors/ml/features/native_columns.py`, which turns the result into `EventColumns`).
//!
//! One pass over a list of ECS documents reads the fields `columns_from_docs` reads. A document this path
//! does not reproduce exactly is skipped (its index is returned; Python reads it): a document or an
//! intermediate level that is present but not an exact `dict`, a key there that is not an exact `str`
//! (`dict.get` would call its `__eq__`), a missing `@timestamp`, a number that is not an exact `int` (in the
//! i64 range) or, for the float columns, an exact `float` or such an `int`.
//! Timestamps are parsed here only in the normalized form `YYYY-MM-DDTHH:MM:SS.mmmZ` (ASCII, a valid date
//! and time of day: the reference reads only the first 16 characters); any other value is handed back with
//! its position for Python's `epoch_minute`. Text columns are returned as their factorization (codes in
//! order of first appearance, `None` and skipped documents -> -1) when every value read is `None` or an
//! exact `str` without NUL (what `pandas.factorize` codes the same way), with each distinct value's bit in
//! the distinct-value sketches (`sketch.bits_of`: a bit from zlib's CRC-32 of its UTF-8): else as the list
//! of values, and Python factorizes that column.
//!
//! Cost: each level of a document is walked once (`PyDict_Next`) for the members read there, instead of one
//! lookup per member, and each text value is coded by its object first (the normalizer's caches share the
//! objects of repeated values) before its text is hashed: 7,891 -> ~5,700 instructions per document
//! (callgrind; probing each key at its position in the last document's level instead of walking did not pay).

use std::cell::Cell;
use std::collections::HashMap;
use std::ptr;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyFloat, PyInt, PyList, PyString, PyTuple};

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

/// Some keys of a dict, read by one walk over its entries (`PyDict_Next`) instead of a lookup each. A key
/// matches by identity (the normalizer writes interned keys, and these are interned) or else as `dict.get`
/// matches it: an exact `str` of the same hash and text. A key of another type sends the document to Python.
///
/// Keys found not wanted are remembered (by address, a few of them: the other members the documents share),
/// so that the next level's same key objects are passed over without hashing them again.
struct Wanted<'py, const N: usize> {
    keys: [Bound<'py, PyString>; N],
    hashes: [ffi::Py_hash_t; N],
    /// Addresses of keys found not wanted (every document, and so every key, outlives the batch's read).
    others: Cell<[usize; OTHERS]>,
    /// How many of `others` are set.
    n_others: Cell<usize>,
}

/// Keys not wanted a level remembers.
const OTHERS: usize = 8;

impl<'py, const N: usize> Wanted<'py, N> {
    fn new(py: Python<'py>, names: [&str; N]) -> PyResult<Self> {
        let keys = names.map(|name| PyString::intern(py, name));
        let mut hashes = [0; N];
        for (hash, key) in hashes.iter_mut().zip(&keys) {
            *hash = key.hash()?;
        }
        Ok(Wanted {
            keys,
            hashes,
            others: Cell::new([0; OTHERS]),
            n_others: Cell::new(0),
        })
    }

    /// The values of the wanted keys in a level (borrowed; null where absent or the level is).
    fn pick(&self, level: Level) -> Result<[Ptr; N], Stop> {
        let mut out = [ptr::null_mut(); N];
        let Some(dict) = level else { return Ok(out) };
        let (mut pos, mut key, mut value) = (0, ptr::null_mut(), ptr::null_mut());
        let mut found = 0;
        // SAFETY: `dict` is an exact dict kept alive by its document, and no Python code runs while its
        // entries are walked (str hashing and comparison call none).
        while unsafe { ffi::PyDict_Next(dict, &mut pos, &mut key, &mut value) } != 0 {
            let at = match self.keys.iter().position(|k| k.as_ptr() == key) {
                Some(at) => at,
                None => match self.other(key)? {
                    Some(at) => at,
                    None => continue,
                },
            };
            out[at] = value;
            found += 1;
            if found == N {
                break; // the keys of a dict are distinct: no other entry is wanted
            }
        }
        Ok(out)
    }

    /// The wanted key equal to `key` (identical to none of them), if any; a key not wanted is remembered.
    fn other(&self, key: Ptr) -> Result<Option<usize>, Stop> {
        let (mut others, n) = (self.others.get(), self.n_others.get());
        if others[..n].contains(&(key as usize)) {
            return Ok(None);
        }
        let at = self.equal(key)?;
        if at.is_none() && n < OTHERS {
            others[n] = key as usize;
            self.others.set(others);
            self.n_others.set(n + 1);
        }
        Ok(at)
    }

    /// The wanted key equal to `key` (identical to none of them), if any.
    fn equal(&self, key: Ptr) -> Result<Option<usize>, Stop> {
        // SAFETY: `key` is a live object (a key of the dict being walked).
        if unsafe { ffi::PyUnicode_CheckExact(key) } == 0 {
            return Err(Stop::Fallback); // its __eq__ and __hash__ are Python's to call
        }
        let hash = unsafe { ffi::PyObject_Hash(key) }; // cached in the str (a dict key is hashed)
        if hash == -1 {
            return Err(Stop::Error(PyErr::fetch(self.keys[0].py())));
        }
        Ok((0..N).find(|&i| {
            self.hashes[i] == hash
                && unsafe { ffi::PyUnicode_Compare(key, self.keys[i].as_ptr()) } == 0
        }))
    }
}

/// A borrowed object (null: absent).
type Ptr = *mut ffi::PyObject;
/// A level of a document: an exact dict, or absent (`d.get(key, {})` of the Python path).
type Level = Option<Ptr>;

/// A member that must be a level: absent, or an exact dict.
fn level(value: Ptr) -> Result<Level, Stop> {
    if value.is_null() {
        Ok(None)
    // SAFETY: a non-null value is a live object of its document.
    } else if unsafe { ffi::PyDict_CheckExact(value) } != 0 {
        Ok(Some(value))
    } else {
        Err(Stop::Fallback)
    }
}

/// A borrowed leaf as a pyo3 reference (`None` when absent).
fn borrowed<'a, 'py>(py: Python<'py>, value: Ptr) -> Option<Borrowed<'a, 'py, PyAny>> {
    // SAFETY: null or a live object of its document, which outlives the read.
    unsafe { Borrowed::from_ptr_or_opt(py, value) }
}

/// An integer leaf as numpy's int64 conversion gives it (missing: 0).
fn int_of(v: Option<Borrowed<'_, '_, PyAny>>) -> Result<i64, Stop> {
    match v {
        None => Ok(0),
        Some(v) if v.is_exact_instance_of::<PyInt>() => {
            v.extract::<i64>().map_err(|_| Stop::Fallback)
        }
        Some(_) => Err(Stop::Fallback),
    }
}

/// A float leaf as numpy's float64 conversion gives it (missing: 0.0).
fn float_of(v: Option<Borrowed<'_, '_, PyAny>>) -> Result<f64, Stop> {
    match v {
        None => Ok(0.0),
        Some(v) if v.is_exact_instance_of::<PyFloat>() => Ok(v
            .cast_exact::<PyFloat>()
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

/// The keys read at each level, interned once per batch.
struct Keys<'py> {
    doc: Wanted<'py, 9>,
    http: Wanted<'py, 1>,
    response: Wanted<'py, 2>,
    logwarden: Wanted<'py, 1>,
    api: Wanted<'py, 3>,
    gen_ai: Wanted<'py, 1>,
    usage: Wanted<'py, 2>,
    source: Wanted<'py, 3>,
    geo: Wanted<'py, 1>,
    asn: Wanted<'py, 1>,
    url: Wanted<'py, 1>,
    user_agent: Wanted<'py, 1>,
    id: Wanted<'py, 1>,
}

impl<'py> Keys<'py> {
    fn new(py: Python<'py>) -> PyResult<Self> {
        Ok(Keys {
            doc: Wanted::new(
                py,
                [
                    "@timestamp",
                    "http",
                    "logwarden",
                    "gen_ai",
                    "source",
                    "url",
                    "user_agent",
                    "user",
                    "organization",
                ],
            )?,
            http: Wanted::new(py, ["response"])?,
            response: Wanted::new(py, ["status_code", "bytes"])?,
            logwarden: Wanted::new(py, ["api"])?,
            api: Wanted::new(py, ["latency_ms", "route", "key_id"])?,
            gen_ai: Wanted::new(py, ["usage"])?,
            usage: Wanted::new(py, ["input_tokens", "output_tokens"])?,
            source: Wanted::new(py, ["geo", "as", "ip"])?,
            geo: Wanted::new(py, ["country_iso_code"])?,
            asn: Wanted::new(py, ["number"])?,
            url: Wanted::new(py, ["path"])?,
            user_agent: Wanted::new(py, ["original"])?,
            id: Wanted::new(py, ["id"])?,
        })
    }
}

/// The values of one document (read whole before any is kept), borrowed from it.
struct Doc {
    /// The epoch minute, or the timestamp left to Python.
    minute: Result<i64, Ptr>,
    status: i64,
    floats: [f64; 4],
    /// The text columns' values (null: absent).
    text: [Ptr; TEXT],
}

/// One document's values, or `Stop::Fallback` when it is not read here.
fn read_doc(py: Python<'_>, doc: Ptr, k: &Keys<'_>) -> Result<Doc, Stop> {
    let [stamp, http, lw, gen_ai, source, url, agent, user, org] = k.doc.pick(level(doc)?)?;
    let stamp = borrowed(py, stamp).ok_or(Stop::Fallback)?;
    let parsed = match stamp.cast_exact::<PyString>() {
        Ok(s) => s.to_str().ok().and_then(canonical_minute),
        Err(_) => None,
    };
    let [response] = k.http.pick(level(http)?)?;
    let [status, bytes] = k.response.pick(level(response)?)?;
    let [api] = k.logwarden.pick(level(lw)?)?;
    let [latency, route, key_id] = k.api.pick(level(api)?)?;
    let [usage] = k.gen_ai.pick(level(gen_ai)?)?;
    let [input, output] = k.usage.pick(level(usage)?)?;
    let source = level(source)?;
    let [geo, asn, ip] = k.source.pick(source)?;
    let [country] = k.geo.pick(level(geo)?)?;
    let [number] = k.asn.pick(level(asn)?)?;
    let [path] = k.url.pick(level(url)?)?;
    let [original] = k.user_agent.pick(level(agent)?)?;
    let [user_id] = k.id.pick(level(user)?)?;
    let [org_id] = k.id.pick(level(org)?)?;
    Ok(Doc {
        minute: parsed.ok_or(stamp.as_ptr()),
        status: int_of(borrowed(py, status))?,
        floats: [
            float_of(borrowed(py, bytes))?,
            float_of(borrowed(py, input))?,
            float_of(borrowed(py, output))?,
            float_of(borrowed(py, latency))?,
        ],
        text: [
            route, path, country, number, original, key_id, user_id, ip, org_id,
        ],
    })
}

/// Slots of a text column's object cache (a power of two: Fibonacci hashing of the address picks one).
const OBJECT_BITS: u32 = 9;
const OBJECT_SLOTS: usize = 1 << OBJECT_BITS;

/// A text column, factorized as it is read (codes in order of first appearance, `None` -> -1; each distinct
/// value's bit in the distinct-value sketches) while every value is `None` or an exact `str` without NUL,
/// else the list of its values (Python factorizes it).
struct TextColumn<'py> {
    py: Python<'py>,
    /// Codes of objects seen, by address (every value outlives the read), so that a value the normalizer's
    /// caches made once is hashed once: a direct-mapped cache (a slot holds the last object that fell in it).
    by_object: Box<[(usize, i64); OBJECT_SLOTS]>,
    /// Code of each distinct text (borrowed from `uniques`, which keeps it alive).
    by_text: HashMap<&'py str, i64, ahash::RandomState>,
    codes: Vec<i64>,
    uniques: Vec<Bound<'py, PyAny>>,
    bits: Vec<u32>,
    /// Every value, once one is not coded here.
    values: Option<Vec<Option<Bound<'py, PyAny>>>>,
}

impl<'py> TextColumn<'py> {
    fn new(py: Python<'py>, n: usize) -> Self {
        TextColumn {
            py,
            by_object: Box::new([(0, 0); OBJECT_SLOTS]),
            by_text: HashMap::with_capacity_and_hasher(64, ahash::RandomState::new()),
            codes: Vec::with_capacity(n),
            uniques: Vec::new(),
            bits: Vec::new(),
            values: None,
        }
    }

    /// Add one value (null: absent).
    fn push(&mut self, value: Ptr) {
        let value = borrowed(self.py, value).filter(|v| !v.is_none());
        if let Some(values) = &mut self.values {
            values.push(value.map(|v| v.to_owned()));
            return;
        }
        let Some(value) = value else {
            self.codes.push(-1);
            return;
        };
        let address = value.as_ptr() as usize;
        let slot = address.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (usize::BITS - OBJECT_BITS);
        if self.by_object[slot].0 == address {
            self.codes.push(self.by_object[slot].1);
            return;
        }
        match self.code_of(value) {
            Some(code) => {
                self.by_object[slot] = (address, code);
                self.codes.push(code);
            }
            None => {
                let mut values: Vec<_> = self
                    .codes
                    .iter()
                    .map(|&c| usize::try_from(c).ok().map(|c| self.uniques[c].clone()))
                    .collect();
                values.push(Some(value.to_owned()));
                self.values = Some(values);
            }
        }
    }

    /// The code of a value not seen before as an object, or `None` when it is not coded here.
    fn code_of(&mut self, value: Borrowed<'_, 'py, PyAny>) -> Option<i64> {
        let string = value.cast_exact::<PyString>().ok()?;
        // SAFETY: the UTF-8 text lives as long as its str; a new distinct one is kept in `uniques` (or, with
        // a NUL, in `values`) below, so every key outlives its use (the map is dropped with the column).
        let text: &'py str = unsafe { &*std::ptr::from_ref::<str>(string.to_str().ok()?) };
        let next = self.uniques.len() as i64;
        let code = *self.by_text.entry(text).or_insert(next);
        if code == next {
            if text.contains('\0') {
                return None; // pandas compares all-string columns as C strings
            }
            self.uniques.push(value.to_owned());
            self.bits.push(sketch_bit(text));
        }
        Some(code)
    }

    /// `(None, (codes, distinct values, each value's sketch bit))` or `(values, None)` for the output.
    fn output(self) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let py = self.py;
        match self.values {
            Some(values) => Ok((
                PyList::new(py, values)?.into_any(),
                py.None().into_bound(py),
            )),
            None => {
                let coded = (
                    bytes_of(
                        py,
                        self.codes.len(),
                        self.codes.iter().map(|v| v.to_ne_bytes()),
                    )?,
                    PyList::new(py, self.uniques)?,
                    bytes_of(
                        py,
                        self.codes.len(),
                        self.codes.iter().map(|&c| {
                            let bit = usize::try_from(c).map_or(0, |c| self.bits[c]);
                            bit.to_ne_bytes()
                        }),
                    )?,
                );
                Ok((
                    py.None().into_bound(py),
                    coded.into_pyobject(py)?.into_any(),
                ))
            }
        }
    }
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
    let keys = Keys::new(py)?;
    let n = docs.len();
    let mut ints: [Vec<i64>; 2] = std::array::from_fn(|_| Vec::with_capacity(n));
    let mut floats: [Vec<f64>; 4] = std::array::from_fn(|_| Vec::with_capacity(n));
    let mut text: [TextColumn<'py>; TEXT] = std::array::from_fn(|_| TextColumn::new(py, n));
    let odd = PyList::empty(py);
    let mut skipped: Vec<usize> = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let doc = match read_doc(py, doc.as_ptr(), &keys) {
            Ok(doc) => doc,
            Err(Stop::Fallback) => {
                skipped.push(i); // read by Python; zeros and None here
                ints.iter_mut().for_each(|c| c.push(0));
                floats.iter_mut().for_each(|c| c.push(0.0));
                text.iter_mut().for_each(|c| c.push(ptr::null_mut()));
                continue;
            }
            Err(err) => return Err(err),
        };
        ints[0].push(*doc.minute.as_ref().unwrap_or(&0));
        if let Err(stamp) = doc.minute {
            odd.append((i, borrowed(py, stamp)))?;
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
    for column in text {
        let (values, coded) = column.output()?;
        columns.append(values)?;
        codes.append(coded)?;
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
/// each factorization: `(int64 codes as a bytearray, distinct values, each event's uint32 sketch bit as a
/// bytearray: 0 where it has no value)` or `None`; `skipped documents`:
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
