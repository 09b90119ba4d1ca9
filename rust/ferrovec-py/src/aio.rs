//! Awaitables for asyncio (through pyo3-async-runtimes): the work runs on the blocking threads
//! of the core's tokio runtime, and the event loop only waits for the result.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3_async_runtimes::tokio::{future_into_py, get_runtime};

use crate::errors::{panicked, to_py};

fn join_error(e: impl std::fmt::Display) -> PyErr {
    PyRuntimeError::new_err(format!("ferrovec worker thread failed: {e}"))
}

/// Core work `f` as an awaitable: `f` runs on a worker thread without the GIL, then `done`
/// turns its result into Python objects (with the GIL) and the awaiting coroutine resumes.
pub fn core_future<'py, T, F, C>(py: Python<'py>, f: F, done: C) -> PyResult<Bound<'py, PyAny>>
where
    T: Send + 'static,
    F: FnOnce() -> ferrovec_core::Result<T> + Send + 'static,
    C: FnOnce(Python<'_>, T) -> PyResult<Py<PyAny>> + Send + 'static,
{
    future_into_py(py, async move {
        // A panic in the core (a bug) becomes `InternalError`, as on the synchronous path; a
        // task cancelled by the runtime shutting down, a `RuntimeError`.
        let result = match get_runtime().spawn_blocking(f).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => {
                let payload = e.into_panic();
                return Err(Python::attach(|py| panicked(py, payload.as_ref())));
            }
            Err(e) => return Err(join_error(e)),
        };
        Python::attach(|py| match result {
            Ok(value) => done(py, value),
            Err(e) => Err(to_py(py, e)),
        })
    })
}

/// `await spawn(fn)`: call `fn()` on one of the core's worker threads and return its result,
/// so that the event loop keeps running meanwhile (AsyncQdrantClient runs every call this way;
/// ferrovec's own calls inside release the GIL while they work).
#[pyfunction]
pub fn spawn(py: Python<'_>, func: Py<PyAny>) -> PyResult<Bound<'_, PyAny>> {
    future_into_py(py, async move {
        get_runtime()
            .spawn_blocking(move || Python::attach(|py| func.call0(py)))
            .await
            .map_err(join_error)?
    })
}
