//! `ferrovec.open(...)` and `ferrovec.Database`.

use std::path::PathBuf;
use std::sync::Arc;

use ferrovec_core::{
    CodeKind, CollectionConfig, Distance, Durability, Quantization, Retention, StorageOptions,
    Store,
};
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::collection::PyCollection;
use crate::errors::to_py;
use crate::gil::{run_detached, run_interruptible, StoreRef};
use crate::out::info_to_dict;
use crate::snapshot::PySnapshotInfo;

/// An open ferrovec store. Use as a context manager, or call `close()`.
#[pyclass(name = "Database", module = "ferrovec", frozen)]
pub struct PyDatabase {
    store: Mutex<Option<Arc<Store>>>,
    path: String,
}

impl Drop for PyDatabase {
    fn drop(&mut self) {
        // Unclosed, and garbage-collected: see `StoreRef` for why not a plain drop.
        if let Some(store) = self.store.get_mut().take() {
            crate::gil::release_store(store);
        }
    }
}

impl PyDatabase {
    /// The store, as a handle that is dropped with the GIL released (see `StoreRef`: after a
    /// concurrent `close`, it may be the last).
    pub(crate) fn store(&self, py: Python<'_>) -> PyResult<StoreRef> {
        self.store.lock().clone().map(StoreRef::new).ok_or_else(|| {
            to_py(
                py,
                ferrovec_core::Error::Closed("this Database handle was closed".into()),
            )
        })
    }
}

/// Open (creating if needed) the store at `path`; ":memory:" keeps everything in memory.
///
/// Any number of processes may open the same store; each sees the others' acknowledged writes
/// at its next call. read_only: never write (no write lock is taken; a write raises
/// ReadOnlyError); the store must exist. See docs/MULTIPROCESS.md.
///
/// durability: "fsync" (writes return after the log is fsynced), "interval" (fsynced in the
/// background every `fsync_interval_ms`), or "off" (page cache only). See docs/DURABILITY.md.
///
/// log_archive: a directory where every sealed log file is also kept, for point-in-time
/// restores (`restore_backup(..., to_sequence=N, log_archive=...)`); the open log file is
/// sealed at least every `archive_interval_s` seconds while it holds writes.
///
/// slow_op_ms: record every call taking at least this many milliseconds (0: every call) in
/// the slow-operation profiler (`Database.slow_ops()`, logger "ferrovec.slow"); the threshold
/// is the process's. Default: the environment variable FERROVEC_SLOW_OP_MS, else unchanged
/// (off unless set).
///
/// rows_from_disk_mb: segments with codes whose f32 vectors take at least this many MiB read
/// the rows a search rescores from disk instead of their mapping, so serving keeps only the
/// codes and graphs resident (default 256; 0: every segment with codes). docs/SCALE.md.
///
/// memory_limit_mb: the most serving the store's open collections may keep resident (codes,
/// graphs, ids and f32 rows read through a mapping). Opening a collection, or writing new
/// points, past it raises MemoryLimitError and changes nothing. Default: no limit.
/// docs/SCALE.md, "Memory budget".
#[pyfunction]
#[pyo3(signature = (path, *, durability = "fsync", fsync_interval_ms = 100, log_archive = None, archive_interval_s = 60.0, read_only = false, slow_op_ms = None, rows_from_disk_mb = 256, memory_limit_mb = None))]
#[allow(clippy::too_many_arguments)]
pub fn open(
    py: Python<'_>,
    path: PathBuf,
    durability: &str,
    fsync_interval_ms: u64,
    log_archive: Option<PathBuf>,
    archive_interval_s: f64,
    read_only: bool,
    slow_op_ms: Option<i64>,
    rows_from_disk_mb: u64,
    memory_limit_mb: Option<u64>,
) -> PyResult<PyDatabase> {
    let slow_op_ms = crate::observe::parse_slow_op_ms(py, slow_op_ms)?;
    if memory_limit_mb == Some(0) {
        return Err(crate::errors::invalid(
            py,
            "memory_limit_mb must be at least 1 (None: no limit)",
        ));
    }
    let durability = Durability::parse(durability, fsync_interval_ms).map_err(|e| to_py(py, e))?;
    let options = StorageOptions {
        durability,
        read_only,
        rows_from_disk_bytes: rows_from_disk_mb.saturating_mul(1 << 20),
        memory_limit_bytes: memory_limit_mb.map(|mb| mb.saturating_mul(1 << 20)),
        ..StorageOptions::default()
    };
    if read_only && log_archive.is_some() {
        return Err(crate::errors::invalid(
            py,
            "a read-only store archives no log: pass log_archive to a process that writes",
        ));
    }
    let shown = path.to_string_lossy().into_owned();
    let every = archive_interval(py, archive_interval_s)?;
    let store = if path.as_os_str() == ":memory:" {
        Store::in_memory(options)
    } else {
        run_detached(py, || Store::open(&path, options))?
    };
    if let Some(dir) = log_archive {
        run_detached(py, || store.set_log_archive(Some(&dir), every))?;
    }
    if slow_op_ms.is_some() {
        ferrovec_core::observe::slow::set_threshold(slow_op_ms);
    }
    Ok(PyDatabase {
        store: Mutex::new(Some(store)),
        path: shown,
    })
}

/// Read a dict of non-negative integer settings, refusing unknown keys.
fn dict_ints(
    py: Python<'_>,
    d: &Bound<'_, PyDict>,
    what: &str,
    allowed: &[&str],
) -> PyResult<Vec<(String, u64)>> {
    let mut out = Vec::new();
    for (k, v) in d.iter() {
        let key: String = k
            .extract()
            .map_err(|_| crate::errors::invalid(py, format!("{what} keys must be str")))?;
        if !allowed.contains(&key.as_str()) {
            return Err(crate::errors::invalid(
                py,
                format!(
                    "unknown {what} setting {key:?}; expected one of {}",
                    allowed.join(", ")
                ),
            ));
        }
        let value: u64 = v.extract().map_err(|_| {
            crate::errors::invalid(py, format!("{what}[{key:?}] must be a non-negative int"))
        })?;
        out.push((key, value));
    }
    Ok(out)
}

fn archive_interval(py: Python<'_>, seconds: f64) -> PyResult<std::time::Duration> {
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(crate::errors::invalid(
            py,
            format!("archive_interval_s must be a positive number of seconds, got {seconds}"),
        ));
    }
    Ok(std::time::Duration::from_secs_f64(seconds))
}

/// `{"key": str, "max_age_seconds": int}` as a retention rule.
/// `quantization=`: a code kind ("int8", "int4", "binary", "none"), or {"codes": kind,
/// "oversampling": float, "rescore": bool, "always_ram": bool} (any subset).
fn quantization_from_py(py: Python<'_>, q: &Bound<'_, PyAny>) -> PyResult<Quantization> {
    let codes_of = |s: &str| -> PyResult<Option<CodeKind>> {
        match s {
            "none" => Ok(None),
            s => CodeKind::parse(s).map(Some).map_err(|e| to_py(py, e)),
        }
    };
    if let Ok(s) = q.extract::<String>() {
        return Ok(Quantization {
            codes: codes_of(&s)?,
            oversampling: None,
            rescore: true,
            always_ram: None,
        });
    }
    let bad = |what: &str| {
        crate::errors::invalid(
            py,
            format!(
                "quantization: {what}; expected a code kind (\"int8\", \"int4\", \"binary\", \"none\") or {{\"codes\": kind, \"oversampling\": float, \"rescore\": bool, \"always_ram\": bool}}"
            ),
        )
    };
    let d = q.cast::<PyDict>().map_err(|_| bad("not a str or dict"))?;
    let mut out = Quantization {
        codes: Some(CodeKind::Int8),
        oversampling: None,
        rescore: true,
        always_ram: None,
    };
    for (k, v) in d.iter() {
        let key: String = k.extract().map_err(|_| bad("keys must be str"))?;
        match key.as_str() {
            "codes" => {
                out.codes = match v.extract::<Option<String>>() {
                    Ok(Some(s)) => codes_of(&s)?,
                    Ok(None) => None,
                    Err(_) => return Err(bad("\"codes\" must be a str")),
                }
            }
            "oversampling" => {
                out.oversampling = v
                    .extract::<Option<f32>>()
                    .map_err(|_| bad("\"oversampling\" must be a number"))?
            }
            "rescore" => {
                out.rescore = v
                    .extract::<bool>()
                    .map_err(|_| bad("\"rescore\" must be a bool"))?
            }
            "always_ram" => {
                out.always_ram = v
                    .extract::<Option<bool>>()
                    .map_err(|_| bad("\"always_ram\" must be a bool"))?
            }
            other => return Err(bad(&format!("unknown key {other:?}"))),
        }
    }
    Ok(out)
}

fn retention_from_py(py: Python<'_>, d: &Bound<'_, PyDict>) -> PyResult<Retention> {
    let key: String = d
        .get_item("key")?
        .ok_or_else(|| crate::errors::invalid(py, "retention needs a \"key\""))?
        .extract()
        .map_err(|_| crate::errors::invalid(py, "retention[\"key\"] must be a str"))?;
    let rest = PyDict::new(py);
    for (k, v) in d.iter() {
        if k.extract::<String>().ok().as_deref() != Some("key") {
            rest.set_item(k, v)?;
        }
    }
    let ints = dict_ints(py, &rest, "retention", &["max_age_seconds"])?;
    let Some((_, max_age_secs)) = ints.into_iter().next() else {
        return Err(crate::errors::invalid(
            py,
            "retention needs \"max_age_seconds\"",
        ));
    };
    Ok(Retention { key, max_age_secs })
}

/// Use `n` threads for the core's parallel work (0: one per CPU). The environment variable
/// FERROVEC_NUM_THREADS sets the starting value.
#[pyfunction]
pub fn set_num_threads(py: Python<'_>, n: usize) -> PyResult<()> {
    ferrovec_core::pool::set_num_threads(n).map_err(|e| to_py(py, e))
}

/// The number of threads the core uses for parallel work.
#[pyfunction]
pub fn get_num_threads() -> usize {
    ferrovec_core::pool::num_threads()
}

/// `sparse=`: {name: {"modifier": "idf" | "none", "full_scan_threshold": int, "on_disk": bool}}
/// (any subset, or None: no modifier; the last two are Qdrant's index settings, kept and
/// reported only).
fn sparse_specs(
    py: Python<'_>,
    sparse: Option<&Bound<'_, PyDict>>,
) -> PyResult<Vec<ferrovec_core::SparseSpec>> {
    let Some(sparse) = sparse else {
        return Ok(Vec::new());
    };
    let bad = || {
        crate::errors::invalid(
            py,
            "sparse: expected {name: {\"modifier\": \"idf\" | \"none\", \"full_scan_threshold\": int, \"on_disk\": bool}}",
        )
    };
    let mut out = Vec::with_capacity(sparse.len());
    for (k, v) in sparse.iter() {
        let name: String = k.extract().map_err(|_| bad())?;
        let mut spec = ferrovec_core::SparseSpec::new(&name, ferrovec_core::Modifier::None);
        if !v.is_none() {
            let d = v.cast::<PyDict>().map_err(|_| bad())?;
            for (key, value) in d.iter() {
                let key: String = key.extract().map_err(|_| bad())?;
                if value.is_none() {
                    continue;
                }
                match key.as_str() {
                    "modifier" => {
                        let m: String = value.extract().map_err(|_| bad())?;
                        spec.modifier =
                            ferrovec_core::Modifier::parse(&m).map_err(|e| to_py(py, e))?;
                    }
                    "full_scan_threshold" => {
                        spec.full_scan_threshold = Some(value.extract().map_err(|_| bad())?)
                    }
                    "on_disk" => spec.on_disk = Some(value.extract().map_err(|_| bad())?),
                    _ => return Err(bad()),
                }
            }
        }
        out.push(spec);
    }
    Ok(out)
}

#[pymethods]
impl PyDatabase {
    /// The path the store was opened with (":memory:" for an in-memory store).
    #[getter]
    fn path(&self) -> &str {
        &self.path
    }

    /// Create a collection of one unnamed vector of `dim` values, or of the named vectors
    /// `vectors` ({name: {"dim": int, "distance": str}}; each point holds all of them).
    /// distance: "cosine" (default), "dot", "euclid" or "manhattan".
    /// hnsw: {"m": 16, "ef_construct": 100, "full_scan_threshold": 10000} (any subset).
    /// optimizer: {"indexing_threshold": 20000, "max_segment_points": 2000000, "idle_ms": 1000}.
    /// retention: {"key": "created_at", "max_age_seconds": 86400} (see Collection.set_retention).
    /// sparse: {name: {"modifier": "idf" | "none"}} sparse vectors beside the dense ones (or
    /// alone); "idf" weighs a query's dimensions by their inverse document frequency, as
    /// BM25 needs.
    /// quantization: the codes the graphs are walked on: "int8" (the default for cosine and
    /// dot), "int4", "binary" or "none", or {"codes": ..., "oversampling": float (candidates
    /// rescored on f32 per result wanted), "rescore": bool, "always_ram": bool}. Codes are for
    /// cosine and dot vectors only. See docs/SCALE.md.
    /// vectors_on_disk: where indexed segments keep their f32 rows (Qdrant's
    /// VectorParams.on_disk): True reads them from disk for rescoring, False keeps them
    /// resident, None (default) leaves it to the store's rows_from_disk_mb. See docs/SCALE.md.
    /// With exist_ok=True an existing collection of the same vectors is returned.
    #[pyo3(signature = (name, dim = None, distance = "cosine", exist_ok = false, *, vectors = None, sparse = None, hnsw = None, optimizer = None, retention = None, quantization = None, vectors_on_disk = None))]
    #[allow(clippy::too_many_arguments)]
    fn create_collection(
        &self,
        py: Python<'_>,
        name: &str,
        dim: Option<i64>,
        distance: &str,
        exist_ok: bool,
        vectors: Option<&Bound<'_, PyDict>>,
        sparse: Option<&Bound<'_, PyDict>>,
        hnsw: Option<&Bound<'_, PyDict>>,
        optimizer: Option<&Bound<'_, PyDict>>,
        retention: Option<&Bound<'_, PyDict>>,
        quantization: Option<&Bound<'_, PyAny>>,
        vectors_on_disk: Option<bool>,
    ) -> PyResult<PyCollection> {
        let store = self.store(py)?;
        let dim_of = |dim: i64| {
            u32::try_from(dim).map_err(|_| {
                crate::errors::invalid(py, format!("dim must be between 1 and 65536, got {dim}"))
            })
        };
        let mut config = match (dim, vectors) {
            (Some(dim), None) => {
                let dim = dim_of(dim)?;
                Distance::parse(distance)
                    .and_then(|d| CollectionConfig::new(dim, d))
                    .map_err(|e| to_py(py, e))?
            }
            (None, Some(named)) => {
                let mut specs = Vec::with_capacity(named.len());
                for (k, v) in named.iter() {
                    let bad = || {
                        crate::errors::invalid(
                            py,
                            "vectors: expected {name: {\"dim\": int, \"distance\": str}}",
                        )
                    };
                    let name: String = k.extract().map_err(|_| bad())?;
                    let spec = v.cast::<PyDict>().map_err(|_| bad())?;
                    let dim: i64 = match spec.get_item("dim")? {
                        Some(d) => d.extract().map_err(|_| bad())?,
                        None => return Err(bad()),
                    };
                    let distance: String = match spec.get_item("distance")? {
                        Some(d) => d.extract().map_err(|_| bad())?,
                        None => String::from("cosine"),
                    };
                    if spec.len() > 1 + usize::from(spec.contains("distance")?) {
                        return Err(bad());
                    }
                    specs.push(ferrovec_core::VectorSpec {
                        name,
                        dim: dim_of(dim)?,
                        distance: Distance::parse(&distance).map_err(|e| to_py(py, e))?,
                    });
                }
                CollectionConfig::with_all(specs, sparse_specs(py, sparse)?)
                    .map_err(|e| to_py(py, e))?
            }
            (None, None) if sparse.is_some() => {
                CollectionConfig::with_all(Vec::new(), sparse_specs(py, sparse)?)
                    .map_err(|e| to_py(py, e))?
            }
            _ => {
                return Err(crate::errors::invalid(
                    py,
                    "pass either dim (one unnamed vector) or vectors (named vectors)",
                ))
            }
        };
        if dim.is_some() && sparse.is_some() {
            // One unnamed dense vector beside sparse ones: it is named "".
            let dense = config.vectors.clone();
            config = CollectionConfig::with_all(dense, sparse_specs(py, sparse)?)
                .map_err(|e| to_py(py, e))?;
        }
        if let Some(h) = hnsw {
            for (k, v) in dict_ints(py, h, "hnsw", &["m", "ef_construct", "full_scan_threshold"])? {
                match k.as_str() {
                    "m" => config.hnsw.m = v as usize,
                    "ef_construct" => config.hnsw.ef_construct = v as usize,
                    _ => config.hnsw.full_scan_threshold = v as usize,
                }
            }
        }
        if let Some(o) = optimizer {
            let keys = ["indexing_threshold", "max_segment_points", "idle_ms"];
            for (k, v) in dict_ints(py, o, "optimizer", &keys)? {
                match k.as_str() {
                    "indexing_threshold" => config.optimizer.indexing_threshold = v as usize,
                    "max_segment_points" => config.optimizer.max_segment_points = v as usize,
                    _ => config.optimizer.idle_ms = v,
                }
            }
        }
        if let Some(q) = quantization.filter(|q| !q.is_none()) {
            config.quantization = Some(quantization_from_py(py, q)?);
        }
        config.vectors_on_disk = vectors_on_disk;
        config.validate().map_err(|e| to_py(py, e))?;
        let retention = retention.map(|r| retention_from_py(py, r)).transpose()?;
        let col = run_detached(py, || store.create_collection(name, config, exist_ok))?;
        if let Some(r) = retention {
            run_detached(py, || col.set_retention(Some(r)))?;
        }
        Ok(PyCollection::new(store, col))
    }

    /// The named collection; raises CollectionNotFoundError if there is none.
    fn collection(&self, py: Python<'_>, name: &str) -> PyResult<PyCollection> {
        let store = self.store(py)?;
        let col = run_detached(py, || store.collection(name))?;
        Ok(PyCollection::new(store, col))
    }

    fn list_collections(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let store = self.store(py)?;
        run_detached(py, || store.list_collections())
    }

    /// Delete a collection and its files.
    fn drop_collection(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        let store = self.store(py)?;
        run_detached(py, || store.drop_collection(name))
    }

    /// One dict per collection (see Collection.info).
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let store = self.store(py)?;
        let infos = run_detached(py, || store.info())?;
        let out = PyList::empty(py);
        for i in &infos {
            out.append(info_to_dict(py, i)?)?;
        }
        Ok(out)
    }

    /// Release this handle. The store itself closes (checkpointing and releasing its lock) when
    /// its last handle, this Database or a Collection from it, is closed or garbage-collected.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let Some(store) = self.store.lock().take() else {
            return Ok(());
        };
        match Arc::try_unwrap(store) {
            Ok(store) => run_detached(py, move || store.close()),
            Err(_) => Ok(()),
        }
    }

    /// Write a consistent snapshot of `collection` (default: every collection) as one archive
    /// in `dest` (default: the store's snapshots/ folder). Writes may continue meanwhile: they
    /// wait only for a checkpoint, never for the copy.
    #[pyo3(signature = (collection = None, *, dest = None))]
    fn create_snapshot(
        &self,
        py: Python<'_>,
        collection: Option<&str>,
        dest: Option<PathBuf>,
    ) -> PyResult<PySnapshotInfo> {
        let store = self.store(py)?;
        run_interruptible(py, |cancel| {
            store.create_snapshot(collection, dest.as_deref(), cancel)
        })
        .map(Into::into)
    }

    /// Complete snapshots in `dest` (default: the store's snapshots/ folder), oldest first.
    #[pyo3(signature = (dest = None))]
    fn list_snapshots(
        &self,
        py: Python<'_>,
        dest: Option<PathBuf>,
    ) -> PyResult<Vec<PySnapshotInfo>> {
        let store = self.store(py)?;
        let list = run_detached(py, || store.list_snapshots(dest.as_deref()))?;
        Ok(list.into_iter().map(Into::into).collect())
    }

    /// Remove the snapshot `name` from `dest` (default: the store's snapshots/ folder).
    #[pyo3(signature = (name, *, dest = None))]
    fn delete_snapshot(&self, py: Python<'_>, name: &str, dest: Option<PathBuf>) -> PyResult<()> {
        let store = self.store(py)?;
        run_detached(py, || store.delete_snapshot(name, dest.as_deref()))
    }

    /// Check a snapshot (a name in `dest`, or an archive path) without restoring it: its
    /// SHA-256 against its sidecar, every entry's path and type, every file's SHA-256. Raises
    /// CorruptionError on any mismatch.
    #[pyo3(signature = (name, *, dest = None))]
    fn verify_snapshot(
        &self,
        py: Python<'_>,
        name: &str,
        dest: Option<PathBuf>,
    ) -> PyResult<PySnapshotInfo> {
        let store = self.store(py)?;
        let dir = match (dest, store.path()) {
            (Some(d), _) => d,
            (None, Some(root)) => ferrovec_core::snapshot::default_dir(root),
            (None, None) => PathBuf::from("."),
        };
        let path = crate::snapshot::resolve(name, &dir);
        run_detached(py, || ferrovec_core::snapshot::verify_archive(&path)).map(Into::into)
    }

    /// Back up every collection into the directory `dest`: a full copy, or with
    /// incremental=True only the files the newest backup there lacks. Writes go on meanwhile.
    /// progress: called as progress(bytes_done, bytes_total). Returns the backup's summary.
    #[pyo3(signature = (dest, *, incremental = false, progress = None))]
    fn backup(
        &self,
        py: Python<'_>,
        dest: PathBuf,
        incremental: bool,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let store = self.store(py)?;
        crate::backup::backup_store(py, &store, dest, incremental, progress)
    }

    /// Keep every sealed log file of every collection in `<dir>/<collection>/` (None: stop),
    /// sealing the open one at least every `interval_s` seconds while it holds writes.
    #[pyo3(signature = (dir, *, interval_s = 60.0))]
    fn set_log_archive(
        &self,
        py: Python<'_>,
        dir: Option<PathBuf>,
        interval_s: f64,
    ) -> PyResult<()> {
        let store = self.store(py)?;
        let every = archive_interval(py, interval_s)?;
        run_detached(py, || store.set_log_archive(dir.as_deref(), every))
    }

    #[getter]
    fn closed(&self) -> bool {
        self.store.lock().is_none()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        let state = if self.store.lock().is_some() {
            "open"
        } else {
            "closed"
        };
        format!("Database(path={:?}, {state})", self.path)
    }
}
