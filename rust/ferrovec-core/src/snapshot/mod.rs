//! Snapshots: one archive file (tar, zstd-compressed) holding a consistent copy of one or every
//! collection of a store, and a restore that trusts nothing in it.
//!
//! Taking one: each collection checkpoints (writers wait for that, as for any checkpoint), then
//! the files its manifest names are hard-linked into a staging directory while the collection's
//! structure lock keeps them from being retired. Sealed files are immutable, so the links are a
//! frozen copy; the lock is released and the archive is written from the links while writes go
//! on. The archive is written under a temporary name, fsynced and renamed; a JSON sidecar with its
//! SHA-256 is written last, and only archives with a sidecar are listed.
//!
//! Restoring: entries are read in one pass. The first must be `SNAPSHOT.json` (format, version,
//! every file's size and SHA-256); then only regular files at the paths it lists are accepted,
//! with the sizes it gives, into a staging directory inside the target store; every checksum is
//! checked before anything is renamed into place. See `docs/FORMAT.md`, "Snapshots".

mod archive;
mod restore;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub(crate) use archive::copy_hashed;
pub use archive::verify_archive;
use archive::{hash_file, write_archive};
pub use restore::restore;
pub(crate) use restore::Staging;

use crate::cancel::Cancel;
use crate::collection::Collection;
use crate::error::{Error, IoContext, Result};
use crate::format::FORMAT_VERSION;
use crate::io::FileSystem;
use crate::store::Store;

/// Extension of snapshot archives; the sidecar adds `.json`.
pub const EXTENSION: &str = "fvsnap";
/// Version of the archive layout (`SNAPSHOT.json` and the entry paths).
pub const SNAPSHOT_VERSION: u32 = 1;
const INDEX: &str = "SNAPSHOT.json";
const FORMAT_NAME: &str = "ferrovec-snapshot";
/// Refuse archives whose index or file list is larger than this.
const MAX_INDEX_BYTES: u64 = 16 << 20;
const MAX_FILES: usize = 1_000_000;
const ZSTD_LEVEL: i32 = 3;

/// What a snapshot holds, as listed and returned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    pub name: String,
    /// The archive file.
    pub path: PathBuf,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub size_bytes: u64,
    /// SHA-256 of the archive file, hex.
    pub sha256: String,
    /// Per collection: the log sequence number the snapshot holds everything up to.
    pub collections: BTreeMap<String, u64>,
}

impl SnapshotInfo {
    /// The sequence number, for a snapshot of one collection.
    pub fn sequence(&self) -> Option<u64> {
        (self.collections.len() == 1).then(|| self.collections.values().copied().next())?
    }
}

/// The archive's first entry.
#[derive(Debug, Serialize, Deserialize)]
struct Index {
    format: String,
    version: u32,
    store_format: u32,
    name: String,
    created_at: String,
    collections: BTreeMap<String, u64>,
    /// Each collection's configuration, for people and tools reading the archive (restore
    /// takes it from the collection's MANIFEST).
    #[serde(default)]
    configs: BTreeMap<String, crate::config::CollectionConfig>,
    files: Vec<FileEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct FileEntry {
    path: String,
    size: u64,
    sha256: String,
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx("fsync directory", dir)
}

fn now_rfc3339() -> (String, String) {
    let now = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now());
    (
        now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        now.format("%Y%m%dT%H%M%S%.6fZ").to_string(),
    )
}

/// The default snapshot directory of a store.
pub fn default_dir(store_root: &Path) -> PathBuf {
    store_root.join("snapshots")
}

impl Store {
    fn snapshot_dir(&self, dest: Option<&Path>) -> Result<PathBuf> {
        let root = self
            .path()
            .ok_or_else(|| Error::invalid("an in-memory store has no snapshots"))?;
        let dir = dest.map_or_else(|| default_dir(root), Path::to_path_buf);
        self.fs().create_dir_all(&dir)?;
        let canon = dir.canonicalize().ctx("resolve path", &dir)?;
        if canon.starts_with(root.join("collections")) {
            return Err(Error::invalid(format!(
                "snapshots cannot go inside a collection's folder ({}): dropping the collection would drop them",
                dir.display()
            )));
        }
        Ok(canon)
    }

    /// Write a snapshot of `collection` (or of every collection) into `dest` (default: the
    /// store's `snapshots/` folder). Writes continue meanwhile; see the module doc. `cancel`
    /// stops it until the archive is complete, leaving no trace of it.
    pub fn create_snapshot(
        &self,
        collection: Option<&str>,
        dest: Option<&Path>,
        cancel: &Cancel,
    ) -> Result<SnapshotInfo> {
        let root = self
            .path()
            .ok_or_else(|| Error::invalid("an in-memory store has no snapshots"))?
            .to_path_buf();
        let dir = self.snapshot_dir(dest)?;
        let names = match collection {
            Some(n) => vec![n.to_string()],
            None => self.list_collections()?,
        };
        let (created_at, stamp) = now_rfc3339();
        let name = format!("{}-{stamp}", collection.unwrap_or("store"));
        // Staging beside the collections (same file system, so hard links work).
        let stage_parent = default_dir(&root);
        let fs = self.fs();
        fs.create_dir_all(&stage_parent)?;
        remove_leftovers(fs, &stage_parent)?;
        if stage_parent != dir {
            remove_leftovers(fs, &dir)?;
        }
        let stage = stage_parent.join(format!(".staging-{name}"));
        let result = self.observed(crate::observe::Op::Snapshot, &names, || {
            let mut sequences = BTreeMap::new();
            let mut configs = BTreeMap::new();
            let mut files: Vec<(String, PathBuf)> = Vec::new();
            for n in &names {
                let col = self.collection(n)?;
                configs.insert(n.clone(), col.config().clone());
                let col_stage = stage.join("collections").join(n);
                let (seq, rel) = col.stage_snapshot(&col_stage)?;
                sequences.insert(n.clone(), seq);
                for r in rel {
                    files.push((format!("collections/{n}/{r}"), col_stage.join(&r)));
                }
            }
            let mut entries = Vec::with_capacity(files.len());
            for (rel, path) in &files {
                let (sha256, size) = hash_file(path, cancel)?;
                entries.push(FileEntry {
                    path: rel.clone(),
                    size,
                    sha256,
                });
            }
            let index = Index {
                format: FORMAT_NAME.into(),
                version: SNAPSHOT_VERSION,
                store_format: FORMAT_VERSION,
                name: name.clone(),
                created_at: created_at.clone(),
                collections: sequences.clone(),
                configs,
                files: entries,
            };
            let archive = dir.join(format!("{name}.{EXTENSION}"));
            let partial = dir.join(format!(".{name}.{EXTENSION}.partial"));
            let written = write_archive(fs, &partial, &index, &files, cancel);
            let (sha256, size_bytes) = match written {
                Ok(w) => w,
                Err(e) => {
                    if fs.exists(&partial)? {
                        fs.remove_file(&partial)?;
                    }
                    return Err(e);
                }
            };
            fs.rename(&partial, &archive)?;
            fs.sync_dir(&dir)?;
            let info = SnapshotInfo {
                name: name.clone(),
                path: archive.clone(),
                created_at,
                size_bytes,
                sha256,
                collections: sequences,
            };
            write_json_atomic(fs, &sidecar_path(&info.path), &info)?;
            Ok(info)
        });
        if fs.exists(&stage)? {
            fs.remove_dir_all(&stage)?;
        }
        let info = result?;
        log::info!(
            "snapshot {} written: {} bytes, {} collection(s)",
            info.name,
            info.size_bytes,
            info.collections.len()
        );
        Ok(info)
    }

    /// Snapshots in `dest` (default: the store's `snapshots/` folder), oldest first. Only
    /// complete ones (archive and sidecar) are listed.
    pub fn list_snapshots(&self, dest: Option<&Path>) -> Result<Vec<SnapshotInfo>> {
        let dir = self.snapshot_dir(dest)?;
        list_dir(&dir)
    }

    /// Remove a snapshot (archive and sidecar) by name from `dest`.
    pub fn delete_snapshot(&self, name: &str, dest: Option<&Path>) -> Result<()> {
        let dir = self.snapshot_dir(dest)?;
        let info = list_dir(&dir)?
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| {
                Error::invalid(format!("no snapshot named {name:?} in {}", dir.display()))
            })?;
        // Sidecar first: from then on the snapshot is not listed, whatever happens next.
        let fs = self.fs();
        fs.remove_file(&sidecar_path(&info.path))?;
        fs.sync_dir(&dir)?;
        fs.remove_file(&info.path)?;
        fs.sync_dir(&dir)
    }

    /// Move collection directories restored into `staged` (`<staged>/<name>`) into place.
    fn install_restored(&self, staged: &Path, names: &[String], replace: bool) -> Result<()> {
        for n in names {
            if !replace && self.list_collections()?.contains(n) {
                return Err(Error::CollectionExists(format!(
                    "{n} (pass replace=True to replace it)"
                )));
            }
        }
        for n in names {
            self.install_collection(n, &staged.join(n), replace)?;
        }
        Ok(())
    }
}

impl Collection {
    /// Checkpoint, then hard-link (or copy) the manifest and every file it names into `stage`.
    /// Returns the checkpoint's sequence number and the staged files' relative paths.
    pub fn stage_snapshot(&self, stage: &Path) -> Result<(u64, Vec<String>)> {
        let (dir, guard) = self.checkpoint_for_copy()?;
        let manifest = self.manifest();
        let fs = self.file_system();
        fs.create_dir_all(&stage.join("segments"))?;
        let mut rel = vec!["MANIFEST".to_string()];
        rel.extend(
            manifest
                .live_segment_files()
                .into_iter()
                .map(|f| format!("segments/{f}")),
        );
        for r in &rel {
            let (from, to) = (dir.join(r), stage.join(r));
            crate::io::link_or_copy(fs, &from, &to)?;
        }
        drop(guard);
        Ok((manifest.checkpoint_seq, rel))
    }
}

fn sidecar_path(archive: &Path) -> PathBuf {
    let mut s = archive.as_os_str().to_owned();
    s.push(".json");
    PathBuf::from(s)
}

/// Write `value` as JSON to `path` all or nothing: into `.<name>.partial` beside it, fsynced,
/// renamed over `path`, the directory fsynced.
pub(crate) fn write_json_atomic(
    fs: &dyn FileSystem,
    path: &Path,
    value: &impl Serialize,
) -> Result<()> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(Error::invalid(format!(
            "{} is not a file path",
            path.display()
        )));
    };
    let tmp = dir.join(format!(".{}.partial", name.to_string_lossy()));
    let body = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::internal(format!("{} does not encode: {e}", path.display())))?;
    let f = fs.create(&tmp)?;
    f.write_all(&body)?;
    f.sync_data()?;
    fs.rename(&tmp, path)?;
    fs.sync_dir(dir)
}

/// Remove what an interrupted snapshot left: staging directories, partial files, and an
/// archive whose sidecar was never written (a crash between the two renames).
fn remove_leftovers(fs: &dyn FileSystem, dir: &Path) -> Result<()> {
    let Ok(names) = fs.list_dir(dir) else {
        return Ok(());
    };
    for name in names {
        let p = dir.join(&name);
        if name.starts_with(".staging-") {
            fs.remove_dir_all(&p)?;
        } else if name.starts_with('.') && name.ends_with(".partial") {
            fs.remove_file(&p)?;
        } else if name.ends_with(&format!(".{EXTENSION}")) && !fs.exists(&sidecar_path(&p))? {
            log::info!("removing {name}: its snapshot was interrupted before it was listed");
            fs.remove_file(&p)?;
        }
    }
    Ok(())
}

fn list_dir(dir: &Path) -> Result<Vec<SnapshotInfo>> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(dir).ctx("list", dir)?;
    for e in rd {
        let e = e.ctx("list", dir)?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(&format!(".{EXTENSION}.json")) {
            continue;
        }
        let p = e.path();
        let body = std::fs::read(&p).ctx("read", &p)?;
        let Ok(mut info) = serde_json::from_slice::<SnapshotInfo>(&body) else {
            log::warn!("ignoring unreadable snapshot sidecar {}", p.display());
            continue;
        };
        // The sidecar sits beside its archive: trust its location over the recorded one.
        info.path = dir.join(format!("{}.{EXTENSION}", info.name));
        if info.path.is_file() {
            out.push(info);
        }
    }
    out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.name.cmp(&b.name)));
    Ok(out)
}

/// An archive path: a local path or a `file://` URL; nothing is ever fetched.
pub fn local_archive(spec: &str) -> Result<PathBuf> {
    if let Some(rest) = spec.strip_prefix("file://") {
        if !rest.starts_with('/') {
            return Err(Error::invalid(format!(
                "{spec:?}: only file:///absolute/path URLs are accepted"
            )));
        }
        return Ok(PathBuf::from(rest));
    }
    if spec.contains("://") {
        return Err(Error::invalid(format!(
            "{spec:?}: snapshots are read from local paths or file:// URLs only, never fetched"
        )));
    }
    Ok(PathBuf::from(spec))
}
