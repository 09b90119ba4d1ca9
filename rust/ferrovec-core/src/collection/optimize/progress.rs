//! How far a long optimization has got: the graph insertions it has made of those it plans,
//! for `stats()["optimizer"]["progress"]` and `optimize(progress=...)`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use parking_lot::Mutex;
use serde_json::{json, Value};

#[derive(Default)]
pub struct Progress {
    done: AtomicU64,
    total: AtomicU64,
    /// When the optimization under way began; `None`: none is.
    started: Mutex<Option<Instant>>,
}

/// The optimization that began the count; the count ends when it is dropped.
pub struct Running<'a>(&'a Progress);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        *self.0.started.lock() = None;
    }
}

impl Progress {
    /// Start counting towards `total` insertions, unless an enclosing optimization already
    /// counts (a full `optimize()` plans all its merges at once).
    pub fn begin(&self, total: u64) -> Option<Running<'_>> {
        let mut started = self.started.lock();
        if started.is_some() {
            return None;
        }
        self.done.store(0, Relaxed);
        self.total.store(total, Relaxed);
        *started = Some(Instant::now());
        Some(Running(self))
    }

    /// Count `n` insertions made (or, extending a graph, kept); the count and the total so
    /// far, the count never past the total (a plan counts live points, a build all rows).
    pub fn add(&self, n: u64) -> (u64, u64) {
        let total = self.total.load(Relaxed);
        let done = self.done.fetch_add(n, Relaxed) + n;
        (done.min(total), total)
    }

    /// For `stats`: insertions done and planned, seconds elapsed and, once a share is done,
    /// the seconds left at the rate so far; `None` when no optimization runs.
    pub fn snapshot(&self) -> Option<Value> {
        let elapsed = (*self.started.lock())?.elapsed().as_secs_f64();
        let total = self.total.load(Relaxed);
        let done = self.done.load(Relaxed).min(total);
        let eta = (done > 0).then(|| elapsed * (total - done) as f64 / done as f64);
        Some(json!({
            "done": done,
            "total": total,
            "elapsed_s": elapsed,
            "eta_s": eta,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_within_the_outermost_optimization() {
        let p = Progress::default();
        assert!(p.snapshot().is_none());
        let outer = p.begin(100).expect("nothing runs yet");
        assert!(
            p.begin(10).is_none(),
            "a nested merge keeps the full plan's count"
        );
        assert_eq!(p.add(30), (30, 100));
        assert_eq!(p.add(90), (100, 100), "never past the total");
        let s = p.snapshot().expect("running");
        assert_eq!(
            (s["done"].as_u64(), s["total"].as_u64()),
            (Some(100), Some(100))
        );
        assert_eq!(s["eta_s"].as_f64(), Some(0.0));
        drop(outer);
        assert!(p.snapshot().is_none());
        let again = p.begin(5).expect("the last one ended");
        assert_eq!(p.add(1), (1, 5));
        drop(again);
    }
}
