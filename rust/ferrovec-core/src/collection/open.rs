//! Opening a collection: its files created, its segments mapped, its log replayed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::manifest::{self, Manifest};
use super::optimize::{self, Optimizer};
use super::state::{Source, SourceKind, State};
use super::{Collection, OPEN, SEGMENTS_DIR, WAL_DIR};
use crate::config::{CollectionConfig, StorageOptions};
use crate::error::{Error, Result};
use crate::io::FileSystem;
use crate::segment::{self, Bitmap, Segment, Shape};
use crate::shared::Shared;
use crate::wal::record::Op;
use crate::wal::Wal;

impl Collection {
    #[allow(clippy::too_many_arguments)]
    fn assemble(
        name: &str,
        config: CollectionConfig,
        dir: Option<PathBuf>,
        fs: Arc<dyn FileSystem>,
        wal: Option<Arc<Wal>>,
        options: StorageOptions,
        manifest: Manifest,
        state: State,
        shared: Option<Shared>,
    ) -> Arc<Self> {
        let generation = AtomicU64::new(manifest.generation);
        let col = Arc::new(Collection {
            name: name.to_string(),
            config,
            dir,
            fs,
            wal,
            options,
            writer: Mutex::new(manifest),
            state: RwLock::new(state),
            structure: Mutex::new(()),
            status: AtomicU8::new(OPEN),
            optimizer: Optimizer::default(),
            last_write_ms: AtomicU64::new(0),
            opened: std::time::Instant::now(),
            clock: Mutex::new(None),
            next_expiry_ms: AtomicU64::new(0),
            archive_every_ms: AtomicU64::new(0),
            last_archive_ms: AtomicU64::new(0),
            shared,
            generation,
            garbage_pending: AtomicBool::new(true),
            pid: std::process::id(),
            frozen_at: Mutex::new(None),
            metrics: Default::default(),
            budget: std::sync::OnceLock::new(),
        });
        if col.dir.is_some() && options.background_optimizer {
            optimize::start(&col);
        }
        col
    }

    /// An in-memory collection: nothing is written, and search is always exact.
    pub fn in_memory(name: &str, config: CollectionConfig, options: StorageOptions) -> Arc<Self> {
        let manifest = Manifest::new(config.clone());
        let (width, sparse_fields) = (config.width(), config.sparse.len());
        Self::assemble(
            name,
            config,
            None,
            Arc::new(crate::io::OsFs),
            None,
            options,
            manifest,
            State::new(width, sparse_fields),
            None,
        )
    }

    /// Write the files of a new, empty collection into `dir` (which must not exist yet).
    pub fn create_files(fs: &dyn FileSystem, dir: &Path, config: &CollectionConfig) -> Result<()> {
        config.validate()?;
        fs.create_dir_all(&dir.join(SEGMENTS_DIR))?;
        fs.create_dir_all(&dir.join(WAL_DIR))?;
        crate::shared::create(dir)?;
        Manifest::new(config.clone()).write(fs, dir)
    }

    /// Open a collection directory: map its segments (nothing is read per point), then replay
    /// the log. Other processes may have it open too (see `sync`).
    pub fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        name: &str,
        options: StorageOptions,
    ) -> Result<Arc<Self>> {
        let shared = Shared::open(dir)?;
        // Pin before reading the manifest: no file is removed until this process has moved on
        // to a newer one (`collect_garbage`).
        shared.pin(0);
        let manifest = Manifest::read(fs.as_ref(), dir)?;
        let config = manifest.config.clone();
        let mut state = load_segments(
            &fs,
            dir,
            &manifest,
            &State::new(config.width(), config.sparse.len()),
            options.rows_from_disk_bytes,
        )?;
        let log_dir = dir.join(WAL_DIR);
        let (wal, stats) = Wal::open(
            fs.clone(),
            &log_dir,
            options.durability,
            options.wal_file_bytes,
            manifest.checkpoint_seq,
            |seq, op| apply_logged(&mut state, seq, op, &log_dir),
        )?;
        if stats.applied > 0 {
            log::info!("collection {name}: replayed {} log records", stats.applied);
        }
        log::debug!(
            "collection {name}: opened, {} segments, {} points",
            state.sources.len(),
            state.live
        );
        shared.pin(manifest.generation);
        let col = Self::assemble(
            name,
            config,
            Some(dir.to_path_buf()),
            fs,
            Some(wal),
            options,
            manifest,
            state,
            Some(shared),
        );
        if !options.read_only {
            // Cut a torn tail now rather than at the first write, and make the shared hint of
            // the log's end exact (it is not persisted: after a power loss it may be stale).
            drop(col.begin_write()?);
            // Remove what an interrupted optimization left, unless another process is
            // optimizing (it does so itself).
            drop(col.lease(false)?);
        }
        Ok(col)
    }
}

/// The sealed part of a collection's state as `manifest` describes it: its segments mapped
/// (those `reuse` has already are shared, with their loaded graphs and indexes) and their
/// deletion bitmaps read. `store_rows_from_disk` is the store's `rows_from_disk_bytes`, which
/// the collection's own setting overrides.
pub(super) fn load_segments(
    fs: &Arc<dyn FileSystem>,
    dir: &Path,
    manifest: &Manifest,
    reuse: &State,
    store_rows_from_disk: u64,
) -> Result<State> {
    let rows_from_disk = manifest.config.rows_from_disk_bytes(store_rows_from_disk);
    let seg_dir = dir.join(SEGMENTS_DIR);
    let spaces = manifest.config.spaces();
    let sparse_fields = manifest.config.sparse.len();
    let mut state = State::new(manifest.config.width(), sparse_fields);
    state.index_defs = manifest.payload_indexes.clone();
    for meta in &manifest.segments {
        let rows = usize::try_from(meta.rows)
            .map_err(|_| Error::corrupt(dir.join(manifest::MANIFEST), "row count too large"))?;
        let mapped =
            reuse.sources.iter().filter_map(Source::segment).find(|s| {
                s.id == meta.id && s.rows == rows && s.has_graph() != meta.graphs.is_empty()
            });
        let seg = match mapped {
            Some(seg) => {
                seg.keep_index_files(&meta.indexes);
                seg.clone()
            }
            None => {
                let codes: Vec<_> = meta.graphs.iter().map(|g| g.codes).collect();
                let shape = Shape {
                    spaces: &spaces,
                    codes: &codes,
                    absent: &meta.absent,
                    sparse: sparse_fields,
                    rows_from_disk,
                };
                let seg = Segment::open(fs.clone(), &seg_dir, meta.id, rows, &shape)?;
                seg.set_index_files(&meta.indexes);
                seg
            }
        };
        let deleted = match &meta.deleted {
            Some(name) => segment::read_deleted(fs.as_ref(), &seg_dir, name, rows)?,
            None => Bitmap::new(rows),
        };
        state.live += rows - deleted.count_ones();
        count_sparse(&mut state, &seg, &deleted)?;
        state.sources.push(Source {
            kind: SourceKind::Sealed(seg),
            deleted,
            dirty: false,
        });
    }
    Ok(state)
}

/// Add a sealed segment's live sparse vectors to the IDF statistics: its index's posting
/// counts, less what its deleted rows held.
fn count_sparse(state: &mut State, seg: &Segment, deleted: &Bitmap) -> Result<()> {
    for (k, stats) in state.sparse_stats.iter_mut().enumerate() {
        let Some(files) = seg.sparse(k) else { continue };
        for (d, n) in files.dims()? {
            *stats.df.entry(d).or_insert(0) += n;
        }
        let present = files.present();
        stats.points += present.count_ones() as u64;
        for row in (0..seg.rows).filter(|&r| deleted.get(r)) {
            if let Some(v) = files.get(row)? {
                stats.points -= 1;
                for d in v.indices {
                    if let Some(n) = stats.df.get_mut(d) {
                        *n = n.saturating_sub(1);
                    }
                }
            }
        }
        stats.df.retain(|_, n| *n > 0);
    }
    Ok(())
}

/// Apply a record read back from the log.
pub(super) fn apply_logged(st: &mut State, seq: u64, op: Op, log_dir: &Path) -> Result<()> {
    let dim = st.width;
    match op {
        Op::Upsert {
            ids,
            vectors,
            payloads,
        } => {
            if vectors.len() != ids.len() * dim * 4 || payloads.len() != ids.len() {
                return Err(Error::corrupt(
                    log_dir,
                    format!("log record {seq} has inconsistent lengths"),
                ));
            }
            let sparse = vec![vec![None; ids.len()]; st.sparse_stats.len()];
            apply_logged_upsert(st, &ids, &vectors, sparse, payloads)?;
        }
        Op::UpsertSparse {
            ids,
            vectors,
            sparse,
            payloads,
        } => {
            if vectors.len() != ids.len() * dim * 4
                || payloads.len() != ids.len()
                || sparse.len() != st.sparse_stats.len()
                || sparse.iter().any(|c| c.len() != ids.len())
            {
                return Err(Error::corrupt(
                    log_dir,
                    format!("log record {seq} has inconsistent lengths"),
                ));
            }
            apply_logged_upsert(st, &ids, &vectors, sparse, payloads)?;
        }
        Op::Delete { ids } => {
            let found = st.locate_all(&ids)?;
            st.apply_delete(&ids, &found);
        }
    }
    Ok(())
}

fn apply_logged_upsert(
    st: &mut State,
    ids: &[crate::point::PointId],
    vectors: &[u8],
    sparse: Vec<Vec<Option<crate::point::SparseVector>>>,
    payloads: Vec<Option<serde_bytes::ByteBuf>>,
) -> Result<()> {
    let vectors: Vec<f32> = bytemuck::pod_collect_to_vec(vectors);
    let payloads = payloads
        .into_iter()
        .map(|p| p.map(|b| b.into_vec().into_boxed_slice()))
        .collect();
    let found = st.locate_all(ids)?;
    st.apply_upsert(ids, &vectors, sparse, payloads, &found);
    Ok(())
}
