//! A store: one directory holding collections, which any number of processes may have open.
//!
//! ```text
//! <path>/ferrovec.store          marker: common header, kind "store" (identifies the directory)
//! <path>/LOCK                    flock'ed shared by every process that has the store open
//! <path>/collections/<name>/     one collection (MANIFEST, SHARED, segments/, wal/)
//! <path>/damaged/<time>/         what `ferrovec repair` moved aside (`repair.rs`)
//! ```
//! Processes coordinate per collection (`shared.rs`). The store lock only keeps out a process
//! that cannot share (an older ferrovec takes it exclusively), and lets the first process to open
//! the store clean up what an interrupted create or drop left: it takes the lock exclusively
//! for that moment if no one else holds it.
//!
//! Within one process, opening a path that is already open returns the same `Store`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::collection::{Collection, MemoryBudget};
use crate::config::CollectionConfig;
use crate::config::StorageOptions;
use crate::error::{Error, Result};
use crate::format::{FileKind, Header};
use crate::info::CollectionInfo;
use crate::io::{FileSystem, LockOutcome, OsFs};

/// Set to 1 to open a store on a file system whose locks cannot be trusted (`io::
/// UNSHAREABLE_FILE_SYSTEMS`), accepting that only one process may then use it at a time.
pub const ALLOW_NETWORK_FS: &str = "FERROVEC_ALLOW_NETWORK_FS";
pub(crate) const MARKER: &str = "ferrovec.store";
pub(crate) const LOCK: &str = "LOCK";
pub(crate) const COLLECTIONS: &str = "collections";

/// Stores open in this process, by canonical path.
static OPEN_STORES: LazyLock<Mutex<HashMap<PathBuf, Weak<Store>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// A collection slot: known from the directory listing, loaded on first use.
type Slot = Option<Arc<Collection>>;

pub struct Store {
    /// `None` for an in-memory store.
    path: Option<PathBuf>,
    fs: Arc<dyn FileSystem>,
    options: StorageOptions,
    lock: Mutex<Option<Box<dyn Send + Sync>>>,
    collections: Mutex<BTreeMap<String, Slot>>,
    closed: AtomicBool,
    /// A collection was moved into `collections/` (a restore) but the directory's fsync failed:
    /// until a retry succeeds, no collection is opened, so no write is acknowledged into one
    /// whose place a power loss could undo.
    unsynced: AtomicBool,
    /// Continuous log archiving of every collection: (archive root, seal interval).
    log_archive: Mutex<Option<(PathBuf, Duration)>>,
    /// What serving the loaded collections keeps resident, under `memory_limit_bytes`.
    budget: Arc<MemoryBudget>,
    /// The process that opened the store (a child after `fork` must open it again).
    pid: u32,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Open (creating if needed) the store at `path`. Returns the already-open store if this
    /// process has it open; its options must then be the same.
    pub fn open(path: &Path, options: StorageOptions) -> Result<Arc<Store>> {
        let fs: Arc<dyn FileSystem> = Arc::new(OsFs);
        if options.read_only {
            if !fs.is_dir(path)? || !fs.exists(&path.join(MARKER))? {
                return Err(Error::invalid(format!(
                    "there is no ferrovec store at {} to open read-only",
                    path.display()
                )));
            }
        } else {
            prepare_dir(fs.as_ref(), path)?;
        }
        let canonical = path.canonicalize().map_err(|source| Error::Io {
            op: "resolve path",
            path: path.to_path_buf(),
            source,
        })?;
        let mut open = OPEN_STORES.lock();
        if let Some(stale) = open.get(&canonical).and_then(Weak::upgrade) {
            if stale.pid != std::process::id() {
                // Inherited through fork: the parent's, with its descriptors and locks. Never
                // close it from here.
                open.remove(&canonical);
                std::mem::forget(stale);
            }
        }
        if let Some(store) = open.get(&canonical).and_then(Weak::upgrade) {
            if store.options != options {
                return Err(Error::invalid(format!(
                    "{} is already open in this process with other options ({:?}); close it first",
                    canonical.display(),
                    store.options.durability
                )));
            }
            return Ok(store);
        }
        let store = Self::open_with_fs(fs.clone(), &canonical, options)?;
        open.retain(|_, w| w.strong_count() > 0);
        open.insert(canonical, Arc::downgrade(&store));
        Ok(store)
    }

    /// The store at `path` as this process has it open (whatever its options), or opened now
    /// with `options`.
    fn open_any(path: &Path, options: StorageOptions) -> Result<Arc<Store>> {
        if let Ok(canonical) = path.canonicalize() {
            if let Some(store) = OPEN_STORES.lock().get(&canonical).and_then(Weak::upgrade) {
                return Ok(store);
            }
        }
        Self::open(path, options)
    }

    /// Run a restore into the store at `path`: the store as this process has it open, else
    /// opened (and locked) now, created if missing. If the restore fails where there was no
    /// store, nothing is left behind.
    pub fn restore_into<T>(path: &Path, restore: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        let existed = path.exists();
        let store = Self::open_any(path, StorageOptions::default())?;
        let result = restore(&store);
        if result.is_err() && !existed {
            let fs = store.fs.clone();
            drop(store);
            // The restore's own error is the one to report; a store it created is removed as
            // well as can be.
            let _ = fs.remove_dir_all(path);
        }
        result
    }

    /// Open a store through a given file system, outside the per-process registry (tests).
    pub fn open_with_fs(
        fs: Arc<dyn FileSystem>,
        path: &Path,
        options: StorageOptions,
    ) -> Result<Arc<Store>> {
        if !options.read_only {
            prepare_dir(fs.as_ref(), path)?;
        }
        check_file_system(fs.as_ref(), path)?;
        let me = std::process::id().to_string();
        let lock_path = path.join(LOCK);
        // Alone (the exclusive lock is free): clean up, then share. Otherwise share at once,
        // giving a process that holds it exclusively for a cleanup a moment to finish.
        let alone = match options.read_only {
            true => None, // (taking it would write our pid into LOCK)
            false => match fs.try_lock(&lock_path, &me, true)? {
                LockOutcome::Acquired(g) => Some(g),
                LockOutcome::Held { .. } => None,
            },
        };
        let marker = path.join(MARKER);
        let cdir = path.join(COLLECTIONS);
        if alone.is_some() {
            // No other process has the store open: create it if new, and remove what an
            // interrupted create or drop left (neither was ever acknowledged).
            if !fs.exists(&marker)? {
                let foreign: Vec<String> = fs
                    .list_dir(path)?
                    .into_iter()
                    .filter(|n| n != LOCK && n != COLLECTIONS)
                    .collect();
                if !foreign.is_empty() {
                    return Err(Error::corrupt(
                        path,
                        format!(
                            "not a ferrovec store: the directory has no {MARKER} file and holds other files ({})",
                            foreign.join(", ")
                        ),
                    ));
                }
                fs.create_dir_all(&cdir)?;
                crate::format::write_file(fs.as_ref(), &marker, FileKind::Store, 0, 0, &[])?;
                fs.sync_dir(path)?;
            }
            fs.create_dir_all(&cdir)?;
            for name in fs.list_dir(&cdir)? {
                if name.starts_with('.') {
                    log::info!("removing leftover {name} from an interrupted create or drop");
                    fs.remove_dir_all(&cdir.join(&name))?;
                }
            }
        }
        drop(alone);
        let deadline = Instant::now() + Duration::from_secs(5);
        let guard = loop {
            match fs.try_lock(&lock_path, &me, false)? {
                LockOutcome::Acquired(g) => break g,
                LockOutcome::Held { .. } if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                LockOutcome::Held { holder } => return Err(Error::store_locked(path, holder)),
            }
        };
        // Whoever created the store did so holding the lock exclusively, so it is complete.
        if !fs.exists(&marker)? {
            return Err(Error::invalid(format!(
                "there is no ferrovec store at {}{}",
                path.display(),
                if options.read_only {
                    " to open read-only"
                } else {
                    ""
                }
            )));
        }
        Header::decode_whole(FileKind::Store, &fs.read(&marker)?, &marker, true)?;
        let store = Store {
            path: Some(path.to_path_buf()),
            fs,
            options,
            lock: Mutex::new(Some(guard)),
            collections: Mutex::new(BTreeMap::new()),
            closed: AtomicBool::new(false),
            unsynced: AtomicBool::new(false),
            log_archive: Mutex::new(None),
            budget: MemoryBudget::new(options.memory_limit_bytes),
            pid: std::process::id(),
        };
        store.refresh_slots(&mut store.collections.lock())?;
        Ok(Arc::new(store))
    }

    /// Bring the collection slots in line with the directory, where other processes may have
    /// created or dropped collections.
    fn refresh_slots(&self, slots: &mut BTreeMap<String, Slot>) -> Result<()> {
        let Some(root) = &self.path else {
            return Ok(());
        };
        let cdir = root.join(COLLECTIONS);
        let mut present = Vec::new();
        for name in self.fs.list_dir(&cdir)? {
            if name.starts_with('.') {
                continue;
            }
            if crate::config::validate_name(&name).is_ok() && self.fs.is_dir(&cdir.join(&name))? {
                present.push(name);
            } else {
                log::warn!("ignoring unexpected entry {name} in {}", cdir.display());
            }
        }
        slots.retain(|name, slot| {
            let keep = present.contains(name);
            if let (false, Some(col)) = (keep, slot.as_ref()) {
                col.mark_dropped();
            }
            keep
        });
        for name in present {
            slots.entry(name).or_insert(None);
        }
        Ok(())
    }

    /// A store that keeps everything in memory and writes nothing.
    pub fn in_memory(options: StorageOptions) -> Arc<Store> {
        Arc::new(Store {
            path: None,
            fs: Arc::new(OsFs),
            options,
            lock: Mutex::new(None),
            collections: Mutex::new(BTreeMap::new()),
            closed: AtomicBool::new(false),
            unsynced: AtomicBool::new(false),
            log_archive: Mutex::new(None),
            budget: MemoryBudget::new(options.memory_limit_bytes),
            pid: std::process::id(),
        })
    }

    /// The file system every file operation of this store goes through.
    pub(crate) fn fs(&self) -> &dyn FileSystem {
        &*self.fs
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn options(&self) -> StorageOptions {
        self.options
    }

    fn check_open(&self) -> Result<()> {
        if self.pid != std::process::id() {
            return Err(Error::invalid(format!(
                "the store was opened by process {} before a fork; open it again in this process",
                self.pid
            )));
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed("the store is closed".into()));
        }
        Ok(())
    }

    fn collection_dir(&self, name: &str) -> Option<PathBuf> {
        self.path.as_ref().map(|p| p.join(COLLECTIONS).join(name))
    }

    pub fn create_collection(
        &self,
        name: &str,
        config: CollectionConfig,
        exist_ok: bool,
    ) -> Result<Arc<Collection>> {
        self.check_open()?;
        crate::config::validate_name(name)?;
        self.check_writable()?;
        let mut slots = self.collections.lock();
        self.refresh_slots(&mut slots)?;
        if slots.contains_key(name) {
            if !exist_ok {
                return Err(Error::CollectionExists(name.to_string()));
            }
            let existing = self.load(&mut slots, name)?;
            let have = existing.config();
            if have.vectors != config.vectors {
                let describe = |c: &CollectionConfig| {
                    c.vectors
                        .iter()
                        .map(|v| match v.name.as_str() {
                            "" => format!("dim {} and distance {}", v.dim, v.distance.name()),
                            n => format!("{n:?}: dim {}, {}", v.dim, v.distance.name()),
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                };
                return Err(Error::invalid(format!(
                    "collection {name:?} exists with {}, not {}",
                    describe(have),
                    describe(&config)
                )));
            }
            return Ok(existing);
        }
        if slots.len() >= self.options.max_collections {
            return Err(Error::invalid(format!(
                "the store holds {} collections, the most it may; drop one first",
                slots.len()
            )));
        }
        let col = match (&self.path, self.collection_dir(name)) {
            (Some(root), Some(dir)) => {
                let cdir = root.join(COLLECTIONS);
                let tmp = cdir.join(format!(".creating-{name}-{}", unique_suffix()));
                Collection::create_files(self.fs.as_ref(), &tmp, &config)?;
                self.fs.sync_dir(&tmp)?;
                // Another process may have created it meanwhile: the rename onto its
                // (non-empty) directory fails, and it is theirs.
                if let Err(e) = self.fs.rename(&tmp, &dir) {
                    self.fs.remove_dir_all(&tmp)?;
                    if !self.fs.is_dir(&dir)? {
                        return Err(e);
                    }
                    drop(slots);
                    return self.create_collection(name, config, exist_ok);
                }
                self.fs.sync_dir(&cdir)?;
                Collection::open(self.fs.clone(), &dir, name, self.options)?
            }
            _ => {
                config.validate()?;
                Collection::in_memory(name, config, self.options)
            }
        };
        self.admit(&col)?;
        self.apply_archive(&col)?;
        slots.insert(name.to_string(), Some(col.clone()));
        Ok(col)
    }

    /// Take a collection just loaded or created under the store's memory budget, or close it
    /// and say why it does not fit.
    fn admit(&self, col: &Arc<Collection>) -> Result<()> {
        if let Err(e) = self.budget.admit(col) {
            // It was only opened: closing it writes nothing the caller asked for.
            col.close()?;
            return Err(e);
        }
        Ok(())
    }

    /// Archive every sealed log file of every collection into `<dir>/<collection>/`, sealing
    /// each collection's open log file at least every `every`; `None` turns archiving off.
    /// Point-in-time restores replay these files (`backup::restore`).
    pub fn set_log_archive(&self, dir: Option<&Path>, every: Duration) -> Result<()> {
        self.check_open()?;
        if self.path.is_none() {
            return Err(Error::invalid("an in-memory store has no log to archive"));
        }
        *self.log_archive.lock() = dir.map(|d| (d.to_path_buf(), every));
        let loaded: Vec<Arc<Collection>> = self
            .collections
            .lock()
            .values()
            .flatten()
            .cloned()
            .collect();
        for col in loaded {
            col.set_log_archive(dir.map(|d| d.join(col.name())), every)?;
        }
        Ok(())
    }

    /// Give a collection this store's log-archive setting. A collection starts with archiving
    /// off, so there is nothing to do when the store has none.
    fn apply_archive(&self, col: &Collection) -> Result<()> {
        match self.log_archive.lock().clone() {
            Some((dir, every)) => col.set_log_archive(Some(dir.join(col.name())), every),
            None => Ok(()),
        }
    }

    fn load(&self, slots: &mut BTreeMap<String, Slot>, name: &str) -> Result<Arc<Collection>> {
        if slots
            .get(name)
            .is_none_or(|s| s.as_ref().is_some_and(|c| c.is_retired()))
        {
            // Created, dropped or replaced by another process since this one looked.
            slots.remove(name);
            self.refresh_slots(slots)?;
        }
        match slots.get(name) {
            None => Err(Error::CollectionNotFound(name.to_string())),
            Some(Some(c)) => Ok(c.clone()),
            Some(None) => {
                let dir = self
                    .collection_dir(name)
                    .ok_or_else(|| Error::CollectionNotFound(name.to_string()))?;
                if self.unsynced.load(Ordering::Acquire) {
                    self.fs.sync_dir(dir.parent().unwrap_or(&dir))?;
                    self.unsynced.store(false, Ordering::Release);
                }
                let col = Collection::open(self.fs.clone(), &dir, name, self.options)?;
                self.admit(&col)?;
                self.apply_archive(&col)?;
                slots.insert(name.to_string(), Some(col.clone()));
                Ok(col)
            }
        }
    }

    /// The named collection, loaded (segments mapped, log replayed) on first use.
    pub fn collection(&self, name: &str) -> Result<Arc<Collection>> {
        self.check_open()?;
        let mut slots = self.collections.lock();
        self.load(&mut slots, name)
    }

    pub fn list_collections(&self) -> Result<Vec<String>> {
        self.check_open()?;
        let mut slots = self.collections.lock();
        self.refresh_slots(&mut slots)?;
        Ok(slots.keys().cloned().collect())
    }

    fn check_writable(&self) -> Result<()> {
        if self.options.read_only {
            return Err(Error::ReadOnly(format!(
                "the store at {} is open read-only",
                self.path.as_deref().unwrap_or(Path::new("")).display()
            )));
        }
        Ok(())
    }

    pub fn drop_collection(&self, name: &str) -> Result<()> {
        self.check_open()?;
        self.check_writable()?;
        let mut slots = self.collections.lock();
        self.refresh_slots(&mut slots)?;
        let Some(slot) = slots.remove(name) else {
            return Err(Error::CollectionNotFound(name.to_string()));
        };
        if let Some(dir) = self.collection_dir(name) {
            // Every process that has it open fails with CollectionNotFound from its next call.
            crate::shared::retire(&dir)?;
        }
        if let Some(col) = slot {
            col.mark_dropped();
        }
        if let (Some(root), Some(dir)) = (&self.path, self.collection_dir(name)) {
            let cdir = root.join(COLLECTIONS);
            let gone = cdir.join(format!(".dropped-{name}-{}", unique_suffix()));
            if let Err(e) = self.fs.rename(&dir, &gone) {
                if !self.fs.is_dir(&dir)? {
                    // Dropped by another process at the same time.
                    return Err(Error::CollectionNotFound(name.to_string()));
                }
                return Err(e);
            }
            self.fs.sync_dir(&cdir)?;
            self.fs.remove_dir_all(&gone)?;
        }
        Ok(())
    }

    /// Put the collection directory `staged` (inside this store's `collections/`, named with a
    /// leading dot) in place as collection `name`. An existing collection is replaced only if
    /// `replace`: the two directories are swapped atomically (`renameat2(RENAME_EXCHANGE)`), so
    /// a crash leaves either the old collection or the new one, never neither; the old one's
    /// handles then fail with `CollectionNotFound`.
    pub(crate) fn install_collection(
        &self,
        name: &str,
        staged: &Path,
        replace: bool,
    ) -> Result<()> {
        self.check_open()?;
        self.check_writable()?;
        crate::config::validate_name(name)?;
        let (Some(root), Some(dir)) = (&self.path, self.collection_dir(name)) else {
            return Err(Error::invalid("cannot restore into an in-memory store"));
        };
        let cdir = root.join(COLLECTIONS);
        let mut slots = self.collections.lock();
        self.refresh_slots(&mut slots)?;
        if let Some(slot) = slots.get(name) {
            if !replace {
                return Err(Error::CollectionExists(format!(
                    "{name} (pass replace=True to replace it)"
                )));
            }
            crate::shared::retire(&dir)?;
            if let Some(col) = slot {
                col.mark_dropped();
            }
            slots.insert(name.to_string(), None);
            if let Err(e) = self.fs.exchange(staged, &dir) {
                // Nothing moved: the old collection is still in place, and usable again.
                crate::shared::reinstate(&dir)?;
                return Err(e);
            }
            self.sync_installed(&cdir)?;
            // `staged` now holds the old collection; its leading dot gets it removed at the
            // next open if this removal is interrupted.
            self.fs.remove_dir_all(staged)?;
        } else {
            self.fs.rename(staged, &dir)?;
            slots.insert(name.to_string(), None);
            self.sync_installed(&cdir)?;
        }
        Ok(())
    }

    /// Make a collection just moved into `cdir` durable; on failure, hold back every open
    /// until a retry succeeds (see `unsynced`).
    fn sync_installed(&self, cdir: &Path) -> Result<()> {
        self.fs.sync_dir(cdir).inspect_err(|_| {
            self.unsynced.store(true, Ordering::Release);
        })
    }

    /// Information on every collection (loading each).
    pub fn info(&self) -> Result<Vec<CollectionInfo>> {
        let names = self.list_collections()?;
        names.iter().map(|n| self.collection(n)?.info()).collect()
    }

    /// Run the store-wide call `f` (a snapshot or backup of `names`), counted and timed as
    /// `op` in the metrics of each of those collections.
    pub(crate) fn observed<T>(
        &self,
        op: crate::observe::Op,
        names: &[String],
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let started = Instant::now();
        let result = f();
        let took = started.elapsed();
        for n in names {
            if let Ok(col) = self.collection(n) {
                col.record_op(op, took, result.is_err());
            }
        }
        result
    }

    /// Every collection's metrics in Prometheus' text format; only the families `names` if
    /// given (an unknown name is refused), only `collection` if given.
    pub fn metrics(&self, names: Option<&[String]>, collection: Option<&str>) -> Result<String> {
        let list = match collection {
            Some(c) => vec![c.to_string()],
            None => self.list_collections()?,
        };
        let smaps = crate::observe::memory::read_smaps();
        let samples = list
            .iter()
            .map(|n| self.collection(n)?.metrics_sample(&smaps))
            .collect::<Result<Vec<_>>>()?;
        crate::observe::prometheus::encode(samples, names)
    }

    /// The newest `limit` slow operations recorded on this store (newest first), of
    /// `collection` if given (see `observe::slow`).
    pub fn slow_ops(&self, limit: usize, collection: Option<&str>) -> Vec<serde_json::Value> {
        crate::observe::slow::recent(limit, self.path(), collection)
            .iter()
            .map(crate::observe::slow::SlowOp::to_json)
            .collect()
    }

    /// Checkpoint every loaded collection, stop their logs and release the lock. Idempotent.
    pub fn close(&self) -> Result<()> {
        if self.pid != std::process::id() || self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let mut first_err = None;
        for col in self.collections.lock().values().flatten() {
            if let Err(e) = col.close() {
                log::error!("closing collection {}: {e}", col.name());
                first_err.get_or_insert(e);
            }
        }
        self.lock.lock().take();
        first_err.map_or(Ok(()), Err)
    }
}

impl Store {
    /// Close every store open in this process through `open` (the interpreter is exiting):
    /// each checkpoints its collections and stops their optimizers. Errors are logged.
    pub fn close_all_open() {
        let open: Vec<Arc<Store>> = OPEN_STORES
            .lock()
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        for store in open {
            if let Err(e) = store.close() {
                log::error!("closing the store at {:?} failed: {e}", store.path);
            }
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            log::error!("closing the store at {:?} failed: {e}", self.path);
        }
    }
}

/// A name part no other process or call uses at the same time.
pub(crate) fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{nanos}", std::process::id())
}

/// Refuse a store on a file system whose locks several processes cannot rely on, unless the
/// user said otherwise (`ALLOW_NETWORK_FS`).
fn check_file_system(fs: &dyn FileSystem, path: &Path) -> Result<()> {
    let Some(name) = crate::io::unshareable_file_system(fs.fs_type(path)?) else {
        return Ok(());
    };
    if std::env::var(ALLOW_NETWORK_FS).is_ok_and(|v| v == "1") {
        log::warn!(
            "{} is on {name}; opening it because {ALLOW_NETWORK_FS}=1: only one process may use it at a time",
            path.display()
        );
        return Ok(());
    }
    Err(Error::invalid(format!(
        "{} is on a {name} file system, where the file locks that let processes share a store \
         are not reliable; ferrovec does not support stores there. Put the store on a local \
         disk, or set {ALLOW_NETWORK_FS}=1 if you are sure only one process will ever open it",
        path.display()
    )))
}

/// Create the store directory if it does not exist; refuse a path that is a file.
fn prepare_dir(fs: &dyn FileSystem, path: &Path) -> Result<()> {
    if fs.exists(path)? && !fs.is_dir(path)? {
        return Err(Error::invalid(format!(
            "{} exists and is not a directory",
            path.display()
        )));
    }
    if !fs.exists(path)? {
        fs.create_dir_all(path)?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs.sync_dir(parent)?;
        }
    }
    Ok(())
}
