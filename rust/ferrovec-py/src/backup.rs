//! Backups from Python: `Database.backup` and the `ferrovec.*_backup(s)` functions. Results are
//! plain dicts (JSON-shaped); long copies report progress to an optional callable.

use std::path::PathBuf;

use ferrovec_core::backup::{self, BackupInfo};
use ferrovec_core::wal::Target;
use ferrovec_core::Store;
use pyo3::prelude::*;
use serde_json::json;

use crate::gil::{run_detached, run_interruptible};
use crate::progress::Reporter;

/// A backup's summary: its manifest without the per-file list.
fn summary(b: &BackupInfo) -> serde_json::Value {
    let collections: serde_json::Map<String, serde_json::Value> = b
        .collections
        .iter()
        .map(|(n, c)| {
            (
                n.clone(),
                json!({"sequence": c.sequence, "files": c.files.len()}),
            )
        })
        .collect();
    json!({
        "id": b.id,
        "kind": b.kind,
        "parent": b.parent,
        "created_at": b.created_at,
        "collections": collections,
        "added_bytes": b.added_bytes,
        "total_bytes": b.total_bytes,
    })
}

pub fn to_python(py: Python<'_>, v: &serde_json::Value) -> PyResult<Py<PyAny>> {
    let json = py.import("json")?;
    Ok(json.call_method1("loads", (v.to_string(),))?.unbind())
}

/// Restore backup `backup_id` (default: the newest) from `dest` into the store at `path`
/// (created if needed): every collection, or just `collection`; an existing one only with
/// replace=True. Every checksum is checked before the store changes. Point in time: with
/// `to_sequence` and `log_archive` (and one `collection`), the newest backup at or before that
/// log sequence number is restored and the archived log replayed up to exactly that record.
#[pyfunction]
#[pyo3(signature = (dest, path, *, backup_id = None, collection = None, replace = false, to_sequence = None, to_time = None, log_archive = None, progress = None))]
#[allow(clippy::too_many_arguments)]
pub fn restore_backup(
    py: Python<'_>,
    dest: PathBuf,
    path: PathBuf,
    backup_id: Option<&str>,
    collection: Option<&str>,
    replace: bool,
    to_sequence: Option<u64>,
    to_time: Option<&str>,
    log_archive: Option<PathBuf>,
    progress: Option<Py<PyAny>>,
) -> PyResult<Vec<String>> {
    let target = match (to_sequence, to_time) {
        (None, None) => None,
        (Some(n), None) => Some(Target::Sequence(n)),
        (None, Some(t)) => {
            let micros = ferrovec_core::filter::parse_datetime(t).ok_or_else(|| {
                crate::errors::invalid(py, format!("to_time {t:?} is not an RFC 3339 datetime"))
            })?;
            Some(Target::Time(micros as i64))
        }
        (Some(_), Some(_)) => {
            return Err(crate::errors::invalid(
                py,
                "give to_sequence or to_time, not both",
            ))
        }
    };
    let pitr = match (target, &log_archive) {
        (None, None) => None,
        (Some(target), Some(dir)) => Some(backup::PointInTime {
            target,
            log_archive: dir.as_path(),
        }),
        _ => {
            return Err(crate::errors::invalid(
                py,
                "a point-in-time restore needs to_sequence or to_time, and log_archive",
            ))
        }
    };
    let reporter = Reporter::new(progress);
    run_interruptible(py, |cancel| {
        let progress = reporter.progress(cancel);
        Store::restore_into(&path, |store| {
            backup::restore(&dest, backup_id, store, collection, replace, pitr, progress)
        })
    })
}

/// Complete backups in `dest`, oldest first, as dicts: id, kind, parent, created_at,
/// collections ({name: {"sequence", "files"}}), added_bytes, total_bytes.
#[pyfunction]
pub fn list_backups(py: Python<'_>, dest: PathBuf) -> PyResult<Vec<Py<PyAny>>> {
    let all = run_detached(py, || backup::list(&dest))?;
    all.iter().map(|b| to_python(py, &summary(b))).collect()
}

/// Check every file of backup `backup_id` (default: the newest) against its recorded size and
/// SHA-256; raises CorruptionError on a mismatch. Returns the backup's summary.
#[pyfunction]
#[pyo3(signature = (dest, backup_id = None, *, progress = None))]
pub fn verify_backup(
    py: Python<'_>,
    dest: PathBuf,
    backup_id: Option<&str>,
    progress: Option<Py<PyAny>>,
) -> PyResult<Py<PyAny>> {
    let reporter = Reporter::new(progress);
    let info = run_interruptible(py, |cancel| {
        backup::verify(&dest, backup_id, reporter.progress(cancel))
    })?;
    to_python(py, &summary(&info))
}

/// Remove backups beyond the newest `keep_last` and those older than `max_age_days` (never
/// the newest, nor one a kept backup refers to). Returns the removed ids.
#[pyfunction]
#[pyo3(signature = (dest, *, keep_last = None, max_age_days = None))]
pub fn cleanup_backups(
    py: Python<'_>,
    dest: PathBuf,
    keep_last: Option<usize>,
    max_age_days: Option<f64>,
) -> PyResult<Vec<String>> {
    if keep_last.is_none() && max_age_days.is_none() {
        return Err(crate::errors::invalid(
            py,
            "cleanup_backups needs keep_last or max_age_days",
        ));
    }
    run_detached(py, || backup::cleanup(&dest, keep_last, max_age_days))
}

/// Monitoring figures of `dest`: backups, newest_id, newest_age_s, size_change_bytes,
/// last_verified_at/_age_s, last_restored_at/_age_s.
#[pyfunction]
pub fn backup_status(py: Python<'_>, dest: PathBuf) -> PyResult<Py<PyAny>> {
    let st = run_detached(py, || backup::status(&dest))?;
    let v = serde_json::to_value(&st).map_err(|e| {
        crate::errors::to_py(py, ferrovec_core::Error::Internal(format!("status: {e}")))
    })?;
    to_python(py, &v)
}

pub fn backup_store(
    py: Python<'_>,
    store: &Store,
    dest: PathBuf,
    incremental: bool,
    progress: Option<Py<PyAny>>,
) -> PyResult<Py<PyAny>> {
    let reporter = Reporter::new(progress);
    let info = run_interruptible(py, |cancel| {
        store.backup(&dest, incremental, reporter.progress(cancel))
    })?;
    to_python(py, &summary(&info))
}
