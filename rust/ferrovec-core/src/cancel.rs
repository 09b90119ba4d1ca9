//! Stopping a long call early, and hearing how far it has got: the Python bindings set a
//! [`Cancel`] when Ctrl-C arrives while the call runs on another thread, and pass a [`Report`]
//! that calls the caller's progress callback.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

/// Where a long call reports how far it has got: a copy its bytes, an optimization its graph
/// insertions, done and in all.
pub trait Report: Sync {
    fn report(&self, done: u64, total: u64);
}

impl<F: Fn(u64, u64) + Sync> Report for F {
    fn report(&self, done: u64, total: u64) {
        self(done, total);
    }
}

/// A report nobody reads, for calls nobody watches.
pub static SILENT: &dyn Report = &|_, _| {};

/// A request to stop a long call (an optimization, a large write, a copy) early. The call
/// checks it at points where stopping leaves nothing half-done, and then fails with
/// [`Error::Interrupted`]; once it has passed its last such point it finishes.
#[derive(Debug, Default)]
pub struct Cancel(AtomicBool);

/// A request that is never made, for calls nobody interrupts.
pub static NEVER: Cancel = Cancel(AtomicBool::new(false));

impl Cancel {
    pub const fn new() -> Self {
        Cancel(AtomicBool::new(false))
    }

    /// Ask the call to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Interrupted` (naming `what` was stopped) once the call is asked to stop.
    pub fn check(&self, what: &str) -> Result<()> {
        if self.is_cancelled() {
            return Err(Error::Interrupted(format!("{what} was interrupted")));
        }
        Ok(())
    }
}
