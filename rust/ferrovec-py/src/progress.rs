//! Progress callbacks of long calls (backups, restores, `optimize(progress=...)`): the core
//! reports through [`Reporter`], which calls the Python callable.

use std::sync::Mutex;

use ferrovec_core::backup;
use ferrovec_core::cancel::Report;
use ferrovec_core::Cancel;
use pyo3::prelude::*;

/// Calls `callback(done, total)` from the core's threads, at most about 100 times per call.
pub struct Reporter {
    callback: Option<Py<PyAny>>,
    last: Mutex<u64>,
}

impl Reporter {
    pub fn new(callback: Option<Py<PyAny>>) -> Self {
        Reporter {
            callback,
            last: Mutex::new(0),
        }
    }

    /// The core's view: reports through this, stopped by `cancel`.
    pub fn progress<'a>(&'a self, cancel: &'a Cancel) -> backup::Progress<'a> {
        backup::Progress {
            report: self,
            cancel,
        }
    }
}

impl Report for Reporter {
    fn report(&self, done: u64, total: u64) {
        let Some(cb) = &self.callback else { return };
        {
            let Ok(mut last) = self.last.lock() else {
                return;
            };
            if done < total && done.saturating_sub(*last) < total / 100 {
                return;
            }
            *last = done;
        }
        Python::attach(|py| {
            if let Err(e) = cb.call1(py, (done, total)) {
                e.write_unraisable(py, None);
            }
        });
    }
}
