//! Structural changes of a collection, and the background thread that makes them. Only the
//! process holding the optimizer lease (`shared.rs`) makes them; the others switch to the
//! manifest it publishes at their next call.
//!
//! - **seal** (a checkpoint): freeze the appendable rows under the writer lock (they stay
//!   searchable as a frozen source, and the log is rotated), write them as a segment with no lock
//!   held, then switch the manifest and swap the segment in under the writer lock. Writers wait
//!   only for the freeze and the switch.
//! - **merge**: build one segment (with an HNSW graph once it is large enough) from several,
//!   keeping the largest input's graph and inserting the other rows into it; deletions made
//!   meanwhile are carried over at the switch through the row mapping. Also vacuums: a segment
//!   with many deleted rows is rebuilt without them.
//! - The **background optimizer** deletes points past retention (`retention.rs`), seals when the
//!   log grows, indexes unindexed points once there are `indexing_threshold` of them and writes
//!   have paused for `idle_ms` (or at once at ten times the threshold), and merges small indexed
//!   segments (vacuuming deleted rows) when writes pause.
//!
//! All of these hold `Collection::structure`, so they never overlap. Sealing is in `seal.rs`,
//! merging in `merge.rs`; this file holds the background thread and what it decides to do.

mod merge;
mod progress;
mod seal;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

pub(crate) use seal::{build_index, seal, write_index_file};

use super::state::Source;
use super::{Collection, OPEN};
use crate::cancel::{Cancel, Report, NEVER, SILENT};
use crate::error::{Error, Result};

/// A segment with more than this fraction of deleted rows is rebuilt without them.
const VACUUM_FRACTION: f64 = 0.2;
/// Leave-one-out queries of the self-check after a graph build.
const SELF_CHECK_SAMPLES: usize = 50;
/// Merge indexed segments once there are more than this many.
const MAX_INDEXED_SEGMENTS: usize = 4;

#[derive(Default)]
pub struct Optimizer {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    progress: progress::Progress,
}

#[derive(Default)]
struct Shared {
    flags: Mutex<Flags>,
    cv: Condvar,
    /// Set when the collection closes: long builds stop early.
    cancel: AtomicBool,
}

#[derive(Default)]
struct Flags {
    wake: bool,
    full: bool,
    stop: bool,
    status: Option<String>,
}

impl Optimizer {
    pub fn wake(&self) {
        self.shared.flags.lock().wake = true;
        self.shared.cv.notify_all();
    }

    pub fn request_full(&self) {
        self.shared.flags.lock().full = true;
        self.wake();
    }

    pub fn status(&self) -> String {
        self.shared
            .flags
            .lock()
            .status
            .clone()
            .unwrap_or_else(|| "idle".into())
    }

    /// How far the optimization under way has got (`Progress::snapshot`).
    pub fn progress(&self) -> Option<serde_json::Value> {
        self.progress.snapshot()
    }

    fn set_status(&self, s: Option<String>) {
        self.shared.flags.lock().status = s;
    }

    fn cancelled(&self) -> bool {
        self.shared.cancel.load(Ordering::Relaxed)
    }
}

/// When a long build stops early: the collection closes, or the caller cancels.
pub(super) struct Stop<'a> {
    col: &'a Collection,
    cancel: &'a Cancel,
    /// Told the insertions done of those planned (`Progress`).
    report: &'a dyn Report,
}

impl Stop<'_> {
    /// Count `n` graph insertions made, and report the count.
    fn inserted(&self, n: u64) {
        let (done, total) = self.col.optimizer.progress.add(n);
        self.report.report(done, total);
    }

    fn stopped(&self) -> bool {
        self.col.optimizer.cancelled() || self.cancel.is_cancelled()
    }

    /// The error that ends the build, once stopped.
    fn check(&self) -> Result<()> {
        self.cancel.check("the optimization")?;
        if self.col.optimizer.cancelled() {
            return Err(Error::Closed(
                "optimization cancelled: the collection is closing".into(),
            ));
        }
        Ok(())
    }
}

/// Start the background thread of `col`.
pub fn start(col: &Arc<Collection>) {
    let weak: Weak<Collection> = Arc::downgrade(col);
    let shared = col.optimizer.shared.clone();
    let spawned = thread::Builder::new()
        .name("ferrovec-optimizer".into())
        .spawn(move || run(weak, shared));
    match spawned {
        Ok(h) => *col.optimizer.thread.lock() = Some(h),
        Err(e) => {
            log::error!("cannot start the optimizer thread ({e}); only optimize() will index")
        }
    }
}

fn run(weak: Weak<Collection>, shared: Arc<Shared>) {
    loop {
        let full = {
            let mut f = shared.flags.lock();
            if !f.stop && !f.wake && !f.full {
                shared.cv.wait_for(&mut f, Duration::from_millis(200));
            }
            if f.stop {
                return;
            }
            f.wake = false;
            std::mem::take(&mut f.full)
        };
        let Some(col) = weak.upgrade() else { return };
        if col.status.load(Ordering::Acquire) != OPEN || col.is_retired() {
            return;
        }
        if col.options.read_only {
            // Nothing to optimize here; keeping up moves this process's pin, so that an idle
            // reader does not hold back the removal of old files.
            if let Err(e) = col.sync() {
                log::warn!("collection {}: keeping up failed: {e}", col.name);
            }
            continue;
        }
        let result = col.sync().and_then(|()| match col.structure.try_lock() {
            // Only the process holding the lease optimizes; the others just keep up (so that
            // an idle process does not hold back the removal of old files).
            Some(_s) => match col.lease(false)? {
                Some(_lease) if full => optimize_all(&col, &NEVER, SILENT),
                Some(_lease) => background_step(&col),
                None => Ok(()),
            },
            None => Ok(()),
        });
        match result {
            Ok(()) => col.optimizer.set_status(None),
            Err(_) if col.optimizer.cancelled() => return,
            Err(e) => {
                log::error!(
                    "collection {}: background optimization failed: {e}",
                    col.name
                );
                col.optimizer.set_status(Some(format!("failed: {e}")));
                drop(col);
                // Do not spin on a persistent failure (a full disk, say).
                thread::sleep(Duration::from_secs(5));
            }
        }
    }
}

/// Stop the background thread (cancelling a build in progress) and wait for it.
pub fn stop(col: &Collection) {
    {
        let mut f = col.optimizer.shared.flags.lock();
        f.stop = true;
    }
    col.optimizer.shared.cancel.store(true, Ordering::Relaxed);
    col.optimizer.shared.cv.notify_all();
    let handle = col.optimizer.thread.lock().take();
    if let Some(h) = handle {
        if h.thread().id() != thread::current().id() {
            let _ = h.join();
        }
    }
}

/// Too many deleted rows: rebuild the segment without them.
fn needs_vacuum(s: &Source) -> bool {
    s.deleted.count_ones() as f64 > VACUUM_FRACTION * s.rows() as f64
}

/// What the background thread does when it wakes.
fn background_step(col: &Collection) -> Result<()> {
    let stop = Stop {
        col,
        cancel: &NEVER,
        report: SILENT,
    };
    if col.expiry_due() {
        col.expire()?;
    }
    col.archive_if_due()?;
    if col.log_bytes() > col.options.checkpoint_log_bytes {
        col.optimizer.set_status(Some("sealing".into()));
        seal(col)?;
    }
    match next_work(col) {
        Work::Index { .. } => {
            col.optimizer.set_status(Some("indexing".into()));
            index_unindexed(col, &stop)
        }
        Work::Vacuum(i) => {
            col.optimizer.set_status(Some("merging".into()));
            merge::merge(col, &[i], &stop)
        }
        Work::Merge(a, b) => {
            col.optimizer.set_status(Some("merging".into()));
            merge::merge(col, &[a, b], &stop)
        }
        Work::Wait(_) => Ok(()),
    }
}

/// What the background optimizer does next, once the log is sealed when due.
pub(crate) enum Work {
    /// Index this many unindexed points.
    Index { points: usize },
    /// Rebuild source i without its deleted rows.
    Vacuum(usize),
    /// Merge the two smallest indexed sources.
    Merge(usize, usize),
    /// Nothing now, and why.
    Wait(String),
}

impl Work {
    /// How `stats` says it.
    pub(crate) fn describe(&self, col: &Collection) -> String {
        let st = col.state.read();
        let label = |i: usize| st.source_label(i as u32);
        match self {
            Work::Index { points } => format!("index {points} unindexed points"),
            Work::Vacuum(i) => format!("vacuum {} (over 20% of its rows deleted)", label(*i)),
            Work::Merge(a, b) => format!("merge {} and {}", label(*a), label(*b)),
            Work::Wait(why) => why.clone(),
        }
    }
}

/// The background optimizer's decision (see the module doc), from the collection's state.
pub(crate) fn next_work(col: &Collection) -> Work {
    let cfg = col.config.optimizer;
    let now = col.opened.elapsed().as_millis() as u64;
    let idle = now.saturating_sub(col.last_write_ms.load(Ordering::Relaxed)) >= cfg.idle_ms;
    let (unindexed, vacuum, indexed_segments) = {
        let st = col.state.read();
        let unindexed: usize = st.mem.len()
            + st.sources
                .iter()
                .filter(|s| !s.has_graph())
                .map(Source::live)
                .sum::<usize>();
        let vacuum = st
            .sources
            .iter()
            .position(|s| s.has_graph() && needs_vacuum(s));
        let indexed: Vec<(usize, usize)> = st
            .sources
            .iter()
            .enumerate()
            .filter(|(_, s)| s.has_graph())
            .map(|(i, s)| (s.live(), i))
            .collect();
        (unindexed, vacuum, indexed)
    };
    let threshold = cfg
        .indexing_threshold
        .max(col.config.hnsw.full_scan_threshold);
    if unindexed >= threshold && (idle || unindexed >= 10 * threshold) {
        return Work::Index { points: unindexed };
    }
    if !idle {
        return Work::Wait(format!(
            "waits until writes pause for {} ms (the last was {} ms ago)",
            cfg.idle_ms,
            now.saturating_sub(col.last_write_ms.load(Ordering::Relaxed))
        ));
    }
    if let Some(i) = vacuum {
        return Work::Vacuum(i);
    }
    if indexed_segments.len() > MAX_INDEXED_SEGMENTS {
        let mut by_size = indexed_segments;
        by_size.sort_unstable();
        let (a, b) = (by_size[0], by_size[1]);
        if a.0 + b.0 <= cfg.max_segment_points {
            return Work::Merge(a.1, b.1);
        }
    }
    if unindexed > 0 {
        return Work::Wait(format!(
            "{unindexed} unindexed points, fewer than the indexing threshold ({threshold}): they are scanned exactly"
        ));
    }
    Work::Wait("nothing to do".into())
}

/// An indexed segment absorbs new points only if it holds at most this many times as many:
/// absorbing rewrites it, so a trickle of points must not rewrite a large segment each time.
const ABSORB_FACTOR: usize = 8;

/// Seal the appendable rows, then index every unindexed segment, into the largest indexed
/// segment that has room for them (`max_segment_points`) and is at most `ABSORB_FACTOR` times
/// their number. A long ingest so fills one segment after another: its points are inserted
/// into a graph once, and `optimize()` finds little left to merge (before, each piece became a
/// segment of its own once the first was large, and the final merge inserted most points again).
fn index_unindexed(col: &Collection, stop: &Stop<'_>) -> Result<()> {
    seal(col)?;
    let max = col.config.optimizer.max_segment_points;
    let inputs: Vec<usize> = {
        let st = col.state.read();
        let mut unindexed: Vec<(usize, usize)> = st
            .sources
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.has_graph() && s.segment().is_some())
            .map(|(i, s)| (s.live(), i))
            .collect();
        unindexed.sort_unstable();
        let mut inputs = Vec::new();
        let mut total = 0;
        for (live, i) in unindexed {
            if total + live > max && !inputs.is_empty() {
                break;
            }
            total += live;
            inputs.push(i);
        }
        let target = st
            .sources
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.has_graph() && s.live() + total <= max && s.live() <= ABSORB_FACTOR * total
            })
            .max_by_key(|(_, s)| s.live());
        if let Some((i, _)) = target {
            inputs.push(i);
        }
        inputs
    };
    if inputs.is_empty() {
        return Ok(());
    }
    merge::merge(col, &inputs, stop)
}

/// Seal, then merge all segments into as few indexed ones as `max_segment_points` allows.
/// `cancel` stops it between merges or inside one (what is merged by then stays merged).
pub fn optimize_all(col: &Collection, cancel: &Cancel, report: &dyn Report) -> Result<()> {
    rebuild(col, cancel, report, false)
}

/// `optimize_all`, but every segment is rewritten with its graphs and payload indexes built
/// anew from its rows (`ferrovec reindex`).
pub fn reindex_all(col: &Collection, cancel: &Cancel) -> Result<()> {
    rebuild(col, cancel, SILENT, true)
}

fn rebuild(col: &Collection, cancel: &Cancel, report: &dyn Report, fresh: bool) -> Result<()> {
    let stop = Stop {
        col,
        cancel,
        report,
    };
    if col.dir.is_none() {
        return Ok(());
    }
    col.optimizer.set_status(Some("sealing".into()));
    seal(col)?;
    let max = col.config.optimizer.max_segment_points;
    let threshold = col.config.hnsw.full_scan_threshold;
    let groups: Vec<Vec<usize>> = {
        let st = col.state.read();
        let mut by_size: Vec<(usize, usize)> = st
            .sources
            .iter()
            .enumerate()
            .map(|(i, s)| (s.live(), i))
            .collect();
        by_size.sort_unstable_by(|a, b| b.cmp(a));
        let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
        for (live, i) in by_size {
            match groups.iter_mut().find(|g| g.0 + live <= max) {
                Some(g) => {
                    g.0 += live;
                    g.1.push(i);
                }
                None => groups.push((live, vec![i])),
            }
        }
        groups
            .into_iter()
            .filter(|(live, members)| {
                // A lone segment is rewritten only if it needs a graph or a vacuum; otherwise
                // a merge would copy it unchanged (its deletions are already in its bitmap).
                fresh || members.len() > 1 || {
                    let s = &st.sources[members[0]];
                    (*live >= threshold && !s.has_graph()) || needs_vacuum(s)
                }
            })
            .map(|(_, m)| m)
            .collect()
    };
    col.optimizer.set_status(Some("merging".into()));
    let planned: usize = {
        let st = col.state.read();
        groups.iter().flatten().map(|&i| st.sources[i].live()).sum()
    };
    let _running = col
        .optimizer
        .progress
        .begin((planned * col.config.vectors.len()) as u64);
    // Each merge removes its inputs and appends the new segment at the end: shift the indices
    // of the groups still to merge past the removed ones.
    let mut groups = groups;
    while let Some(group) = groups.pop() {
        stop.check()?;
        merge::merge_as(col, &group, &stop, fresh)?;
        for g in &mut groups {
            for i in g.iter_mut() {
                *i -= group.iter().filter(|&&r| r < *i).count();
            }
        }
    }
    Ok(())
}
