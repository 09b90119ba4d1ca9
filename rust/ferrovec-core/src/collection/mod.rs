//! A collection: sealed, memory-mapped segments plus recent writes held in memory and in the log.
//!
//! Write path: validate the whole batch (nothing changes if any row is bad) → look up its ids →
//! append one log record → apply it in memory → wait for the log's durability promise. Writers
//! are serialised by `writer`; readers only take `state` for reading.
//!
//! Structural changes (`optimize.rs`) — sealing the appendable rows into a segment, merging and
//! indexing segments — run one at a time under `structure`, build their files without holding
//! `writer` or `state`, and take both only to switch the manifest and swap the new segment in.

//!
//! The methods of [`Collection`] live by concern: `open` (opening, replay), `sync` (the view
//! shared with other processes: catching up, the write and optimizer locks, publishing
//! manifests), `validate` (checking a batch), `write`, `read`, `payload_index`, `info`,
//! `lifecycle` (flush, optimize, close, drop) and `copy` (what snapshots, backups and the log
//! archive need).

mod budget;
mod copy;
mod explain;
mod filtered;
mod info;
mod lifecycle;
mod manifest;
mod observed;
mod open;
mod optimize;
mod payload_index;
mod query;
mod read;
mod retention;
pub mod search;
mod sparse_search;
mod state;
mod stats;
mod sync;
mod validate;
mod write;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::config::{CollectionConfig, StorageOptions};
use crate::error::{Error, Result};
use crate::io::FileSystem;
use crate::observe::metrics::CollectionMetrics;
use crate::shared::{Lease, Shared, WriteLock};
use crate::wal::Wal;
pub use budget::{MemoryBudget, Need};
pub use manifest::{Manifest, PayloadIndexDef, SegmentMeta};
use optimize::Optimizer;
pub use query::{Group, Lookups};
use state::State;

pub(crate) const SEGMENTS_DIR: &str = "segments";
pub(crate) const WAL_DIR: &str = "wal";
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
    /// What this process counts of the collection's calls, checkpoints and merges.
    metrics: CollectionMetrics,
    /// The store's memory budget, once the store has admitted the collection under it.
    budget: std::sync::OnceLock<Arc<MemoryBudget>>,
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

impl Collection {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn config(&self) -> &CollectionConfig {
        &self.config
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

    /// Dropped or replaced, by this process or another.
    pub fn is_retired(&self) -> bool {
        self.status.load(Ordering::Acquire) == DROPPED
            || self.shared.as_ref().is_some_and(Shared::retired)
    }

    fn note_write(&self) {
        let ms = self.opened.elapsed().as_millis() as u64;
        self.last_write_ms.store(ms, Ordering::Relaxed);
    }

    /// The file system this collection's files go through.
    pub(crate) fn file_system(&self) -> &dyn FileSystem {
        &*self.fs
    }

    /// The manifest as last written.
    pub(crate) fn manifest(&self) -> Manifest {
        self.writer.lock().clone()
    }
}
