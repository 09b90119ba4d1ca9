//! The arguments of the collection's methods, parsed once for the sync and the async variant:
//! which points a call picks, a batch of points, search options, `order_by`. Parsing converts
//! Python values into the core's types; checking what they mean (dimensions, named-vector
//! layout, finiteness) is the core's alone.

use ferrovec_core::{
    Collection, Direction, Filter, Matrix, Payload, PayloadSelector, PointId, QuantizationParams,
    SearchParams, Selector, SparseInput, VectorData, Vectors,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::{
    filter_from_py, ids_from_py, json_value_from_py, matrix_from_py, payloads_from_py,
    selector_from_py, JsonDefault, PyMatrix,
};
use crate::errors::{invalid, to_py};
use crate::sparse::sparse_column_from_py;

/// Which points a payload operation or delete applies to: ids, or a filter.
pub enum Points {
    Ids(Vec<PointId>),
    Filter(Filter),
}

impl Points {
    pub fn from_py(
        py: Python<'_>,
        ids: Option<&Bound<'_, PyAny>>,
        filter: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let ids = ids.filter(|o| !o.is_none());
        match (ids, filter_from_py(py, filter)?) {
            (Some(ids), None) => Ok(Points::Ids(ids_from_py(py, ids)?)),
            (None, Some(f)) => Ok(Points::Filter(f)),
            (Some(_), Some(_)) => Err(invalid(py, "pass either ids or filter, not both")),
            (None, None) => Err(invalid(py, "pass the points as ids or as a filter")),
        }
    }

    pub fn selector(&self) -> Selector<'_> {
        match self {
            Points::Ids(ids) => Selector::Ids(ids),
            Points::Filter(f) => Selector::Filter(f),
        }
    }
}

/// The vectors of a batch as given: one (n, dim) array of every vector of a point, or a dict
/// of one entry per name (an array for a dense vector, a list or CSR matrix for a sparse one).
/// Dense arrays are borrowed from numpy where the caller's arrays allow it.
pub enum BatchVectors<'py> {
    Rows(PyMatrix<'py>),
    Named(Vec<(String, Column<'py>)>),
}

/// One named vector of every point of a batch.
pub enum Column<'py> {
    Dense(PyMatrix<'py>),
    Sparse(Vec<Option<SparseInput>>),
}

impl<'py> BatchVectors<'py> {
    pub fn from_py(py: Python<'py>, col: &Collection, obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        match obj.cast::<PyDict>() {
            Ok(named) => {
                let mut out = Vec::with_capacity(named.len());
                for (k, v) in named.iter() {
                    let name: String = k
                        .extract()
                        .map_err(|_| invalid(py, "vector names must be strings"))?;
                    let column = if col.config().sparse_field(&name).is_some() {
                        Column::Sparse(sparse_column_from_py(py, &v, &name)?)
                    } else {
                        Column::Dense(matrix_from_py(py, &v, "vectors")?)
                    };
                    out.push((name, column));
                }
                Ok(BatchVectors::Named(out))
            }
            // The Python API names a point's vectors: one array of them all would be read by
            // position, which no caller writes knowingly.
            Err(_) if col.config().is_named() => Err(invalid(
                py,
                format!(
                    "collection {:?} holds named vectors: pass vectors as a dict of one (n, dim) array per name",
                    col.name()
                ),
            )),
            Err(_) => Ok(BatchVectors::Rows(matrix_from_py(py, obj, "vectors")?)),
        }
    }

    /// The core's view, borrowing the dense arrays (the sparse columns are moved out: call
    /// it once).
    pub fn core(&mut self) -> ferrovec_core::Result<Vectors<'_>> {
        Ok(match self {
            BatchVectors::Rows(m) => Vectors::Rows(m.core()?),
            BatchVectors::Named(named) => Vectors::Named(
                named
                    .iter_mut()
                    .map(|(n, c)| {
                        Ok((
                            n.clone(),
                            match c {
                                Column::Dense(m) => VectorData::Dense(m.core()?),
                                Column::Sparse(v) => VectorData::Sparse(std::mem::take(v)),
                            },
                        ))
                    })
                    .collect::<ferrovec_core::Result<_>>()?,
            ),
        })
    }

    /// Values in all the arrays (what the core will copy; a sparse entry or document counts
    /// as its length).
    pub fn values(&self) -> usize {
        match self {
            BatchVectors::Rows(m) => m.as_slice().len(),
            BatchVectors::Named(named) => named
                .iter()
                .map(|(_, c)| match c {
                    Column::Dense(m) => m.as_slice().len(),
                    Column::Sparse(v) => v
                        .iter()
                        .flatten()
                        .map(|e| match e {
                            SparseInput::Vector(v) => v.len(),
                            SparseInput::Document(d) => d.text.len(),
                        })
                        .sum(),
                })
                .sum(),
        }
    }

    /// A copy the caller cannot change, for work that outlives the call (asyncio).
    pub fn take_owned(&mut self) -> OwnedVectors {
        let own = |m: &PyMatrix<'_>| (m.as_slice().to_vec(), m.rows(), m.cols());
        match self {
            BatchVectors::Rows(m) => OwnedVectors::Rows(own(m)),
            BatchVectors::Named(named) => OwnedVectors::Named(
                named
                    .iter_mut()
                    .map(|(n, c)| {
                        let c = match c {
                            Column::Dense(m) => OwnedColumn::Dense(own(m)),
                            Column::Sparse(v) => OwnedColumn::Sparse(std::mem::take(v)),
                        };
                        (n.clone(), c)
                    })
                    .collect(),
            ),
        }
    }
}

/// `(values, rows, cols)` of one matrix.
type OwnedMatrix = (Vec<f32>, usize, usize);

/// [`BatchVectors`] copied, for a worker thread.
pub enum OwnedVectors {
    Rows(OwnedMatrix),
    Named(Vec<(String, OwnedColumn)>),
}

pub enum OwnedColumn {
    Dense(OwnedMatrix),
    Sparse(Vec<Option<SparseInput>>),
}

fn view((values, rows, cols): &OwnedMatrix) -> ferrovec_core::Result<Matrix<'_>> {
    Matrix::new(values, *rows, *cols)
}

impl OwnedVectors {
    pub fn core(&self) -> ferrovec_core::Result<Vectors<'_>> {
        Ok(match self {
            OwnedVectors::Rows(m) => Vectors::Rows(view(m)?),
            OwnedVectors::Named(named) => Vectors::Named(
                named
                    .iter()
                    .map(|(n, c)| {
                        Ok((
                            n.clone(),
                            match c {
                                OwnedColumn::Dense(m) => VectorData::Dense(view(m)?),
                                // The worker runs the call once: a copy of the column.
                                OwnedColumn::Sparse(v) => VectorData::Sparse(v.clone()),
                            },
                        ))
                    })
                    .collect::<ferrovec_core::Result<_>>()?,
            ),
        })
    }
}

/// A batch of points to write: ids, vectors, payloads.
pub struct Batch<'py> {
    pub ids: Vec<PointId>,
    pub vectors: BatchVectors<'py>,
    pub payloads: Option<Vec<Option<Payload>>>,
}

impl<'py> Batch<'py> {
    /// `None` for an empty batch (allowed in any shape numpy gives it: `[]` is 1-D).
    pub fn from_py(
        py: Python<'py>,
        col: &Collection,
        ids: &Bound<'py, PyAny>,
        vectors: &Bound<'py, PyAny>,
        payloads: Option<&Bound<'py, PyAny>>,
        json_default: JsonDefault<'_, 'py>,
    ) -> PyResult<Option<Self>> {
        let ids = ids_from_py(py, ids)?;
        let payloads = payloads
            .map(|p| payloads_from_py(py, p, json_default))
            .transpose()?;
        if ids.is_empty()
            && payloads.as_ref().is_none_or(Vec::is_empty)
            && vectors.len().unwrap_or(0) == 0
        {
            return Ok(None);
        }
        let vectors = BatchVectors::from_py(py, col, vectors)?;
        Ok(Some(Batch {
            ids,
            vectors,
            payloads,
        }))
    }
}

/// The options every search method takes (`search`, `search_batch` and their async twins).
pub struct SearchArgs<'a, 'py> {
    pub k: usize,
    pub offset: usize,
    pub filter: Option<&'a Bound<'py, PyAny>>,
    pub score_threshold: Option<f32>,
    pub with_payload: Option<&'a Bound<'py, PyAny>>,
    pub with_vectors: bool,
    pub ef: Option<usize>,
    pub exact: bool,
    pub allow_zero: bool,
    pub using: Option<String>,
    pub quantization: Option<&'a Bound<'py, PyAny>>,
}

impl SearchArgs<'_, '_> {
    pub fn params(self, py: Python<'_>) -> PyResult<SearchParams> {
        let filter = filter_from_py(py, self.filter)?;
        let quantization = match self.quantization.filter(|q| !q.is_none()) {
            None => None,
            Some(q) => {
                let v = json_value_from_py(py, q, "quantization")?;
                Some(QuantizationParams::from_json(&v, "quantization").map_err(|e| to_py(py, e))?)
            }
        };
        Ok(SearchParams {
            k: self.k,
            offset: self.offset,
            score_threshold: self.score_threshold,
            with_payload: payload_selector(py, self.with_payload)?,
            with_vector: self.with_vectors,
            ef: self.ef,
            exact: self.exact,
            filter,
            allow_zero: self.allow_zero,
            using: self.using,
            quantization,
        })
    }
}

/// `with_payload=`: None (all of it), a bool, a list of keys, or {"include"|"exclude": [...]}.
pub fn payload_selector(
    py: Python<'_>,
    obj: Option<&Bound<'_, PyAny>>,
) -> PyResult<PayloadSelector> {
    match obj {
        Some(s) => selector_from_py(py, s),
        None => Ok(PayloadSelector::All),
    }
}

/// `order_by=`: a key, or {"key": ..., "direction": "asc"|"desc", "start_from": ...}.
pub struct OrderBy {
    pub key: String,
    pub direction: Direction,
    pub start: Option<serde_json::Value>,
}

impl OrderBy {
    pub fn from_py(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let spec = json_value_from_py(py, obj, "order_by")?;
        match spec {
            serde_json::Value::String(key) => Ok(OrderBy {
                key,
                direction: Direction::Asc,
                start: None,
            }),
            serde_json::Value::Object(m) => {
                let key = m.get("key").and_then(|k| k.as_str()).ok_or_else(|| {
                    invalid(
                        py,
                        "order_by: expected {\"key\": ..., \"direction\": ..., \"start_from\": ...}",
                    )
                })?;
                let direction = match m.get("direction").and_then(|d| d.as_str()) {
                    None | Some("asc") => Direction::Asc,
                    Some("desc") => Direction::Desc,
                    Some(d) => {
                        return Err(invalid(
                            py,
                            format!("order_by.direction: {d:?} (use \"asc\" or \"desc\")"),
                        ))
                    }
                };
                Ok(OrderBy {
                    key: key.to_string(),
                    direction,
                    start: m.get("start_from").cloned(),
                })
            }
            _ => Err(invalid(py, "order_by: expected a key or a dict")),
        }
    }
}

/// `key` parsed as a payload path (for `set_payload(key=...)`).
pub fn payload_path(py: Python<'_>, key: &str) -> PyResult<ferrovec_core::payload::Path> {
    ferrovec_core::payload::Path::parse(key, "key").map_err(|e| to_py(py, e))
}
