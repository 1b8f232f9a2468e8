//! `SlidingWindows` and `SlideGroup`: the sliding-window correlator of the types with a running aggregate
//! (`event_count`, `value_count`, `temporal`, `value_sum`), native. `detectors/sigma/corr_window.py`
//! (`SlidingCorrelator`, with `detectors/sigma/windows.py`) is the reference: this is the same algorithm,
//! step for step (the same items kept, the same windows checked in the same order, the same float
//! operations of a running sum in the same order), with the group state in Rust instead of Python objects.
//!
//! Python keeps what is not per-event work: the groups live in a `GroupStore` (an `OrderedDict` of
//! `SlideGroup`, least recently used evicted first, new groups made by its `touch`), detections are built
//! and updated by `make_detection`/`absorb`, an extended temporal condition and the exact recount of a sum
//! that overflowed to infinity are Python callables. Group keys and values are read from the hit's
//! `FieldView` the way `key_reader`/`value_reader` read them (values stored in the view; the field walked
//! through exact dicts, else its Python getter); the other value readers are called as they are.

use std::collections::VecDeque;

use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PyString, PyTuple};

use crate::rule_mask::{field_values, split_name};

/// One event of a group: `(t, ts, event id, value, risk)` in Python, plus the value as a float for sums.
struct Item {
    t: f64,
    ts: Py<PyAny>,
    event_id: Py<PyAny>,
    value: Py<PyAny>,
    num: f64,
    risk: Py<PyAny>,
}

impl Item {
    fn tuple<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(
            py,
            [
                PyFloat::new(py, self.t).into_any(),
                self.ts.bind(py).clone(),
                self.event_id.bind(py).clone(),
                self.value.bind(py).clone(),
                self.risk.bind(py).clone(),
            ],
        )
    }
}

type Items = VecDeque<Item>;

/// A list of the items `items[lo..hi]` as Python tuples.
fn item_list<'py>(
    py: Python<'py>,
    items: &Items,
    lo: usize,
    hi: usize,
) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for item in items.range(lo..hi) {
        list.append(item.tuple(py)?)?;
    }
    Ok(list)
}

/// The first position whose time is `>= t` (`_at_or_after`).
fn at_or_after(items: &Items, t: f64) -> usize {
    items.partition_point(|i| i.t < t)
}

/// The first position whose time is `> t` (`_after`).
fn after(items: &Items, t: f64) -> usize {
    items.partition_point(|i| i.t <= t)
}

#[derive(Clone, Copy)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

/// The condition `aggregate <op> threshold`, as `COMPARATORS[op](aggregate, count)`.
struct Condition {
    op: Op,
    /// The threshold as a float when comparing with it as a float is exact (a float, or an integer of at
    /// most 53 bits); else the comparison is Python's.
    threshold: Option<f64>,
    threshold_obj: Py<PyAny>,
    compare: Py<PyAny>,
}

impl Condition {
    fn float(&self, py: Python<'_>, x: f64) -> PyResult<bool> {
        match self.threshold {
            Some(t) => Ok(match self.op {
                Op::Lt => x < t,
                Op::Le => x <= t,
                Op::Gt => x > t,
                Op::Ge => x >= t,
                Op::Eq => x == t,
                Op::Ne => x != t,
            }),
            None => self
                .compare
                .bind(py)
                .call1((x, self.threshold_obj.bind(py)))?
                .is_truthy(),
        }
    }

    fn count(&self, py: Python<'_>, n: usize) -> PyResult<bool> {
        match self.threshold {
            Some(_) => self.float(py, n as f64), // counts stay far below 2^53: exact
            None => self
                .compare
                .bind(py)
                .call1((n, self.threshold_obj.bind(py)))?
                .is_truthy(),
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Count,
    Distinct,
    Sum,
}

/// A running aggregate (`Window`, `Distinct`, `Sum` of `windows.py`).
enum Agg {
    Count(usize),
    Distinct(Py<PyDict>),
    Sum { total: f64, negative: i64 },
}

/// What the aggregates need from the rule.
struct Rule {
    kind: Kind,
    condition: Condition,
    expression: Option<Py<PyAny>>,
    /// `items -> bool`: `satisfied(rule, items)` (the exact recount of a sum that is not finite).
    satisfied: Py<PyAny>,
}

impl Rule {
    fn new_agg(&self, py: Python<'_>) -> Agg {
        match self.kind {
            Kind::Count => Agg::Count(0),
            Kind::Distinct => Agg::Distinct(PyDict::new(py).unbind()),
            Kind::Sum => Agg::Sum {
                total: 0.0,
                negative: 0,
            },
        }
    }

    /// `running(rule, items[lo..hi])`.
    fn running(&self, py: Python<'_>, items: &Items, lo: usize, hi: usize) -> PyResult<Agg> {
        let mut agg = self.new_agg(py);
        for item in items.range(lo..hi) {
            add(py, &mut agg, item)?;
        }
        Ok(agg)
    }

    fn distinct_met(&self, py: Python<'_>, counts: &Bound<'_, PyDict>) -> PyResult<bool> {
        match &self.expression {
            Some(expression) => {
                let seen = PyFrozenSet::new(py, counts.keys().iter())?;
                expression.bind(py).call1((seen,))?.is_truthy()
            }
            None => self.condition.count(py, counts.len()),
        }
    }

    fn met(
        &self,
        py: Python<'_>,
        agg: &Agg,
        items: &Items,
        lo: usize,
        hi: usize,
    ) -> PyResult<bool> {
        match agg {
            Agg::Count(n) => self.condition.count(py, *n),
            Agg::Distinct(counts) => self.distinct_met(py, counts.bind(py)),
            Agg::Sum { total, .. } => {
                if total.is_finite() {
                    self.condition.float(py, *total)
                } else {
                    self.satisfied
                        .bind(py)
                        .call1((item_list(py, items, lo, hi)?,))?
                        .is_truthy()
                }
            }
        }
    }

    fn rules_out(&self, py: Python<'_>, agg: &Agg, items: &Items) -> PyResult<bool> {
        match agg {
            Agg::Sum { negative, .. } => {
                Ok(*negative == 0 && !self.met(py, agg, items, 0, items.len())?)
            }
            _ => Ok(!self.met(py, agg, items, 0, items.len())?),
        }
    }

    /// `Window.slide`: the items before `start` leave (`lo` moves past them), then the newest item (just
    /// appended) enters; whether the condition holds.
    fn slide(
        &self,
        py: Python<'_>,
        agg: &mut Agg,
        items: &Items,
        lo: &mut usize,
        start: f64,
    ) -> PyResult<bool> {
        let newest = items
            .back()
            .ok_or_else(|| PyValueError::new_err("no items"))?;
        match agg {
            Agg::Count(n) => {
                while items[*lo].t < start {
                    *lo += 1;
                    *n -= 1;
                }
                *n += 1;
                self.condition.count(py, *n)
            }
            Agg::Distinct(counts) => {
                let counts = counts.bind(py);
                while items[*lo].t < start {
                    forget(counts, items[*lo].value.bind(py))?;
                    *lo += 1;
                }
                count(counts, newest.value.bind(py))?;
                self.distinct_met(py, counts)
            }
            Agg::Sum { total, negative } => {
                while items[*lo].t < start {
                    let gone = items[*lo].num;
                    *total -= gone;
                    *negative -= i64::from(gone < 0.0);
                    *lo += 1;
                }
                *total += newest.num;
                *negative += i64::from(newest.num < 0.0);
                if total.is_finite() {
                    self.condition.float(py, *total)
                } else {
                    self.satisfied
                        .bind(py)
                        .call1((item_list(py, items, *lo, items.len())?,))?
                        .is_truthy()
                }
            }
        }
    }
}

fn count(counts: &Bound<'_, PyDict>, value: &Bound<'_, PyAny>) -> PyResult<()> {
    let n = match counts.get_item(value)? {
        Some(n) => n.extract::<usize>()?,
        None => 0,
    };
    counts.set_item(value, n + 1)
}

fn forget(counts: &Bound<'_, PyDict>, value: &Bound<'_, PyAny>) -> PyResult<()> {
    let left = match counts.get_item(value)? {
        Some(n) => n.extract::<usize>()? - 1,
        None => {
            return Err(pyo3::exceptions::PyKeyError::new_err(
                value.clone().unbind(),
            ));
        }
    };
    if left > 0 {
        counts.set_item(value, left)
    } else {
        counts.del_item(value)
    }
}

fn add(py: Python<'_>, agg: &mut Agg, item: &Item) -> PyResult<()> {
    match agg {
        Agg::Count(n) => *n += 1,
        Agg::Distinct(counts) => count(counts.bind(py), item.value.bind(py))?,
        Agg::Sum { total, negative } => {
            *total += item.num;
            *negative += i64::from(item.num < 0.0);
        }
    }
    Ok(())
}

fn remove(py: Python<'_>, agg: &mut Agg, item: &Item) -> PyResult<()> {
    match agg {
        Agg::Count(n) => *n -= 1,
        Agg::Distinct(counts) => forget(counts.bind(py), item.value.bind(py))?,
        Agg::Sum { total, negative } => {
            *total -= item.num;
            *negative -= i64::from(item.num < 0.0);
        }
    }
    Ok(())
}

/// An aggregate as Python sees it: None, the count, a copy of the counts per value, or `(total, negative)`.
fn agg_state(py: Python<'_>, agg: Option<&Agg>) -> PyResult<Py<PyAny>> {
    Ok(match agg {
        None => py.None(),
        Some(Agg::Count(n)) => n.into_pyobject(py)?.into_any().unbind(),
        Some(Agg::Distinct(counts)) => counts.bind(py).copy()?.into_any().unbind(),
        Some(Agg::Sum { total, negative }) => {
            (*total, *negative).into_pyobject(py)?.into_any().unbind()
        }
    })
}

/// The state of one group (`_Slide` of `corr_window.py`).
#[pyclass(module = "ingest._native")]
pub struct SlideGroup {
    items: Items,
    open: Option<Py<PyAny>>,
    open_start: f64,
    open_until: f64,
    claimed: f64,
    window: Option<Agg>,
    lo: usize,
    everything: Option<Agg>,
}

#[pymethods]
impl SlideGroup {
    #[new]
    fn new() -> Self {
        SlideGroup {
            items: VecDeque::new(),
            open: None,
            open_start: 0.0,
            open_until: f64::NEG_INFINITY,
            claimed: f64::NEG_INFINITY,
            window: None,
            lo: 0,
            everything: None,
        }
    }

    /// The group's items as `(t, ts, event id, value, risk)` tuples (a copy).
    #[getter]
    fn items<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        item_list(py, &self.items, 0, self.items.len())
    }

    /// `(lo, window, everything, open_start, open_until, claimed)`, the aggregates as `agg_state` gives them
    /// (for tests comparing the state with the Python one's).
    #[getter]
    #[allow(clippy::type_complexity)]
    fn state(&self, py: Python<'_>) -> PyResult<(usize, Py<PyAny>, Py<PyAny>, f64, f64, f64)> {
        Ok((
            self.lo,
            agg_state(py, self.window.as_ref())?,
            agg_state(py, self.everything.as_ref())?,
            self.open_start,
            self.open_until,
            self.claimed,
        ))
    }

    /// The open detection (None when there is none).
    #[getter]
    fn open(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.open.as_ref().map(|d| d.clone_ref(py))
    }

    /// Bytes of the group's state outside its Python object (which `tracemalloc` sees): the items' buffer
    /// (its capacity) and the dicts of distinct values (`__sizeof__`). The objects an item refers to
    /// (timestamps, ids, values) belong to the events.
    #[getter]
    fn heap_bytes(&self, py: Python<'_>) -> PyResult<usize> {
        let mut total = self.items.capacity() * std::mem::size_of::<Item>();
        for agg in [&self.window, &self.everything].into_iter().flatten() {
            if let Agg::Distinct(values) = agg {
                total += values
                    .bind(py)
                    .call_method0("__sizeof__")?
                    .extract::<usize>()?;
            }
        }
        Ok(total)
    }
}

impl SlideGroup {
    /// `_drop_front`: delete `items[..cut]`, the running aggregate of the newest window (which covers
    /// `items[lo..covered]`) losing those of them it holds.
    fn drop_front(&mut self, py: Python<'_>, cut: usize, covered: usize) -> PyResult<()> {
        if let Some(window) = &mut self.window
            && cut > self.lo
        {
            for gone in self.items.range(self.lo..cut.min(covered).max(self.lo)) {
                remove(py, window, gone)?;
            }
        }
        self.lo = self.lo.saturating_sub(cut);
        self.items.drain(..cut);
        Ok(())
    }
}

/// A group-by field or a value field: its name, interned parts and Python getter.
struct FieldRef {
    name: Py<PyString>,
    parts: Vec<Py<PyString>>,
    getter: Py<PyAny>,
}

impl FieldRef {
    fn new(py: Python<'_>, name: Bound<'_, PyString>, getter: Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(FieldRef {
            parts: split_name(py, &name)?,
            name: name.unbind(),
            getter: getter.unbind(),
        })
    }

    /// `read(view, name)`: the view's values of the field, read (and stored in the view) when missing.
    fn read<'py>(&self, view: &Bound<'py, PyDict>) -> PyResult<Bound<'py, PyAny>> {
        let py = view.py();
        let name = self.name.bind(py);
        if let Some(values) = view.get_item(name)? {
            return Ok(values);
        }
        let raw = view.getattr(intern!(py, "doc"))?;
        let values = field_values(&self.parts, &self.getter, &raw)?;
        view.set_item(name, &values)?;
        Ok(values)
    }

    /// The first non-null value of the field, if any.
    fn first<'py>(&self, view: &Bound<'py, PyDict>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let values = self.read(view)?;
        if let Ok(list) = values.cast_exact::<PyList>() {
            for v in list.iter() {
                if !v.is_none() {
                    return Ok(Some(v));
                }
            }
            return Ok(None);
        }
        for v in values.try_iter()? {
            let v = v?;
            if !v.is_none() {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }
}

/// `v if type(v) is str else str(v)`.
fn as_text<'py>(v: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if v.is_exact_instance_of::<PyString>() {
        Ok(v)
    } else {
        Ok(v.str()?.into_any())
    }
}

/// How a hit's value is read (`value_reader`).
enum Value {
    /// `event_count`: None.
    Null,
    /// `temporal`: the hit's rule id.
    RuleId,
    /// One field's first non-null value as text.
    Text(FieldRef),
    /// One field's first non-null value as a number (`values.number`, NaN skipped).
    Number(FieldRef),
    /// The Python reader, called as it is.
    Python,
}

/// The group key of the hits of one input rule (`key_reader`).
struct Keyer {
    rule_id: Py<PyAny>,
    fields: Vec<FieldRef>,
}

/// `(value_of, number, skip, fire, absorb, satisfied, key_fields)`, see `SlidingWindows::new`.
type Callbacks<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
);

/// `add(hit, watermark) -> list[Detection]` and `expire(watermark) -> int` of a sliding correlator with a
/// running aggregate; see the module documentation.
#[pyclass(module = "ingest._native")]
pub struct SlidingWindows {
    rule: Rule,
    value: Value,
    span: f64,
    max_items: usize,
    /// the `GroupStore`, its `OrderedDict` and the dict's `move_to_end`
    groups: Py<PyAny>,
    states: Py<PyDict>,
    move_to_end: Py<PyAny>,
    keyers: Vec<Keyer>,
    /// `rule_id -> tuple of (name, getter)`: the group-by fields in the events of an input rule
    key_fields: Py<PyAny>,
    value_of: Py<PyAny>,
    number: Py<PyAny>,
    skip: Py<PyAny>,
    /// `(key, items) -> Detection` and `(detection, item) -> Detection`
    fire: Py<PyAny>,
    absorb: Py<PyAny>,
    /// items dropped because a group held too many
    #[pyo3(get)]
    truncated: u64,
}

#[pymethods]
impl SlidingWindows {
    /// `kind`: "count", "distinct" or "sum"; `op`, `threshold`, `compare`: the condition; `value`: ("none" |
    /// "rule" | "text" | "number" | "python", field name, getter); `callbacks`: (value_of, number, skip,
    /// fire, absorb, satisfied, key_fields).
    #[new]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        kind: &str,
        op: &str,
        threshold: Bound<'_, PyAny>,
        compare: Bound<'_, PyAny>,
        expression: Option<Bound<'_, PyAny>>,
        value: (String, Bound<'_, PyString>, Bound<'_, PyAny>),
        span: f64,
        max_items: usize,
        groups: Bound<'_, PyAny>,
        callbacks: Callbacks<'_>,
    ) -> PyResult<Self> {
        let kind = match kind {
            "count" => Kind::Count,
            "distinct" => Kind::Distinct,
            "sum" => Kind::Sum,
            _ => return Err(PyValueError::new_err(format!("unknown aggregate {kind}"))),
        };
        let op = match op {
            "lt" => Op::Lt,
            "lte" => Op::Le,
            "gt" => Op::Gt,
            "gte" => Op::Ge,
            "eq" => Op::Eq,
            "neq" => Op::Ne,
            _ => return Err(PyValueError::new_err(format!("unknown operator {op}"))),
        };
        let exact = if threshold.is_exact_instance_of::<PyFloat>() {
            Some(threshold.extract::<f64>()?)
        } else if threshold.is_exact_instance_of::<PyInt>() {
            match threshold.extract::<i64>() {
                Ok(n) if n.unsigned_abs() <= 1 << 53 => Some(n as f64),
                _ => None,
            }
        } else {
            None
        };
        let (value_kind, name, getter) = value;
        let value = match value_kind.as_str() {
            "none" => Value::Null,
            "rule" => Value::RuleId,
            "text" => Value::Text(FieldRef::new(py, name, getter)?),
            "number" => Value::Number(FieldRef::new(py, name, getter)?),
            _ => Value::Python,
        };
        let (value_of, number, skip, fire, absorb, satisfied, key_fields) = callbacks;
        let states = groups
            .getattr(intern!(py, "states"))?
            .cast_into::<PyDict>()?;
        Ok(SlidingWindows {
            rule: Rule {
                kind,
                condition: Condition {
                    op,
                    threshold: exact,
                    threshold_obj: threshold.unbind(),
                    compare: compare.unbind(),
                },
                expression: expression.map(Bound::unbind),
                satisfied: satisfied.unbind(),
            },
            value,
            span,
            max_items,
            move_to_end: states.getattr(intern!(py, "move_to_end"))?.unbind(),
            states: states.unbind(),
            groups: groups.unbind(),
            keyers: Vec::new(),
            key_fields: key_fields.unbind(),
            value_of: value_of.unbind(),
            number: number.unbind(),
            skip: skip.unbind(),
            fire: fire.unbind(),
            absorb: absorb.unbind(),
            truncated: 0,
        })
    }

    fn add<'py>(
        &mut self,
        hit: &Bound<'py, PyAny>,
        watermark: f64,
    ) -> PyResult<Bound<'py, PyList>> {
        let py = hit.py();
        let Some(key) = self.key(hit)? else {
            return Ok(PyList::empty(py));
        };
        let Some((value, num)) = self.value(hit)? else {
            return Ok(PyList::empty(py));
        };
        let states = self.states.bind(py);
        let group = match states.get_item(&key)? {
            Some(group) => {
                self.move_to_end.bind(py).call1((&key,))?;
                group
            }
            None => self
                .groups
                .bind(py)
                .call_method1(intern!(py, "touch"), (&key,))?,
        };
        let group = group.cast_into::<SlideGroup>()?;
        let mut g = group.borrow_mut();
        let span = self.span;
        let item = Item {
            t: hit.getattr(intern!(py, "t"))?.extract()?,
            ts: hit.getattr(intern!(py, "ts"))?.unbind(),
            event_id: hit.getattr(intern!(py, "event_id"))?.unbind(),
            value: value.unbind(),
            num,
            risk: hit.getattr(intern!(py, "risk"))?.unbind(),
        };
        let t = item.t;
        if let Some(open) = &g.open {
            if g.open_start - span <= t && t <= g.open_until {
                let det = self
                    .absorb
                    .bind(py)
                    .call1((open.bind(py), item.tuple(py)?))?;
                return PyList::new(py, [det]);
            }
            if t > g.open_until {
                g.open = None;
            }
        }
        if t <= g.claimed {
            return Ok(PyList::empty(py)); // a straggler of a burst already reported
        }
        let in_order = g.items.back().is_none_or(|last| t >= last.t);
        let mut at: usize;
        if in_order {
            g.items.push_back(item);
            at = g.items.len() - 1;
        } else {
            at = after(&g.items, t);
            g.items.insert(at, item);
            let g = &mut *g;
            if let Some(window) = &mut g.window {
                if at >= g.lo {
                    add(py, window, &g.items[at])?;
                } else {
                    g.lo += 1;
                }
            }
        }
        {
            let g = &mut *g;
            if let Some(everything) = &mut g.everything {
                add(py, everything, &g.items[at])?;
            }
        }
        let horizon = watermark - span;
        let len = g.items.len();
        if g.items[0].t < horizon || len > self.max_items {
            if at > 0
                && g.lo > 0
                && g.everything.is_none()
                && len <= self.max_items + 1
                && g.items[0].t < horizon
                && horizon <= g.items[1].t
            {
                g.items.pop_front();
                g.lo -= 1;
                at -= 1;
            } else {
                match self.cut(py, &mut g, horizon, at, in_order)? {
                    Some(new_at) => at = new_at,
                    None => return Ok(PyList::empty(py)), // the new event itself was the oldest of a full group
                }
            }
        }
        let g = &mut *g;
        if in_order {
            let start = t - span;
            return match &mut g.window {
                Some(window) => {
                    if self.rule.slide(py, window, &g.items, &mut g.lo, start)? {
                        let (lo, hi) = (g.lo, g.items.len());
                        self.fire_window(py, g, &key, lo, hi)
                    } else {
                        Ok(PyList::empty(py))
                    }
                }
                None => {
                    g.lo = at_or_after(&g.items, start);
                    let (lo, hi) = (g.lo, g.items.len());
                    let window = g.window.insert(self.rule.running(py, &g.items, lo, hi)?);
                    if self.rule.met(py, window, &g.items, lo, hi)? {
                        self.fire_window(py, g, &key, lo, hi)
                    } else {
                        Ok(PyList::empty(py))
                    }
                }
            };
        }
        if let Some(everything) = &g.everything
            && self.rule.rules_out(py, everything, &g.items)?
        {
            return Ok(PyList::empty(py));
        }
        self.check(py, g, &key, at)
    }

    fn expire(&mut self, py: Python<'_>, watermark: f64) -> PyResult<usize> {
        let span = self.span;
        let mut dropped = 0;
        let snapshot = self.groups.bind(py).call_method0(intern!(py, "items"))?;
        for entry in snapshot.try_iter()? {
            let entry = entry?;
            let (key, group) = entry.extract::<(Bound<'_, PyAny>, Bound<'_, SlideGroup>)>()?;
            let mut g = group.borrow_mut();
            if g.open.is_some() && g.open_until < watermark {
                g.open = None;
            }
            let cut = at_or_after(&g.items, watermark - span);
            if cut > 0 {
                let covered = g.items.len();
                g.drop_front(py, cut, covered)?;
                g.everything = None;
            }
            if g.items.is_empty() && g.open.is_none() {
                self.groups
                    .bind(py)
                    .call_method1(intern!(py, "pop"), (key,))?;
                dropped += 1;
            }
        }
        Ok(dropped)
    }
}

impl SlidingWindows {
    /// The group key of a hit: a tuple of texts, None when a group-by field has no value.
    fn key<'py>(&mut self, hit: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let py = hit.py();
        let rule_id = hit.getattr(intern!(py, "rule_id"))?;
        let mut found = None;
        for (i, keyer) in self.keyers.iter().enumerate() {
            if keyer.rule_id.bind(py).is(&rule_id) {
                found = Some(i);
                break;
            }
        }
        if found.is_none() {
            for (i, keyer) in self.keyers.iter().enumerate() {
                if keyer.rule_id.bind(py).eq(&rule_id)? {
                    found = Some(i);
                    break;
                }
            }
        }
        let index = match found {
            Some(i) => i,
            None => {
                let mut fields = Vec::new();
                for spec in self.key_fields.bind(py).call1((&rule_id,))?.try_iter()? {
                    let (name, getter) =
                        spec?.extract::<(Bound<'_, PyString>, Bound<'_, PyAny>)>()?;
                    fields.push(FieldRef::new(py, name, getter)?);
                }
                self.keyers.push(Keyer {
                    rule_id: rule_id.unbind(),
                    fields,
                });
                self.keyers.len() - 1
            }
        };
        let view = hit.getattr(intern!(py, "doc"))?;
        let view = view.cast::<PyDict>()?;
        let fields = &self.keyers[index].fields;
        let mut parts = Vec::with_capacity(fields.len());
        for field in fields {
            match field.first(view)? {
                Some(v) => parts.push(as_text(v)?),
                None => return Ok(None),
            }
        }
        Ok(Some(PyTuple::new(py, parts)?))
    }

    /// The value a hit contributes and, for sums, the same as a float; None when the hit does not count.
    fn value<'py>(&self, hit: &Bound<'py, PyAny>) -> PyResult<Option<(Bound<'py, PyAny>, f64)>> {
        let py = hit.py();
        let value = match &self.value {
            Value::Null => py.None().into_bound(py),
            Value::RuleId => hit.getattr(intern!(py, "rule_id"))?,
            Value::Text(field) => {
                let view = hit.getattr(intern!(py, "doc"))?;
                match field.first(view.cast::<PyDict>()?)? {
                    Some(v) => as_text(v)?,
                    None => return Ok(None),
                }
            }
            Value::Number(field) => {
                let view = hit.getattr(intern!(py, "doc"))?;
                let Some(v) = field.first(view.cast::<PyDict>()?)? else {
                    return Ok(None);
                };
                let n = if v.is_exact_instance_of::<PyInt>() || v.is_exact_instance_of::<PyFloat>()
                {
                    v
                } else {
                    self.number.bind(py).call1((v,))?
                };
                if n.is_none() || n.ne(&n)? {
                    return Ok(None); // not a number, or NaN
                }
                n
            }
            Value::Python => {
                let v = self.value_of.bind(py).call1((hit,))?;
                if v.is(self.skip.bind(py)) {
                    return Ok(None);
                }
                v
            }
        };
        // a sum adds the value to a float (`total + value`: the same conversion, the same OverflowError)
        let num = if self.rule.kind == Kind::Sum {
            value.extract::<f64>()?
        } else {
            0.0
        };
        Ok(Some((value, num)))
    }

    /// `_cut`: drop the items older than `horizon` and those beyond the group's limit; the new position of
    /// `at` (None when it was dropped). `pending`: the newest item is not in the running aggregate yet.
    fn cut(
        &mut self,
        py: Python<'_>,
        g: &mut SlideGroup,
        horizon: f64,
        at: usize,
        pending: bool,
    ) -> PyResult<Option<usize>> {
        let len = g.items.len();
        let mut cut = g.items.partition_point(|i| i.t < horizon);
        let excess = len - cut;
        if excess > self.max_items {
            self.truncated += (excess - self.max_items) as u64;
            cut += excess - self.max_items;
        }
        if let Some(everything) = &mut g.everything {
            for gone in g.items.range(..cut) {
                remove(py, everything, gone)?;
            }
        }
        if cut <= g.lo {
            g.lo -= cut;
            g.items.drain(..cut);
        } else {
            g.drop_front(py, cut, len - usize::from(pending))?;
        }
        Ok(at.checked_sub(cut))
    }

    /// `_check`: every window ending at an event within a timespan after the new one (a late event): the
    /// first satisfied one fires.
    fn check<'py>(
        &self,
        py: Python<'py>,
        g: &mut SlideGroup,
        key: &Bound<'py, PyTuple>,
        at: usize,
    ) -> PyResult<Bound<'py, PyList>> {
        let span = self.span;
        if g.everything.is_none() {
            g.everything = Some(self.rule.running(py, &g.items, 0, g.items.len())?);
        }
        if let Some(everything) = &g.everything
            && self.rule.rules_out(py, everything, &g.items)?
        {
            return Ok(PyList::empty(py));
        }
        let items = &g.items;
        let end = after(items, items[at].t + span);
        let mut lo = at_or_after(items, items[at].t - span);
        let mut window = self.rule.running(py, items, lo, at + 1)?;
        for j in at..end {
            if j > at {
                add(py, &mut window, &items[j])?;
                let start = items[j].t - span;
                while items[lo].t < start {
                    remove(py, &mut window, &items[lo])?;
                    lo += 1;
                }
            }
            if self.rule.met(py, &window, items, lo, j + 1)? {
                return self.fire_window(py, g, key, lo, j + 1);
            }
        }
        Ok(PyList::empty(py))
    }

    /// `_fire`: a detection over `items[lo..hi]`; the group's items it covers never count again.
    fn fire_window<'py>(
        &self,
        py: Python<'py>,
        g: &mut SlideGroup,
        key: &Bound<'py, PyTuple>,
        lo: usize,
        hi: usize,
    ) -> PyResult<Bound<'py, PyList>> {
        let window = item_list(py, &g.items, lo, hi)?;
        let det = self.fire.bind(py).call1((key, window))?;
        let first = g.items[lo].t;
        g.open = Some(det.clone().unbind());
        g.open_start = first;
        g.claimed = first + self.span;
        g.open_until = g.claimed;
        let claimed = g.claimed;
        g.items.retain(|i| i.t > claimed);
        g.window = None;
        g.everything = None;
        PyList::new(py, [det])
    }
}
