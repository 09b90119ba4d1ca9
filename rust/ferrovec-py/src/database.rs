//! `ferrovec.open(...)` and `ferrovec.Database`.

use std::path::PathBuf;
use std::sync::Arc;

use ferrovec_core::{CollectionConfig, Distance, Durability, StorageOptions, Store};
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::collection::{info_to_dict, PyCollection};
use crate::errors::to_py;
use crate::gil::run_detached;

/// An open ferrovec store. Use as a context manager, or call `close()`.
#[pyclass(name = "Database", module = "ferrovec", frozen)]
pub struct PyDatabase {
    store: Mutex<Option<Arc<Store>>>,
    path: String,
}

impl PyDatabase {
    fn store(&self, py: Python<'_>) -> PyResult<Arc<Store>> {
        self.store.lock().clone().ok_or_else(|| {
            to_py(
                py,
                ferrovec_core::Error::Closed("this Database handle was closed".into()),
            )
        })
    }
}

/// Open (creating if needed) the store at `path`; ":memory:" keeps everything in memory.
///
/// durability: "fsync" (writes return after the log is fsynced), "interval" (fsynced in the
/// background every `fsync_interval_ms`), or "off" (page cache only). See docs/DURABILITY.md.
#[pyfunction]
#[pyo3(signature = (path, *, durability = "fsync", fsync_interval_ms = 100))]
pub fn open(
    py: Python<'_>,
    path: PathBuf,
    durability: &str,
    fsync_interval_ms: u64,
) -> PyResult<PyDatabase> {
    let durability = Durability::parse(durability, fsync_interval_ms).map_err(|e| to_py(py, e))?;
    let options = StorageOptions {
        durability,
        ..StorageOptions::default()
    };
    let shown = path.to_string_lossy().into_owned();
    let store = if path.as_os_str() == ":memory:" {
        Store::in_memory(options)
    } else {
        run_detached(py, || Store::open(&path, options))?
    };
    Ok(PyDatabase {
        store: Mutex::new(Some(store)),
        path: shown,
    })
}

#[pymethods]
impl PyDatabase {
    /// The path the store was opened with (":memory:" for an in-memory store).
    #[getter]
    fn path(&self) -> &str {
        &self.path
    }

    /// Create a collection. distance: "cosine" (default), "dot", "euclid" or "manhattan".
    /// With exist_ok=True an existing collection of the same dim and distance is returned.
    #[pyo3(signature = (name, dim, distance = "cosine", exist_ok = false))]
    fn create_collection(
        &self,
        py: Python<'_>,
        name: &str,
        dim: i64,
        distance: &str,
        exist_ok: bool,
    ) -> PyResult<PyCollection> {
        let store = self.store(py)?;
        let dim = u32::try_from(dim).map_err(|_| {
            crate::errors::invalid(py, format!("dim must be between 1 and 65536, got {dim}"))
        })?;
        let config = Distance::parse(distance)
            .and_then(|d| CollectionConfig::new(dim, d))
            .map_err(|e| to_py(py, e))?;
        let col = run_detached(py, || store.create_collection(name, config, exist_ok))?;
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
