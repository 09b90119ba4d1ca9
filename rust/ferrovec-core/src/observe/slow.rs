//! The slow-operation profiler: each call that takes at least the threshold is recorded with
//! its collection, kind, duration, parameters (never vectors or payloads), the plan it ran
//! and where its time went. Records go to the `log` crate under the target `ferrovec.slow`
//! (Python's logger of that name, at INFO) and to a bounded ring of the newest ones.
//!
//! The threshold is the process's, like MongoDB's `slowms`: the last `open(slow_op_ms=...)`
//! (or [`set_threshold`]) sets it for every store this process has open.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::LazyLock;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{json, Map, Value};

use super::trace::{Count, Phase, Trace};

/// Records kept in memory; older ones are dropped first.
pub const RING_CAPACITY: usize = 1000;
/// Set to a number of milliseconds to turn the profiler on for every store of the process.
pub const SLOW_OP_ENV: &str = "FERROVEC_SLOW_OP_MS";

const OFF: u64 = u64::MAX;
static THRESHOLD_MS: AtomicU64 = AtomicU64::new(OFF);
static RING: LazyLock<Mutex<VecDeque<SlowOp>>> = LazyLock::new(|| Mutex::new(VecDeque::new()));

/// Record calls taking at least `ms` milliseconds (0: every call); `None` turns it off.
pub fn set_threshold(ms: Option<u64>) {
    THRESHOLD_MS.store(ms.map_or(OFF, |m| m.min(OFF - 1)), Relaxed);
}

pub fn threshold() -> Option<u64> {
    match THRESHOLD_MS.load(Relaxed) {
        OFF => None,
        ms => Some(ms),
    }
}

/// Whether calls are being traced for the profiler.
#[inline]
pub fn on() -> bool {
    THRESHOLD_MS.load(Relaxed) != OFF
}

pub fn is_slow(took: Duration) -> bool {
    threshold().is_some_and(|ms| took >= Duration::from_millis(ms))
}

/// One slow call.
#[derive(Clone, Debug)]
pub struct SlowOp {
    /// Seconds since the epoch when it ended.
    pub at: f64,
    /// The store's directory (`None` in memory).
    pub store: Option<PathBuf>,
    pub collection: String,
    pub op: &'static str,
    pub duration: Duration,
    pub params: Value,
    pub trace: Trace,
    pub error: Option<String>,
}

/// Milliseconds, to the microsecond.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// A trace's phases (with "other": the rest of `total`), counts and steps as JSON.
pub fn trace_json(trace: &Trace, total: Duration) -> (Value, Value, Value) {
    let mut phases = Map::new();
    let mut accounted = Duration::ZERO;
    for p in Phase::ALL {
        let d = trace.phases[p as usize];
        accounted += d;
        if !d.is_zero() {
            phases.insert(p.name().into(), json!(ms(d)));
        }
    }
    phases.insert("other".into(), json!(ms(total.saturating_sub(accounted))));
    let counts = count_json(&trace.counts);
    let steps: Vec<Value> = trace
        .steps
        .iter()
        .map(|s| {
            json!({
                "source": s.source,
                "method": s.method,
                "ms": ms(s.time),
                "found": s.found,
                "counts": count_json(&s.counts),
            })
        })
        .collect();
    (Value::Object(phases), counts, Value::Array(steps))
}

fn count_json(counts: &[u64]) -> Value {
    let mut out = Map::new();
    for c in Count::ALL {
        out.insert(c.name().into(), json!(counts[c as usize]));
    }
    Value::Object(out)
}

impl SlowOp {
    pub fn to_json(&self) -> Value {
        let (phases, counts, plan) = trace_json(&self.trace, self.duration);
        json!({
            "at": self.at,
            "store": self.store.as_ref().map(|p| p.display().to_string()),
            "collection": self.collection,
            "op": self.op,
            "duration_ms": ms(self.duration),
            "params": self.params,
            "plan": plan,
            "time_ms": phases,
            "counts": counts,
            "error": self.error,
        })
    }
}

/// Keep `op` in the ring and log it.
pub fn record(op: SlowOp) {
    log::info!(
        target: "ferrovec.slow",
        "slow {} on {}: {:.1} ms {}",
        op.op,
        op.collection,
        op.duration.as_secs_f64() * 1e3,
        op.to_json()
    );
    let mut ring = RING.lock();
    if ring.len() == RING_CAPACITY {
        ring.pop_front();
    }
    ring.push_back(op);
}

/// The newest `limit` records (newest first) of the store at `store` (`None`: in-memory
/// stores), of `collection` if given.
pub fn recent(
    limit: usize,
    store: Option<&std::path::Path>,
    collection: Option<&str>,
) -> Vec<SlowOp> {
    RING.lock()
        .iter()
        .rev()
        .filter(|o| o.store.as_deref() == store)
        .filter(|o| collection.is_none_or(|c| o.collection == c))
        .take(limit)
        .cloned()
        .collect()
}
