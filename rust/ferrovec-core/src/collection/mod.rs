//! A collection: sealed, memory-mapped segments plus recent writes held in memory and in the log.
//!
//! Write path: validate the whole batch (nothing changes if any row is bad) → look up its ids →
//! append one log record → apply it in memory → wait for the log's durability promise. Writers
//! are serialised by `writer`; readers only take `state` for reading.
//!
//! Structural changes (`optimize.rs`) — sealing the appendable rows into a segment, merging and
//! indexing segments — run one at a time under `structure`, build their files without holding
//! `writer` or `state`, and take both only to switch the manifest and swap the new segment in.

mod filtered;
mod manifest;
mod optimize;
mod retention;
pub mod search;
mod state;

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::distance;
use crate::error::{Error, Result};
use crate::filter::index::IndexKind;
use crate::filter::{parse_datetime, Filter, Path as KeyPath};
use crate::io::FileSystem;
use crate::segment::{self, Bitmap, Segment};
use crate::shared::{Lease, Shared, WriteLock};
use crate::types::{
    CollectionConfig, CollectionInfo, Distance, Durability, Payload, PayloadIndexInfo, PayloadOp,
    PayloadSelector, PointId, Record, ScoredPoint, SearchParams, SegmentInfo, Selector, Space,
    VectorSpec,
};
use crate::wal::record::{encode_frame, Op, OpRef};
use crate::wal::Wal;
pub use filtered::Direction;
pub use manifest::{Manifest, PayloadIndexDef};
use optimize::Optimizer;
use state::{Source, SourceKind, State};

const SEGMENTS_DIR: &str = "segments";
const WAL_DIR: &str = "wal";

/// Tunables of the storage layer, for every collection of a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StorageOptions {
    pub durability: Durability,
    /// A log file is sealed and a new one started past this size.
    pub wal_file_bytes: u64,
    /// The appendable rows are sealed into a segment once the log holds more than this.
    pub checkpoint_log_bytes: u64,
    /// Run the background optimizer (indexing, merging). Off, only `optimize()` indexes.
    pub background_optimizer: bool,
    /// Never write: no log lock, no optimizer, every write refused with `ReadOnly`.
    pub read_only: bool,
    /// Collections a store may hold; creating one more is refused.
    pub max_collections: usize,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            durability: Durability::Fsync,
            wal_file_bytes: 64 << 20,
            checkpoint_log_bytes: 128 << 20,
            background_optimizer: true,
            read_only: false,
            max_collections: 10_000,
        }
    }
}

const OPEN: u8 = 0;
const DROPPED: u8 = 1;
const CLOSED: u8 = 2;

pub struct Collection {
    name: String,
    config: CollectionConfig,
    /// `None` for an in-memory collection.
    dir: Option<PathBuf>,
    fs: Arc<dyn FileSystem>,
    wal: Option<Arc<Wal>>,
    options: StorageOptions,
    /// Serialises writes and manifest switches; holds the manifest as last written.
    writer: Mutex<Manifest>,
    state: RwLock<State>,
    /// Held by whoever seals, merges or indexes: one structural change at a time.
    structure: Mutex<()>,
    status: AtomicU8,
    optimizer: Optimizer,
    /// Milliseconds since the collection was opened, at the last write (for the idle trigger).
    last_write_ms: AtomicU64,
    opened: std::time::Instant,
    /// Retention's "now" when a test has set one (seconds since the epoch).
    clock: Mutex<Option<f64>>,
    /// Milliseconds since opening before which the optimizer does not check retention again.
    next_expiry_ms: AtomicU64,
    /// Log archiving: seal (and so archive) the log file at least this often, in ms (0: off).
    archive_every_ms: AtomicU64,
    /// Milliseconds since opening at the last such seal.
    last_archive_ms: AtomicU64,
    /// What the processes sharing the collection coordinate through; `None` in memory.
    shared: Option<Shared>,
    /// Generation of the manifest this process's state is built from.
    generation: AtomicU64,
    /// Files unreferenced by the manifest may be waiting for other processes to let go.
    garbage_pending: AtomicBool,
    /// The process that opened the collection (a child after `fork` must open it again).
    pid: u32,
    /// The log position of rows frozen by a checkpoint that failed before installing them.
    frozen_at: Mutex<Option<u64>>,
}

/// Held by a write from before it reads the log's end to after it appended: this process's
/// writer lock (with the manifest) and, on disk, the collection's cross-process write lock.
/// Fields drop in order: the OS lock (shared by this process's threads) is released before the
/// mutex that keeps those threads apart.
struct WriteGuard<'a> {
    lock: Option<WriteLock<'a>>,
    manifest: parking_lot::MutexGuard<'a, Manifest>,
}

/// Held while a snapshot copies a manifest's files: the lease, then (dropped after it, see
/// `WriteGuard`) this process's structure lock.
pub(crate) struct CopyGuard<'a>(
    #[allow(dead_code)] Option<LeaseGuard<'a>>,
    #[allow(dead_code)] parking_lot::MutexGuard<'a, ()>,
);

/// The optimizer lease (there is nothing to hold for an in-memory collection).
pub(crate) struct LeaseGuard<'a>(#[allow(dead_code)] Option<Lease<'a>>);

impl std::fmt::Debug for Collection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collection")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Check rows of vectors, each holding the vectors `spaces` (of the collection's `specs`) at
/// their offsets; return them with every cosine vector unit-normalised (a zero vector, if
/// `allow_zero`, stays zero). With `allow_absent` (named vectors), a vector of all NaN is one
/// the point does not have (`types::is_absent`).
fn prepare<'a>(
    rows: &'a [f32],
    spaces: &[Space],
    specs: &[VectorSpec],
    what: &str,
    allow_zero: bool,
    allow_absent: bool,
) -> Result<Cow<'a, [f32]>> {
    let Some(stride) = spaces.first().map(|s| s.stride) else {
        return Ok(Cow::Borrowed(rows));
    };
    for (r, row) in rows.chunks_exact(stride).enumerate() {
        for sp in spaces {
            let v = &row[sp.offset..sp.offset + sp.dim];
            let name = specs.get(sp.index).map_or("", |s| s.name.as_str());
            let which = || match name {
                "" => String::new(),
                n => format!(" (vector {n:?})"),
            };
            if allow_absent && v.iter().all(|x| x.is_nan()) {
                continue;
            }
            if let Some(col) = v.iter().position(|x| !x.is_finite()) {
                return Err(Error::invalid(format!(
                    "{what} row {r}{}: component {col} is {} (only finite numbers are allowed)",
                    which(),
                    v[col]
                )));
            }
            if sp.distance == Distance::Cosine && !allow_zero && v.iter().all(|&x| x == 0.0) {
                return Err(Error::invalid(format!(
                    "{what} row {r}{} is a zero vector, which has no direction under cosine distance",
                    which()
                )));
            }
        }
    }
    if spaces.iter().all(|s| s.distance != Distance::Cosine) {
        return Ok(Cow::Borrowed(rows));
    }
    let mut out = rows.to_vec();
    for row in out.chunks_exact_mut(stride) {
        for sp in spaces.iter().filter(|s| s.distance == Distance::Cosine) {
            distance::normalize_in_place(&mut row[sp.offset..sp.offset + sp.dim]);
        }
    }
    Ok(Cow::Owned(out))
}

/// Some of a point's vectors as a row of their own, in the order given: its width, and where
/// each lies in it.
fn given_layout(spaces: &[Space]) -> (usize, Vec<Space>) {
    let width: usize = spaces.iter().map(|s| s.dim).sum();
    let mut offset = 0;
    let layout = spaces
        .iter()
        .map(|s| {
            offset += s.dim;
            Space {
                offset: offset - s.dim,
                stride: width,
                ..*s
            }
        })
        .collect();
    (width, layout)
}

/// `(offset in the given row, offset in the stored row, dim)` for each vector given.
fn copies(stored: &[Space], given: &[Space]) -> Vec<(usize, usize, usize)> {
    stored
        .iter()
        .zip(given)
        .map(|(to, from)| (from.offset, to.offset, to.dim))
        .collect()
}

/// "vector \"name\"", or "collection" for the unnamed vector (in errors).
fn vector_what(using: Option<&str>) -> String {
    match using {
        None | Some("") => String::from("collection"),
        Some(n) => format!("vector {n:?}"),
    }
}

/// Check a collection name: 1 to 128 of letters, digits, `_` and `-`.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "invalid collection name {name:?}: use 1 to 128 letters, digits, '_' and '-'"
        )))
    }
}

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
        });
        if col.dir.is_some() && options.background_optimizer {
            optimize::start(&col);
        }
        col
    }

    /// An in-memory collection: nothing is written, and search is always exact.
    pub fn in_memory(name: &str, config: CollectionConfig, options: StorageOptions) -> Arc<Self> {
        let manifest = Manifest::new(config.clone());
        Self::assemble(
            name,
            config,
            None,
            Arc::new(crate::io::OsFs),
            None,
            options,
            manifest,
            State::default(),
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
        let mut state = load_segments(&fs, dir, &manifest, &State::default())?;
        let config = manifest.config.clone();
        let dim = config.width();
        let log_dir = dir.join(WAL_DIR);
        let (wal, stats) = Wal::open(
            fs.clone(),
            &log_dir,
            options.durability,
            options.wal_file_bytes,
            manifest.checkpoint_seq,
            |seq, op| apply_logged(&mut state, seq, op, dim, &log_dir),
        )?;
        if stats.applied > 0 {
            log::info!("collection {name}: replayed {} log records", stats.applied);
        }
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

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn config(&self) -> &CollectionConfig {
        &self.config
    }

    /// Values per point: all its vectors, concatenated in the collection's order.
    fn dim(&self) -> usize {
        self.config.width()
    }

    fn check_open(&self) -> Result<()> {
        if self.pid != std::process::id() {
            return Err(Error::invalid(format!(
                "collection {:?} was opened by process {} before a fork; open the store again in this process",
                self.name, self.pid
            )));
        }
        if self.shared.as_ref().is_some_and(Shared::retired) {
            return Err(Error::CollectionNotFound(self.name.clone()));
        }
        match self.status.load(Ordering::Acquire) {
            OPEN => Ok(()),
            DROPPED => Err(Error::CollectionNotFound(self.name.clone())),
            _ => Err(Error::Closed(format!(
                "collection {:?} belongs to a store that was closed",
                self.name
            ))),
        }
    }

    /// `check_open`, then `sync`: what every read starts with.
    fn enter(&self) -> Result<()> {
        self.check_open()?;
        self.sync()
    }

    fn check_writable(&self) -> Result<()> {
        if self.options.read_only {
            return Err(Error::ReadOnly(format!(
                "collection {:?} belongs to a store opened read-only",
                self.name
            )));
        }
        Ok(())
    }

    /// See what other processes did since this one last looked: switch to a newer manifest,
    /// read the records appended since. When nothing changed this is two atomic loads of the
    /// shared hints. The log end is set after the record is written, before it is
    /// acknowledged; the generation is raised before the manifest is renamed into place, and a
    /// process that finds the old one then looks again at every call until the new one is
    /// there. So a write or optimization acknowledged anywhere is seen here at the next call.
    pub fn sync(&self) -> Result<()> {
        let (Some(shared), Some(wal)) = (&self.shared, &self.wal) else {
            return Ok(());
        };
        if shared.generation() <= self.generation.load(Ordering::SeqCst)
            && shared.log_end() <= wal.last_seq()
        {
            return Ok(());
        }
        let mut m = self.writer.lock();
        self.check_open()?;
        self.sync_locked(&mut m, false)
    }

    /// `sync` under the writer lock. With `repair` (the caller holds the write lock) a torn
    /// log tail is cut.
    fn sync_locked(&self, m: &mut Manifest, repair: bool) -> Result<()> {
        let (Some(shared), Some(dir)) = (&self.shared, &self.dir) else {
            return Ok(());
        };
        if shared.generation() > m.generation {
            let current = Manifest::read(self.fs.as_ref(), dir)?;
            if current.generation != m.generation {
                self.reload(m, current)?;
            }
        }
        self.catch_up(repair)
    }

    /// Read the log's new records into the state. The caller holds the writer lock.
    fn catch_up(&self, repair: bool) -> Result<()> {
        let (Some(wal), Some(dir)) = (&self.wal, &self.dir) else {
            return Ok(());
        };
        let dim = self.dim();
        let log_dir = dir.join(WAL_DIR);
        let mut st = self.state.write();
        let stats = wal.catch_up(repair, &mut |seq, op| {
            apply_logged(&mut st, seq, op, dim, &log_dir)
        })?;
        if stats.applied > 0 {
            drop(st);
            self.note_write();
        }
        Ok(())
    }

    /// Switch to `current`, a manifest another process published: the state is rebuilt from
    /// its segments (those this process has mapped already are kept) and the log after its
    /// checkpoint. Searches go on in the old state meanwhile. The pin stays at the old
    /// generation until the switch, which keeps both generations' files.
    fn reload(&self, m: &mut Manifest, current: Manifest) -> Result<()> {
        let (Some(wal), Some(dir)) = (&self.wal, &self.dir) else {
            return Ok(());
        };
        if current.config.vectors != self.config.vectors {
            return Err(Error::corrupt(
                dir.join(manifest::MANIFEST),
                "the manifest now describes other vectors than when the collection was opened",
            ));
        }
        let mut state = load_segments(&self.fs, dir, &current, &self.state.read())?;
        let dim = self.dim();
        let log_dir = dir.join(WAL_DIR);
        wal.rewind(current.checkpoint_seq, &mut |seq, op| {
            apply_logged(&mut state, seq, op, dim, &log_dir)
        })?;
        *self.state.write() = state;
        self.generation.store(current.generation, Ordering::SeqCst);
        if let Some(shared) = &self.shared {
            shared.pin(current.generation);
        }
        *m = current;
        self.note_write();
        Ok(())
    }

    /// Start a write: take the writer lock and the cross-process write lock, and catch up
    /// with the log, so the write is planned against everything acknowledged before it.
    fn begin_write(&self) -> Result<WriteGuard<'_>> {
        self.check_writable()?;
        let mut manifest = self.writer.lock();
        self.check_open()?;
        let lock = match &self.shared {
            Some(s) => Some(s.lock_writes()?),
            None => None,
        };
        self.sync_locked(&mut manifest, true)?;
        if let (Some(s), Some(w), Some(l)) = (&self.shared, &self.wal, &lock) {
            s.set_log_end(l, w.last_seq());
        }
        Ok(WriteGuard { lock, manifest })
    }

    /// Append a frame to the log (under `begin_write`) and tell the other processes.
    fn append(&self, guard: &WriteGuard<'_>, wal: &Wal, frame: Vec<u8>) -> Result<u64> {
        let seq = wal.append(frame)?;
        if let (Some(s), Some(l)) = (&self.shared, &guard.lock) {
            s.set_log_end(l, seq);
        }
        Ok(seq)
    }

    /// The generation of the next manifest after `m`: past the shared hint too, which a
    /// publisher that died between raising it and renaming its manifest may have left ahead.
    fn next_generation(&self, m: &Manifest) -> u64 {
        let hint = self.shared.as_ref().map_or(0, Shared::generation);
        m.generation.max(hint) + 1
    }

    /// A copy of `m` to edit into the next manifest, with its generation already set (files
    /// written for it are named after it).
    fn next_manifest(&self, m: &Manifest) -> Manifest {
        let mut next = m.clone();
        next.generation = self.next_generation(m);
        next
    }

    /// Write `next` as the manifest and tell the other processes. The caller holds the lease.
    /// The hint is raised first: a process that reads it early finds the old manifest, and
    /// looks again at its next call, until the new one is in place. (Raised after, a publisher
    /// dying in between would leave the others on the old one unawares.)
    fn publish(&self, next: &Manifest) -> Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        if let Some(s) = &self.shared {
            s.publish_generation(next.generation);
        }
        next.write(self.fs.as_ref(), dir)?;
        self.generation.store(next.generation, Ordering::SeqCst);
        Ok(())
    }

    /// Take the optimizer lease (waiting for it if `wait`), then catch up: whoever holds the
    /// lease is the one process that writes manifests and removes files. `None` if another
    /// process holds it and we did not wait.
    pub(crate) fn lease(&self, wait: bool) -> Result<Option<LeaseGuard<'_>>> {
        self.check_writable()?;
        let Some(shared) = &self.shared else {
            return Ok(Some(LeaseGuard(None)));
        };
        let lease = if wait {
            shared.lease()?
        } else {
            match shared.try_lease()? {
                Some(l) => l,
                None => return Ok(None),
            }
        };
        {
            let mut m = self.writer.lock();
            self.check_open()?;
            self.sync_locked(&mut m, false)?;
            if shared.generation() > m.generation {
                // A publisher died after raising the hint, before its manifest was in place:
                // publish the current one past it, so that every process stops looking.
                let next = self.next_manifest(&m);
                self.publish(&next)?;
                *m = next;
            }
        }
        if self.garbage_pending.load(Ordering::SeqCst) {
            self.collect_garbage()?;
        }
        Ok(Some(LeaseGuard(Some(lease))))
    }

    /// After a manifest switch (the state already holds the new manifest's segments): move
    /// this process's pin to it, then remove the files no manifest names any more and the log
    /// files it checkpointed, once no process pins an older generation. Until then they wait
    /// (`garbage_pending`). The caller holds the lease.
    pub(crate) fn collect_garbage(&self) -> Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let m = self.writer.lock().clone();
        if let Some(shared) = &self.shared {
            shared.pin(m.generation);
            if shared.oldest_pin()?.is_some_and(|g| g < m.generation) {
                self.garbage_pending.store(true, Ordering::SeqCst);
                return Ok(());
            }
        }
        self.garbage_pending.store(false, Ordering::SeqCst);
        let tmp = dir.join(manifest::MANIFEST_TMP);
        if self.fs.exists(&tmp)? {
            self.fs.remove_file(&tmp)?;
        }
        let seg_dir = dir.join(SEGMENTS_DIR);
        let live = m.live_segment_files();
        let mut removed = false;
        for name in self.fs.list_dir(&seg_dir)? {
            if !live.contains(&name) {
                log::debug!("removing {name}: no manifest in use names it");
                self.fs.remove_file(&seg_dir.join(&name))?;
                removed = true;
            }
        }
        if removed {
            self.fs.sync_dir(&seg_dir)?;
        }
        if let Some(wal) = &self.wal {
            wal.remove_through(m.checkpoint_seq)?;
        }
        Ok(())
    }

    /// Bytes of the log after the current manifest's checkpoint (what a checkpoint would
    /// turn into a segment).
    pub(crate) fn log_bytes(&self) -> u64 {
        let checkpoint = self.writer.lock().checkpoint_seq;
        self.wal.as_ref().map_or(0, |w| w.bytes_after(checkpoint))
    }

    /// Dropped or replaced, by this process or another.
    pub fn is_retired(&self) -> bool {
        self.status.load(Ordering::Acquire) == DROPPED
            || self.shared.as_ref().is_some_and(Shared::retired)
    }

    fn note_write(&self) {
        let ms = self.opened.elapsed().as_millis() as u64;
        self.last_write_ms.store(ms, Ordering::Relaxed);
    }

    // ----- writes -------------------------------------------------------------------------

    /// Insert or replace points. `vectors` holds `ids.len()` rows, row-major, each with all of
    /// a point's vectors concatenated in the collection's order (`CollectionConfig::width`
    /// values). The batch is applied whole or, if any row is invalid, not at all.
    pub fn upsert(
        &self,
        ids: &[PointId],
        vectors: &[f32],
        payloads: Option<&[Option<Payload>]>,
    ) -> Result<()> {
        self.upsert_with(ids, vectors, payloads, false)
    }

    /// `upsert`, where `allow_zero` takes zero vectors under cosine (stored as zero, scoring 0
    /// against every query) as Qdrant does, instead of rejecting them.
    pub fn upsert_with(
        &self,
        ids: &[PointId],
        vectors: &[f32],
        payloads: Option<&[Option<Payload>]>,
        allow_zero: bool,
    ) -> Result<()> {
        self.check_open()?;
        let n = ids.len();
        let dim = self.dim();
        if vectors.len() != n * dim {
            return Err(Error::invalid(format!(
                "got {n} ids but {} vector values; expected {n} vectors of dimension {dim} ({} values)",
                vectors.len(),
                n * dim
            )));
        }
        if let Some(p) = payloads {
            if p.len() != n {
                return Err(Error::invalid(format!(
                    "got {n} ids but {} payloads",
                    p.len()
                )));
            }
        }
        validate_ids(ids, true)?;
        let (specs, named) = (&self.config.vectors, self.config.is_named());
        let spaces = self.config.spaces();
        let vectors = prepare(vectors, &spaces, specs, "vectors", allow_zero, named)?;
        let payload_bytes: Vec<Option<Box<[u8]>>> = match payloads {
            None => vec![None; n],
            Some(p) => p
                .iter()
                .map(|p| {
                    p.as_ref()
                        .map(|p| serde_json::to_vec(p).map(Vec::into_boxed_slice))
                        .transpose()
                })
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| Error::invalid(format!("payload is not serialisable as JSON: {e}")))?,
        };
        check_payload_sizes(ids, &payload_bytes)?;
        if n == 0 {
            return Ok(());
        }

        let guard = self.begin_write()?;
        let found = self.state.read().locate_all(ids)?;
        let seq = self.log_upsert(&guard, ids, &vectors, &payload_bytes)?;
        self.state
            .write()
            .apply_upsert(ids, &vectors, payload_bytes, &found, dim);
        drop(guard);
        self.after_write(seq)
    }

    /// Append an upsert record (rows already validated and prepared); its sequence number, or
    /// `None` for an in-memory collection. The caller holds the writer lock.
    fn log_upsert(
        &self,
        guard: &WriteGuard<'_>,
        ids: &[PointId],
        vectors: &[f32],
        payloads: &[Option<Box<[u8]>>],
    ) -> Result<Option<u64>> {
        let Some(wal) = &self.wal else {
            return Ok(None);
        };
        let refs: Vec<Option<&serde_bytes::Bytes>> = payloads
            .iter()
            .map(|p| p.as_deref().map(serde_bytes::Bytes::new))
            .collect();
        let frame = encode_frame(&OpRef::Upsert {
            ids,
            vectors: bytemuck::cast_slice(vectors),
            payloads: &refs,
        })
        .map_err(|e| Error::invalid(format!("batch does not encode: {e}")))?;
        if frame.len() - crate::wal::record::FRAME_HEADER_LEN > crate::wal::record::MAX_BODY_LEN {
            return Err(Error::invalid(
                "batch is larger than 4 GiB once encoded; upsert it in smaller batches",
            ));
        }
        Ok(Some(self.append(guard, wal, frame)?))
    }

    /// Delete points by id; returns how many of them existed.
    pub fn delete(&self, ids: &[PointId]) -> Result<usize> {
        self.check_open()?;
        validate_ids(ids, false)?;
        let guard = self.begin_write()?;
        self.delete_locked(guard, ids)
    }

    /// Delete every point matching `filter` (resolved to ids, which are what is logged).
    pub fn delete_filter(&self, filter: &Filter) -> Result<usize> {
        self.check_open()?;
        let guard = self.begin_write()?;
        let ids = self.state.read().ids_matching(filter)?;
        self.delete_locked(guard, &ids)
    }

    fn delete_locked(&self, guard: WriteGuard<'_>, ids: &[PointId]) -> Result<usize> {
        let (existing, found) = {
            let st = self.state.read();
            let mut seen = std::collections::HashSet::new();
            let mut existing = Vec::new();
            let mut found = Vec::new();
            for id in ids {
                if !seen.insert(id) {
                    continue;
                }
                if let Some(loc) = st.locate(id)? {
                    existing.push(id.clone());
                    found.push(Some(loc));
                }
            }
            (existing, found)
        };
        if existing.is_empty() {
            return Ok(0);
        }
        let seq = match &self.wal {
            Some(wal) => {
                let frame = encode_frame(&OpRef::Delete { ids: &existing })
                    .map_err(|e| Error::invalid(format!("batch does not encode: {e}")))?;
                Some(self.append(&guard, wal, frame)?)
            }
            None => None,
        };
        let removed = self
            .state
            .write()
            .apply_delete(&existing, &found, self.dim());
        drop(guard);
        self.after_write(seq)?;
        Ok(removed)
    }

    /// Apply a payload operation to the points `sel` picks. Returns how many points changed.
    ///
    /// The operation is resolved (filter to ids, then each point's new payload) under the writer
    /// lock and logged as an upsert of the resulting points. A log record that only said "set
    /// key k on ids" would not be replayable: a checkpoint running meanwhile may already have
    /// persisted the old copies' deletion, so replay could no longer find them.
    pub fn update_payload(&self, sel: Selector<'_>, op: &PayloadOp) -> Result<usize> {
        let written =
            self.write_selected(sel, |st, ids| st.plan_payload_op(ids, op, self.dim()))?;
        Ok(written.len())
    }

    /// Replace vectors of the points of `ids` that exist, keeping their payloads (and their
    /// other vectors), as one logged write (Qdrant's `update_vectors`); returns the ids that
    /// were found. `using` names the vectors replaced (`None`: all of them); `vectors` holds one
    /// row per id with those vectors concatenated in that order. Ids must be distinct.
    /// `allow_zero` as in `upsert_with`.
    pub fn update_vectors(
        &self,
        ids: &[PointId],
        using: Option<&[String]>,
        vectors: &[f32],
        allow_zero: bool,
    ) -> Result<Vec<PointId>> {
        self.check_open()?;
        let spaces = match using {
            None => self.config.spaces(),
            Some(names) => self.named_spaces(names)?,
        };
        let (given, layout) = given_layout(&spaces);
        if vectors.len() != ids.len() * given {
            return Err(Error::invalid(format!(
                "got {} ids but {} vector values; expected rows of {given} values",
                ids.len(),
                vectors.len()
            )));
        }
        validate_ids(ids, true)?;
        let specs = &self.config.vectors;
        let vectors = prepare(vectors, &layout, specs, "vectors", allow_zero, false)?;
        let guard = self.begin_write()?;
        let copies = copies(&spaces, &layout);
        let plan =
            self.state
                .read()
                .plan_vector_update(ids, &vectors, &copies, given, self.dim())?;
        self.write_plan(guard, plan)
    }

    /// Remove the vectors `names` (`""`: the unnamed one) from the points `sel` picks (Qdrant's
    /// `delete_vectors`), keeping their payloads and other vectors, as one logged write; a
    /// search of one of those vectors no longer finds them. Returns how many points exist among
    /// those picked.
    pub fn delete_vectors(&self, sel: Selector<'_>, names: &[String]) -> Result<usize> {
        self.check_open()?;
        let mut unique: Vec<String> = Vec::with_capacity(names.len());
        for name in names {
            if !unique.contains(name) {
                unique.push(name.clone());
            }
        }
        let spaces = self.named_spaces(&unique)?;
        let (given, layout) = given_layout(&spaces);
        let copies = copies(&spaces, &layout);
        let written = self.write_selected(sel, |st, ids| {
            // The new values of those vectors: all NaN, absent.
            let nan = vec![f32::NAN; ids.len() * given];
            st.plan_vector_update(ids, &nan, &copies, given, self.dim())
        })?;
        Ok(written.len())
    }

    /// Rewrite the points `sel` picks (each once) as `plan` makes them, under the writer lock
    /// (see `update_payload` for why the plan, not the selector, is logged).
    fn write_selected(
        &self,
        sel: Selector<'_>,
        plan: impl FnOnce(&State, &[PointId]) -> Result<state::PayloadPlan>,
    ) -> Result<Vec<PointId>> {
        self.check_open()?;
        if let Selector::Ids(ids) = sel {
            validate_ids(ids, false)?;
        }
        let guard = self.begin_write()?;
        let plan = {
            let st = self.state.read();
            let mut ids = match sel {
                Selector::Ids(ids) => ids.to_vec(),
                Selector::Filter(f) => st.ids_matching(f)?,
            };
            let mut seen = std::collections::HashSet::new();
            ids.retain(|id| seen.insert(id.clone()));
            plan(&st, &ids)?
        };
        self.write_plan(guard, plan)
    }

    /// The vectors `names` name, in that order; a name given twice is an error.
    fn named_spaces(&self, names: &[String]) -> Result<Vec<Space>> {
        if names.is_empty() {
            return Err(Error::invalid("no vector named"));
        }
        let mut spaces: Vec<Space> = Vec::with_capacity(names.len());
        for name in names {
            let sp = self.config.space(Some(name))?;
            if spaces.iter().any(|p| p.index == sp.index) {
                return Err(Error::invalid(format!("vector {name:?} is given twice")));
            }
            spaces.push(sp);
        }
        Ok(spaces)
    }

    /// Log and apply a plan made under the writer lock (`guard`), then keep the log's
    /// durability promise; returns the ids of the points written.
    fn write_plan(&self, guard: WriteGuard<'_>, plan: state::PayloadPlan) -> Result<Vec<PointId>> {
        if plan.ids.is_empty() {
            return Ok(Vec::new());
        }
        check_payload_sizes(&plan.ids, &plan.payloads)?;
        let written = plan.ids.clone();
        let seq = self.log_upsert(&guard, &plan.ids, &plan.vectors, &plan.payloads)?;
        self.state.write().apply_payload_plan(plan, self.dim());
        drop(guard);
        self.after_write(seq)?;
        Ok(written)
    }

    fn after_write(&self, seq: Option<u64>) -> Result<()> {
        self.note_write();
        let (Some(wal), Some(seq)) = (&self.wal, seq) else {
            return Ok(());
        };
        wal.commit(seq)?;
        if self.log_bytes() > self.options.checkpoint_log_bytes {
            if self.options.background_optimizer {
                self.optimizer.wake();
            } else {
                let _s = self.structure.lock();
                if let Some(_lease) = self.lease(false)? {
                    optimize::seal(self)?;
                }
            }
        }
        Ok(())
    }

    // ----- reads --------------------------------------------------------------------------

    pub fn count(&self) -> Result<usize> {
        self.enter()?;
        Ok(self.state.read().live)
    }

    /// Points matching `filter`.
    pub fn count_filtered(&self, filter: &Filter) -> Result<usize> {
        self.enter()?;
        self.state.read().count_matching(filter)
    }

    /// Points per value (string, integer or boolean) of the field `key` among those matching
    /// `filter`, most frequent first (ties by value), at most `limit` values.
    pub fn facet(
        &self,
        key: &str,
        filter: &Filter,
        limit: usize,
    ) -> Result<Vec<(crate::types::FacetValue, usize)>> {
        self.enter()?;
        self.state.read().facet(key, filter, limit)
    }

    /// Up to `limit` points matching `filter` ordered by the indexed numeric or datetime field
    /// `key`, from `start` (a number, or an RFC 3339 string for datetimes) on.
    #[allow(clippy::too_many_arguments)]
    pub fn scroll_ordered(
        &self,
        key: &str,
        direction: Direction,
        start: Option<&serde_json::Value>,
        filter: &Filter,
        limit: usize,
        with_payload: &PayloadSelector,
        with_vector: bool,
    ) -> Result<Vec<Record>> {
        self.enter()?;
        let start = match start {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(parse_datetime(s).ok_or_else(|| {
                Error::invalid(format!(
                    "order_by start_from {s:?} is not an RFC 3339 datetime"
                ))
            })?),
            Some(v) => Some(v.as_f64().ok_or_else(|| {
                Error::invalid(format!(
                    "order_by start_from must be a number or a datetime, got {v}"
                ))
            })?),
        };
        self.state.read().scroll_ordered(
            key,
            direction,
            start,
            filter,
            limit,
            with_payload,
            with_vector,
            self.dim(),
        )
    }

    /// Points by id, in the order asked; missing ids are left out.
    pub fn get(
        &self,
        ids: &[PointId],
        with_payload: &PayloadSelector,
        with_vector: bool,
    ) -> Result<Vec<Record>> {
        self.enter()?;
        validate_ids(ids, false)?;
        let st = self.state.read();
        let mut out = Vec::new();
        for id in ids {
            if let Some(loc) = st.locate(id)? {
                out.push(st.record(loc, with_payload, with_vector, self.dim())?);
            }
        }
        Ok(out)
    }

    /// Up to `limit` points in id order, starting at `offset` (inclusive). Returns them and the
    /// id to pass as `offset` for the next page, if there is one.
    pub fn scroll(
        &self,
        limit: usize,
        offset: Option<&PointId>,
        with_payload: &PayloadSelector,
        with_vector: bool,
        filter: Option<&Filter>,
    ) -> Result<(Vec<Record>, Option<PointId>)> {
        self.enter()?;
        self.state
            .read()
            .scroll(limit, offset, with_payload, with_vector, self.dim(), filter)
    }

    /// Top-k search for one query of the dimension of the vector `params.using`: through the
    /// segments' graphs, exactly where a segment has none (or `params.exact`).
    pub fn search(&self, query: &[f32], params: &SearchParams) -> Result<Vec<ScoredPoint>> {
        self.enter()?;
        let dim = self.config.space(params.using.as_deref())?.dim;
        if query.len() != dim {
            return Err(Error::invalid(format!(
                "query has dimension {}, the {} has dimension {dim}",
                query.len(),
                vector_what(params.using.as_deref()),
            )));
        }
        let mut all = self.search_many(query, params)?;
        Ok(all.pop().unwrap_or_default())
    }

    /// Top-k search for several queries (`queries.len() / dim` of them).
    pub fn search_batch(
        &self,
        queries: &[f32],
        params: &SearchParams,
    ) -> Result<Vec<Vec<ScoredPoint>>> {
        self.enter()?;
        let dim = self.config.space(params.using.as_deref())?.dim;
        if !queries.len().is_multiple_of(dim) {
            return Err(Error::invalid(format!(
                "queries hold {} values, not a whole number of vectors of dimension {dim} (the {})",
                queries.len(),
                vector_what(params.using.as_deref()),
            )));
        }
        self.search_many(queries, params)
    }

    fn search_many(&self, queries: &[f32], params: &SearchParams) -> Result<Vec<Vec<ScoredPoint>>> {
        if params.ef == Some(0) {
            return Err(Error::invalid("ef must be at least 1"));
        }
        let sp = self.config.space(params.using.as_deref())?;
        let metric = sp.distance;
        let alone = Space {
            offset: 0,
            stride: sp.dim,
            ..sp
        };
        let specs = &self.config.vectors;
        let q = prepare(queries, &[alone], specs, "query", params.allow_zero, false)?;
        let dim = self.dim();
        let st = self.state.read();
        let n = params.offset.saturating_add(params.k);
        let cands = st.search(
            sp,
            &q,
            n,
            search::min_key_for(metric, params.score_threshold),
            params,
            self.config.hnsw.ef_construct,
            self.config.hnsw.full_scan_threshold,
        )?;
        cands
            .iter()
            .map(|c| st.scored(metric, c, params, dim))
            .collect()
    }

    // ----- structure ----------------------------------------------------------------------

    /// Checkpoint: seal everything logged so far into a segment file and trim the log.
    pub fn flush(&self) -> Result<()> {
        self.check_open()?;
        let _s = self.structure.lock();
        let _lease = self.lease(true)?;
        optimize::seal(self)
    }

    /// Expire points past retention, then seal, index and merge now: afterwards a collection
    /// smaller than `max_segment_points` is one segment with a graph (if it has at least
    /// `full_scan_threshold` points).
    pub fn optimize(&self) -> Result<()> {
        self.check_open()?;
        self.expire()?;
        let _s = self.structure.lock();
        let _lease = self.lease(true)?;
        optimize::optimize_all(self)
    }

    /// Ask the background optimizer to run a full optimization soon; returns at once.
    pub fn optimize_in_background(&self) -> Result<()> {
        self.check_open()?;
        self.optimizer.request_full();
        Ok(())
    }

    /// Stop the optimizer, checkpoint and stop the log. Later calls fail with `Closed`.
    /// With other processes sharing the collection, the checkpoint is left to whichever holds
    /// the optimizer lease, if one does.
    pub fn close(&self) -> Result<()> {
        if self.pid != std::process::id() {
            return Ok(()); // a copy made by fork: the parent owns these files and locks
        }
        optimize::stop(self);
        let _s = self.structure.lock();
        if self.status.load(Ordering::Acquire) != OPEN {
            return Ok(());
        }
        let result = if self.options.read_only || self.shared.as_ref().is_some_and(Shared::retired)
        {
            Ok(())
        } else {
            match self.lease(false) {
                Ok(Some(_lease)) => optimize::seal(self),
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            }
        };
        self.status.store(CLOSED, Ordering::Release);
        let closed = self.wal.as_ref().map_or(Ok(()), |w| w.close());
        result.and(closed)
    }

    /// Continuous log archiving: every sealed log file is also put into `dir`, and the open
    /// one is sealed at least every `every` while it holds records (so an archive lags the
    /// acknowledged writes by at most about `every`). `None` turns it off.
    pub fn set_log_archive(&self, dir: Option<PathBuf>, every: std::time::Duration) -> Result<()> {
        let Some(wal) = &self.wal else {
            return Err(Error::invalid(
                "an in-memory collection has no log to archive",
            ));
        };
        let on = dir.is_some();
        wal.set_archive(dir)?;
        let ms = if on {
            every.as_millis().max(1) as u64
        } else {
            0
        };
        self.archive_every_ms.store(ms, Ordering::Relaxed);
        Ok(())
    }

    /// Seal the log file for the archive if `archive_every_ms` has passed (background thread).
    pub(crate) fn archive_if_due(&self) -> Result<()> {
        let every = self.archive_every_ms.load(Ordering::Relaxed);
        let Some(wal) = self.wal.as_ref().filter(|_| every > 0) else {
            return Ok(());
        };
        let now = self.opened.elapsed().as_millis() as u64;
        if now.saturating_sub(self.last_archive_ms.load(Ordering::Relaxed)) < every {
            return Ok(());
        }
        self.last_archive_ms.store(now, Ordering::Relaxed);
        if wal.has_open_records() {
            let _g = self.begin_write()?;
            wal.rotate()?;
        }
        Ok(())
    }

    /// The file system this collection's files go through.
    pub(crate) fn file_system(&self) -> &dyn FileSystem {
        &*self.fs
    }

    /// Checkpoint, and hold the structure lock and the optimizer lease (no file of the manifest
    /// is retired while they are held, in any process; writers go on) so the caller can copy
    /// the files the manifest names.
    pub(crate) fn checkpoint_for_copy(&self) -> Result<(PathBuf, CopyGuard<'_>)> {
        self.check_open()?;
        let dir = self
            .dir
            .clone()
            .ok_or_else(|| Error::invalid("an in-memory collection has no files to copy"))?;
        let s = self.structure.lock();
        self.check_open()?;
        let lease = self.lease(true)?;
        optimize::seal(self)?;
        Ok((dir, CopyGuard(lease, s)))
    }

    /// The manifest as last written.
    pub(crate) fn manifest(&self) -> Manifest {
        self.writer.lock().clone()
    }

    /// Mark the collection dropped: every later call on a handle fails with `CollectionNotFound`.
    pub fn mark_dropped(&self) {
        if let Some(s) = &self.shared {
            s.retire();
        }
        optimize::stop(self);
        let _s = self.structure.lock();
        let _m = self.writer.lock();
        self.status.store(DROPPED, Ordering::Release);
        if let Some(w) = &self.wal {
            // The files are about to be removed; nothing of the log needs to be kept.
            let _ = w.close();
        }
    }

    /// Index the payload values at `key` (a path) as `kind`, in every sealed segment now and
    /// in every segment sealed from now on. Re-creating an index of the same kind does nothing;
    /// another kind replaces it.
    pub fn create_payload_index(&self, key: &str, kind: IndexKind) -> Result<()> {
        self.check_open()?;
        KeyPath::parse(key, "key")?;
        let _s = self.structure.lock();
        self.check_open()?;
        let _lease = self.lease(true)?;
        let existing = self.state.read().index_def(key).cloned();
        match existing {
            Some(d) if d.kind == kind => return Ok(()),
            Some(_) => self.drop_index_locked(key)?,
            None => {}
        }
        let number = {
            let mut m = self.writer.lock();
            let n = m.next_index_number;
            m.next_index_number += 1;
            n
        };
        let def = PayloadIndexDef {
            key: key.to_string(),
            kind,
            number,
        };
        // No segment comes or goes while we hold `structure`; writes meanwhile land in the
        // appendable rows, which filters check one by one.
        let segs: Vec<Arc<Segment>> = self
            .state
            .read()
            .sources
            .iter()
            .filter_map(|s| s.segment().cloned())
            .collect();
        let mut built = Vec::new();
        for seg in segs {
            let idx = optimize::build_index(&def, &seg)?;
            if let Some(dir) = &self.dir {
                optimize::write_index_file(self, &dir.join(SEGMENTS_DIR), seg.id, number, &idx)?;
            }
            built.push((seg, Arc::new(idx)));
        }
        let mut m = self.writer.lock();
        let mut next = self.next_manifest(&m);
        next.payload_indexes.push(def.clone());
        for meta in &mut next.segments {
            if built.iter().any(|(s, _)| s.id == meta.id) {
                meta.indexes.push(number);
            }
        }
        if let Some(dir) = &self.dir {
            self.fs.sync_dir(&dir.join(SEGMENTS_DIR))?;
        }
        self.publish(&next)?;
        for (seg, idx) in built {
            seg.add_index(number, idx);
        }
        self.state.write().index_defs.push(def);
        *m = next;
        Ok(())
    }

    /// Remove the payload index on `key` (its files go once the manifest no longer names them).
    pub fn drop_payload_index(&self, key: &str) -> Result<()> {
        self.check_open()?;
        let _s = self.structure.lock();
        self.check_open()?;
        let _lease = self.lease(true)?;
        self.drop_index_locked(key)
    }

    fn drop_index_locked(&self, key: &str) -> Result<()> {
        let mut m = self.writer.lock();
        let Some(def) = m.payload_indexes.iter().find(|d| d.key == key).cloned() else {
            return Err(Error::invalid(format!(
                "there is no payload index on {key:?}"
            )));
        };
        let mut next = self.next_manifest(&m);
        next.payload_indexes.retain(|d| d.number != def.number);
        for meta in &mut next.segments {
            meta.indexes.retain(|&n| n != def.number);
        }
        self.publish(&next)?;
        {
            let mut st = self.state.write();
            st.index_defs.retain(|d| d.number != def.number);
            for seg in st.sources.iter().filter_map(Source::segment) {
                seg.remove_index(def.number);
            }
        }
        *m = next;
        drop(m);
        self.collect_garbage()
    }

    pub fn info(&self) -> Result<CollectionInfo> {
        self.enter()?;
        let m = self.writer.lock(); // no checkpoint removes files while we count
        let recalls: HashMap<u64, f32> = m
            .segments
            .iter()
            .filter_map(|s| {
                // The weakest of a segment's graphs (one per vector).
                let worst = s
                    .graphs
                    .iter()
                    .map(|g| g.self_check_recall)
                    .reduce(f32::min);
                worst.map(|r| (s.id, r))
            })
            .collect();
        let st = self.state.read();
        let mut segments = Vec::new();
        let (mut indexed, mut unindexed) = (0, 0);
        for s in &st.sources {
            let (kind, recall) = match &s.kind {
                SourceKind::Sealed(seg) => ("sealed", recalls.get(&seg.id).copied()),
                SourceKind::Frozen(_) => ("sealing", None),
            };
            if s.has_graph() {
                indexed += s.live();
            } else {
                unindexed += s.live();
            }
            segments.push(SegmentInfo {
                rows: s.rows(),
                deleted: s.deleted.count_ones(),
                kind,
                indexed: s.has_graph(),
                self_check_recall: recall,
            });
        }
        if !st.mem.is_empty() {
            unindexed += st.mem.len();
            segments.push(SegmentInfo {
                rows: st.mem.len(),
                deleted: 0,
                kind: "appendable",
                indexed: false,
                self_check_recall: None,
            });
        }
        let (points, unflushed) = (st.live, st.mem.len());
        drop(st);
        let (mut disk_bytes, mut log_bytes) = (0, 0);
        if let Some(dir) = &self.dir {
            disk_bytes += self.fs.file_len(&dir.join(manifest::MANIFEST))?;
            let seg_dir = dir.join(SEGMENTS_DIR);
            for name in self.fs.list_dir(&seg_dir)? {
                disk_bytes += self.fs.file_len(&seg_dir.join(name))?;
            }
            log_bytes = self
                .wal
                .as_ref()
                .map_or(0, |w| w.bytes_after(m.checkpoint_seq));
        }
        let mut payload_indexes = Vec::new();
        for def in &m.payload_indexes {
            let mut info = PayloadIndexInfo {
                key: def.key.clone(),
                kind: def.kind.name(),
                points: 0,
                disk_bytes: 0,
            };
            for meta in m
                .segments
                .iter()
                .filter(|s| s.indexes.contains(&def.number))
            {
                info.points += meta.rows as usize;
                if let Some(dir) = &self.dir {
                    info.disk_bytes += self.fs.file_len(
                        &dir.join(SEGMENTS_DIR)
                            .join(segment::pidx_name(meta.id, def.number)),
                    )?;
                }
            }
            payload_indexes.push(info);
        }
        let retention = m.retention.clone();
        drop(m);
        Ok(CollectionInfo {
            payload_indexes,
            retention,
            name: self.name.clone(),
            config: self.config.clone(),
            points,
            indexed_points: indexed,
            unindexed_points: unindexed,
            segments,
            unflushed_points: unflushed,
            optimizer_status: self.optimizer.status(),
            disk_bytes,
            log_bytes,
        })
    }

    /// Check every checksum of every sealed file (reads all of them).
    pub fn verify(&self) -> Result<()> {
        self.enter()?;
        let Some(dir) = &self.dir else { return Ok(()) };
        let m = self.writer.lock();
        Manifest::read(self.fs.as_ref(), dir)?;
        let st = self.state.read();
        for seg in st.sources.iter().filter_map(Source::segment) {
            let deleted = m.segments.iter().find(|meta| meta.id == seg.id);
            seg.verify(deleted.and_then(|meta| meta.deleted.as_deref()))?;
        }
        Ok(())
    }
}

/// The sealed part of a collection's state as `manifest` describes it: its segments mapped
/// (those `reuse` has already are shared, with their loaded graphs and indexes) and their
/// deletion bitmaps read.
fn load_segments(
    fs: &Arc<dyn FileSystem>,
    dir: &Path,
    manifest: &Manifest,
    reuse: &State,
) -> Result<State> {
    let seg_dir = dir.join(SEGMENTS_DIR);
    let spaces = manifest.config.spaces();
    let mut state = State {
        index_defs: manifest.payload_indexes.clone(),
        ..State::default()
    };
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
                let seg = Segment::open(
                    fs.clone(),
                    &seg_dir,
                    meta.id,
                    rows,
                    &spaces,
                    &meta.graphs.iter().map(|g| g.codes).collect::<Vec<_>>(),
                    &meta.absent,
                )?;
                seg.set_index_files(&meta.indexes);
                seg
            }
        };
        let deleted = match &meta.deleted {
            Some(name) => segment::read_deleted(fs.as_ref(), &seg_dir, name, rows)?,
            None => Bitmap::new(rows),
        };
        state.live += rows - deleted.count_ones();
        state.sources.push(Source {
            kind: SourceKind::Sealed(seg),
            deleted,
            dirty: false,
        });
    }
    Ok(state)
}

/// Apply a record read back from the log.
fn apply_logged(st: &mut State, seq: u64, op: Op, dim: usize, log_dir: &Path) -> Result<()> {
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
            let vectors: Vec<f32> = bytemuck::pod_collect_to_vec(&vectors);
            let payloads = payloads
                .into_iter()
                .map(|p| p.map(|b| b.into_vec().into_boxed_slice()))
                .collect();
            let found = st.locate_all(&ids)?;
            st.apply_upsert(&ids, &vectors, payloads, &found, dim);
        }
        Op::Delete { ids } => {
            let found = st.locate_all(&ids)?;
            st.apply_delete(&ids, &found, dim);
        }
    }
    Ok(())
}

/// Refuse a payload larger than `MAX_PAYLOAD_BYTES` as JSON, naming its point.
fn check_payload_sizes(ids: &[PointId], payloads: &[Option<Box<[u8]>>]) -> Result<()> {
    let limit = crate::types::MAX_PAYLOAD_BYTES;
    match payloads
        .iter()
        .position(|p| p.as_ref().is_some_and(|b| b.len() > limit))
    {
        None => Ok(()),
        Some(i) => Err(Error::invalid(format!(
            "the payload of point {} would be {} bytes as JSON; a point's payload is at most {} MiB",
            ids.get(i).map_or_else(|| format!("#{i}"), |id| id.to_string()),
            payloads[i].as_ref().map_or(0, |b| b.len()),
            limit >> 20
        ))),
    }
}

/// Check ids; with `unique`, a repeated id is an error naming both positions.
fn validate_ids(ids: &[PointId], unique: bool) -> Result<()> {
    let mut first_at: HashMap<&PointId, usize> = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        id.validate()
            .map_err(|e| Error::invalid(format!("ids[{i}]: {e}")))?;
        if unique {
            if let Some(j) = first_at.insert(id, i) {
                return Err(Error::invalid(format!(
                    "ids[{i}]: duplicate id {id} in the batch (first at ids[{j}])"
                )));
            }
        }
    }
    Ok(())
}
