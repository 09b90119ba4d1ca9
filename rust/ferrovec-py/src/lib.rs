//! The native module `ferrovec._native`. Users import `ferrovec`, which re-exports from here.

mod aio;
mod args;
mod backup;
mod collection;
mod convert;
mod database;
mod errors;
mod gil;
mod observe;
mod out;
mod progress;
mod query;
mod snapshot;
mod sparse;

use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::prelude::*;

/// Set by `_shutdown` (atexit): Python is going away, so log lines go to stderr from then on.
pub(crate) static PYTHON_GONE: AtomicBool = AtomicBool::new(false);

/// Forwards the core's log lines (opening, recovery, torn-tail repairs, checkpoints, optimizer
/// runs, lock waits, slow operations) to Python's `logging` while the interpreter lives, under
/// `ferrovec.*`: the core's module `ferrovec_core::collection::open` logs as
/// `ferrovec.collection.open`, the profiler as `ferrovec.slow`. Levels are read from Python's
/// loggers at each line, so `logging.getLogger("ferrovec").setLevel(...)` works at any time.
/// A background thread (the optimizer) calling into a finalising interpreter would abort, so
/// after `_shutdown` warnings and errors go to stderr instead.
struct Gate(pyo3_log::Logger);

impl log::Log for Gate {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        if PYTHON_GONE.load(Ordering::Acquire) {
            metadata.level() <= log::Level::Warn
        } else {
            let target = python_logger(metadata.target());
            let renamed = log::Metadata::builder()
                .level(metadata.level())
                .target(&target)
                .build();
            self.0.enabled(&renamed)
        }
    }

    fn log(&self, record: &log::Record<'_>) {
        if PYTHON_GONE.load(Ordering::Acquire) {
            if record.level() <= log::Level::Warn {
                eprintln!("ferrovec {}: {}", record.level(), record.args());
            }
        } else {
            let target = python_logger(record.target());
            self.0.log(
                &log::Record::builder()
                    .args(*record.args())
                    .level(record.level())
                    .target(&target)
                    .module_path(record.module_path())
                    .file(record.file())
                    .line(record.line())
                    .build(),
            );
        }
    }

    fn flush(&self) {
        if !PYTHON_GONE.load(Ordering::Acquire) {
            self.0.flush();
        }
    }
}

/// The Python logger of a core log target: `ferrovec_core::a::b` as `ferrovec.a.b`.
fn python_logger(target: &str) -> String {
    match target.strip_prefix("ferrovec_core") {
        Some(rest) => format!("ferrovec{}", rest.replace("::", ".")),
        None => target.to_string(),
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
    if let Ok(logger) = pyo3_log::Logger::new(py, pyo3_log::Caching::Loggers) {
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
    m.add_function(wrap_pyfunction!(observe::set_slow_op_ms, m)?)?;
    m.add_function(wrap_pyfunction!(observe::check, m)?)?;
    m.add_function(wrap_pyfunction!(observe::repair, m)?)?;
    m.add_function(wrap_pyfunction!(observe::get_slow_op_ms, m)?)?;
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
