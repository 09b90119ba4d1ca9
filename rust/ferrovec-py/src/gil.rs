//! The one way the bindings run core work: with the GIL released, converting the error after.
//! A panic in the core (a bug) is caught here and raised as `ferrovec.InternalError`, so it
//! never unwinds into Python as pyo3's `PanicException` (a `BaseException` that `except
//! Exception` misses).
//!
//! Long work (`run_interruptible`) runs on a thread of its own while the calling thread waits
//! for it and, every `SIGNAL_POLL`, lets Python run its signal handlers: Ctrl-C then asks the
//! work to stop (`Cancel`) at its next safe point, and the handler's `KeyboardInterrupt` is
//! raised once the work has returned, so nothing is left half-done.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use ferrovec_core::{Cancel, Store};
use pyo3::marker::Ungil;
use pyo3::prelude::*;

use crate::errors::{panicked, to_py};

/// How often a thread waiting for long work checks for signals.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

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

/// `run_detached` for work that may take long: `f` runs on a scoped thread and is handed the
/// `Cancel` that Ctrl-C (any exception a Python signal handler raises) sets.
pub fn run_interruptible<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    F: FnOnce(&Cancel) -> ferrovec_core::Result<T> + Send,
    T: Send,
{
    let cancel = Cancel::new();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let (outcome, signal) = std::thread::scope(|s| {
        let cancel = &cancel;
        let worker = s.spawn(move || {
            // See run_detached for why AssertUnwindSafe.
            let r = catch_unwind(AssertUnwindSafe(|| f(cancel)));
            let _ = done_tx.send(());
            r
        });
        let signal = py.detach(move || {
            let mut raised: Option<PyErr> = None;
            while let Err(mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(SIGNAL_POLL) {
                if raised.is_none() {
                    if let Err(e) = Python::attach(|py| py.check_signals()) {
                        cancel.cancel();
                        raised = Some(e);
                    }
                }
            }
            raised
        });
        (worker.join(), signal)
    });
    if let Some(e) = signal {
        return Err(e);
    }
    match outcome {
        Ok(Ok(result)) => result.map_err(|e| to_py(py, e)),
        Ok(Err(payload)) | Err(payload) => Err(panicked(py, payload.as_ref())),
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

/// A store handle held by a Python object (a Database or a Collection). The last handle's drop
/// closes the store, which joins its optimizer thread; that thread may be waiting for the GIL
/// to log a line, and the object is dropped with the GIL held (its `tp_dealloc`): so the store
/// is dropped with the GIL released.
pub struct StoreRef(Option<Arc<Store>>);

impl StoreRef {
    pub fn new(store: Arc<Store>) -> Self {
        StoreRef(Some(store))
    }
}

impl std::ops::Deref for StoreRef {
    type Target = Arc<Store>;

    fn deref(&self) -> &Arc<Store> {
        self.0
            .as_ref()
            .expect("a StoreRef holds its store until it is dropped")
    }
}

impl Drop for StoreRef {
    fn drop(&mut self) {
        if let Some(store) = self.0.take() {
            release_store(store);
        }
    }
}

/// Drop `store` with the GIL released (see `StoreRef`). After `_shutdown` every store is
/// closed already, and no core thread calls into Python, so the drop is plain.
pub fn release_store(store: Arc<Store>) {
    if crate::PYTHON_GONE.load(Ordering::Acquire) {
        drop(store);
    } else {
        Python::attach(|py| py.detach(move || drop(store)));
    }
}
