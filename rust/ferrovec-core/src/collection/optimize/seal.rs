//! Checkpoints: the appendable rows written as a sealed segment (no graph), the log trimmed;
//! and the payload index files of a new segment.

use std::path::Path;
use std::sync::Arc;

use crate::collection::manifest::{Manifest, PayloadIndexDef, SegmentMeta};
use crate::collection::state::{MemRows, Source, SourceKind};
use crate::collection::{Collection, SEGMENTS_DIR};
use crate::error::Result;
use crate::filter::index::FieldIndex;
use crate::format::FileKind;
use crate::observe::metrics::RunKind;
use crate::payload::Path as KeyPath;
use crate::point::{SparseRef, SparseVector};
use crate::segment::{self, Bitmap, Segment, SegmentData, Shape};

/// Checkpoint: turn the appendable rows into a sealed segment (no graph) and trim the log.
/// The caller holds `structure` and the lease.
pub fn seal(col: &Collection) -> Result<()> {
    let started = std::time::Instant::now();
    if let Some(sealed) = seal_rows(col)? {
        log::info!(
            "collection {}: checkpoint of {sealed} points in {:.1} ms",
            col.name,
            started.elapsed().as_secs_f64() * 1e3
        );
        col.metrics
            .record_run(RunKind::Seal, started.elapsed(), sealed);
    }
    Ok(())
}

/// `seal`: the rows it wrote into a segment (`None`: nothing to seal).
fn seal_rows(col: &Collection) -> Result<Option<usize>> {
    let (Some(dir), Some(wal)) = (&col.dir, &col.wal) else {
        return Ok(None);
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
            return Ok(None);
        }
        wal.rotate()?;
        let id = m.take_segment_id();
        let fresh = MemRows::new(st.sparse_stats.len());
        let rows = Arc::new(std::mem::replace(&mut st.mem, fresh));
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
    col.collect_garbage()?;
    Ok(Some(frozen.len()))
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
    let sparse: Vec<Vec<Option<SparseRef<'_>>>> = rows
        .sparse
        .iter()
        .map(|column| {
            column
                .iter()
                .map(|v| v.as_ref().map(SparseVector::as_ref))
                .collect()
        })
        .collect();
    segment::write_segment(
        col.fs.as_ref(),
        seg_dir,
        id,
        col.config.width() as u32,
        &SegmentData {
            ids: &rows.ids,
            vectors: Some(&rows.vectors),
            payloads: &payloads,
            sparse: &sparse,
        },
        &[],
    )?;
    let spaces = col.config.spaces();
    let absent = segment::absent_counts(&rows.vectors, &spaces);
    let shape = Shape {
        spaces: &spaces,
        codes: &[],
        absent: &absent,
        sparse: col.config.sparse.len(),
        rows_from_disk: col
            .config
            .rows_from_disk_bytes(col.options.rows_from_disk_bytes),
    };
    let seg = Segment::open(col.fs.clone(), seg_dir, id, rows.len(), &shape)?;
    write_payload_indexes(col, seg_dir, &seg)?;
    col.fs.sync_dir(seg_dir)?;
    Ok(seg)
}

/// Build and write the new segment `seg`'s payload indexes, one per definition, and install
/// them in it. The caller holds `structure`, so the definitions cannot change meanwhile.
pub(crate) fn write_payload_indexes(col: &Collection, seg_dir: &Path, seg: &Segment) -> Result<()> {
    let defs = col.writer.lock().payload_indexes.clone();
    for def in defs {
        let idx = build_index(&def, seg)?;
        write_index_file(col, seg_dir, seg.id, def.number, &idx)?;
        seg.add_index(def.number, Arc::new(idx));
    }
    Ok(())
}

pub(crate) fn build_index(def: &PayloadIndexDef, seg: &Segment) -> Result<FieldIndex> {
    let path = KeyPath::parse(&def.key, "index key")?;
    FieldIndex::build(def.kind, &path, seg.rows, |r| seg.payload_map(r).map(Some))
}

pub(crate) fn write_index_file(
    col: &Collection,
    seg_dir: &Path,
    seg_id: u64,
    number: u32,
    idx: &FieldIndex,
) -> Result<()> {
    let body = idx.encode()?;
    crate::format::write_file(
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
