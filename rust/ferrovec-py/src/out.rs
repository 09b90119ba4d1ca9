//! Results as Python values: lists of hits and records, `info()` dicts, facet values.

use ferrovec_core::{CollectionConfig, CollectionInfo, FacetValue, Record, Retention, ScoredPoint};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::convert::{hit_to_py, record_to_py};

pub fn hits_to_list(
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

pub fn batch_to_list(
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

pub fn records_to_list<'py>(
    py: Python<'py>,
    records: Vec<Record>,
    config: &CollectionConfig,
) -> PyResult<Bound<'py, PyList>> {
    let out = PyList::empty(py);
    for r in records {
        out.append(record_to_py(py, r, config)?)?;
    }
    Ok(out)
}

pub fn facet_value(py: Python<'_>, v: FacetValue) -> PyResult<Py<PyAny>> {
    Ok(match v {
        FacetValue::Bool(b) => b.into_pyobject(py)?.to_owned().into_any().unbind(),
        FacetValue::Int(i) => i.into_pyobject(py)?.into_any().unbind(),
        FacetValue::Str(s) => s.into_pyobject(py)?.into_any().unbind(),
    })
}

/// {name: {"dim": int, "distance": str}} for every vector of a point.
pub fn vectors_to_dict<'py>(py: Python<'py>, c: &CollectionConfig) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for v in &c.vectors {
        let spec = PyDict::new(py);
        spec.set_item("dim", v.dim)?;
        spec.set_item("distance", v.distance.name())?;
        d.set_item(&v.name, spec)?;
    }
    Ok(d)
}

pub fn retention_to_dict<'py>(py: Python<'py>, r: &Retention) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("key", &r.key)?;
    d.set_item("max_age_seconds", r.max_age_secs)?;
    Ok(d)
}

/// `Collection.info()` (and each entry of `Database.info()`).
/// The collection's quantization: `None` when it was not set (int8 codes for cosine and dot
/// vectors, 4 candidates rescored per result), else what was set, with its defaults filled in.
fn quantization_to_dict<'py>(
    py: Python<'py>,
    c: &CollectionConfig,
) -> PyResult<Option<Bound<'py, PyDict>>> {
    let Some(q) = c.quantization else {
        return Ok(None);
    };
    let d = PyDict::new(py);
    d.set_item("codes", q.codes.map_or("none", |k| k.name()))?;
    d.set_item(
        "oversampling",
        q.oversampling.or(q.codes.map(|k| k.default_oversampling())),
    )?;
    d.set_item("rescore", q.rescore)?;
    d.set_item("always_ram", q.always_ram)?;
    Ok(Some(d))
}

pub fn info_to_dict<'py>(py: Python<'py>, info: &CollectionInfo) -> PyResult<Bound<'py, PyDict>> {
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
    h.set_item("m", c.hnsw.m)?;
    h.set_item("ef_construct", c.hnsw.ef_construct)?;
    h.set_item("full_scan_threshold", c.hnsw.full_scan_threshold)?;
    d.set_item("hnsw", h)?;
    let o = PyDict::new(py);
    o.set_item("indexing_threshold", c.optimizer.indexing_threshold)?;
    o.set_item("max_segment_points", c.optimizer.max_segment_points)?;
    o.set_item("idle_ms", c.optimizer.idle_ms)?;
    d.set_item("optimizer", o)?;
    d.set_item("quantization", quantization_to_dict(py, c)?)?;
    d.set_item("vectors_on_disk", c.vectors_on_disk)?;
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
