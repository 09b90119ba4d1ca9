//! `ferrovec.Collection`: parse the arguments (`args`) → one core call without the GIL →
//! build the result (`out`). Calls that may run long (large writes, batch searches,
//! `optimize()`) can be interrupted with Ctrl-C (`gil::run_interruptible`).

use std::sync::Arc;

use ferrovec_core::{Collection, IndexKind, Matrix, PayloadOp, Retention};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::aio;
use crate::args::{
    payload_path, payload_selector, Batch, BatchVectors, OrderBy, Points, SearchArgs,
};
use crate::convert::{
    filter_from_py, id_from_py, id_to_py, ids_from_py, matrix_from_py, payload_from_py,
    vector_from_py, JsonDefault,
};
use crate::errors::{invalid, to_py};
use crate::gil::{run_detached, run_interruptible, StoreRef};
use crate::out::{
    batch_to_list, facet_value, hits_to_list, info_to_dict, records_to_list, retention_to_dict,
    vectors_to_dict,
};

/// Writes of at least this many values run interruptibly (a thread of their own costs some
/// microseconds, which small writes should not pay).
const LONG_WRITE_VALUES: usize = 1 << 20;
/// Batch searches run a step of queries at a time, checking for Ctrl-C in between: at most
/// this many queries a step, ...
const QUERIES_PER_STEP: usize = 1024;
/// ... and at most about this many multiply-adds a step were every point scanned exactly
/// (some 0.25 s here: the batched scan does 7e10 a second on 2 cores), in whole blocks of the
/// scan's 64 queries, so that steps cost no more than one call.
const SCAN_PER_STEP: usize = 1 << 34;
const SCAN_BLOCK: usize = 64;

/// A collection of points (id, vector, JSON payload) in a ferrovec store.
#[pyclass(name = "Collection", module = "ferrovec", frozen)]
pub struct PyCollection {
    /// Keeps the store open for as long as this handle lives.
    pub(crate) store: StoreRef,
    pub(crate) col: Arc<Collection>,
}

impl PyCollection {
    pub fn new(store: StoreRef, col: Arc<Collection>) -> Self {
        PyCollection { store, col }
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

    /// Top-k search for each row of `queries`, a step of queries at a time when there are
    /// many, so that Ctrl-C stops it between steps.
    fn search_rows(
        &self,
        py: Python<'_>,
        queries: Matrix<'_>,
        params: &ferrovec_core::SearchParams,
    ) -> PyResult<Py<PyList>> {
        let col = &self.col;
        let points = run_detached(py, || col.live_points())?;
        let scanned = points.saturating_mul(queries.cols()).max(1);
        let step =
            (SCAN_PER_STEP / scanned / SCAN_BLOCK * SCAN_BLOCK).clamp(SCAN_BLOCK, QUERIES_PER_STEP);
        let all = if queries.rows() <= step {
            run_detached(py, || col.search_batch(queries, params))?
        } else {
            run_interruptible(py, |cancel| {
                let cols = queries.cols();
                let mut all = Vec::with_capacity(queries.rows());
                for step in queries.data().chunks(step * cols) {
                    cancel.check("the batch search")?;
                    let m = Matrix::new(step, step.len() / cols, cols)?;
                    all.extend(col.search_batch(m, params)?);
                }
                Ok(all)
            })?
        };
        batch_to_list(py, all, col.config())
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
    /// arrays are read in place (exactly once). The batch is applied whole or not at all.
    /// allow_zero=True takes zero vectors under cosine (they score 0), as Qdrant does.
    /// json_default: called with each payload value that is not JSON (a date, a UUID...),
    /// returning its JSON form, as json.dumps(default=...) does.
    #[pyo3(signature = (ids, vectors, payloads = None, *, allow_zero = false, json_default = None))]
    fn upsert(
        &self,
        py: Python<'_>,
        ids: &Bound<'_, PyAny>,
        vectors: &Bound<'_, PyAny>,
        payloads: Option<&Bound<'_, PyAny>>,
        allow_zero: bool,
        json_default: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let col = &self.col;
        let json = JsonDefault(json_default);
        let Some(mut b) = Batch::from_py(py, col, ids, vectors, payloads, json)? else {
            return Ok(());
        };
        let long = b.vectors.values() >= LONG_WRITE_VALUES;
        let v = b.vectors.core().map_err(|e| to_py(py, e))?;
        let p = b.payloads.as_deref();
        if !long {
            let never = &ferrovec_core::cancel::NEVER;
            return run_detached(py, || col.upsert_batch(&b.ids, &v, p, allow_zero, never));
        }
        run_interruptible(py, |cancel| {
            col.upsert_batch(&b.ids, &v, p, allow_zero, cancel)
        })
    }

    /// `upsert` as an awaitable for asyncio: the write (and its fsync) runs on a worker
    /// thread; the vectors are copied first, since the caller may change its array meanwhile.
    #[pyo3(signature = (ids, vectors, payloads = None, *, allow_zero = false, json_default = None))]
    fn upsert_async<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
        vectors: &Bound<'py, PyAny>,
        payloads: Option<&Bound<'py, PyAny>>,
        allow_zero: bool,
        json_default: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let col = self.col.clone();
        let json = JsonDefault(json_default);
        let owned = Batch::from_py(py, &col, ids, vectors, payloads, json)?
            .map(|mut b| (b.ids, b.vectors.take_owned(), b.payloads));
        aio::core_future(
            py,
            move || match owned {
                Some((ids, v, payloads)) => col.upsert_batch(
                    &ids,
                    &v.core()?,
                    payloads.as_deref(),
                    allow_zero,
                    &ferrovec_core::cancel::NEVER,
                ),
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
        let ids = ids_from_py(py, ids)?;
        let mut given = BatchVectors::from_py(py, col, vectors)?;
        let v = given.core().map_err(|e| to_py(py, e))?;
        let found = run_detached(py, || col.update_vectors(&ids, &v, allow_zero))?;
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
        let sel = payload_selector(py, with_payload)?;
        let col = &self.col;
        let records = run_detached(py, || col.get(&ids, &sel, with_vectors))?;
        Ok(records_to_list(py, records, col.config())?.unbind())
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
                path: payload_path(py, key)?,
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
        let op = PayloadOp::delete_keys(&keys).map_err(|e| to_py(py, e))?;
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
        let kind = IndexKind::parse(r#type).map_err(|e| to_py(py, e))?;
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
            (Some(_), None) => return Err(invalid(py, "set_retention needs max_age_seconds")),
            (None, Some(_)) => return Err(invalid(py, "set_retention needs a key")),
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
            .map(|(v, n)| Ok((facet_value(py, v)?, n)))
            .collect()
    }

    /// The `k` best points for one query vector, best first. ef: the graph search's candidate
    /// list (default max(ef_construct, k + offset)); exact=True scans every point instead.
    /// quantization: {"ignore": bool, "rescore": bool, "oversampling": float} overrides how
    /// the walk uses the codes (Qdrant's QuantizationSearchParams).
    #[pyo3(signature = (vector, k = 10, *, filter = None, score_threshold = None, offset = 0, with_payload = None, with_vectors = false, ef = None, exact = false, allow_zero = false, using = None, quantization = None))]
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
        quantization: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyList>> {
        let params = SearchArgs {
            k,
            offset,
            filter,
            score_threshold,
            with_payload,
            with_vectors,
            ef,
            exact,
            allow_zero,
            using,
            quantization,
        }
        .params(py)?;
        let col = &self.col;
        if let Some(q) = crate::query::sparse_query(py, col, vector, params.using.as_deref())? {
            let hits = run_detached(py, || col.search_sparse(&q, &params))?;
            return hits_to_list(py, hits, col.config());
        }
        let q = vector_from_py(py, vector, "vector")?;
        let qs = q.as_slice().map_err(|e| invalid(py, e.to_string()))?;
        let hits = run_detached(py, || col.search(qs, &params))?;
        hits_to_list(py, hits, col.config())
    }

    /// `search` as an awaitable for asyncio: the search runs on a worker thread.
    #[pyo3(signature = (vector, k = 10, *, filter = None, score_threshold = None, offset = 0, with_payload = None, with_vectors = false, ef = None, exact = false, allow_zero = false, using = None, quantization = None))]
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
        quantization: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let params = SearchArgs {
            k,
            offset,
            filter,
            score_threshold,
            with_payload,
            with_vectors,
            ef,
            exact,
            allow_zero,
            using,
            quantization,
        }
        .params(py)?;
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
    #[pyo3(signature = (vectors, k = 10, *, filter = None, score_threshold = None, with_payload = None, with_vectors = false, ef = None, exact = false, allow_zero = false, using = None, quantization = None))]
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
        quantization: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyList>> {
        let params = SearchArgs {
            k,
            offset: 0,
            filter,
            score_threshold,
            with_payload,
            with_vectors,
            ef,
            exact,
            allow_zero,
            using,
            quantization,
        }
        .params(py)?;
        let m = matrix_from_py(py, vectors, "vectors")?;
        let queries = m.core().map_err(|e| to_py(py, e))?;
        self.search_rows(py, queries, &params)
    }

    /// `search_batch` as an awaitable for asyncio: the queries run on the core's threads.
    #[pyo3(signature = (vectors, k = 10, *, filter = None, score_threshold = None, with_payload = None, with_vectors = false, ef = None, exact = false, allow_zero = false, using = None, quantization = None))]
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
        quantization: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let params = SearchArgs {
            k,
            offset: 0,
            filter,
            score_threshold,
            with_payload,
            with_vectors,
            ef,
            exact,
            allow_zero,
            using,
            quantization,
        }
        .params(py)?;
        let m = matrix_from_py(py, vectors, "vectors")?;
        let (queries, rows, cols) = (m.as_slice().to_vec(), m.rows(), m.cols());
        let col = self.col.clone();
        let config = col.config().clone();
        aio::core_future(
            py,
            move || col.search_batch(Matrix::new(&queries, rows, cols)?, &params),
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
        let offset = offset
            .filter(|o| !o.is_none())
            .map(|o| id_from_py(py, o, 0))
            .transpose()?;
        let sel = payload_selector(py, with_payload)?;
        let filter = filter_from_py(py, filter)?;
        let col = &self.col;
        let (records, next) = match order_by.filter(|o| !o.is_none()) {
            Some(order) => {
                if offset.is_some() {
                    return Err(invalid(
                        py,
                        "offset cannot be combined with order_by; page with order_by's start_from",
                    ));
                }
                let o = OrderBy::from_py(py, order)?;
                let filter = filter.unwrap_or_default();
                let records = run_detached(py, || {
                    let start = o.start.as_ref();
                    col.scroll_ordered(
                        &o.key,
                        o.direction,
                        start,
                        &filter,
                        limit,
                        &sel,
                        with_vectors,
                    )
                })?;
                (records, None)
            }
            None => run_detached(py, || {
                col.scroll(limit, offset.as_ref(), &sel, with_vectors, filter.as_ref())
            })?,
        };
        let list = records_to_list(py, records, col.config())?;
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
    /// collection smaller than max_segment_points as one indexed segment; Ctrl-C stops it
    /// between steps, keeping what is done. With wait=False it asks the background optimizer
    /// and returns at once.
    ///
    /// progress: True draws a progress bar with the time left on stderr; a callable is called
    /// as progress(done, total) with the graph insertions made and planned, about every 1%.
    /// stats()["optimizer"]["progress"] shows the same for any optimization under way.
    #[pyo3(signature = (wait = true, *, progress = None))]
    fn optimize(
        &self,
        py: Python<'_>,
        wait: bool,
        progress: Option<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let col = &self.col;
        let (callback, bar) = match progress {
            None => (None, None),
            Some(p) if p.is_instance_of::<pyo3::types::PyBool>() => {
                if p.is_truthy()? {
                    let bar = py
                        .import("ferrovec._progress")?
                        .getattr("Bar")?
                        .call1(("optimize", "insertions"))?;
                    (Some(bar.clone().unbind()), Some(bar))
                } else {
                    (None, None)
                }
            }
            Some(p) if p.is_callable() => (Some(p.unbind()), None),
            Some(p) => {
                return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                    "progress must be True, False or a callable taking (done, total), not {}",
                    p.get_type().name()?
                )))
            }
        };
        if !wait {
            if callback.is_some() {
                return Err(invalid(
                    py,
                    "progress needs wait=True; stats()[\"optimizer\"][\"progress\"] shows how \
                     far a background optimization has got",
                ));
            }
            return run_detached(py, || col.optimize_in_background());
        }
        let reporter = crate::progress::Reporter::new(callback);
        let result = run_interruptible(py, |cancel| col.optimize_reporting(cancel, &reporter));
        if let Some(bar) = bar {
            bar.call_method0("finish")?;
        }
        result
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

/// For tests: the address of the float32 buffer the bindings would read for `vectors`.
#[pyfunction]
pub fn _matrix_address(py: Python<'_>, vectors: &Bound<'_, PyAny>) -> PyResult<usize> {
    let m = matrix_from_py(py, vectors, "vectors")?;
    Ok(m.as_slice().as_ptr() as usize)
}
