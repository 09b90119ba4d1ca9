//! Python values ↔ core types: ids, payloads (JSON), vectors (numpy, without a copy when the
//! caller hands us C-contiguous float32).

use ferrovec_core::{CollectionConfig, Payload, PayloadSelector, PointId, Record, ScoredPoint};
use numpy::{
    PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::Value;

use crate::errors::invalid;

/// Deepest payload nesting we accept (and so the deepest recursion here).
const MAX_PAYLOAD_DEPTH: usize = 64;

pub fn id_from_py(py: Python<'_>, obj: &Bound<'_, PyAny>, at: usize) -> PyResult<PointId> {
    if obj.is_instance_of::<PyBool>() {
        return Err(invalid(
            py,
            format!("ids[{at}]: expected an int or str, got bool"),
        ));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(PointId::Str(s.to_str()?.to_string()));
    }
    if obj.is_instance_of::<PyInt>() || obj.hasattr("__index__")? {
        return match obj.extract::<u64>() {
            Ok(n) => Ok(PointId::Num(n)),
            Err(_) => Err(invalid(
                py,
                format!(
                    "ids[{at}]: {} is not an unsigned 64-bit integer",
                    obj.repr()
                        .map_or_else(|_| "?".to_string(), |r| r.to_string())
                ),
            )),
        };
    }
    Err(invalid(
        py,
        format!(
            "ids[{at}]: expected an int or str, got {}",
            obj.get_type()
                .name()
                .map_or_else(|_| "?".to_string(), |n| n.to_string())
        ),
    ))
}

/// A sequence of ids (list, tuple, numpy integer array, any iterable of int/str).
pub fn ids_from_py(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Vec<PointId>> {
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyInt>() {
        return Err(invalid(
            py,
            "ids must be a sequence of ids; wrap a single id in a list",
        ));
    }
    if let Ok(arr) = obj.extract::<PyReadonlyArray1<'_, u64>>() {
        return Ok(arr.as_array().iter().map(|&n| PointId::Num(n)).collect());
    }
    if let Ok(arr) = obj.extract::<PyReadonlyArray1<'_, i64>>() {
        return arr
            .as_array()
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                u64::try_from(n).map(PointId::Num).map_err(|_| {
                    invalid(
                        py,
                        format!("ids[{i}]: {n} is not an unsigned 64-bit integer"),
                    )
                })
            })
            .collect();
    }
    let iter = obj
        .try_iter()
        .map_err(|_| invalid(py, "ids must be a sequence of ints or strs"))?;
    let mut out = Vec::new();
    for (i, item) in iter.enumerate() {
        out.push(id_from_py(py, &item?, i)?);
    }
    Ok(out)
}

pub fn id_to_py(py: Python<'_>, id: &PointId) -> PyResult<Py<PyAny>> {
    Ok(match id {
        PointId::Num(n) => n.into_pyobject(py)?.into_any().unbind(),
        PointId::Str(s) => s.into_pyobject(py)?.into_any().unbind(),
    })
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "?".to_string(), |n| n.to_string())
}

/// How payload values that are not JSON (a date, a UUID, a model) become JSON: `default(value)`
/// returns a JSON form of it, as `json.dumps(default=...)` does; without one they are refused.
#[derive(Clone, Copy)]
pub struct JsonDefault<'a, 'py>(pub Option<&'a Bound<'py, PyAny>>);

fn json_from_py(
    obj: &Bound<'_, PyAny>,
    depth: usize,
    dflt: JsonDefault<'_, '_>,
) -> Result<Value, String> {
    if depth > MAX_PAYLOAD_DEPTH {
        return Err(format!("nested deeper than {MAX_PAYLOAD_DEPTH} levels"));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return s
            .to_str()
            .map(|s| Value::String(s.to_string()))
            .map_err(|e| e.to_string());
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(n) = obj.extract::<i64>() {
            return Ok(Value::from(n));
        }
        if let Ok(n) = obj.extract::<u64>() {
            return Ok(Value::from(n));
        }
        return Err("integer outside the 64-bit range".into());
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return float_value(f.value());
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        return Ok(Value::Object(map_from_dict(d, depth, dflt)?));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut out = Vec::new();
        for (i, item) in obj.try_iter().map_err(|e| e.to_string())?.enumerate() {
            let item = item.map_err(|e| e.to_string())?;
            out.push(json_from_py(&item, depth + 1, dflt).map_err(|e| format!("[{i}]: {e}"))?);
        }
        return Ok(Value::Array(out));
    }
    // numpy scalars and other number-likes.
    if obj.hasattr("__index__").unwrap_or(false) {
        if let Ok(n) = obj.extract::<i64>() {
            return Ok(Value::from(n));
        }
    }
    if obj.hasattr("__float__").unwrap_or(false) {
        if let Ok(f) = obj.extract::<f64>() {
            return float_value(f);
        }
    }
    if let Some(default) = dflt.0 {
        let converted = default
            .call1((obj,))
            .map_err(|e| format!("{} does not convert to JSON: {e}", type_name(obj)))?;
        if !converted.is(obj) {
            return json_from_py(&converted, depth + 1, JsonDefault(None));
        }
    }
    Err(format!("{} is not a JSON value", type_name(obj)))
}

fn float_value(f: f64) -> Result<Value, String> {
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| format!("{f} is not a finite number (JSON has no NaN or infinity)"))
}

fn map_from_dict(
    d: &Bound<'_, PyDict>,
    depth: usize,
    dflt: JsonDefault<'_, '_>,
) -> Result<Payload, String> {
    let mut map = Payload::new();
    for (k, v) in d.iter() {
        let key = k
            .cast::<PyString>()
            .map_err(|_| format!("keys must be str, got {}", type_name(&k)))?
            .to_str()
            .map_err(|e| e.to_string())?
            .to_string();
        let value = json_from_py(&v, depth + 1, dflt).map_err(|e| format!("key {key:?}: {e}"))?;
        map.insert(key, value);
    }
    Ok(map)
}

/// `payloads`: a sequence of dicts or None, one per point.
pub fn payloads_from_py(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
    dflt: JsonDefault<'_, '_>,
) -> PyResult<Vec<Option<Payload>>> {
    let iter = obj
        .try_iter()
        .map_err(|_| invalid(py, "payloads must be a sequence of dicts (or None)"))?;
    let mut out = Vec::new();
    for (i, item) in iter.enumerate() {
        let item = item?;
        if item.is_none() {
            out.push(None);
            continue;
        }
        let d = item.cast::<PyDict>().map_err(|_| {
            invalid(
                py,
                format!(
                    "payloads[{i}]: expected a dict (a JSON object) or None, got {}",
                    type_name(&item)
                ),
            )
        })?;
        let map =
            map_from_dict(d, 0, dflt).map_err(|e| invalid(py, format!("payloads[{i}]: {e}")))?;
        out.push(Some(map));
    }
    Ok(out)
}

pub fn json_to_py(py: Python<'_>, v: &Value) -> PyResult<Py<PyAny>> {
    Ok(match v {
        Value::Null => py.None(),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any().unbind(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any().unbind()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any().unbind()
            } else {
                n.as_f64()
                    .unwrap_or(f64::NAN)
                    .into_pyobject(py)?
                    .into_any()
                    .unbind()
            }
        }
        Value::String(s) => s.into_pyobject(py)?.into_any().unbind(),
        Value::Array(a) => {
            let list = PyList::empty(py);
            for item in a {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any().unbind()
        }
        Value::Object(m) => payload_to_py(py, m)?,
    })
}

pub fn payload_to_py(py: Python<'_>, m: &Payload) -> PyResult<Py<PyAny>> {
    let d = PyDict::new(py);
    for (k, v) in m {
        d.set_item(k, json_to_py(py, v)?)?;
    }
    Ok(d.into_any().unbind())
}

pub fn selector_from_py(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<PayloadSelector> {
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(if b.is_true() {
            PayloadSelector::All
        } else {
            PayloadSelector::None
        });
    }
    let bad = || {
        invalid(
            py,
            "with_payload must be a bool, a list of keys, or {\"include\": [...]} or {\"exclude\": [...]}",
        )
    };
    if obj.is_instance_of::<PyString>() {
        return Err(bad());
    }
    let selector = if let Ok(d) = obj.cast::<PyDict>() {
        match (d.get_item("include")?, d.get_item("exclude")?, d.len()) {
            (Some(keys), None, 1) => {
                PayloadSelector::include(&keys.extract::<Vec<String>>().map_err(|_| bad())?)
            }
            (None, Some(keys), 1) => {
                PayloadSelector::exclude(&keys.extract::<Vec<String>>().map_err(|_| bad())?)
            }
            _ => return Err(bad()),
        }
    } else {
        PayloadSelector::include(&obj.extract::<Vec<String>>().map_err(|_| bad())?)
    };
    selector.map_err(|e| crate::errors::to_py(py, e))
}

/// A float32 matrix borrowed from numpy, or converted (once) when it is not float32 C-order.
pub struct PyMatrix<'py> {
    array: PyReadonlyArray2<'py, f32>,
}

impl PyMatrix<'_> {
    pub fn rows(&self) -> usize {
        self.array.shape()[0]
    }
    pub fn cols(&self) -> usize {
        self.array.shape()[1]
    }
    pub fn as_slice(&self) -> &[f32] {
        // Contiguity was checked when the PyMatrix was made.
        self.array.as_slice().unwrap_or(&[])
    }
    /// The core's view of the same values (no copy).
    pub fn core(&self) -> ferrovec_core::Result<ferrovec_core::Matrix<'_>> {
        ferrovec_core::Matrix::new(self.as_slice(), self.rows(), self.cols())
    }
}

/// Coerce `obj` to a C-contiguous float32 array with numpy (a no-op, no copy, for one already).
fn as_f32_array<'py>(
    py: Python<'py>,
    obj: &Bound<'py, PyAny>,
    what: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let np = py.import("numpy")?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("dtype", np.getattr("float32")?)?;
    np.call_method("ascontiguousarray", (obj,), Some(&kwargs))
        .map_err(|e| {
            invalid(
                py,
                format!("{what} cannot be read as an array of numbers: {e}"),
            )
        })
}

/// A list of equally long lists of Python floats (vectors as JSON and qdrant-client's
/// PointStructs carry them) read straight into float32, three times faster than numpy's
/// conversion, which first discovers the shape. `None` for anything else (ints, ragged rows,
/// other sequences): numpy converts those, and words the errors.
fn floats_from_lists(obj: &Bound<'_, PyAny>) -> Option<(Vec<f32>, usize, usize)> {
    let outer = obj.cast::<PyList>().ok()?;
    let rows = outer.len();
    let cols = outer.get_item(0).ok()?.cast::<PyList>().ok()?.len();
    let mut values = Vec::with_capacity(rows.checked_mul(cols)?);
    for row in outer.iter() {
        let row = row.cast::<PyList>().ok()?;
        if row.len() != cols {
            return None;
        }
        for x in row.iter() {
            values.push(x.cast::<PyFloat>().ok()?.value() as f32);
        }
    }
    Some((values, rows, cols))
}

/// A non-empty list of Python floats as float32; `None` for anything else (numpy converts it).
fn floats_from_list(obj: &Bound<'_, PyAny>) -> Option<Vec<f32>> {
    let list = obj.cast::<PyList>().ok()?;
    if list.is_empty() {
        return None;
    }
    list.iter()
        .map(|x| x.cast::<PyFloat>().ok().map(|f| f.value() as f32))
        .collect()
}

/// `vectors` as the (n, dim) float32 array the core would read (the fast list path included).
#[pyfunction]
pub fn _as_matrix<'py>(
    py: Python<'py>,
    vectors: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let m = matrix_from_py(py, vectors, "vectors")?;
    Ok((*m.array).clone().into_any())
}

pub fn matrix_from_py<'py>(
    py: Python<'py>,
    obj: &Bound<'py, PyAny>,
    what: &str,
) -> PyResult<PyMatrix<'py>> {
    // Fast path: already a C-contiguous float32 matrix, borrowed as it is.
    if let Ok(a) = obj.cast::<PyArray2<f32>>() {
        if a.is_c_contiguous() {
            return Ok(PyMatrix {
                array: a.readonly(),
            });
        }
    }
    let arr = match floats_from_lists(obj) {
        Some((values, rows, cols)) => PyArray1::from_vec(py, values)
            .reshape([rows, cols])?
            .into_any(),
        None => as_f32_array(py, obj, what)?,
    };
    let ndim: usize = arr.getattr("ndim")?.extract()?;
    if ndim != 2 {
        return Err(invalid(
            py,
            format!("{what} must be a 2-D array of shape (n, dim), got {ndim} dimension(s)"),
        ));
    }
    let array: PyReadonlyArray2<'py, f32> = arr.extract().map_err(PyErr::from)?;
    if !array.is_c_contiguous() {
        return Err(invalid(
            py,
            format!("{what} is not contiguous after conversion"),
        ));
    }
    Ok(PyMatrix { array })
}

pub fn vector_from_py<'py>(
    py: Python<'py>,
    obj: &Bound<'py, PyAny>,
    what: &str,
) -> PyResult<PyReadonlyArray1<'py, f32>> {
    if let Ok(a) = obj.cast::<PyArray1<f32>>() {
        if a.is_c_contiguous() {
            return Ok(a.readonly());
        }
    }
    // A list of floats (an embedding as JSON carries it) straight into float32.
    if let Some(values) = floats_from_list(obj) {
        return Ok(PyArray1::from_vec(py, values).readonly());
    }
    let arr = match floats_from_lists(obj) {
        Some((values, rows, cols)) => PyArray1::from_vec(py, values)
            .reshape([rows, cols])?
            .into_any(),
        None => as_f32_array(py, obj, what)?,
    };
    let ndim: usize = arr.getattr("ndim")?.extract()?;
    if ndim != 1 {
        return Err(invalid(
            py,
            format!("{what} must be a 1-D array of shape (dim,), got {ndim} dimensions"),
        ));
    }
    arr.extract::<PyReadonlyArray1<'py, f32>>()
        .map_err(PyErr::from)
}

/// A point's stored row as Python: a float32 array, or for a collection of named vectors a
/// dict of one array per name.
pub fn vector_to_py(
    py: Python<'_>,
    v: Option<Vec<f32>>,
    sparse: Vec<Option<ferrovec_core::SparseVector>>,
    config: &CollectionConfig,
) -> PyResult<Py<PyAny>> {
    let Some(v) = v else {
        return Ok(py.None());
    };
    if !config.is_named() {
        if ferrovec_core::config::is_absent(&v) {
            return Ok(py.None()); // removed by delete_vectors
        }
        return Ok(PyArray1::from_vec(py, v).into_any().unbind());
    }
    let d = PyDict::new(py);
    for (spec, sp) in config.vectors.iter().zip(config.spaces()) {
        let part = v.get(sp.offset..sp.offset + sp.dim).unwrap_or(&[]);
        if !ferrovec_core::config::is_absent(part) {
            d.set_item(&spec.name, PyArray1::from_slice(py, part))?;
        }
    }
    for (spec, v) in config.sparse.iter().zip(sparse) {
        if let Some(v) = v {
            d.set_item(&spec.name, crate::sparse::sparse_to_py(py, v)?)?;
        }
    }
    Ok(d.into_any().unbind())
}

#[pyclass(name = "Record", module = "ferrovec", frozen, get_all)]
pub struct PyRecord {
    /// The point id (int or str).
    pub id: Py<PyAny>,
    /// The payload dict (or None when not requested).
    pub payload: Py<PyAny>,
    /// The vector as a float32 numpy array, a dict of them by name for named vectors (or None
    /// when not requested).
    pub vector: Py<PyAny>,
}

#[pymethods]
impl PyRecord {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Record(id={}, payload={}, vector={})",
            self.id.bind(py).repr()?,
            self.payload.bind(py).repr()?,
            vector_repr(py, &self.vector)?
        ))
    }
}

#[pyclass(name = "Hit", module = "ferrovec", frozen, get_all)]
pub struct PyHit {
    /// The point id (int or str).
    pub id: Py<PyAny>,
    /// Similarity (cosine, dot: higher is better) or distance (euclid, manhattan: lower is better).
    pub score: f64,
    pub payload: Py<PyAny>,
    pub vector: Py<PyAny>,
    /// The value an order_by query ordered it by (else None).
    pub order_value: Py<PyAny>,
}

#[pymethods]
impl PyHit {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Hit(id={}, score={}, payload={}, vector={})",
            self.id.bind(py).repr()?,
            self.score,
            self.payload.bind(py).repr()?,
            vector_repr(py, &self.vector)?
        ))
    }
}

fn vector_repr(py: Python<'_>, v: &Py<PyAny>) -> PyResult<String> {
    let v = v.bind(py);
    if v.is_none() {
        return Ok("None".into());
    }
    let len = v.len()?;
    Ok(format!("<float32 array of {len}>"))
}

fn payload_opt(py: Python<'_>, p: Option<Payload>) -> PyResult<Py<PyAny>> {
    match p {
        Some(p) => payload_to_py(py, &p),
        None => Ok(py.None()),
    }
}

pub fn record_to_py(
    py: Python<'_>,
    r: Record,
    config: &CollectionConfig,
) -> PyResult<Py<PyRecord>> {
    Py::new(
        py,
        PyRecord {
            id: id_to_py(py, &r.id)?,
            payload: payload_opt(py, r.payload)?,
            vector: vector_to_py(py, r.vector, r.sparse, config)?,
        },
    )
}

pub fn hit_to_py(py: Python<'_>, h: ScoredPoint, config: &CollectionConfig) -> PyResult<Py<PyHit>> {
    Py::new(
        py,
        PyHit {
            id: id_to_py(py, &h.id)?,
            score: f64::from(h.score),
            payload: payload_opt(py, h.payload)?,
            vector: vector_to_py(py, h.vector, h.sparse, config)?,
            order_value: match h.order_value {
                Some(v) => v.into_pyobject(py)?.into_any().unbind(),
                None => py.None(),
            },
        },
    )
}

/// A JSON value from a plain Python value, or from a pydantic model (qdrant-client's models)
/// through its JSON dump.
pub fn json_value_from_py(py: Python<'_>, obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Value> {
    let plain;
    let obj = if obj.hasattr("model_dump")? {
        let kwargs = PyDict::new(py);
        kwargs.set_item("by_alias", true)?;
        kwargs.set_item("exclude_none", true)?;
        kwargs.set_item("mode", "json")?;
        plain = obj.call_method("model_dump", (), Some(&kwargs))?;
        &plain
    } else {
        obj
    };
    json_from_py(obj, 0, JsonDefault(None)).map_err(|e| invalid(py, format!("{what}: {e}")))
}

/// `filter=`: None, a dict in Qdrant's JSON filter shape, or a `qdrant_client.models.Filter`.
pub fn filter_from_py(
    py: Python<'_>,
    obj: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<ferrovec_core::Filter>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    let v = json_value_from_py(py, obj, "filter")?;
    ferrovec_core::Filter::parse(&v)
        .map(Some)
        .map_err(|e| crate::errors::to_py(py, e))
}

/// A payload dict (for `set_payload` and `overwrite_payload`).
pub fn payload_from_py(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Payload> {
    let d = obj.cast::<PyDict>().map_err(|_| {
        invalid(
            py,
            format!(
                "payload: expected a dict (a JSON object), got {}",
                type_name(obj)
            ),
        )
    })?;
    map_from_dict(d, 0, JsonDefault(None)).map_err(|e| invalid(py, format!("payload: {e}")))
}
