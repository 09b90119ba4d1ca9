//! Where one call's time went: a trace on the calling thread, active only while the profiler
//! is on (`slow_op_ms`) or `explain(analyze=True)` runs. Inactive, every hook is one relaxed
//! load of [`ENABLED`].
//!
//! Phases are exclusive: a phase entered inside another (rescoring inside a graph walk) is
//! taken out of the outer one, so the phases and "other" add up to the call's duration.
//! Work a call hands to the thread pool (a batch of queries, one query's exact scan over many
//! rows) is timed as a whole by the calling thread's phase around it; its counts are added
//! from the workers into the trace of the calling thread only where they run on it.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Traces that may be active somewhere: profiled calls in flight plus `explain(analyze)`s.
static ENABLED: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static TRACE: RefCell<Option<Trace>> = const { RefCell::new(None) };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    LockWait,
    Filter,
    Graph,
    ExactScan,
    Rescore,
    PayloadRead,
    LogAppend,
    Fsync,
    Apply,
}

impl Phase {
    pub const ALL: [Phase; 9] = [
        Phase::LockWait,
        Phase::Filter,
        Phase::Graph,
        Phase::ExactScan,
        Phase::Rescore,
        Phase::PayloadRead,
        Phase::LogAppend,
        Phase::Fsync,
        Phase::Apply,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::LockWait => "lock_wait",
            Phase::Filter => "filter",
            Phase::Graph => "graph",
            Phase::ExactScan => "exact_scan",
            Phase::Rescore => "rescore",
            Phase::PayloadRead => "payload_read",
            Phase::LogAppend => "log_append",
            Phase::Fsync => "fsync",
            Phase::Apply => "apply",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    /// f32 distances computed by exact scans.
    ExactDistances,
    /// Distances computed by graph walks (on codes or f32).
    GraphDistances,
    /// Graph nodes whose links a walk expanded.
    NodesVisited,
    /// Candidates rescored on f32 after a walk on codes.
    Rescored,
    /// Rows whose payload a filter checked one by one.
    FilterChecks,
}

impl Count {
    pub const ALL: [Count; 5] = [
        Count::ExactDistances,
        Count::GraphDistances,
        Count::NodesVisited,
        Count::Rescored,
        Count::FilterChecks,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Count::ExactDistances => "exact_distances",
            Count::GraphDistances => "graph_distances",
            Count::NodesVisited => "nodes_visited",
            Count::Rescored => "rescored",
            Count::FilterChecks => "filter_checks",
        }
    }
}

/// One step of a search as it ran: a source searched one way, with its time and counts.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub source: String,
    pub method: &'static str,
    pub time: Duration,
    pub counts: [u64; Count::ALL.len()],
    pub found: usize,
}

/// What a finished trace holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    pub phases: [Duration; Phase::ALL.len()],
    pub counts: [u64; Count::ALL.len()],
    pub steps: Vec<Step>,
    /// Open phases: which, since when, and the time spent in phases opened inside it.
    stack: Vec<(Phase, Instant, Duration)>,
}

/// Starts a trace on this thread unless one is active; finishes it when asked or dropped.
pub struct Tracing {
    owner: bool,
}

impl Tracing {
    /// Start tracing this thread's call (`None`: a trace is already active on this thread, and
    /// the call adds to it).
    pub fn start() -> Option<Tracing> {
        TRACE.with(|t| {
            let mut t = t.borrow_mut();
            if t.is_some() {
                return None;
            }
            *t = Some(Trace::default());
            ENABLED.fetch_add(1, Relaxed);
            Some(Tracing { owner: true })
        })
    }

    pub fn finish(mut self) -> Trace {
        self.owner = false;
        ENABLED.fetch_sub(1, Relaxed);
        TRACE.with(|t| t.borrow_mut().take()).unwrap_or_default()
    }
}

impl Drop for Tracing {
    fn drop(&mut self) {
        if self.owner {
            ENABLED.fetch_sub(1, Relaxed);
            TRACE.with(|t| t.borrow_mut().take());
        }
    }
}

#[inline]
fn enabled() -> bool {
    ENABLED.load(Relaxed) > 0
}

/// Whether this thread is tracing (for hooks that would otherwise cost something).
#[inline]
pub fn active() -> bool {
    enabled() && TRACE.with(|t| t.borrow().is_some())
}

/// Time spent until the returned guard drops counts as `phase`.
#[inline]
pub fn span(phase: Phase) -> Span {
    if !enabled() {
        return Span { active: false };
    }
    let active = TRACE.with(|t| match t.borrow_mut().as_mut() {
        Some(tr) => {
            tr.stack.push((phase, Instant::now(), Duration::ZERO));
            true
        }
        None => false,
    });
    Span { active }
}

pub struct Span {
    active: bool,
}

impl Drop for Span {
    fn drop(&mut self) {
        if !self.active {
            return;
        }
        TRACE.with(|t| {
            if let Some(tr) = t.borrow_mut().as_mut() {
                if let Some((phase, started, inner)) = tr.stack.pop() {
                    let took = started.elapsed();
                    // Exclusive time: what phases inside this one took is theirs.
                    tr.phases[phase as usize] += took.saturating_sub(inner);
                    if let Some(outer) = tr.stack.last_mut() {
                        outer.2 += took;
                    }
                }
            }
        });
    }
}

/// Add `n` to this thread's count `c`.
#[inline]
pub fn add(c: Count, n: u64) {
    if !enabled() {
        return;
    }
    TRACE.with(|t| {
        if let Some(tr) = t.borrow_mut().as_mut() {
            tr.counts[c as usize] += n;
        }
    });
}

/// Run `f` as one step (a source searched by `method`) of the traced call, recording its time
/// and the counts it added; without a trace, just run it.
pub fn step<T>(
    source: impl FnOnce() -> String,
    method: &'static str,
    found: impl Fn(&T) -> usize,
    f: impl FnOnce() -> T,
) -> T {
    if !active() {
        return f();
    }
    let before = TRACE.with(|t| t.borrow().as_ref().map(|tr| tr.counts).unwrap_or_default());
    let started = Instant::now();
    let out = f();
    let time = started.elapsed();
    let n = found(&out);
    TRACE.with(|t| {
        if let Some(tr) = t.borrow_mut().as_mut() {
            let mut counts = tr.counts;
            for (c, b) in counts.iter_mut().zip(before) {
                *c -= b;
            }
            tr.steps.push(Step {
                source: source(),
                method,
                time,
                counts,
                found: n,
            });
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_exclusive_and_inactive_hooks_record_nothing() {
        // No trace: nothing is kept.
        drop(span(Phase::Graph));
        add(Count::NodesVisited, 5);
        assert!(!active());

        let t = Tracing::start().expect("no trace yet");
        assert!(
            Tracing::start().is_none(),
            "a nested call adds to the active trace"
        );
        let outer = Instant::now();
        {
            let _g = span(Phase::Graph);
            std::thread::sleep(Duration::from_millis(20));
            {
                let _r = span(Phase::Rescore);
                std::thread::sleep(Duration::from_millis(30));
            }
        }
        let total = outer.elapsed();
        add(Count::NodesVisited, 7);
        let found = step(
            || "segment 1".into(),
            "graph",
            |v: &Vec<u8>| v.len(),
            || {
                add(Count::GraphDistances, 3);
                vec![1, 2]
            },
        );
        assert_eq!(found, vec![1, 2]);
        let tr = t.finish();
        assert!(!active());
        let graph = tr.phases[Phase::Graph as usize];
        let rescore = tr.phases[Phase::Rescore as usize];
        assert!(rescore >= Duration::from_millis(30));
        // Exclusive: the rescoring inside the graph phase is not counted twice.
        assert!(
            graph >= Duration::from_millis(20) && graph + rescore <= total,
            "graph {graph:?} rescore {rescore:?} total {total:?}"
        );
        assert_eq!(tr.counts[Count::NodesVisited as usize], 7);
        assert_eq!(tr.counts[Count::GraphDistances as usize], 3);
        assert_eq!(tr.steps.len(), 1);
        assert_eq!(tr.steps[0].counts[Count::GraphDistances as usize], 3);
        assert_eq!(tr.steps[0].counts[Count::NodesVisited as usize], 0);
        assert_eq!(tr.steps[0].found, 2);
    }
}
