//! What a store tells about itself, from Python: `Database.metrics`, `slow_ops`, `stats`;
//! `Collection.stats`, `explain`, `explain_query`, `reindex`; the profiler's threshold; and
//! the operator's `check` and `repair` of a store on disk.

use ferrovec_core::observe::slow;
use ferrovec_core::query::universal::QueryRequest;
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::args::SearchArgs;
use crate::collection::PyCollection;
use crate::convert::{json_to_py, json_value_from_py, vector_from_py};
use crate::database::PyDatabase;
use crate::errors::{invalid, to_py};
use crate::gil::run_detached;

/// Record every call taking at least `ms` milliseconds (0: every call) in the slow-operation
/// profiler, for every store of this process; None turns it off.
#[pyfunction]
#[pyo3(signature = (ms))]
pub fn set_slow_op_ms(ms: Option<u64>) {
    slow::set_threshold(ms);
}

/// The profiler's threshold in milliseconds, or None when it is off.
#[pyfunction]
pub fn get_slow_op_ms() -> Option<u64> {
    slow::threshold()
}

/// `open(slow_op_ms=...)`: the argument, else the environment variable; `None`: unchanged.
pub fn parse_slow_op_ms(py: Python<'_>, ms: Option<i64>) -> PyResult<Option<u64>> {
    let ms = match ms {
        Some(ms) => Some(ms),
        None => match std::env::var(slow::SLOW_OP_ENV) {
            Ok(v) => Some(v.trim().parse::<i64>().map_err(|_| {
                invalid(
                    py,
                    format!(
                        "{}={v:?} is not a whole number of milliseconds",
                        slow::SLOW_OP_ENV
                    ),
                )
            })?),
            Err(_) => None,
        },
    };
    ms.map(|ms| {
        u64::try_from(ms).map_err(|_| {
            invalid(
                py,
                format!("slow_op_ms must be 0 or more milliseconds, got {ms}"),
            )
        })
    })
    .transpose()
}

#[pymethods]
impl PyDatabase {
    /// Every collection's metrics in Prometheus' text format (version 0.0.4). names: only
    /// these metric families (an unknown name raises InvalidInputError); collection: only it.
    #[pyo3(signature = (names = None, *, collection = None))]
    fn metrics(
        &self,
        py: Python<'_>,
        names: Option<Vec<String>>,
        collection: Option<String>,
    ) -> PyResult<String> {
        let store = self.store(py)?;
        run_detached(py, || {
            store.metrics(names.as_deref(), collection.as_deref())
        })
    }

    /// The newest `limit` slow operations recorded on this store (newest first), of
    /// `collection` if given: dicts with the collection, op, duration_ms, params, plan,
    /// time_ms (per phase), counts and error. See `open(slow_op_ms=...)`.
    #[pyo3(signature = (limit = 100, *, collection = None))]
    fn slow_ops(
        &self,
        py: Python<'_>,
        limit: usize,
        collection: Option<String>,
    ) -> PyResult<Py<PyList>> {
        let store = self.store(py)?;
        let ops = store.slow_ops(limit, collection.as_deref());
        let out = PyList::empty(py);
        for op in &ops {
            out.append(json_to_py(py, op)?)?;
        }
        Ok(out.unbind())
    }

    /// `Collection.stats()` of every collection.
    fn stats(&self, py: Python<'_>) -> PyResult<Py<PyList>> {
        let store = self.store(py)?;
        let all = run_detached(py, || {
            store
                .list_collections()?
                .iter()
                .map(|n| store.collection(n)?.stats())
                .collect::<ferrovec_core::Result<Vec<_>>>()
        })?;
        let out = PyList::empty(py);
        for s in &all {
            out.append(json_to_py(py, s)?)?;
        }
        Ok(out.unbind())
    }
}

/// Repair the store at `path`, which no process may have open: damaged graphs, codes and
/// payload indexes are rebuilt from the rows; a segment whose rows are damaged is dropped; the
/// log keeps every intact record; everything damaged is moved into `<path>/damaged/<time>/`.
/// One dict per collection: name, damage, actions, lost, log_records, lost_points,
/// kept_aside, still_failing (what still fails afterwards, or None). A healthy store is left
/// untouched (every `actions` list is empty).
#[pyfunction]
pub fn repair(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Py<PyList>> {
    let found = crate::gil::run_interruptible(py, |cancel| {
        ferrovec_core::repair::repair_store(&path, cancel)
    })?;
    let out = PyList::empty(py);
    for c in found {
        let d = pyo3::types::PyDict::new(py);
        d.set_item("name", c.name)?;
        d.set_item("damage", c.damage)?;
        d.set_item("actions", c.actions)?;
        d.set_item("lost", c.lost)?;
        d.set_item("log_records", c.log_records)?;
        d.set_item("lost_points", c.lost_points)?;
        let aside: Vec<String> = c
            .kept_aside
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        d.set_item("kept_aside", aside)?;
        d.set_item("still_failing", c.still_failing)?;
        out.append(d)?;
    }
    Ok(out.unbind())
}

#[pymethods]
impl PyCollection {
    /// Rebuild every graph and payload index from the stored rows, then check every
    /// checksum (raises CorruptionError if one fails). Ctrl-C stops it, keeping what is
    /// rebuilt by then.
    fn reindex(&self, py: Python<'_>) -> PyResult<()> {
        let col = &self.col;
        crate::gil::run_interruptible(py, |cancel| col.reindex(cancel))
    }

    /// Points, segments, payload indexes, log, disk and memory bytes per part, the
    /// optimizer's last and next work, and bytes per point (docs/OPERATIONS.md).
    fn stats(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let col = &self.col;
        let s = run_detached(py, || col.stats())?;
        json_to_py(py, &s)
    }

    /// How `search(vector, k, ...)` would run, per segment: graph or exact scan and why, the
    /// filter's strategy and matching rows, ef and rescoring. analyze=True also runs it and
    /// adds its time per phase and step and what it counted.
    #[pyo3(signature = (vector, k = 10, *, filter = None, score_threshold = None, offset = 0, ef = None, exact = false, allow_zero = false, using = None, quantization = None, analyze = false))]
    #[allow(clippy::too_many_arguments)]
    fn explain(
        &self,
        py: Python<'_>,
        vector: &Bound<'_, PyAny>,
        k: usize,
        filter: Option<&Bound<'_, PyAny>>,
        score_threshold: Option<f32>,
        offset: usize,
        ef: Option<usize>,
        exact: bool,
        allow_zero: bool,
        using: Option<String>,
        quantization: Option<&Bound<'_, PyAny>>,
        analyze: bool,
    ) -> PyResult<Py<PyAny>> {
        let params = SearchArgs {
            k,
            offset,
            filter,
            score_threshold,
            with_payload: None,
            with_vectors: false,
            ef,
            exact,
            allow_zero,
            using,
            quantization,
        }
        .params(py)?;
        let col = &self.col;
        let q = vector_from_py(py, vector, "vector")?;
        let qs = q.as_slice().map_err(|e| invalid(py, e.to_string()))?;
        let plan = run_detached(py, || col.explain_search(qs, &params, analyze))?;
        json_to_py(py, &plan)
    }

    /// How `query(request)` would run: its stage tree, each vector stage with the plan of its
    /// search. analyze=True also runs it and adds what it measured.
    #[pyo3(signature = (request, *, analyze = false))]
    fn explain_query(
        &self,
        py: Python<'_>,
        request: &Bound<'_, PyAny>,
        analyze: bool,
    ) -> PyResult<Py<PyAny>> {
        let json = json_value_from_py(py, request, "query")?;
        let req = QueryRequest::parse(&json, true).map_err(|e| to_py(py, e))?;
        let lookups = crate::query::lookups(py, &self.store, &req.lookup_collections())?;
        let col = &self.col;
        let plan = run_detached(py, || col.explain_query(&req, &lookups, analyze))?;
        json_to_py(py, &plan)
    }
}

/// Check the store at `path` without writing to it: every checksum of every sealed file,
/// every manifest and every log record. One dict per collection: name, log_records,
/// problems (damage; empty when healthy) and notes (findings that lose nothing).
#[pyfunction]
pub fn check(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Py<PyList>> {
    let found = run_detached(py, || ferrovec_core::check::check_store(&path))?;
    let out = PyList::empty(py);
    for c in found {
        let d = pyo3::types::PyDict::new(py);
        d.set_item("name", c.name)?;
        d.set_item("log_records", c.log_records)?;
        d.set_item("problems", c.problems)?;
        d.set_item("notes", c.notes)?;
        out.append(d)?;
    }
    Ok(out.unbind())
}
