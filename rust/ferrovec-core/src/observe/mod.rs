//! What the store tells about itself: counters and latency histograms kept on every call
//! (`metrics`), exported in Prometheus' text format (`prometheus`); the trace of where one
//! call's time went (`trace`), which the slow-operation profiler (`slow`) and
//! `explain(analyze)` read; and how much of a collection's files is in memory (`memory`).

pub mod memory;
pub mod metrics;
pub mod prometheus;
pub mod slow;
pub mod trace;

pub use metrics::Op;

/// Seconds since the Unix epoch, now (0 on a clock set before it).
pub fn now_epoch() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
