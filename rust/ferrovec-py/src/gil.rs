//! The one way the bindings run core work: with the GIL released, converting the error after.

use pyo3::marker::Ungil;
use pyo3::prelude::*;

use crate::errors::to_py;

pub fn run_detached<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    F: FnOnce() -> ferrovec_core::Result<T> + Ungil,
    T: Send,
{
    py.detach(f).map_err(|e| to_py(py, e))
}
