//! `RuleMask`: the per-event step of a Sigma rule index, native (`detectors/sigma/reader.py` generates the
//! same function in Python, the reference, and chooses this one when the extension is built).
//!
//! For each indexed field: its values are read from the view's document (`view.doc`) the way
//! `detectors.sigma.fields.field_getter` reads them, stored in the view (`view[name] = values`), and the
//! rule mask of the field is OR-ed into the event's: the remembered one (`memo`) for a single `str` or
//! `int` value, else `mask_of(values)` (Python). A field with a `need` is read only when `found & need`
//! is not zero by then. Only objects (exact `dict`s) all the way down to a present value are walked here;
//! anything else (an absent value under a dotted name, a list on the way, a document that is not an exact
//! `dict`) calls the field's Python getter. Masks stay Python integers.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyList, PyString};

/// One indexed field.
struct Field {
    name: Py<PyString>,
    parts: Vec<Py<PyString>>,
    getter: Py<PyAny>,
    memo: Py<PyDict>,
    mask_of: Py<PyAny>,
    /// `None`: read for every event.
    need: Option<Py<PyAny>>,
}

/// `mask(view) -> int`, see the module documentation.
#[pyclass(frozen, module = "ingest._native")]
pub struct RuleMask {
    fields: Vec<Field>,
    always: Py<PyAny>,
    low: Py<PyAny>,
    shifts: Vec<Py<PyAny>>,
}

/// What `Field` is made of: name, getter, memo, mask_of, need (0: always read).
type FieldSpec<'py> = (
    Bound<'py, PyString>,
    Bound<'py, PyAny>,
    Bound<'py, PyDict>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
);

/// The value at the end of `parts` when every level on the way is an exact dict (`None` otherwise).
fn walk<'py>(
    raw: &Bound<'py, PyDict>,
    parts: &[Py<PyString>],
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = raw.py();
    let Some((last, path)) = parts.split_last() else {
        return Ok(None);
    };
    let mut node = raw.clone();
    for part in path {
        match node.get_item(part.bind(py))? {
            Some(child) => match child.cast_into_exact::<PyDict>() {
                Ok(child) => node = child,
                Err(_) => return Ok(None),
            },
            None => return Ok(None),
        }
    }
    node.get_item(last.bind(py))
}

/// The values of the field split into `parts` in the document `raw`, as its Python `getter`
/// (`detectors.sigma.fields.field_getter`) gives them: walked here through exact dicts, else the getter.
pub(crate) fn field_values<'py>(
    parts: &[Py<PyString>],
    getter: &Py<PyAny>,
    raw: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = raw.py();
    if let Ok(doc) = raw.cast_exact::<PyDict>() {
        match walk(doc, parts)? {
            Some(value) if value.is_exact_instance_of::<PyList>() => return Ok(value),
            Some(value) => return Ok(PyList::new(py, [value])?.into_any()),
            None if parts.len() == 1 => return Ok(PyList::empty(py).into_any()),
            None => {}
        }
    }
    getter.bind(py).call1((raw,))
}

/// A dotted field name as interned parts.
pub(crate) fn split_name(
    py: Python<'_>,
    name: &Bound<'_, PyString>,
) -> PyResult<Vec<Py<PyString>>> {
    Ok(name
        .to_str()?
        .split('.')
        .map(|p| PyString::intern(py, p).unbind())
        .collect())
}

#[pymethods]
impl RuleMask {
    #[new]
    fn new(
        py: Python<'_>,
        fields: Vec<FieldSpec<'_>>,
        always: Bound<'_, PyAny>,
        low: Bound<'_, PyAny>,
        shifts: Vec<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let mut out = Vec::with_capacity(fields.len());
        for (name, getter, memo, mask_of, need) in fields {
            out.push(Field {
                parts: split_name(py, &name)?,
                name: name.unbind(),
                getter: getter.unbind(),
                memo: memo.unbind(),
                mask_of: mask_of.unbind(),
                need: if need.is_truthy()? {
                    Some(need.unbind())
                } else {
                    None
                },
            });
        }
        out.sort_by_key(|f| f.need.is_some()); // (stable) fields read for every event first
        Ok(RuleMask {
            fields: out,
            always: always.unbind(),
            low: low.unbind(),
            shifts: shifts.into_iter().map(Bound::unbind).collect(),
        })
    }

    fn __call__<'py>(&self, view: &Bound<'py, PyDict>) -> PyResult<Bound<'py, PyAny>> {
        let py = view.py();
        let raw = view.getattr(intern!(py, "doc"))?;
        let mut found = self.always.bind(py).clone();
        for field in &self.fields {
            if let Some(need) = &field.need
                && !found.bitand(need.bind(py))?.is_truthy()?
            {
                continue;
            }
            let values = field_values(&field.parts, &field.getter, &raw)?;
            view.set_item(field.name.bind(py), &values)?;
            let mut remembered = None;
            let single = match values.cast_exact::<PyList>() {
                Ok(list) if list.len() == 1 => Some(list.get_item(0)?),
                Ok(_) => None,
                Err(_) if values.len()? == 1 => Some(values.get_item(0)?),
                Err(_) => None,
            };
            if let Some(value) = single
                && (value.is_exact_instance_of::<PyString>()
                    || value.is_exact_instance_of::<PyInt>())
            {
                remembered = field.memo.bind(py).get_item(&value)?;
            }
            let mask = match remembered {
                Some(mask) if !mask.is_none() => mask,
                _ => field.mask_of.bind(py).call1((&values,))?,
            };
            found = found.bitor(&mask)?;
        }
        if self.shifts.is_empty() {
            return Ok(found);
        }
        let mut candidates = found.bitand(self.low.bind(py))?;
        for shift in &self.shifts {
            candidates = candidates.bitand(found.rshift(shift.bind(py))?)?;
        }
        Ok(candidates)
    }
}
