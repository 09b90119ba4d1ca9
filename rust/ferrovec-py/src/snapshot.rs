//! Snapshots from Python: `Database.create_snapshot` and friends, `ferrovec.restore_snapshot`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ferrovec_core::snapshot::{self, SnapshotInfo};
use ferrovec_core::Store;
use pyo3::prelude::*;

use crate::errors::to_py;
use crate::gil::{run_detached, run_interruptible};

/// A snapshot archive: what `create_snapshot`, `list_snapshots` and `verify_snapshot` return.
#[pyclass(name = "SnapshotInfo", module = "ferrovec", frozen, get_all)]
pub struct PySnapshotInfo {
    name: String,
    /// The archive file.
    path: PathBuf,
    /// RFC 3339, UTC.
    created_at: String,
    size_bytes: u64,
    /// SHA-256 of the archive file, hex.
    sha256: String,
    /// The log sequence number it holds everything up to (one collection; None for several).
    sequence: Option<u64>,
    /// Per collection, that sequence number.
    collections: BTreeMap<String, u64>,
}

impl From<SnapshotInfo> for PySnapshotInfo {
    fn from(s: SnapshotInfo) -> Self {
        PySnapshotInfo {
            sequence: s.sequence(),
            name: s.name,
            path: s.path,
            created_at: s.created_at,
            size_bytes: s.size_bytes,
            sha256: s.sha256,
            collections: s.collections,
        }
    }
}

#[pymethods]
impl PySnapshotInfo {
    fn __repr__(&self) -> String {
        format!(
            "SnapshotInfo(name={:?}, size_bytes={}, collections={:?})",
            self.name, self.size_bytes, self.collections
        )
    }
}

/// A snapshot named in `dir`, or a path to an archive.
pub fn resolve(name_or_path: &str, dir: &Path) -> PathBuf {
    let p = PathBuf::from(name_or_path);
    if name_or_path.contains('/') || name_or_path.ends_with(snapshot::EXTENSION) {
        p
    } else {
        dir.join(format!("{name_or_path}.{}", snapshot::EXTENSION))
    }
}

/// Check a snapshot archive (a path or file:// URL) without restoring it.
#[pyfunction]
pub fn verify_snapshot(py: Python<'_>, archive: PathBuf) -> PyResult<PySnapshotInfo> {
    let path = snapshot::local_archive(&archive.to_string_lossy()).map_err(|e| to_py(py, e))?;
    run_detached(py, || snapshot::verify_archive(&path)).map(Into::into)
}

/// Restore a snapshot archive (a local path or file:// URL; nothing is fetched) into the store
/// at `path`, creating it if needed: every collection in the archive, or just `collection`.
/// An existing collection of the same name is replaced only with replace=True. The archive is
/// checked whole before anything in the store changes. Returns the restored collections.
#[pyfunction]
#[pyo3(signature = (archive, path, *, collection = None, replace = false))]
pub fn restore_snapshot(
    py: Python<'_>,
    archive: PathBuf,
    path: PathBuf,
    collection: Option<&str>,
    replace: bool,
) -> PyResult<Vec<String>> {
    let archive = snapshot::local_archive(&archive.to_string_lossy()).map_err(|e| to_py(py, e))?;
    run_interruptible(py, |cancel| {
        if !archive.is_file() {
            return Err(ferrovec_core::Error::InvalidInput(format!(
                "no snapshot archive at {}",
                archive.display()
            )));
        }
        Store::restore_into(&path, |store| {
            snapshot::restore(&archive, store, collection, replace, cancel)
        })
    })
}
