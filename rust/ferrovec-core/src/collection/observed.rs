//! Every public call of a collection runs through [`Collection::observed`]: counted and timed
//! in the collection's metrics and, while the profiler is on, traced and recorded if slow.

use std::time::Instant;

use serde_json::{json, Value};

use super::Collection;
use crate::error::Result;
use crate::filter::Filter;
use crate::observe::metrics::Op;
use crate::observe::now_epoch;
use crate::observe::slow::{self, SlowOp};
use crate::observe::trace::{self, Phase, Tracing};
use crate::query::universal::{Query, QueryRequest, Stage};
use crate::query::{SearchParams, Selector};

/// A lock wait at least this long is logged.
const LOG_LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

impl Collection {
    /// Run `f` as one call of kind `op`. `params` describes it for the profiler (never vectors
    /// or payloads) and is built only for a slow call.
    pub(crate) fn observed<T>(
        &self,
        op: Op,
        params: impl FnOnce() -> Value,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let tracing = if slow::on() { Tracing::start() } else { None };
        let started = Instant::now();
        let result = f();
        let took = started.elapsed();
        self.metrics.record(op, took, result.is_err());
        if let Some(t) = tracing {
            let trace = t.finish();
            if slow::is_slow(took) {
                self.metrics
                    .op(op)
                    .slow
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                slow::record(SlowOp {
                    at: now_epoch(),
                    store: self.store_dir(),
                    collection: self.name.clone(),
                    op: op.name(),
                    duration: took,
                    params: params(),
                    trace,
                    error: result.as_ref().err().map(ToString::to_string),
                });
            }
        }
        result
    }

    /// Count a store-wide call (a snapshot or backup) that covered this collection.
    pub(crate) fn record_op(&self, op: Op, took: std::time::Duration, failed: bool) {
        self.metrics.record(op, took, failed);
    }

    /// A lock acquired by `lock`, its wait counted in the metrics and the trace.
    pub(crate) fn waited<G>(&self, lock: impl FnOnce() -> G) -> G {
        let _s = trace::span(Phase::LockWait);
        let started = Instant::now();
        let g = lock();
        let waited = started.elapsed();
        if waited >= LOG_LOCK_WAIT {
            log::info!(
                "collection {}: waited {:.0} ms for a lock (a checkpoint, an index switch or another process's write)",
                self.name,
                waited.as_secs_f64() * 1e3
            );
        }
        let ns = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        self.metrics
            .lock_wait_ns
            .fetch_add(ns, std::sync::atomic::Ordering::Relaxed);
        g
    }

    /// The store's directory (`<store>/collections/<name>`), `None` in memory.
    pub(crate) fn store_dir(&self) -> Option<std::path::PathBuf> {
        self.dir
            .as_deref()
            .and_then(|d| d.parent())
            .and_then(|d| d.parent())
            .map(std::path::Path::to_path_buf)
    }
}

/// A filter as the profiler shows it: the keys it tests and how many conditions, not values.
pub(crate) fn filter_json(f: Option<&Filter>) -> Value {
    let Some(f) = f.filter(|f| !f.is_empty()) else {
        return Value::Null;
    };
    let mut keys = Vec::new();
    f.field_keys(&mut keys);
    keys.sort_unstable();
    keys.dedup();
    json!({"keys": keys, "conditions": f.conditions()})
}

/// A search's parameters as the profiler shows them.
pub(crate) fn search_json(p: &SearchParams, queries: usize) -> Value {
    json!({
        "queries": queries,
        "k": p.k,
        "offset": p.offset,
        "ef": p.ef,
        "exact": p.exact,
        "using": p.using,
        "score_threshold": p.score_threshold,
        "with_vector": p.with_vector,
        "filter": filter_json(p.filter.as_ref()),
    })
}

/// Which points a write picks, as the profiler shows it.
pub(crate) fn selector_json(sel: &Selector<'_>) -> Value {
    match sel {
        Selector::Ids(ids) => json!({"ids": ids.len()}),
        Selector::Filter(f) => json!({"filter": filter_json(Some(f))}),
    }
}

/// A universal query's stage tree as the profiler shows it: each stage's kind, vector, limit
/// and filter keys, its prefetches nested.
pub(crate) fn stage_json(s: &Stage) -> Value {
    json!({
        "query": s.query.as_ref().map(Query::kind),
        "using": s.using,
        "limit": s.limit,
        "exact": s.exact,
        "ef": s.ef,
        "filter": filter_json(s.filter.as_ref()),
        "prefetch": s.prefetch.iter().map(stage_json).collect::<Vec<_>>(),
    })
}

pub(crate) fn query_json(req: &QueryRequest) -> Value {
    json!({"offset": req.offset, "stage": stage_json(&req.stage)})
}
