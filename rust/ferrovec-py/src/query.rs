//! `Collection.query`, `query_batch` and `query_groups`: Qdrant's universal query given as its
//! REST JSON (a dict, or a qdrant-client `QueryRequest`), parsed and run by the core; and the
//! sparse side of `search` (a sparse vector or a document for a sparse vector's name).

use std::sync::Arc;

use ferrovec_core::bm25::Bm25;
use ferrovec_core::query::universal::{GroupsRequest, QueryRequest};
use ferrovec_core::{Collection, Lookups, SparseInput, SparseVector, Store};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::collection::PyCollection;
use crate::convert::json_value_from_py;
use crate::errors::to_py;
use crate::gil::run_detached;
use crate::out::hits_to_list;
use crate::sparse::sparse_input_from_py;

/// The collections a request's `lookup_from`s name, opened.
pub(crate) fn lookups(py: Python<'_>, store: &Arc<Store>, names: &[String]) -> PyResult<Lookups> {
    let mut out = Lookups::new();
    for name in names {
        let col = run_detached(py, || store.collection(name))?;
        out.insert(name.clone(), col);
    }
    Ok(out)
}

/// `vector` as a sparse query when `using` names a sparse vector (a document is embedded as
/// a BM25 query); `None` for a dense name.
pub fn sparse_query(
    py: Python<'_>,
    col: &Collection,
    vector: &Bound<'_, PyAny>,
    using: Option<&str>,
) -> PyResult<Option<SparseVector>> {
    if using.and_then(|u| col.config().sparse_field(u)).is_none() {
        return Ok(None);
    }
    Ok(Some(match sparse_input_from_py(py, vector, "query")? {
        SparseInput::Vector(v) => v,
        SparseInput::Document(d) => Bm25::new(&d.model, &d.options)
            .map_err(|e| to_py(py, e))?
            .query(&d.text),
    }))
}

#[pymethods]
impl PyCollection {
    /// The sparse vectors of a point: {name: {"modifier": "idf" | "none",
    /// "full_scan_threshold": int | None, "on_disk": bool | None}}.
    #[getter]
    fn sparse_vectors<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for s in &self.col.config().sparse {
            let spec = PyDict::new(py);
            spec.set_item("modifier", s.modifier.name())?;
            spec.set_item("full_scan_threshold", s.full_scan_threshold)?;
            spec.set_item("on_disk", s.on_disk)?;
            d.set_item(&s.name, spec)?;
        }
        Ok(d)
    }

    /// One universal query (prefetch, fusion, formula, recommend, discover, context, order_by,
    /// sample, nearest with MMR), given as Qdrant's JSON request (a dict) or a qdrant-client
    /// ``QueryRequest``; returns its hits, best first.
    fn query(&self, py: Python<'_>, request: &Bound<'_, PyAny>) -> PyResult<Py<PyList>> {
        let json = json_value_from_py(py, request, "query")?;
        let req = QueryRequest::parse(&json, true).map_err(|e| to_py(py, e))?;
        let lookups = lookups(py, &self.store, &req.lookup_collections())?;
        let col = &self.col;
        let hits = run_detached(py, || col.query(&req, &lookups))?;
        hits_to_list(py, hits, col.config())
    }

    /// Several queries over one view of the collection, run in parallel; a request without
    /// ``with_payload`` returns no payloads (as in Qdrant's batch API).
    fn query_batch(&self, py: Python<'_>, requests: Vec<Bound<'_, PyAny>>) -> PyResult<Py<PyList>> {
        let mut reqs = Vec::with_capacity(requests.len());
        let mut names: Vec<String> = Vec::new();
        for (i, r) in requests.iter().enumerate() {
            let json = json_value_from_py(py, r, &format!("requests[{i}]"))?;
            let req = QueryRequest::parse(&json, false).map_err(|e| to_py(py, e))?;
            for n in req.lookup_collections() {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
            reqs.push(req);
        }
        let lookups = lookups(py, &self.store, &names)?;
        let col = &self.col;
        let all = run_detached(py, || col.query_batch(&reqs, &lookups))?;
        crate::out::batch_to_list(py, all, col.config())
    }

    /// A query whose hits are grouped by the payload value at ``group_by`` (``group_size``
    /// best per group, ``limit`` groups): a list of ``(value, hits)`` pairs, best group first.
    fn query_groups(&self, py: Python<'_>, request: &Bound<'_, PyAny>) -> PyResult<Py<PyList>> {
        let json = json_value_from_py(py, request, "query")?;
        let req = GroupsRequest::parse(&json).map_err(|e| to_py(py, e))?;
        let lookups = lookups(py, &self.store, &req.query.lookup_collections())?;
        let col = &self.col;
        let groups = run_detached(py, || col.query_groups(&req, &lookups))?;
        let out = PyList::empty(py);
        for g in groups {
            let id = crate::convert::json_to_py(py, &g.id)?;
            let hits = hits_to_list(py, g.hits, col.config())?;
            out.append(PyTuple::new(py, [id, hits.into_any()])?)?;
        }
        Ok(out.unbind())
    }
}
