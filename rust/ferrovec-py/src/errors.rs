//! Core errors → the Python exception hierarchy. The classes live in `ferrovec/errors.py` (so
//! they can inherit from both `FerrovecError` and `ValueError`/`KeyError`/`OSError`); this module
//! imports them once and raises them with the attributes the docs promise.

use ferrovec_core::Error;
use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::IntoPyObjectExt;

fn raise(py: Python<'_>, class: &str, message: String, attrs: &[(&str, Py<PyAny>)]) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let cls = py.import("ferrovec.errors")?.getattr(class)?;
        let exc = cls.call1((message.clone(),))?;
        for (k, v) in attrs {
            exc.setattr(*k, v)?;
        }
        Ok(PyErr::from_value(exc))
    };
    build().unwrap_or_else(|e| {
        PyRuntimeError::new_err(format!("{message} (and raising {class} failed: {e})"))
    })
}

pub fn to_py(py: Python<'_>, err: Error) -> PyErr {
    let message = err.to_string();
    let path_attr = |p: &std::path::Path| -> Vec<(&'static str, Py<PyAny>)> {
        match p.to_string_lossy().into_pyobject(py) {
            Ok(s) => vec![("path", s.into_any().unbind())],
            Err(_) => vec![],
        }
    };
    match err {
        Error::InvalidInput(_) => raise(py, "InvalidInputError", message, &[]),
        Error::CollectionNotFound(_) => raise(py, "CollectionNotFoundError", message, &[]),
        Error::CollectionExists(_) => raise(py, "CollectionExistsError", message, &[]),
        Error::StoreLocked { path, pid } => {
            let mut attrs = path_attr(&path);
            let pid_obj = match pid.parse::<u32>() {
                Ok(n) => n.into_py_any(py),
                Err(_) => pid.into_py_any(py),
            };
            if let Ok(p) = pid_obj {
                attrs.push(("pid", p));
            }
            raise(py, "StoreLockedError", message, &attrs)
        }
        Error::Corruption { path, .. } => raise(py, "CorruptionError", message, &path_attr(&path)),
        Error::Io { path, .. } => raise(py, "StorageError", message, &path_attr(&path)),
        Error::LogFailed { path, .. } => raise(py, "LogFailedError", message, &path_attr(&path)),
        Error::Closed(_) => raise(py, "ClosedError", message, &[]),
        Error::ReadOnly(_) => raise(py, "ReadOnlyError", message, &[]),
        Error::MemoryLimit(_) => raise(py, "MemoryLimitError", message, &[]),
        Error::UnsupportedVersion {
            path, found, reads, ..
        } => {
            let mut attrs = path_attr(&path);
            for (k, v) in [("version", found), ("reads", reads)] {
                if let Ok(n) = v.into_py_any(py) {
                    attrs.push((k, n));
                }
            }
            raise(py, "UnsupportedVersionError", message, &attrs)
        }
        // A call the caller interrupted (Ctrl-C): Python's own exception for it.
        Error::Interrupted(_) => PyKeyboardInterrupt::new_err(message),
        Error::Internal(_) => raise(py, "InternalError", message, &[]),
        // The enum is non-exhaustive: anything new maps to the base class.
        _ => raise(py, "FerrovecError", message, &[]),
    }
}

/// `InternalError` for a panic caught at the binding boundary (`payload` as `catch_unwind`
/// or tokio's `JoinError::into_panic` hand it over).
pub fn panicked(py: Python<'_>, payload: &(dyn std::any::Any + Send)) -> PyErr {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string());
    raise(
        py,
        "InternalError",
        format!("internal error in ferrovec (a bug; please report it): {what}"),
        &[],
    )
}

/// An `InvalidInputError` raised from the binding layer itself.
pub fn invalid(py: Python<'_>, message: impl Into<String>) -> PyErr {
    raise(py, "InvalidInputError", message.into(), &[])
}
