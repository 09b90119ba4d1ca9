//! The one way the bindings run core work: with the GIL released, converting the error after.
//! A panic in the core (a bug) is caught here and raised as `ferrovec.InternalError`, so it
//! never unwinds into Python as pyo3's `PanicException` (a `BaseException` that `except
//! Exception` misses).

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::marker::Ungil;
use pyo3::prelude::*;

use crate::errors::{panicked, to_py};

pub fn run_detached<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    F: FnOnce() -> ferrovec_core::Result<T> + Ungil + Send,
    T: Send,
{
    // AssertUnwindSafe: after a panic the caller gets an error and the core's state is as the
    // panicking call left it; its locks (parking_lot) do not poison, and every file it wrote
    // is still checked when read (checksums), so a later call sees damage, not garbage.
    match py.detach(|| catch_unwind(AssertUnwindSafe(f))) {
        Ok(result) => result.map_err(|e| to_py(py, e)),
        Err(payload) => Err(panicked(py, payload.as_ref())),
    }
}

/// Panic inside core work, sync or as an awaitable: proves in the tests that a panic reaches
/// Python as `InternalError` on both paths. Not part of the API.
#[pyfunction]
pub fn _panic_for_tests(py: Python<'_>, message: String) -> PyResult<()> {
    run_detached(py, move || -> ferrovec_core::Result<()> {
        panic!("{message}")
    })
}

#[pyfunction]
pub fn _panic_for_tests_async(py: Python<'_>, message: String) -> PyResult<Bound<'_, PyAny>> {
    crate::aio::core_future(
        py,
        move || -> ferrovec_core::Result<()> { panic!("{message}") },
        |py, ()| Ok(py.None()),
    )
}
