//! Counters and latency histograms kept on every call. They are plain relaxed atomics, so
//! keeping them costs a few nanoseconds per call (`benches/bench_observe.py` measures it);
//! Prometheus' text is made from them only when someone asks (`prometheus.rs`).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use parking_lot::Mutex;

/// Upper bounds of the latency buckets, in seconds (Prometheus' `le`): 25 µs to 10 s.
pub const BUCKETS: [f64; 18] = [
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

const BUCKET_NS: [u64; 18] = [
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// A latency histogram: a count per bucket (the last one is +Inf) and the sum.
#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_ns: AtomicU64,
}

/// A histogram as read: cumulative counts per bound, the total count and the sum in seconds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistogramValues {
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    #[inline]
    pub fn observe(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = BUCKET_NS.partition_point(|&b| b < ns);
        self.counts[i].fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
    }

    pub fn values(&self) -> HistogramValues {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(BUCKETS.len());
        for (i, le) in BUCKETS.iter().enumerate() {
            cumulative += self.counts[i].load(Relaxed);
            buckets.push((*le, cumulative));
        }
        let count = cumulative + self.counts[BUCKETS.len()].load(Relaxed);
        HistogramValues {
            buckets,
            count,
            sum_seconds: self.sum_ns.load(Relaxed) as f64 / 1e9,
        }
    }
}

/// What a call was, for counting and for the slow-operation profiler.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Upsert,
    UpdateVectors,
    Delete,
    DeleteVectors,
    Payload,
    Get,
    Count,
    Scroll,
    Facet,
    Search,
    SearchBatch,
    Query,
    Flush,
    Optimize,
    Snapshot,
    Backup,
}

impl Op {
    pub const ALL: [Op; 16] = [
        Op::Upsert,
        Op::UpdateVectors,
        Op::Delete,
        Op::DeleteVectors,
        Op::Payload,
        Op::Get,
        Op::Count,
        Op::Scroll,
        Op::Facet,
        Op::Search,
        Op::SearchBatch,
        Op::Query,
        Op::Flush,
        Op::Optimize,
        Op::Snapshot,
        Op::Backup,
    ];

    /// The `op` label.
    pub fn name(self) -> &'static str {
        match self {
            Op::Upsert => "upsert",
            Op::UpdateVectors => "update_vectors",
            Op::Delete => "delete",
            Op::DeleteVectors => "delete_vectors",
            Op::Payload => "payload",
            Op::Get => "get",
            Op::Count => "count",
            Op::Scroll => "scroll",
            Op::Facet => "facet",
            Op::Search => "search",
            Op::SearchBatch => "search_batch",
            Op::Query => "query",
            Op::Flush => "flush",
            Op::Optimize => "optimize",
            Op::Snapshot => "snapshot",
            Op::Backup => "backup",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Count, errors, slow ones and latency of one kind of call.
#[derive(Default)]
pub struct OpStats {
    pub count: AtomicU64,
    pub errors: AtomicU64,
    pub slow: AtomicU64,
    pub latency: Histogram,
}

/// A structural change: a checkpoint, or a merge (an index build, a vacuum, a merge).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunKind {
    Seal,
    Merge,
}

impl RunKind {
    pub fn name(self) -> &'static str {
        match self {
            RunKind::Seal => "seal",
            RunKind::Merge => "merge",
        }
    }
}

/// The last structural change the optimizer (or `optimize()`) made.
#[derive(Clone, Debug, PartialEq)]
pub struct LastRun {
    pub kind: RunKind,
    /// Seconds since the epoch when it ended.
    pub ended_at: f64,
    pub seconds: f64,
    /// Points in what it wrote.
    pub points: usize,
}

/// Everything one collection counts, in this process.
#[derive(Default)]
pub struct CollectionMetrics {
    ops: [OpStats; Op::ALL.len()],
    /// Checkpoints (seals) written.
    pub checkpoints: AtomicU64,
    /// Merges (index builds, vacuums, merges) finished.
    pub merges: AtomicU64,
    /// Time spent in seals and merges.
    pub optimizer_ns: AtomicU64,
    /// Time calls spent waiting for the collection's locks.
    pub lock_wait_ns: AtomicU64,
    /// Writes that sealed the log themselves because the background optimizer was busy (see
    /// `collection::write`), and the time they spent at it.
    pub write_stalls: AtomicU64,
    pub write_stall_ns: AtomicU64,
    pub last_run: Mutex<Option<LastRun>>,
}

impl CollectionMetrics {
    pub fn op(&self, op: Op) -> &OpStats {
        &self.ops[op.index()]
    }

    #[inline]
    pub fn record(&self, op: Op, took: Duration, failed: bool) {
        let s = &self.ops[op.index()];
        s.count.fetch_add(1, Relaxed);
        if failed {
            s.errors.fetch_add(1, Relaxed);
        }
        s.latency.observe(took);
    }

    /// A write that waited `took` to seal the log itself.
    pub fn note_write_stall(&self, took: Duration) {
        self.write_stalls.fetch_add(1, Relaxed);
        self.write_stall_ns
            .fetch_add(took.as_nanos().min(u64::MAX as u128) as u64, Relaxed);
    }

    /// A seal or merge that took `took` and wrote `points` points.
    pub fn record_run(&self, kind: RunKind, took: Duration, points: usize) {
        match kind {
            RunKind::Seal => &self.checkpoints,
            RunKind::Merge => &self.merges,
        }
        .fetch_add(1, Relaxed);
        self.optimizer_ns
            .fetch_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Relaxed);
        *self.last_run.lock() = Some(LastRun {
            kind,
            ended_at: super::now_epoch(),
            seconds: took.as_secs_f64(),
            points,
        });
    }
}

/// What one collection's log counts, in this process.
#[derive(Default)]
pub struct LogMetrics {
    pub appends: AtomicU64,
    pub appended_bytes: AtomicU64,
    pub fsyncs: AtomicU64,
    pub fsync_latency: Histogram,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_bounds_inclusive() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(25)); // on the first bound: counted in it
        h.observe(Duration::from_micros(26));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(20)); // beyond the last bound: +Inf only
        let v = h.values();
        assert_eq!(v.count, 4);
        assert_eq!(v.buckets[0], (0.000_025, 1));
        assert_eq!(v.buckets[1], (0.000_05, 2));
        assert_eq!(v.buckets[6], (0.002_5, 2));
        assert_eq!(v.buckets[7], (0.005, 3));
        assert_eq!(v.buckets.last().map(|b| b.1), Some(3));
        assert!((v.sum_seconds - 20.003_051).abs() < 1e-6);
    }

    #[test]
    fn op_names_are_unique_and_indexed_in_order() {
        for (i, op) in Op::ALL.iter().enumerate() {
            assert_eq!(op.index(), i);
        }
        let mut names: Vec<&str> = Op::ALL.iter().map(|o| o.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Op::ALL.len());
    }
}
