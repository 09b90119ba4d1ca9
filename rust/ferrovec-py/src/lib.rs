//! The native module `ferrovec._native`. Users import `ferrovec`, which re-exports from here.

mod aio;
mod args;
mod backup;
mod collection;
mod convert;
mod database;
mod errors;
mod gil;
mod out;
mod query;
mod snapshot;
mod sparse;

use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::prelude::*;

/// Set by `_shutdown` (atexit): Python is going away, so log lines go to stderr from then on.
static PYTHON_GONE: AtomicBool = AtomicBool::new(false);

/// Forwards the core's log lines (torn-tail repairs, checkpoints) to Python's `logging` while
/// the interpreter lives. A background thread (the optimizer) calling into a finalising
/// interpreter would abort, so after `_shutdown` warnings and errors go to stderr instead.
struct Gate(pyo3_log::Logger);

impl log::Log for Gate {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        if PYTHON_GONE.load(Ordering::Acquire) {
            metadata.level() <= log::Level::Warn
        } else {
            self.0.enabled(metadata)
        }
    }

    fn log(&self, record: &log::Record<'_>) {
        if PYTHON_GONE.load(Ordering::Acquire) {
            if record.level() <= log::Level::Warn {
                eprintln!("ferrovec {}: {}", record.level(), record.args());
            }
        } else {
            self.0.log(record);
        }
    }

    fn flush(&self) {
        if !PYTHON_GONE.load(Ordering::Acquire) {
            self.0.flush();
        }
    }
}

/// Run by `atexit` (see `ferrovec/__init__.py`): close every store still open in this process
/// (each checkpoints and stops its optimizer), then stop calling into Python from log lines.
#[pyfunction]
fn _shutdown(py: Python<'_>) -> PyResult<()> {
    let closed = gil::run_detached(py, || {
        ferrovec_core::Store::close_all_open();
        Ok(())
    });
    PYTHON_GONE.store(true, Ordering::Release);
    closed
}

#[pymodule(gil_used = false)]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    if let Ok(logger) = pyo3_log::Logger::new(py, pyo3_log::Caching::LoggersAndLevels) {
        if log::set_boxed_logger(Box::new(Gate(logger))).is_ok() {
            log::set_max_level(log::LevelFilter::Debug);
        }
    }
    m.add_function(wrap_pyfunction!(_shutdown, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(database::open, m)?)?;
    m.add_function(wrap_pyfunction!(aio::spawn, m)?)?;
    m.add_function(wrap_pyfunction!(gil::_panic_for_tests, m)?)?;
    m.add_function(wrap_pyfunction!(gil::_panic_for_tests_async, m)?)?;
    m.add_function(wrap_pyfunction!(database::set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(database::get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(collection::_matrix_address, m)?)?;
    m.add_function(wrap_pyfunction!(convert::_as_matrix, m)?)?;
    m.add_function(wrap_pyfunction!(sparse::bm25, m)?)?;
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
    m.add_class::<sparse::PySparseVector>()?;
    Ok(())
}
