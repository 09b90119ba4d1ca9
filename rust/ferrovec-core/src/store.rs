//! A store: one directory holding collections, guarded by an exclusive lock.
//!
//! ```text
//! <path>/ferrovec.store          marker: common header, kind "store" (identifies the directory)
//! <path>/LOCK                    flock'ed while open; holds the owner's pid
//! <path>/collections/<name>/     one collection (MANIFEST, segments/, wal/)
//! ```
//! Within one process, opening a path that is already open returns the same `Store`, so a
//! notebook cell or a reloaded web app that opens twice does not lock itself out.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::collection::{self, Collection, StorageOptions};
use crate::error::{Error, Result};
use crate::format::{FileKind, Header};
use crate::io::{FileSystem, LockOutcome, OsFs};
use crate::types::{CollectionConfig, CollectionInfo};

const MARKER: &str = "ferrovec.store";
const LOCK: &str = "LOCK";
const COLLECTIONS: &str = "collections";

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
    /// Continuous log archiving of every collection: (archive root, seal interval).
    log_archive: Mutex<Option<(PathBuf, Duration)>>,
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
        prepare_dir(fs.as_ref(), path)?;
        let canonical = path.canonicalize().map_err(|source| Error::Io {
            op: "resolve path",
            path: path.to_path_buf(),
            source,
        })?;
        let mut open = OPEN_STORES.lock();
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
        // A store of ours that is just closing (its last handle went away on another thread)
        // still holds the lock for a moment: wait for it rather than report ourselves.
        let deadline = Instant::now() + Duration::from_secs(10);
        let store = loop {
            match Self::open_with_fs(fs.clone(), &canonical, options) {
                Err(Error::StoreLocked { pid, .. })
                    if pid == std::process::id().to_string() && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                other => break other?,
            }
        };
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
            drop(store);
            let _ = std::fs::remove_dir_all(path);
        }
        result
    }

    /// Open a store through a given file system, outside the per-process registry (tests).
    pub fn open_with_fs(
        fs: Arc<dyn FileSystem>,
        path: &Path,
        options: StorageOptions,
    ) -> Result<Arc<Store>> {
        prepare_dir(fs.as_ref(), path)?;
        let guard = match fs.try_lock(&path.join(LOCK), &std::process::id().to_string())? {
            LockOutcome::Acquired(g) => g,
            LockOutcome::Held { holder } => {
                return Err(Error::StoreLocked {
                    path: path.to_path_buf(),
                    pid: if holder.is_empty() {
                        "unknown".into()
                    } else {
                        holder
                    },
                })
            }
        };
        let marker = path.join(MARKER);
        if fs.exists(&marker)? {
            let bytes = fs.read(&marker)?;
            Header::decode_whole(FileKind::Store, &bytes, &marker, true)?;
        } else {
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
            fs.create_dir_all(&path.join(COLLECTIONS))?;
            crate::segment::write_file(fs.as_ref(), &marker, FileKind::Store, 0, 0, &[])?;
            fs.sync_dir(path)?;
        }
        let cdir = path.join(COLLECTIONS);
        fs.create_dir_all(&cdir)?;
        let mut slots = BTreeMap::new();
        for name in fs.list_dir(&cdir)? {
            if name.starts_with('.') {
                // An interrupted create or drop; neither was ever acknowledged.
                log::info!("removing leftover {name} from an interrupted create or drop");
                fs.remove_dir_all(&cdir.join(&name))?;
                continue;
            }
            if collection::validate_name(&name).is_ok() && fs.is_dir(&cdir.join(&name))? {
                slots.insert(name, None);
            } else {
                log::warn!("ignoring unexpected entry {name} in {}", cdir.display());
            }
        }
        Ok(Arc::new(Store {
            path: Some(path.to_path_buf()),
            fs,
            options,
            lock: Mutex::new(Some(guard)),
            collections: Mutex::new(slots),
            closed: AtomicBool::new(false),
            log_archive: Mutex::new(None),
        }))
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
            log_archive: Mutex::new(None),
        })
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn options(&self) -> StorageOptions {
        self.options
    }

    fn check_open(&self) -> Result<()> {
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
        collection::validate_name(name)?;
        let mut slots = self.collections.lock();
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
        let col = match (&self.path, self.collection_dir(name)) {
            (Some(root), Some(dir)) => {
                let cdir = root.join(COLLECTIONS);
                let tmp = cdir.join(format!(".creating-{name}"));
                if self.fs.exists(&tmp)? {
                    self.fs.remove_dir_all(&tmp)?;
                }
                Collection::create_files(self.fs.as_ref(), &tmp, &config)?;
                self.fs.sync_dir(&tmp)?;
                self.fs.rename(&tmp, &dir)?;
                self.fs.sync_dir(&cdir)?;
                Collection::open(self.fs.clone(), &dir, name, self.options)?
            }
            _ => {
                config.validate()?;
                Collection::in_memory(name, config, self.options)
            }
        };
        self.apply_archive(&col)?;
        slots.insert(name.to_string(), Some(col.clone()));
        Ok(col)
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
        match slots.get(name) {
            None => Err(Error::CollectionNotFound(name.to_string())),
            Some(Some(c)) => Ok(c.clone()),
            Some(None) => {
                let dir = self
                    .collection_dir(name)
                    .ok_or_else(|| Error::CollectionNotFound(name.to_string()))?;
                let col = Collection::open(self.fs.clone(), &dir, name, self.options)?;
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
        Ok(self.collections.lock().keys().cloned().collect())
    }

    pub fn drop_collection(&self, name: &str) -> Result<()> {
        self.check_open()?;
        let mut slots = self.collections.lock();
        let Some(slot) = slots.remove(name) else {
            return Err(Error::CollectionNotFound(name.to_string()));
        };
        if let Some(col) = slot {
            col.mark_dropped();
        }
        if let (Some(root), Some(dir)) = (&self.path, self.collection_dir(name)) {
            let cdir = root.join(COLLECTIONS);
            let nonce = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let gone = cdir.join(format!(".dropped-{name}-{nonce}"));
            self.fs.rename(&dir, &gone)?;
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
        collection::validate_name(name)?;
        let (Some(root), Some(dir)) = (&self.path, self.collection_dir(name)) else {
            return Err(Error::invalid("cannot restore into an in-memory store"));
        };
        let cdir = root.join(COLLECTIONS);
        let mut slots = self.collections.lock();
        if let Some(slot) = slots.get(name) {
            if !replace {
                return Err(Error::CollectionExists(format!(
                    "{name} (pass replace=True to replace it)"
                )));
            }
            if let Some(col) = slot {
                col.mark_dropped();
            }
            slots.insert(name.to_string(), None);
            self.fs.exchange(staged, &dir)?;
            self.fs.sync_dir(&cdir)?;
            // `staged` now holds the old collection; its leading dot gets it removed at the
            // next open if this removal is interrupted.
            self.fs.remove_dir_all(staged)?;
        } else {
            self.fs.rename(staged, &dir)?;
            self.fs.sync_dir(&cdir)?;
            slots.insert(name.to_string(), None);
        }
        Ok(())
    }

    /// Information on every collection (loading each).
    pub fn info(&self) -> Result<Vec<CollectionInfo>> {
        let names = self.list_collections()?;
        names.iter().map(|n| self.collection(n)?.info()).collect()
    }

    /// Checkpoint every loaded collection, stop their logs and release the lock. Idempotent.
    pub fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
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
