//! The native module `ferrovec._native`. Users import `ferrovec`, which re-exports from here.

mod aio;
mod backup;
mod collection;
mod convert;
mod database;
mod errors;
mod gil;
mod snapshot;

use pyo3::prelude::*;

#[pymodule(gil_used = false)]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Core log lines (torn-tail repairs, checkpoints) go to Python's `logging`.
    let _ = pyo3_log::try_init();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(database::open, m)?)?;
    m.add_function(wrap_pyfunction!(aio::spawn, m)?)?;
    m.add_function(wrap_pyfunction!(database::set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(database::get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(collection::_matrix_address, m)?)?;
    m.add_function(wrap_pyfunction!(snapshot::restore_snapshot, m)?)?;
    m.add_function(wrap_pyfunction!(snapshot::verify_snapshot, m)?)?;
    m.add_function(wrap_pyfunction!(backup::restore_backup, m)?)?;
    m.add_function(wrap_pyfunction!(backup::list_backups, m)?)?;
    m.add_function(wrap_pyfunction!(backup::verify_backup, m)?)?;
    m.add_function(wrap_pyfunction!(backup::cleanup_backups, m)?)?;
    m.add_function(wrap_pyfunction!(backup::backup_status, m)?)?;
    m.add_class::<snapshot::PySnapshotInfo>()?;
    m.add_class::<database::PyDatabase>()?;
    m.add_class::<collection::PyCollection>()?;
    m.add_class::<convert::PyHit>()?;
    m.add_class::<convert::PyRecord>()?;
    Ok(())
}
