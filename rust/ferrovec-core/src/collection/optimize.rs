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
//! All of these hold `Collection::structure`, so they never overlap.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::manifest::{GraphMeta, Manifest, PayloadIndexDef, SegmentMeta};
use super::state::{MemRows, Source, SourceKind};
use super::{Collection, OPEN, SEGMENTS_DIR};
use crate::error::{Error, Result};
use crate::filter::index::FieldIndex;
use crate::format::FileKind;
use crate::index::hnsw::{self, Graph, Rows};
use crate::index::quant;
use crate::payload::Path as KeyPath;
use crate::segment::{self, Bitmap, GraphData, Segment, SegmentData};

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

    fn set_status(&self, s: Option<String>) {
        self.shared.flags.lock().status = s;
    }

    fn cancelled(&self) -> bool {
        self.shared.cancel.load(Ordering::Relaxed)
    }
}

fn cancelled_error() -> Error {
    Error::Closed("optimization cancelled: the collection is closing".into())
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
                Some(_lease) if full => optimize_all(&col),
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
    if col.expiry_due() {
        col.expire()?;
    }
    col.archive_if_due()?;
    if col.log_bytes() > col.options.checkpoint_log_bytes {
        col.optimizer.set_status(Some("sealing".into()));
        seal(col)?;
    }
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
        col.optimizer.set_status(Some("indexing".into()));
        return index_unindexed(col);
    }
    if !idle {
        return Ok(());
    }
    if let Some(i) = vacuum {
        col.optimizer.set_status(Some("merging".into()));
        return merge(col, &[i]);
    }
    if indexed_segments.len() > MAX_INDEXED_SEGMENTS {
        let mut by_size = indexed_segments;
        by_size.sort_unstable();
        let (a, b) = (by_size[0], by_size[1]);
        if a.0 + b.0 <= cfg.max_segment_points {
            col.optimizer.set_status(Some("merging".into()));
            return merge(col, &[a.1, b.1]);
        }
    }
    Ok(())
}

/// Seal the appendable rows, then index every unindexed segment (with the largest indexed
/// segment, when that one is not much larger than what it would absorb).
fn index_unindexed(col: &Collection) -> Result<()> {
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
        let largest = st
            .sources
            .iter()
            .enumerate()
            .filter(|(_, s)| s.has_graph())
            .max_by_key(|(_, s)| s.live());
        if let Some((i, s)) = largest {
            if s.live() <= 2 * total && s.live() + total <= max {
                inputs.push(i);
            }
        }
        inputs
    };
    if inputs.is_empty() {
        return Ok(());
    }
    merge(col, &inputs)
}

/// Seal, then merge all segments into as few indexed ones as `max_segment_points` allows.
pub fn optimize_all(col: &Collection) -> Result<()> {
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
                members.len() > 1 || {
                    let s = &st.sources[members[0]];
                    (*live >= threshold && !s.has_graph()) || needs_vacuum(s)
                }
            })
            .map(|(_, m)| m)
            .collect()
    };
    col.optimizer.set_status(Some("merging".into()));
    // Each merge removes its inputs and appends the new segment at the end: shift the indices
    // of the groups still to merge past the removed ones.
    let mut groups = groups;
    while let Some(group) = groups.pop() {
        merge(col, &group)?;
        for g in &mut groups {
            for i in g.iter_mut() {
                *i -= group.iter().filter(|&&r| r < *i).count();
            }
        }
    }
    Ok(())
}

/// Checkpoint: turn the appendable rows into a sealed segment (no graph) and trim the log.
/// The caller holds `structure` and the lease.
pub fn seal(col: &Collection) -> Result<()> {
    let (Some(dir), Some(wal)) = (&col.dir, &col.wal) else {
        return Ok(());
    };
    let seg_dir = dir.join(SEGMENTS_DIR);
    finish_failed_seal(col, &seg_dir)?;

    // Freeze, caught up with every process's records, the log's write lock held: the rows
    // frozen are exactly the records up to `seq`, and the log goes on in a new file.
    let (frozen, seq, idx, id) = {
        let mut g = col.begin_write()?;
        let m = &mut *g.manifest;
        let mut st = col.state.write();
        let seq = wal.last_seq();
        if st.mem.is_empty() {
            drop(st);
            if seq > m.checkpoint_seq || col.state.read().sources.iter().any(|s| s.dirty) {
                install(col, m, seq, None)?;
                wal.rotate()?;
                drop(g);
                col.collect_garbage()?;
            }
            return Ok(());
        }
        wal.rotate()?;
        let id = m.take_segment_id();
        let rows = Arc::new(std::mem::take(&mut st.mem));
        *col.frozen_at.lock() = Some(seq);
        let n = rows.len();
        st.sources.push(Source {
            kind: SourceKind::Frozen(rows.clone()),
            deleted: Bitmap::new(n),
            dirty: false,
        });
        (rows, seq, st.sources.len() - 1, id)
    };

    // Write, with no lock held.
    let seg = write_frozen(col, &seg_dir, id, &frozen)?;

    // Switch.
    let mut m = col.writer.lock();
    install(col, &mut m, seq, Some((idx, seg)))?;
    *col.frozen_at.lock() = None;
    drop(m);
    col.collect_garbage()
}

/// A seal that failed after its freeze (a write, fsync or rename error) left rows frozen in
/// memory, in no segment yet: write and install them now, as of the log position they were
/// frozen at, before anything else is checkpointed; a later checkpoint would otherwise tell
/// replay to skip their records. (If another process checkpointed meanwhile, this process's
/// view was rebuilt from its manifest and holds no frozen rows.)
fn finish_failed_seal(col: &Collection, seg_dir: &Path) -> Result<()> {
    let Some(seq) = *col.frozen_at.lock() else {
        return Ok(());
    };
    let rows = col.state.read().sources.iter().find_map(|s| match &s.kind {
        SourceKind::Frozen(rows) => Some(rows.clone()),
        SourceKind::Sealed(_) => None,
    });
    let Some(rows) = rows else {
        *col.frozen_at.lock() = None;
        return Ok(());
    };
    log::warn!(
        "collection {}: finishing a checkpoint that failed earlier ({} rows)",
        col.name,
        rows.len()
    );
    let id = col.writer.lock().take_segment_id();
    let seg = write_frozen(col, seg_dir, id, &rows)?;
    let mut m = col.writer.lock();
    let idx = col
        .state
        .read()
        .sources
        .iter()
        .position(|s| matches!(&s.kind, SourceKind::Frozen(r) if Arc::ptr_eq(r, &rows)));
    if let Some(idx) = idx {
        install(col, &mut m, seq, Some((idx, seg)))?;
    }
    *col.frozen_at.lock() = None;
    Ok(())
}

fn write_frozen(col: &Collection, seg_dir: &Path, id: u64, rows: &MemRows) -> Result<Arc<Segment>> {
    let payloads: Vec<Option<&[u8]>> = rows.payloads.iter().map(|p| p.as_deref()).collect();
    segment::write_segment(
        col.fs.as_ref(),
        seg_dir,
        id,
        col.config.width() as u32,
        &SegmentData {
            ids: &rows.ids,
            vectors: &rows.vectors,
            payloads: &payloads,
        },
        &[],
    )?;
    let spaces = col.config.spaces();
    let absent = segment::absent_counts(&rows.vectors, &spaces);
    let seg = Segment::open(
        col.fs.clone(),
        seg_dir,
        id,
        rows.len(),
        &spaces,
        &[],
        &absent,
    )?;
    write_payload_indexes(col, seg_dir, &seg)?;
    col.fs.sync_dir(seg_dir)?;
    Ok(seg)
}

/// Build and write the new segment `seg`'s payload indexes, one per definition, and install
/// them in it. The caller holds `structure`, so the definitions cannot change meanwhile.
pub(super) fn write_payload_indexes(col: &Collection, seg_dir: &Path, seg: &Segment) -> Result<()> {
    let defs = col.writer.lock().payload_indexes.clone();
    for def in defs {
        let idx = build_index(&def, seg)?;
        write_index_file(col, seg_dir, seg.id, def.number, &idx)?;
        seg.add_index(def.number, Arc::new(idx));
    }
    Ok(())
}

pub(super) fn build_index(def: &PayloadIndexDef, seg: &Segment) -> Result<FieldIndex> {
    let path = KeyPath::parse(&def.key, "index key")?;
    FieldIndex::build(def.kind, &path, seg.rows, |r| seg.payload_map(r).map(Some))
}

pub(super) fn write_index_file(
    col: &Collection,
    seg_dir: &Path,
    seg_id: u64,
    number: u32,
    idx: &FieldIndex,
) -> Result<()> {
    let body = idx.encode()?;
    segment::write_file(
        col.fs.as_ref(),
        &seg_dir.join(segment::pidx_name(seg_id, number)),
        FileKind::PayloadIndex,
        u64::from(idx.rows),
        0,
        &[&body],
    )?;
    Ok(())
}

/// Write the deletion bitmaps that changed and a manifest with `checkpoint_seq = seq` in
/// which the frozen source `sealed.0` (if any) is the new segment `sealed.1`; then swap it in.
/// The caller holds the writer lock (so no deletion happens meanwhile).
fn install(
    col: &Collection,
    current: &mut Manifest,
    seq: u64,
    sealed: Option<(usize, Arc<Segment>)>,
) -> Result<()> {
    let Some(dir) = &col.dir else { return Ok(()) };
    let seg_dir = dir.join(SEGMENTS_DIR);
    let mut next = col.next_manifest(current);
    next.checkpoint_seq = seq;
    {
        let st = col.state.read();
        // Write a source's bitmap as of this generation; returns the file's name.
        let write_bitmap = |seg: &Segment, deleted: &Bitmap| -> Result<String> {
            segment::write_deleted(
                col.fs.as_ref(),
                &seg_dir,
                seg.id,
                next.generation,
                seg.rows,
                deleted,
            )?;
            Ok(segment::del_name(seg.id, next.generation))
        };
        let mut written = Vec::new();
        for (i, s) in st.sources.iter().enumerate() {
            match (&sealed, s.segment()) {
                (Some((idx, seg)), _) if i == *idx => {
                    let deleted = (s.deleted.count_ones() > 0)
                        .then(|| write_bitmap(seg, &s.deleted))
                        .transpose()?;
                    written.push(SegmentMeta {
                        id: seg.id,
                        rows: seg.rows as u64,
                        deleted,
                        graphs: Vec::new(),
                        indexes: seg.index_numbers(),
                        absent: seg.absent_counts(),
                    });
                }
                (_, Some(seg)) if s.dirty => {
                    let name = write_bitmap(seg, &s.deleted)?;
                    if let Some(meta) = next.segments.iter_mut().find(|m| m.id == seg.id) {
                        meta.deleted = Some(name);
                    }
                }
                _ => {}
            }
        }
        next.segments.extend(written);
    }
    col.fs.sync_dir(&seg_dir)?;
    col.publish(&next)?;
    {
        let mut st = col.state.write();
        if let Some((idx, seg)) = sealed {
            st.sources[idx].kind = SourceKind::Sealed(seg);
        }
        for s in &mut st.sources {
            s.dirty = false;
        }
    }
    *current = next;
    Ok(())
}

/// Merge the sealed segments at `inputs` (source indices) into one new segment, indexed if it
/// is at least `full_scan_threshold` rows, then remove the inputs' files once no process uses
/// them (not before this process has let go of them too). The caller holds `structure`.
fn merge(col: &Collection, inputs: &[usize]) -> Result<()> {
    build_and_switch(col, inputs)?;
    col.collect_garbage()
}

fn build_and_switch(col: &Collection, inputs: &[usize]) -> Result<()> {
    let Some(dir) = &col.dir else { return Ok(()) };
    let seg_dir = dir.join(SEGMENTS_DIR);
    let spaces = col.config.spaces();
    let hcfg = col.config.hnsw;

    // Snapshot the inputs and their deletions now; later deletions are carried over at the end.
    let snap: Vec<(Arc<Segment>, Bitmap)> = {
        let st = col.state.read();
        inputs
            .iter()
            .filter_map(|&i| {
                st.sources[i]
                    .segment()
                    .map(|s| (s.clone(), st.sources[i].deleted.clone()))
            })
            .collect()
    };
    if snap.len() != inputs.len() {
        return Err(Error::invalid(
            "internal: merge inputs must be sealed segments",
        ));
    }

    // Keep the largest clean graph and insert the rest into it; otherwise build afresh.
    let base = snap
        .iter()
        .enumerate()
        .filter(|(_, (s, d))| {
            s.has_graph() && (d.count_ones() as f64) <= VACUUM_FRACTION * s.rows as f64
        })
        .max_by_key(|(_, (s, _))| s.rows)
        .map(|(i, _)| i);
    // The base segment's graph of each vector (all of them, or none).
    let base_graphs: Option<Vec<Arc<Graph>>> = match base {
        Some(b) => spaces
            .iter()
            .map(|sp| snap[b].0.graph(sp.index))
            .collect::<Result<Option<Vec<_>>>>()?,
        None => None,
    };
    let mut order: Vec<usize> = (0..snap.len()).collect();
    if let Some(b) = base {
        order.retain(|&i| i != b);
        order.insert(0, b);
    }

    let started = std::time::Instant::now();
    let mut ids = Vec::new();
    let mut vectors = Vec::new();
    let mut payloads: Vec<Option<&[u8]>> = Vec::new();
    // mapping[k][old row] = new row (u32::MAX: not copied, it was deleted).
    let mut mapping: Vec<Vec<u32>> = vec![Vec::new(); snap.len()];
    for &k in &order {
        let (seg, deleted) = &snap[k];
        let keep_all = Some(k) == base && base_graphs.is_some();
        let mut map = vec![u32::MAX; seg.rows];
        for (row, slot) in map.iter_mut().enumerate() {
            if !keep_all && deleted.get(row) {
                continue;
            }
            *slot = ids.len() as u32;
            ids.push(seg.id(row)?);
            vectors.extend_from_slice(seg.vector(row));
            payloads.push(seg.payload(row)?);
        }
        mapping[k] = map;
        if col.optimizer.cancelled() {
            return Err(cancelled_error());
        }
    }
    let rows_total = ids.len();
    let gathered = started.elapsed();
    log::info!(
        "collection {}: merging {} segment(s) into one of {rows_total} points{}",
        col.name,
        snap.len(),
        if base_graphs.is_some() {
            ", extending the largest graph"
        } else {
            ""
        }
    );
    let id = col.writer.lock().take_segment_id();
    let stop = || col.optimizer.cancelled();
    let absent = segment::absent_counts(&vectors, &spaces);
    // One graph per vector, or none.
    let mut graphs = Vec::new();
    let mut graph_metas = Vec::new();
    if rows_total >= hcfg.full_scan_threshold {
        for &sp in &spaces {
            let build_started = std::time::Instant::now();
            // Rows lacking this vector join the graph as zeros (never accepted as results), so
            // a graph has a node per row; otherwise the rows are read in place.
            let finite = match absent.get(sp.index) {
                Some(&n) if n > 0 => Some(segment::space_values(&vectors, sp)),
                _ => None,
            };
            let rows = match &finite {
                Some(values) => Rows::dense(values, sp.dim),
                None => Rows::of(&vectors, sp),
            };
            let metric = sp.distance;
            let g = match &base_graphs {
                Some(bg) => hnsw::extend(rows, metric, &bg[sp.index], id, &stop),
                None => hnsw::build(rows, metric, &hcfg, id, &stop),
            };
            if col.optimizer.cancelled() {
                return Err(cancelled_error());
            }
            let built = build_started.elapsed();
            let recall = g.self_check(rows, metric, hcfg.ef_construct, SELF_CHECK_SAMPLES, id);
            log::info!(
                "collection {}: graph{} over {rows_total} points built in {:.1} s (rows gathered in {:.1} s); \
                 self-check recall@10 {recall:.3} at ef {} ({:.1} s)",
                col.name,
                match col.config.vectors[sp.index].name.as_str() {
                    "" => String::new(),
                    name => format!(" of vector {name:?}"),
                },
                built.as_secs_f64(),
                gathered.as_secs_f64(),
                hcfg.ef_construct,
                (build_started.elapsed() - built).as_secs_f64()
            );
            graph_metas.push(GraphMeta {
                m: hcfg.m as u32,
                ef_construct: hcfg.ef_construct as u32,
                self_check_recall: recall,
                codes: quant::applies(metric),
            });
            graphs.push(g);
            drop(finite);
        }
    }
    let graph_data: Vec<GraphData<'_>> = spaces
        .iter()
        .zip(&graphs)
        .zip(&graph_metas)
        .map(|((&space, graph), meta)| GraphData {
            space,
            graph,
            codes: meta.codes,
        })
        .collect();
    segment::write_segment(
        col.fs.as_ref(),
        &seg_dir,
        id,
        col.config.width() as u32,
        &SegmentData {
            ids: &ids,
            vectors: &vectors,
            payloads: &payloads,
        },
        &graph_data,
    )?;
    drop(graph_data);
    drop(graphs);
    drop(payloads);
    drop(vectors);
    col.fs.sync_dir(&seg_dir)?;
    log::info!(
        "collection {}: merged segment written after {:.1} s",
        col.name,
        started.elapsed().as_secs_f64()
    );
    let codes: Vec<bool> = graph_metas.iter().map(|g| g.codes).collect();
    let seg = Segment::open(
        col.fs.clone(),
        &seg_dir,
        id,
        rows_total,
        &spaces,
        &codes,
        &absent,
    )?;
    write_payload_indexes(col, &seg_dir, &seg)?;
    col.fs.sync_dir(&seg_dir)?;

    // Switch: carry over deletions made since the snapshot, then swap.
    let mut m = col.writer.lock();
    let mut deleted = Bitmap::new(rows_total);
    {
        let st = col.state.read();
        for (k, &i) in inputs.iter().enumerate() {
            let now = &st.sources[i].deleted;
            for (row, &new_row) in mapping[k].iter().enumerate() {
                if new_row != u32::MAX && now.get(row) {
                    deleted.set(new_row as usize);
                }
            }
        }
    }
    let mut next = col.next_manifest(&m);
    let input_ids: Vec<u64> = snap.iter().map(|(s, _)| s.id).collect();
    next.segments.retain(|s| !input_ids.contains(&s.id));
    let deleted_name = if deleted.count_ones() > 0 {
        segment::write_deleted(
            col.fs.as_ref(),
            &seg_dir,
            id,
            next.generation,
            rows_total,
            &deleted,
        )?;
        col.fs.sync_dir(&seg_dir)?;
        Some(segment::del_name(id, next.generation))
    } else {
        None
    };
    next.segments.push(SegmentMeta {
        id,
        rows: rows_total as u64,
        deleted: deleted_name,
        graphs: graph_metas,
        indexes: seg.index_numbers(),
        absent,
    });
    col.publish(&next)?;
    {
        let mut st = col.state.write();
        let mut remove: Vec<usize> = inputs.to_vec();
        remove.sort_unstable();
        for &i in remove.iter().rev() {
            st.sources.remove(i);
        }
        st.sources.push(Source {
            kind: SourceKind::Sealed(seg),
            deleted,
            dirty: false,
        });
    }
    *m = next;
    Ok(())
}
