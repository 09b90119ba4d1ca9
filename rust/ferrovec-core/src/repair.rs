//! `ferrovec repair`: bring a damaged store back to a state that opens and verifies, keeping
//! everything intact, moving what is damaged aside (into `<store>/damaged/<time>/`), and
//! saying exactly what was lost. Never silently: a store with no damage is left untouched.
//!
//! Holding the store exclusively (no other process may have it open), for each collection:
//! - each sealed segment's files are checked whole. A damaged graph, int8 code file or payload
//!   index is derived data: it is moved aside, the manifest stops naming it, and it is built
//!   again from the segment's rows (the segment is re-indexed). A damaged file of the rows
//!   themselves (vectors, ids, payloads, sparse vectors, deletion bitmap) loses the segment: it
//!   is moved aside whole and the report counts its points (and names their ids if the id file
//!   is intact);
//! - the log after the checkpoint is salvaged (`wal::salvage_log`).
//!
//! Then, the store opened as usual, every collection whose files changed is optimized (which
//! rebuilds what was dropped) and verified.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::collection::{Manifest, SegmentMeta, SEGMENTS_DIR, WAL_DIR};
use crate::config::StorageOptions;
use crate::error::{Error, Result};
use crate::format::{FileKind, Header};
use crate::io::{FileSystem, LockOutcome, OsFs};
use crate::segment::{self, Bitmap, Segment, Shape};
use crate::shared::Shared;
use crate::store::{Store, COLLECTIONS, LOCK, MARKER};
use crate::wal::salvage_log;

/// What repair found and did in one collection.
#[derive(Debug, Default)]
pub struct CollectionRepair {
    pub name: String,
    /// Damage found, one line each.
    pub damage: Vec<String>,
    /// What was done.
    pub actions: Vec<String>,
    /// What was lost (writes, points), one line each.
    pub lost: Vec<String>,
    /// Log records after the checkpoint that were intact and kept.
    pub log_records: u64,
    /// Points of segments that were lost.
    pub lost_points: u64,
    /// Files moved aside, where they now are.
    pub kept_aside: Vec<PathBuf>,
    /// What still fails after the repair (the collection does not open or verify), if anything.
    pub still_failing: Option<String>,
}

/// The files of the segment `meta` names, with their kinds (`segment::files_of`).
fn segment_files(m: &Manifest, meta: &SegmentMeta) -> Vec<(FileKind, String)> {
    let codes: Vec<_> = meta.graphs.iter().map(|g| g.codes).collect();
    segment::files_of(
        meta.id,
        &codes,
        meta.deleted.as_deref(),
        m.config.sparse.len(),
        &meta.indexes,
    )
}

/// Whether a file of this kind can be built again from the segment's rows.
fn derived(kind: FileKind) -> bool {
    matches!(
        kind,
        FileKind::Graph | FileKind::Codes | FileKind::PayloadIndex
    )
}

/// Repair the store at `path` (see the module doc). Refused while another process has it open.
/// `cancel` stops the re-indexing at the end (the file surgery is done by then).
pub fn repair_store(path: &Path, cancel: &crate::cancel::Cancel) -> Result<Vec<CollectionRepair>> {
    let fs = OsFs;
    let lock_path = path.join(LOCK);
    if !fs.exists(&path.join(MARKER))? {
        return Err(Error::invalid(format!(
            "there is no ferrovec store at {}",
            path.display()
        )));
    }
    let stamp = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now())
        .format("%Y%m%dT%H%M%S%.6fZ")
        .to_string();
    let aside_root = path.join("damaged").join(&stamp);
    let mut out = Vec::new();
    {
        let _alone = match fs.try_lock(&lock_path, &std::process::id().to_string(), true)? {
            LockOutcome::Acquired(g) => g,
            LockOutcome::Held { holder } => return Err(Error::store_locked(path, holder)),
        };
        let cdir = path.join(COLLECTIONS);
        let mut names: Vec<String> = fs
            .list_dir(&cdir)?
            .into_iter()
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        for name in names {
            out.push(repair_files(
                &fs,
                &cdir.join(&name),
                &name,
                &aside_root.join(&name),
            )?);
        }
    }
    // Rebuild what was dropped, and prove the result, through the store as any process opens it.
    let changed: Vec<&mut CollectionRepair> =
        out.iter_mut().filter(|c| !c.actions.is_empty()).collect();
    if !changed.is_empty() {
        let store = Store::open(
            path,
            StorageOptions {
                background_optimizer: false,
                ..StorageOptions::default()
            },
        )?;
        for c in changed {
            // What still fails is reported with the rest, never hidden behind the first error.
            let proved = store.collection(&c.name).and_then(|col| {
                col.optimize(cancel)?;
                col.verify()?;
                col.count()
            });
            match proved {
                Ok(n) => c
                    .actions
                    .push(format!("re-indexed and verified: {n} points")),
                Err(e @ Error::Interrupted(_)) => return Err(e),
                Err(e) => c.still_failing = Some(e.to_string()),
            }
        }
        store.close()?;
    }
    Ok(out)
}

/// The file surgery on one collection, under the exclusive store lock.
fn repair_files(
    fs: &dyn FileSystem,
    dir: &Path,
    name: &str,
    aside: &Path,
) -> Result<CollectionRepair> {
    let mut r = CollectionRepair {
        name: name.to_string(),
        ..CollectionRepair::default()
    };
    let mut m = match Manifest::read(fs, dir) {
        Ok(m) => m,
        Err(e) => {
            // Nothing else can be trusted without it: say so and change nothing.
            r.damage.push(format!("manifest: {e}"));
            r.lost.push(
                "the manifest is damaged: restore this collection from a backup or snapshot".into(),
            );
            return Ok(r);
        }
    };
    let seg_dir = dir.join(SEGMENTS_DIR);
    let mut manifest_changed = false;
    let mut keep = Vec::with_capacity(m.segments.len());
    let segments = std::mem::take(&mut m.segments);
    for meta in segments {
        match repair_segment(fs, &seg_dir, aside, &m, meta, &mut r)? {
            (Some(meta), changed) => {
                manifest_changed |= changed;
                keep.push(meta);
            }
            (None, _) => manifest_changed = true,
        }
    }
    m.segments = keep;
    if manifest_changed {
        let hint = Shared::open(dir).map(|s| s.generation()).unwrap_or(0);
        m.generation = m.generation.max(hint) + 1;
        m.write(fs, dir)?;
    }
    let log = salvage_log(
        fs,
        &dir.join(WAL_DIR),
        m.checkpoint_seq,
        &aside.join(WAL_DIR),
    )?;
    r.log_records = log.records;
    r.damage.extend(log.damage);
    r.lost.extend(log.lost);
    r.actions.extend(log.actions);
    r.kept_aside.extend(log.kept_aside);
    Ok(r)
}

/// Check one segment's files: rebuildable ones that are damaged are moved aside and no longer
/// named; a damaged file of its rows loses the segment. Returns the segment as the manifest
/// should now name it (`None`: dropped) and whether that changed.
fn repair_segment(
    fs: &dyn FileSystem,
    seg_dir: &Path,
    aside: &Path,
    m: &Manifest,
    mut meta: SegmentMeta,
    r: &mut CollectionRepair,
) -> Result<(Option<SegmentMeta>, bool)> {
    let mut bad_primary = false;
    let mut bad_derived: Vec<(FileKind, String)> = Vec::new();
    for (kind, name) in segment_files(m, &meta) {
        let p = seg_dir.join(&name);
        if matches!(kind, FileKind::SparseVectors | FileKind::SparseIndex) && !fs.exists(&p)? {
            continue;
        }
        let verdict = fs
            .read(&p)
            .and_then(|bytes| Header::decode_whole(kind, &bytes, &p, true).map(|_| ()));
        if let Err(e) = verdict {
            r.damage.push(e.to_string());
            if derived(kind) {
                bad_derived.push((kind, name));
            } else {
                bad_primary = true;
            }
        }
    }
    if bad_primary {
        let deleted = deleted_rows(fs, seg_dir, &meta);
        let live = meta.rows - deleted.count_ones() as u64;
        r.lost_points += live;
        r.lost.push(format!(
            "segment {}: {live} points (a file of its rows is damaged){}",
            meta.id,
            lost_ids(seg_dir, m, &meta, &deleted)
        ));
        for (_, name) in segment_files(m, &meta) {
            move_aside(fs, &seg_dir.join(&name), aside, r)?;
        }
        r.actions
            .push(format!("dropped segment {} from the manifest", meta.id));
        return Ok((None, true));
    }
    if !bad_derived.is_empty() {
        let graphs = |k: FileKind| matches!(k, FileKind::Graph | FileKind::Codes);
        // A segment is indexed for all its vectors or none: its other graphs go too.
        let drop_graphs = bad_derived.iter().any(|f| graphs(f.0));
        for (kind, name) in segment_files(m, &meta) {
            let bad = bad_derived.iter().any(|f| f.1 == name);
            if bad || (drop_graphs && graphs(kind)) {
                move_aside(fs, &seg_dir.join(&name), aside, r)?;
            }
            if bad && kind == FileKind::PayloadIndex {
                meta.indexes
                    .retain(|&n| segment::pidx_name(meta.id, n) != name);
            }
        }
        if drop_graphs {
            meta.graphs.clear();
        }
        r.actions.push(format!(
            "segment {}: {} rebuilt from its rows",
            meta.id,
            bad_derived
                .iter()
                .map(|f| f.1.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let changed = !bad_derived.is_empty();
    Ok((Some(meta), changed))
}

/// The deletion bitmap of a segment (all clear if it has none or it cannot be read).
fn deleted_rows(fs: &dyn FileSystem, seg_dir: &Path, meta: &SegmentMeta) -> Bitmap {
    let rows = meta.rows as usize;
    meta.deleted
        .as_deref()
        .and_then(|d| segment::read_deleted(fs, seg_dir, d, rows).ok())
        .unwrap_or_else(|| Bitmap::new(rows))
}

/// ", ids 1, 2, 3 ..." of a lost segment's live points, if its id file can be read.
fn lost_ids(seg_dir: &Path, m: &Manifest, meta: &SegmentMeta, deleted: &Bitmap) -> String {
    let spaces = m.config.spaces();
    let shape = Shape {
        spaces: &spaces,
        codes: &[],
        absent: &meta.absent,
        sparse: m.config.sparse.len(),
        rows_from_disk: segment::PREAD_MIN_BYTES,
    };
    let fs: Arc<dyn FileSystem> = Arc::new(OsFs);
    let Ok(seg) = Segment::open(fs, seg_dir, meta.id, meta.rows as usize, &shape) else {
        return String::new();
    };
    let ids: Vec<String> = (0..meta.rows as usize)
        .filter(|&r| !deleted.get(r))
        .filter_map(|r| seg.id(r).ok())
        .map(|id| id.to_string())
        .collect();
    if ids.is_empty() {
        return String::new();
    }
    let more = if ids.len() > 20 {
        format!(" and {} more", ids.len() - 20)
    } else {
        String::new()
    };
    format!(", ids {}{more}", ids[..ids.len().min(20)].join(", "))
}

fn move_aside(
    fs: &dyn FileSystem,
    from: &Path,
    aside: &Path,
    r: &mut CollectionRepair,
) -> Result<()> {
    if !fs.exists(from)? {
        return Ok(());
    }
    fs.create_dir_all(aside)?;
    let to = aside.join(from.file_name().unwrap_or_default());
    fs.rename(from, &to)?;
    fs.sync_dir(aside)?;
    r.kept_aside.push(to);
    Ok(())
}
