//! `ferrovec.Collection`: convert in → one core call without the GIL → convert out.

use std::sync::Arc;

use ferrovec_core::{
    Collection, CollectionConfig, Payload, PointId, ScoredPoint, SearchParams, Space, Store,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::aio;
use crate::convert::{
    filter_from_py, hit_to_py, id_from_py, id_to_py, ids_from_py, json_value_from_py,
    matrix_from_py, payload_from_py, payloads_from_py, record_to_py, selector_from_py,
    vector_from_py, Matrix,
};
use crate::errors::invalid;
use crate::gil::run_detached;
use ferrovec_core::{Direction, FacetValue, Filter, IndexKind, PayloadOp, Retention, Selector};
use numpy::{PyArray1, PyArrayMethods};

/// A collection of points (id, vector, JSON payload) in a ferrovec store.
#[pyclass(name = "Collection", module = "ferrovec", frozen)]
pub struct PyCollection {
    /// Keeps the store open for as long as this handle lives.
    _store: Arc<Store>,
    col: Arc<Collection>,
}

impl PyCollection {
    pub fn new(store: Arc<Store>, col: Arc<Collection>) -> Self {
        PyCollection { _store: store, col }
    }

    /// The checked arguments of an upsert; `None` for an empty batch.
    #[allow(clippy::type_complexity)]
    fn upsert_input<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
        vectors: &Bound<'py, PyAny>,
        payloads: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Option<(Vec<PointId>, Matrix<'py>, Option<Vec<Option<Payload>>>)>> {
        let ids = ids_from_py(py, ids)?;
        let payloads = payloads.map(|p| payloads_from_py(py, p)).transpose()?;
        if ids.is_empty() && payloads.as_ref().is_none_or(Vec::is_empty) {
            // Allow an empty batch in any shape numpy gives it ([] is 1-D).
            let n: usize = vectors.len().unwrap_or(0);
            if n == 0 {
                return Ok(None);
            }
        }
        let config = self.col.config();
        let m = match vectors.cast::<PyDict>() {
            Ok(named) => named_rows(py, named, config, ids.len(), true)?.1,
            Err(_) if config.is_named() => {
                return Err(invalid(
                    py,
                    format!(
                        "collection {:?} holds named vectors: pass vectors as a dict of one (n, dim) array per name",
                        self.col.name()
                    ),
                ))
            }
            Err(_) => matrix_from_py(py, vectors, "vectors")?,
        };
        if m.rows() != ids.len() {
            return Err(invalid(
                py,
                format!("got {} ids but {} vectors", ids.len(), m.rows()),
            ));
        }
        let dim = config.width();
        if m.cols() != dim {
            return Err(invalid(
                py,
                format!(
                    "vectors have dimension {}, the collection {:?} has dimension {dim}",
                    m.cols(),
                    self.col.name()
                ),
            ));
        }
        Ok(Some((ids, m, payloads)))
    }

    /// An (n, dim) array of queries, checked against the dimension of the vector `using`.
    fn queries<'py>(
        &self,
        py: Python<'py>,
        vectors: &Bound<'py, PyAny>,
        using: Option<&str>,
    ) -> PyResult<Matrix<'py>> {
        let m = matrix_from_py(py, vectors, "vectors")?;
        let dim = self
            .col
            .config()
            .space(using)
            .map_err(|e| crate::errors::to_py(py, e))?
            .dim;
        if m.cols() != dim && m.rows() > 0 {
            return Err(invalid(
                py,
                format!(
                    "queries have dimension {}, the {} has dimension {dim}",
                    m.cols(),
                    match using {
                        None | Some("") => String::from("collection"),
                        Some(n) => format!("vector {n:?}"),
                    }
                ),
            ));
        }
        Ok(m)
    }

    fn payload_op(
        &self,
        py: Python<'_>,
        op: PayloadOp,
        ids: Option<&Bound<'_, PyAny>>,
        filter: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        let points = Points::from_py(py, ids, filter)?;
        let col = &self.col;
        run_detached(py, || col.update_payload(points.selector(), &op))
    }
}

/// Named vectors given as a dict of one (n, dim) array per name, as one matrix of rows holding
/// them concatenated: every vector of the collection in its order when `all` (an upsert; a
/// vector not given is absent from those points, stored as NaN), else the vectors given, in the
/// dict's order. Returns the names in row order, and the rows.
fn named_rows<'py>(
    py: Python<'py>,
    named: &Bound<'py, PyDict>,
    config: &CollectionConfig,
    n: usize,
    all: bool,
) -> PyResult<(Vec<String>, Matrix<'py>)> {
    let mut given = Vec::with_capacity(named.len());
    for (k, v) in named.iter() {
        let name: String = k
            .extract()
            .map_err(|_| invalid(py, "vector names must be strings"))?;
        let sp = config
            .space(Some(&name))
            .map_err(|e| crate::errors::to_py(py, e))?;
        let m = matrix_from_py(py, &v, "vectors")?;
        if m.rows() != n {
            return Err(invalid(
                py,
                format!("got {n} ids but {} vectors named {name:?}", m.rows()),
            ));
        }
        if m.cols() != sp.dim {
            return Err(invalid(
                py,
                format!(
                    "vectors named {name:?} have dimension {}, the vector has dimension {}",
                    m.cols(),
                    sp.dim
                ),
            ));
        }
        // A row of NaN: that point lacks this vector (the batch format of leaving it out). A
        // NaN among numbers is refused, as everywhere.
        for (r, row) in m.as_slice().chunks_exact(sp.dim).enumerate() {
            if row.iter().any(|x| x.is_nan()) && !row.iter().all(|x| x.is_nan()) {
                let at = row.iter().position(|x| x.is_nan()).unwrap_or(0);
                return Err(invalid(
                    py,
                    format!(
                        "vectors named {name:?} row {r}: component {at} is NaN (only finite numbers are allowed; a row of NaN leaves the vector out)"
                    ),
                ));
            }
        }
        given.push((name, sp, m));
    }
    let mut spaces: Vec<Space> = given.iter().map(|(_, sp, _)| *sp).collect();
    if all {
        spaces = config.spaces();
    }
    let width: usize = spaces.iter().map(|sp| sp.dim).sum();
    let mut rows = Vec::with_capacity(n * width);
    for r in 0..n {
        for sp in &spaces {
            match given.iter().find(|(_, g, _)| g.index == sp.index) {
                Some((_, _, m)) => {
                    rows.extend_from_slice(&m.as_slice()[r * sp.dim..(r + 1) * sp.dim])
                }
                None => rows.extend(std::iter::repeat_n(f32::NAN, sp.dim)),
            }
        }
    }
    let array = PyArray1::from_vec(py, rows).reshape([n, width])?;
    let names = match all {
        true => config.vectors.iter().map(|v| v.name.clone()).collect(),
        false => given.into_iter().map(|(name, _, _)| name).collect(),
    };
    Ok((names, matrix_from_py(py, array.as_any(), "vectors")?))
}

fn hits_to_list(
    py: Python<'_>,
    hits: Vec<ScoredPoint>,
    config: &CollectionConfig,
) -> PyResult<Py<PyList>> {
    let out = PyList::empty(py);
    for h in hits {
        out.append(hit_to_py(py, h, config)?)?;
    }
    Ok(out.unbind())
}

fn batch_to_list(
    py: Python<'_>,
    all: Vec<Vec<ScoredPoint>>,
    config: &CollectionConfig,
) -> PyResult<Py<PyList>> {
    let out = PyList::empty(py);
    for hits in all {
        out.append(hits_to_list(py, hits, config)?)?;
    }
    Ok(out.unbind())
}

/// The search options shared by `search` and `search_batch`.
#[allow(clippy::too_many_arguments)]
fn search_params(
    py: Python<'_>,
    k: usize,
    offset: usize,
    score_threshold: Option<f32>,
    with_payload: Option<&Bound<'_, PyAny>>,
    with_vectors: bool,
    ef: Option<usize>,
    exact: bool,
    filter: Option<&Bound<'_, PyAny>>,
    allow_zero: bool,
    using: Option<String>,
) -> PyResult<SearchParams> {
    let filter = filter_from_py(py, filter)?;
    if k == 0 {
        return Err(invalid(py, "k must be at least 1"));
    }
    Ok(SearchParams {
        k,
        offset,
        score_threshold,
        with_payload: match with_payload {
            Some(s) => selector_from_py(py, s)?,
            None => ferrovec_core::PayloadSelector::All,
        },
        with_vector: with_vectors,
        ef,
        exact,
        filter,
        allow_zero,
        using,
    })
}

/// Which points a payload operation or delete applies to: ids, or a filter.
enum Points {
    Ids(Vec<PointId>),
    Filter(Filter),
}

impl Points {
    fn from_py(
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

    fn selector(&self) -> Selector<'_> {
        match self {
            Points::Ids(ids) => Selector::Ids(ids),
            Points::Filter(f) => Selector::Filter(f),
        }
    }
}

#[pymethods]
impl PyCollection {
    #[getter]
    fn name(&self) -> &str {
        self.col.name()
    }

    /// The dimension of the unnamed vector (None for a collection of named vectors).
    #[getter]
    fn dim(&self) -> Option<u32> {
        let c = self.col.config();
        (!c.is_named()).then(|| c.vectors[0].dim)
    }

    /// The distance of the unnamed vector (None for a collection of named vectors).
    #[getter]
    fn distance(&self) -> Option<&'static str> {
        let c = self.col.config();
        (!c.is_named()).then(|| c.vectors[0].distance.name())
    }

    /// Every vector of a point: {name: {"dim": int, "distance": str}} ("" for the unnamed one).
    #[getter]
    fn vectors<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        vectors_to_dict(py, self.col.config())
    }

    /// Insert or replace points. `vectors` is an (n, dim) array-like; float32 C-contiguous numpy
    /// arrays are read in place. The batch is applied whole or not at all. allow_zero=True
    /// takes zero vectors under cosine (they score 0), as Qdrant does.
    #[pyo3(signature = (ids, vectors, payloads = None, *, allow_zero = false))]
    fn upsert(
        &self,
        py: Python<'_>,
        ids: &Bound<'_, PyAny>,
        vectors: &Bound<'_, PyAny>,
        payloads: Option<&Bound<'_, PyAny>>,
        allow_zero: bool,
    ) -> PyResult<()> {
        let Some((ids, m, payloads)) = self.upsert_input(py, ids, vectors, payloads)? else {
            return Ok(());
        };
        let slice = m.as_slice();
        let col = &self.col;
        run_detached(py, || {
            col.upsert_with(&ids, slice, payloads.as_deref(), allow_zero)
        })
    }

    /// `upsert` as an awaitable for asyncio: the write (and its fsync) runs on a worker
    /// thread; the vectors are copied first, since the caller may change its array meanwhile.
    #[pyo3(signature = (ids, vectors, payloads = None, *, allow_zero = false))]
    fn upsert_async<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
        vectors: &Bound<'py, PyAny>,
        payloads: Option<&Bound<'py, PyAny>>,
        allow_zero: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let input = self.upsert_input(py, ids, vectors, payloads)?;
        let owned = input.map(|(ids, m, payloads)| (ids, m.as_slice().to_vec(), payloads));
        let col = self.col.clone();
        aio::core_future(
            py,
            move || match owned {
                Some((ids, v, payloads)) => {
                    col.upsert_with(&ids, &v, payloads.as_deref(), allow_zero)
                }
                None => Ok(()),
            },
            |py, ()| Ok(py.None()),
        )
    }

    /// Replace the vectors of the points given by `ids` that exist, keeping their payloads,
    /// as one logged write; returns the ids found (the others are left alone). Ids must be
    /// distinct. For named vectors, `vectors` is a dict of arrays for the names to replace (the
    /// others are kept). allow_zero as in upsert.
    #[pyo3(signature = (ids, vectors, *, allow_zero = false))]
    fn update_vectors(
        &self,
        py: Python<'_>,
        ids: &Bound<'_, PyAny>,
        vectors: &Bound<'_, PyAny>,
        allow_zero: bool,
    ) -> PyResult<Py<PyList>> {
        let col = &self.col;
        let found = match vectors.cast::<PyDict>() {
            Ok(named) => {
                let ids = ids_from_py(py, ids)?;
                let (names, m) = named_rows(py, named, col.config(), ids.len(), false)?;
                let slice = m.as_slice();
                run_detached(py, || {
                    col.update_vectors(&ids, Some(&names), slice, allow_zero)
                })?
            }
            Err(_) => match self.upsert_input(py, ids, vectors, None)? {
                Some((ids, m, _)) => {
                    let slice = m.as_slice();
                    run_detached(py, || col.update_vectors(&ids, None, slice, allow_zero))?
                }
                None => Vec::new(),
            },
        };
        let out = PyList::empty(py);
        for id in &found {
            out.append(id_to_py(py, id)?)?;
        }
        Ok(out.unbind())
    }

    /// Remove the named vectors `names` from the points given by `ids` or `filter` (they keep
    /// their payloads and other vectors; searches of those vectors no longer find them);
    /// returns how many of the points exist.
    #[pyo3(signature = (names, ids = None, *, filter = None))]
    fn delete_vectors(
        &self,
        py: Python<'_>,
        names: Vec<String>,
        ids: Option<&Bound<'_, PyAny>>,
        filter: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        let points = Points::from_py(py, ids, filter)?;
        let col = &self.col;
        run_detached(py, || col.delete_vectors(points.selector(), &names))
    }

    /// Points by id, in the order asked; ids that do not exist are left out.
    #[pyo3(signature = (ids, *, with_payload = None, with_vectors = false))]
    fn get(
        &self,
        py: Python<'_>,
        ids: &Bound<'_, PyAny>,
        with_payload: Option<&Bound<'_, PyAny>>,
        with_vectors: bool,
    ) -> PyResult<Py<PyList>> {
        let ids = ids_from_py(py, ids)?;
        let sel = match with_payload {
            Some(s) => selector_from_py(py, s)?,
            None => ferrovec_core::PayloadSelector::All,
        };
        let col = &self.col;
        let records = run_detached(py, || col.get(&ids, &sel, with_vectors))?;
        let out = PyList::empty(py);
        for r in records {
            out.append(record_to_py(py, r, col.config())?)?;
        }
        Ok(out.unbind())
    }

    /// Delete points by id, or every point matching `filter`; returns how many existed.
    #[pyo3(signature = (ids = None, *, filter = None))]
    fn delete(
        &self,
        py: Python<'_>,
        ids: Option<&Bound<'_, PyAny>>,
        filter: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        let points = Points::from_py(py, ids, filter)?;
        let col = &self.col;
        run_detached(py, || match &points {
            Points::Ids(ids) => col.delete(ids),
            Points::Filter(f) => col.delete_filter(f),
        })
    }

    /// Number of points (matching `filter`, if given).
    #[pyo3(signature = (*, filter = None))]
    fn count(&self, py: Python<'_>, filter: Option<&Bound<'_, PyAny>>) -> PyResult<usize> {
        let filter = filter_from_py(py, filter)?;
        let col = &self.col;
        run_detached(py, || match &filter {
            Some(f) => col.count_filtered(f),
            None => col.count(),
        })
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        let col = &self.col;
        run_detached(py, || col.count())
    }

    /// Set these top-level payload keys (keeping the others) on the points given by `ids` or
    /// `filter`; returns how many points changed. Logged and durable like an upsert.
    /// null_removes=True: a None value removes its key instead (Qdrant's set_payload).
    /// key: set the keys in the object at this path instead (`a.b`, `a[].b`, `a[0]`), creating
    /// what is missing on the way, as Qdrant's set_payload(key=...).
    #[pyo3(signature = (payload, ids = None, *, filter = None, null_removes = false, key = None))]
    #[allow(clippy::too_many_arguments)]
    fn set_payload(
        &self,
        py: Python<'_>,
        payload: &Bound<'_, PyAny>,
        ids: Option<&Bound<'_, PyAny>>,
        filter: Option<&Bound<'_, PyAny>>,
        null_removes: bool,
        key: Option<&str>,
    ) -> PyResult<usize> {
        let payload = payload_from_py(py, payload)?;
        let op = match key {
            Some(key) => PayloadOp::SetAt {
                path: ferrovec_core::payload::Path::parse(key, "key")
                    .map_err(|e| crate::errors::to_py(py, e))?,
                payload,
                null_removes,
            },
            None if null_removes => PayloadOp::Merge(payload),
            None => PayloadOp::Set(payload),
        };
        self.payload_op(py, op, ids, filter)
    }

    /// Replace the whole payload of the points given by `ids` or `filter`.
    #[pyo3(signature = (payload, ids = None, *, filter = None))]
    fn overwrite_payload(
        &self,
        py: Python<'_>,
        payload: &Bound<'_, PyAny>,
        ids: Option<&Bound<'_, PyAny>>,
        filter: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        let op = PayloadOp::Overwrite(payload_from_py(py, payload)?);
        self.payload_op(py, op, ids, filter)
    }

    /// Remove these keys (top-level names, or paths such as `a.b` and `a[]`, as in filters) from
    /// the payload of the points given by `ids` or `filter`.
    #[pyo3(signature = (keys, ids = None, *, filter = None))]
    fn delete_payload(
        &self,
        py: Python<'_>,
        keys: Vec<String>,
        ids: Option<&Bound<'_, PyAny>>,
        filter: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        let op = PayloadOp::delete_keys(&keys).map_err(|e| crate::errors::to_py(py, e))?;
        self.payload_op(py, op, ids, filter)
    }

    /// Remove the whole payload of the points given by `ids` or `filter`.
    #[pyo3(signature = (ids = None, *, filter = None))]
    fn clear_payload(
        &self,
        py: Python<'_>,
        ids: Option<&Bound<'_, PyAny>>,
        filter: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        self.payload_op(py, PayloadOp::Clear, ids, filter)
    }

    /// Index the payload values at `key` (a path such as "meta.source" or "tags[]") as one of
    /// keyword, integer, float, bool, datetime, uuid, geo, text. Filters use it at once.
    #[pyo3(signature = (key, r#type))]
    fn create_payload_index(&self, py: Python<'_>, key: &str, r#type: &str) -> PyResult<()> {
        let kind = IndexKind::parse(r#type).map_err(|e| crate::errors::to_py(py, e))?;
        let col = &self.col;
        run_detached(py, || col.create_payload_index(key, kind))
    }

    /// Remove the payload index on `key`.
    fn drop_payload_index(&self, py: Python<'_>, key: &str) -> PyResult<()> {
        let col = &self.col;
        run_detached(py, || col.drop_payload_index(key))
    }

    /// Delete points whose RFC 3339 datetime at `key` is more than `max_age_seconds` old:
    /// the optimizer checks every 10 seconds, and `optimize()` and `expire()` at once.
    /// A datetime index on `key` is created if missing. `set_retention(None)` turns it off.
    #[pyo3(signature = (key, *, max_age_seconds = None))]
    fn set_retention(
        &self,
        py: Python<'_>,
        key: Option<String>,
        max_age_seconds: Option<u64>,
    ) -> PyResult<()> {
        let retention = match (key, max_age_seconds) {
            (None, None) => None,
            (Some(key), Some(max_age_secs)) => Some(Retention { key, max_age_secs }),
            (Some(_), None) => {
                return Err(crate::errors::invalid(
                    py,
                    "set_retention needs max_age_seconds",
                ))
            }
            (None, Some(_)) => return Err(crate::errors::invalid(py, "set_retention needs a key")),
        };
        let col = &self.col;
        run_detached(py, || col.set_retention(retention))
    }

    /// The retention rule: {"key": ..., "max_age_seconds": ...}, or None.
    #[getter]
    fn retention<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.col
            .retention()
            .map(|r| retention_to_dict(py, &r))
            .transpose()
    }

    /// Delete the points past retention now; returns how many.
    fn expire(&self, py: Python<'_>) -> PyResult<usize> {
        let col = &self.col;
        run_detached(py, || col.expire())
    }

    /// For tests: make retention read `now` (seconds since the epoch) as the time; None
    /// restores the system clock.
    #[pyo3(signature = (now))]
    fn _set_clock(&self, now: Option<f64>) {
        self.col.set_clock(now);
    }

    /// Counts of points per value of the string field `key` (among those matching `filter`),
    /// most frequent first: a list of (value, count).
    #[pyo3(signature = (key, *, filter = None, limit = 10))]
    fn facet(
        &self,
        py: Python<'_>,
        key: &str,
        filter: Option<&Bound<'_, PyAny>>,
        limit: usize,
    ) -> PyResult<Vec<(Py<PyAny>, usize)>> {
        let filter = filter_from_py(py, filter)?.unwrap_or_default();
        let col = &self.col;
        let counts = run_detached(py, || col.facet(key, &filter, limit))?;
        counts
            .into_iter()
            .map(|(v, n)| {
                let v = match v {
                    FacetValue::Bool(b) => b.into_pyobject(py)?.to_owned().into_any().unbind(),
                    FacetValue::Int(i) => i.into_pyobject(py)?.into_any().unbind(),
                    FacetValue::Str(s) => s.into_pyobject(py)?.into_any().unbind(),
                };
                Ok((v, n))
            })
            .collect()
    }

    /// The `k` best points for one query vector, best first. ef: the graph search's candidate
    /// list (default max(ef_construct, k + offset)); exact=True scans every point instead.
    #[pyo3(signature = (vector, k = 10, *, filter = None, score_threshold = None, offset = 0, with_payload = None, with_vectors = false, ef = None, exact = false, allow_zero = false, using = None))]
    #[allow(clippy::too_many_arguments)]
    fn search(
        &self,
        py: Python<'_>,
        vector: &Bound<'_, PyAny>,
        k: usize,
        filter: Option<&Bound<'_, PyAny>>,
        score_threshold: Option<f32>,
        offset: usize,
        with_payload: Option<&Bound<'_, PyAny>>,
        with_vectors: bool,
        ef: Option<usize>,
        exact: bool,
        allow_zero: bool,
        using: Option<String>,
    ) -> PyResult<Py<PyList>> {
        let params = search_params(
            py,
            k,
            offset,
            score_threshold,
            with_payload,
            with_vectors,
            ef,
            exact,
            filter,
            allow_zero,
            using,
        )?;
        let q = vector_from_py(py, vector, "vector")?;
        let qs = q.as_slice().map_err(|e| invalid(py, e.to_string()))?;
        let col = &self.col;
        let hits = run_detached(py, || col.search(qs, &params))?;
        hits_to_list(py, hits, col.config())
    }

    /// `search` as an awaitable for asyncio: the search runs on a worker thread.
    #[pyo3(signature = (vector, k = 10, *, filter = None, score_threshold = None, offset = 0, with_payload = None, with_vectors = false, ef = None, exact = false, allow_zero = false, using = None))]
    #[allow(clippy::too_many_arguments)]
    fn search_async<'py>(
        &self,
        py: Python<'py>,
        vector: &Bound<'py, PyAny>,
        k: usize,
        filter: Option<&Bound<'py, PyAny>>,
        score_threshold: Option<f32>,
        offset: usize,
        with_payload: Option<&Bound<'py, PyAny>>,
        with_vectors: bool,
        ef: Option<usize>,
        exact: bool,
        allow_zero: bool,
        using: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let params = search_params(
            py,
            k,
            offset,
            score_threshold,
            with_payload,
            with_vectors,
            ef,
            exact,
            filter,
            allow_zero,
            using,
        )?;
        let q = vector_from_py(py, vector, "vector")?;
        let q = q
            .as_slice()
            .map_err(|e| invalid(py, e.to_string()))?
            .to_vec();
        let col = self.col.clone();
        let config = col.config().clone();
        aio::core_future(
            py,
            move || col.search(&q, &params),
            move |py, hits| Ok(hits_to_list(py, hits, &config)?.into_any()),
        )
    }

    /// The `k` best points for each row of an (n, dim) array of queries (spread over threads).
    #[pyo3(signature = (vectors, k = 10, *, filter = None, score_threshold = None, with_payload = None, with_vectors = false, ef = None, exact = false, allow_zero = false, using = None))]
    #[allow(clippy::too_many_arguments)]
    fn search_batch(
        &self,
        py: Python<'_>,
        vectors: &Bound<'_, PyAny>,
        k: usize,
        filter: Option<&Bound<'_, PyAny>>,
        score_threshold: Option<f32>,
        with_payload: Option<&Bound<'_, PyAny>>,
        with_vectors: bool,
        ef: Option<usize>,
        exact: bool,
        allow_zero: bool,
        using: Option<String>,
    ) -> PyResult<Py<PyList>> {
        let params = search_params(
            py,
            k,
            0,
            score_threshold,
            with_payload,
            with_vectors,
            ef,
            exact,
            filter,
            allow_zero,
            using,
        )?;
        let m = self.queries(py, vectors, params.using.as_deref())?;
        let slice = m.as_slice();
        let col = &self.col;
        let all = run_detached(py, || col.search_batch(slice, &params))?;
        batch_to_list(py, all, col.config())
    }

    /// `search_batch` as an awaitable for asyncio: the queries run on the core's threads.
    #[pyo3(signature = (vectors, k = 10, *, filter = None, score_threshold = None, with_payload = None, with_vectors = false, ef = None, exact = false, allow_zero = false, using = None))]
    #[allow(clippy::too_many_arguments)]
    fn search_batch_async<'py>(
        &self,
        py: Python<'py>,
        vectors: &Bound<'py, PyAny>,
        k: usize,
        filter: Option<&Bound<'py, PyAny>>,
        score_threshold: Option<f32>,
        with_payload: Option<&Bound<'py, PyAny>>,
        with_vectors: bool,
        ef: Option<usize>,
        exact: bool,
        allow_zero: bool,
        using: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let params = search_params(
            py,
            k,
            0,
            score_threshold,
            with_payload,
            with_vectors,
            ef,
            exact,
            filter,
            allow_zero,
            using,
        )?;
        let m = self.queries(py, vectors, params.using.as_deref())?;
        let queries = m.as_slice().to_vec();
        let col = self.col.clone();
        let config = col.config().clone();
        aio::core_future(
            py,
            move || col.search_batch(&queries, &params),
            move |py, all| Ok(batch_to_list(py, all, &config)?.into_any()),
        )
    }

    /// Page through points (matching `filter`) in id order (ints ascending, then strs). Returns
    /// (records, next_offset); pass next_offset back as `offset` for the next page; it is None
    /// after the last page. `order_by` (a key, or a dict with key, direction "asc"/"desc" and
    /// start_from) orders by an indexed numeric or datetime field instead; then next_offset is
    /// None and paging continues with start_from.
    #[pyo3(signature = (limit = 100, offset = None, *, filter = None, order_by = None, with_payload = None, with_vectors = false))]
    #[allow(clippy::too_many_arguments)]
    fn scroll(
        &self,
        py: Python<'_>,
        limit: usize,
        offset: Option<&Bound<'_, PyAny>>,
        filter: Option<&Bound<'_, PyAny>>,
        order_by: Option<&Bound<'_, PyAny>>,
        with_payload: Option<&Bound<'_, PyAny>>,
        with_vectors: bool,
    ) -> PyResult<Py<PyTuple>> {
        let offset: Option<PointId> = offset
            .filter(|o| !o.is_none())
            .map(|o| id_from_py(py, o, 0))
            .transpose()?;
        let sel = match with_payload {
            Some(s) => selector_from_py(py, s)?,
            None => ferrovec_core::PayloadSelector::All,
        };
        let filter = filter_from_py(py, filter)?;
        let col = &self.col;
        if let Some(order) = order_by.filter(|o| !o.is_none()) {
            if offset.is_some() {
                return Err(invalid(
                    py,
                    "offset cannot be combined with order_by; page with order_by's start_from",
                ));
            }
            let spec = json_value_from_py(py, order, "order_by")?;
            let (key, direction, start) = match &spec {
                serde_json::Value::String(k) => (k.clone(), Direction::Asc, None),
                serde_json::Value::Object(m) => {
                    let key = m.get("key").and_then(|k| k.as_str()).ok_or_else(|| {
                        invalid(py, "order_by: expected {\"key\": ..., \"direction\": ..., \"start_from\": ...}")
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
                    (key.to_string(), direction, m.get("start_from").cloned())
                }
                _ => return Err(invalid(py, "order_by: expected a key or a dict")),
            };
            let filter = filter.unwrap_or_default();
            let records = run_detached(py, || {
                col.scroll_ordered(
                    &key,
                    direction,
                    start.as_ref(),
                    &filter,
                    limit,
                    &sel,
                    with_vectors,
                )
            })?;
            let list = PyList::empty(py);
            for r in records {
                list.append(record_to_py(py, r, col.config())?)?;
            }
            return Ok(PyTuple::new(py, [list.into_any().unbind(), py.None()])?.unbind());
        }
        let (records, next) = run_detached(py, || {
            col.scroll(limit, offset.as_ref(), &sel, with_vectors, filter.as_ref())
        })?;
        let list = PyList::empty(py);
        for r in records {
            list.append(record_to_py(py, r, col.config())?)?;
        }
        let next = match next {
            Some(id) => id_to_py(py, &id)?,
            None => py.None(),
        };
        Ok(PyTuple::new(py, [list.into_any().unbind(), next])?.unbind())
    }

    /// Checkpoint: write everything logged so far into sealed segment files and trim the log.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        let col = &self.col;
        run_detached(py, || col.flush())
    }

    /// Seal, index and merge. With wait=True (the default) this returns when done, leaving a
    /// collection smaller than max_segment_points as one indexed segment; with wait=False it
    /// asks the background optimizer and returns at once.
    #[pyo3(signature = (wait = true))]
    fn optimize(&self, py: Python<'_>, wait: bool) -> PyResult<()> {
        let col = &self.col;
        if wait {
            run_detached(py, || col.optimize())
        } else {
            run_detached(py, || col.optimize_in_background())
        }
    }

    /// Check every checksum of the collection's sealed files; raises CorruptionError if any fails.
    fn verify(&self, py: Python<'_>) -> PyResult<()> {
        let col = &self.col;
        run_detached(py, || col.verify())
    }

    /// A dict: name, dim, distance, points, indexed_points, unindexed_points, segments (a list of
    /// dicts: rows, deleted, kind, indexed, self_check_recall), unflushed_points,
    /// optimizer_status, hnsw, optimizer, disk_bytes, log_bytes, payload_indexes (a list of
    /// dicts: key, type, points, disk_bytes), retention (a dict: key, max_age_seconds; or None).
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let col = &self.col;
        let info = run_detached(py, || col.info())?;
        info_to_dict(py, &info)
    }

    fn __repr__(&self) -> String {
        let c = self.col.config();
        if c.is_named() {
            let names: Vec<&str> = c.vectors.iter().map(|v| v.name.as_str()).collect();
            return format!("Collection(name={:?}, vectors={names:?})", self.col.name());
        }
        format!(
            "Collection(name={:?}, dim={}, distance={:?})",
            self.col.name(),
            c.vectors[0].dim,
            c.vectors[0].distance.name()
        )
    }
}

/// {name: {"dim": int, "distance": str}} for every vector of a point.
fn vectors_to_dict<'py>(py: Python<'py>, c: &CollectionConfig) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for v in &c.vectors {
        let spec = PyDict::new(py);
        spec.set_item("dim", v.dim)?;
        spec.set_item("distance", v.distance.name())?;
        d.set_item(&v.name, spec)?;
    }
    Ok(d)
}

pub fn info_to_dict<'py>(
    py: Python<'py>,
    info: &ferrovec_core::CollectionInfo,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("name", &info.name)?;
    let c = &info.config;
    d.set_item("dim", (!c.is_named()).then(|| c.vectors[0].dim))?;
    d.set_item(
        "distance",
        (!c.is_named()).then(|| c.vectors[0].distance.name()),
    )?;
    d.set_item("vectors", vectors_to_dict(py, c)?)?;
    d.set_item("points", info.points)?;
    d.set_item("indexed_points", info.indexed_points)?;
    d.set_item("unindexed_points", info.unindexed_points)?;
    let segments = PyList::empty(py);
    for s in &info.segments {
        let sd = PyDict::new(py);
        sd.set_item("rows", s.rows)?;
        sd.set_item("deleted", s.deleted)?;
        sd.set_item("kind", s.kind)?;
        sd.set_item("indexed", s.indexed)?;
        sd.set_item("self_check_recall", s.self_check_recall)?;
        segments.append(sd)?;
    }
    d.set_item("segments", segments)?;
    d.set_item("unflushed_points", info.unflushed_points)?;
    d.set_item("optimizer_status", &info.optimizer_status)?;
    let h = PyDict::new(py);
    h.set_item("m", info.config.hnsw.m)?;
    h.set_item("ef_construct", info.config.hnsw.ef_construct)?;
    h.set_item("full_scan_threshold", info.config.hnsw.full_scan_threshold)?;
    d.set_item("hnsw", h)?;
    let o = PyDict::new(py);
    o.set_item(
        "indexing_threshold",
        info.config.optimizer.indexing_threshold,
    )?;
    o.set_item(
        "max_segment_points",
        info.config.optimizer.max_segment_points,
    )?;
    o.set_item("idle_ms", info.config.optimizer.idle_ms)?;
    d.set_item("optimizer", o)?;
    d.set_item("disk_bytes", info.disk_bytes)?;
    d.set_item("log_bytes", info.log_bytes)?;
    let indexes = PyList::empty(py);
    for i in &info.payload_indexes {
        let id = PyDict::new(py);
        id.set_item("key", &i.key)?;
        id.set_item("type", i.kind)?;
        id.set_item("points", i.points)?;
        id.set_item("disk_bytes", i.disk_bytes)?;
        indexes.append(id)?;
    }
    d.set_item("payload_indexes", indexes)?;
    let retention = info
        .retention
        .as_ref()
        .map(|r| retention_to_dict(py, r))
        .transpose()?;
    d.set_item("retention", retention)?;
    Ok(d)
}

fn retention_to_dict<'py>(py: Python<'py>, r: &Retention) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("key", &r.key)?;
    d.set_item("max_age_seconds", r.max_age_secs)?;
    Ok(d)
}

/// For tests: the address of the float32 buffer the bindings would read for `vectors`.
#[pyfunction]
pub fn _matrix_address(py: Python<'_>, vectors: &Bound<'_, PyAny>) -> PyResult<usize> {
    let m = matrix_from_py(py, vectors, "vectors")?;
    Ok(m.as_slice().as_ptr() as usize)
}
