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

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::collection::Collection;
use crate::error::{Error, IoContext, Result};
use crate::format::{check_version, FORMAT_VERSION};
use crate::io::{FileSystem, WriteFile};
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
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx("fsync directory", dir)
}

/// Read `from` whole, hashing it, and (with `to`) copy it into a new file there, fsynced.
/// `progress` gets the bytes of each chunk. Returns (SHA-256 hex, bytes).
pub(crate) fn copy_hashed(
    from: &Path,
    to: Option<&Path>,
    progress: &mut dyn FnMut(u64),
) -> Result<(String, u64)> {
    let mut src = BufReader::with_capacity(1 << 20, File::open(from).ctx("open", from)?);
    let mut dst = match to {
        Some(to) => {
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).ctx("create directory", parent)?;
            }
            let f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(to)
                .ctx("create", to)?;
            Some((f, to))
        }
        None => None,
    };
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = match src.read(&mut buf) {
            // A signal (Python's, say) interrupted the read: nothing was read, try again.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => r.ctx("read", from)?,
        };
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        if let Some((f, to)) = &mut dst {
            f.write_all(&buf[..k]).ctx("write", to)?;
        }
        n += k as u64;
        progress(k as u64);
    }
    if let Some((f, to)) = dst {
        f.sync_all().ctx("fsync", to)?;
    }
    Ok((hex(&h.finalize()), n))
}

/// SHA-256 and length of a file.
fn hash_file(path: &Path) -> Result<(String, u64)> {
    copy_hashed(path, None, &mut |_| {})
}

/// A writer that hashes what passes through.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A file of the store's file system as an `io::Write`, for the archive writer. Its errors keep
/// the OS error (ENOSPC stays ENOSPC) and the caller names the file.
struct FileSink(Box<dyn WriteFile>);

impl Write for FileSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(buf).map_err(|e| match e {
            Error::Io { source, .. } => source,
            other => std::io::Error::other(other.to_string()),
        })?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
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
        std::fs::create_dir_all(&dir).ctx("create directory", &dir)?;
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
    /// store's `snapshots/` folder). Writes continue meanwhile; see the module doc.
    pub fn create_snapshot(
        &self,
        collection: Option<&str>,
        dest: Option<&Path>,
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
        let result = (|| {
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
                let (sha256, size) = hash_file(path)?;
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
            let (sha256, size_bytes) = write_archive(fs, &partial, &index, &files)?;
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
        })();
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

fn write_archive(
    fs: &dyn FileSystem,
    path: &Path,
    index: &Index,
    files: &[(String, PathBuf)],
) -> Result<(String, u64)> {
    let file = FileSink(fs.create(path)?);
    let hashing = Hashing {
        inner: BufWriter::with_capacity(1 << 20, file),
        hash: Sha256::new(),
        bytes: 0,
    };
    let enc = zstd::Encoder::new(hashing, ZSTD_LEVEL).ctx("compress", path)?;
    let mut tar = tar::Builder::new(enc);
    let body = serde_json::to_vec_pretty(index)
        .map_err(|e| Error::internal(format!("snapshot index does not encode: {e}")))?;
    let mut h = tar::Header::new_gnu();
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    tar.append_data(&mut h, INDEX, body.as_slice())
        .ctx("write", path)?;
    for (rel, src) in files {
        let mut f = File::open(src).ctx("open", src)?;
        let len = f.metadata().ctx("stat", src)?.len();
        let mut h = tar::Header::new_gnu();
        h.set_size(len);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        tar.append_data(&mut h, rel, &mut f).ctx("write", path)?;
    }
    let enc = tar.into_inner().ctx("write", path)?;
    let mut hashing = enc.finish().ctx("compress", path)?;
    hashing.flush().ctx("write", path)?;
    let file = hashing.inner.into_inner().map_err(|e| Error::Io {
        op: "write",
        path: path.to_path_buf(),
        source: e.into_error(),
    })?;
    file.0.sync_data()?;
    Ok((hex(&hashing.hash.finalize()), hashing.bytes))
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

/// Where an accepted entry goes: (collection, path inside the collection directory).
fn entry_target(archive: &Path, raw: &Path) -> Result<(String, PathBuf)> {
    let bad = |why: &str| Error::corrupt(archive, format!("entry {}: {why}", raw.display()));
    let mut parts = Vec::new();
    for c in raw.components() {
        match c {
            Component::Normal(p) => parts.push(
                p.to_str()
                    .ok_or_else(|| bad("path is not UTF-8"))?
                    .to_string(),
            ),
            Component::ParentDir => return Err(bad("path escapes the target directory (..)")),
            Component::RootDir | Component::Prefix(_) => return Err(bad("absolute path")),
            Component::CurDir => return Err(bad("path has a '.' component")),
        }
    }
    match parts.as_slice() {
        [c, name, rest @ ..] if c == "collections" && !rest.is_empty() => {
            crate::config::validate_name(name).map_err(|_| bad("not a collection name"))?;
            let ok = match rest {
                [m] => m == "MANIFEST",
                [s, f] => s == "segments" && !f.starts_with('.'),
                _ => false,
            };
            if !ok {
                return Err(bad("not a file a collection holds"));
            }
            Ok((name.clone(), rest.iter().collect()))
        }
        _ => Err(bad("not a file a snapshot holds")),
    }
}

/// Bytes free for an unprivileged writer on the file system holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a valid NUL-terminated path and `st` points to writable memory of the
    // right type; statvfs only writes into it. Exercised by every restore test.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it filled the struct.
    let st = unsafe { st.assume_init() };
    // The field types differ between platforms (fsblkcnt_t, c_ulong): widen explicitly.
    #[allow(clippy::unnecessary_cast)]
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// Check an archive without writing anything: the index, every entry's path, type and size,
/// and every file's SHA-256. Returns what it holds (the archive's own hash computed here).
pub fn verify_archive(archive: &Path) -> Result<SnapshotInfo> {
    let mut sink = |_: &str, _: &Path, r: &mut dyn Read| -> Result<()> {
        std::io::copy(r, &mut std::io::sink()).ctx("read", archive)?;
        Ok(())
    };
    // The archive's own SHA-256 is computed in the same pass.
    let raw = HashingReader {
        inner: File::open(archive).ctx("open", archive)?,
        hash: Sha256::new(),
        bytes: 0,
    };
    let (index, raw) = read_archive(archive, raw, None, &mut sink)?;
    let (sha256, size_bytes) = (hex(&raw.hash.finalize()), raw.bytes);
    if let Ok(body) = std::fs::read(sidecar_path(archive)) {
        if let Ok(side) = serde_json::from_slice::<SnapshotInfo>(&body) {
            if side.sha256 != sha256 {
                return Err(Error::corrupt(
                    archive,
                    format!(
                        "archive SHA-256 is {sha256}, its sidecar recorded {}",
                        side.sha256
                    ),
                ));
            }
        }
    }
    Ok(SnapshotInfo {
        name: index.name,
        path: archive.to_path_buf(),
        created_at: index.created_at,
        size_bytes,
        sha256,
        collections: index.collections,
    })
}

/// Read `archive` (its bytes come from `raw`) once, validating as the module doc says, and
/// hand each accepted file's contents to `take(collection, relative path, reader)`. `free`:
/// bytes the files may take in all. Returns the index, and `raw` read to the end.
fn read_archive<R: Read>(
    archive: &Path,
    raw: R,
    free: Option<u64>,
    take: &mut dyn FnMut(&str, &Path, &mut dyn Read) -> Result<()>,
) -> Result<(Index, R)> {
    let dec = zstd::Decoder::with_buffer(BufReader::new(raw))
        .map_err(|e| Error::corrupt(archive, format!("not a zstd stream: {e}")))?;
    let mut tar = tar::Archive::new(dec);
    let index = read_entries(archive, &mut tar, free, take)?;
    // Read what the decoder did not need (nothing, in an archive of ours) to the end.
    let mut rest = tar.into_inner().finish();
    std::io::copy(&mut rest, &mut std::io::sink()).ctx("read", archive)?;
    Ok((index, rest.into_inner()))
}

fn read_entries<R: Read>(
    archive: &Path,
    tar: &mut tar::Archive<R>,
    free: Option<u64>,
    take: &mut dyn FnMut(&str, &Path, &mut dyn Read) -> Result<()>,
) -> Result<Index> {
    let entries = tar
        .entries()
        .map_err(|e| Error::corrupt(archive, format!("not a tar archive: {e}")))?;
    let bad = |d: String| Error::corrupt(archive, d);
    let mut index: Option<Index> = None;
    let mut expected: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("damaged archive: {e}")))?;
        let kind = entry.header().entry_type();
        let raw = entry
            .path()
            .map_err(|e| bad(format!("entry with an unreadable path: {e}")))?
            .into_owned();
        let size = entry.size();
        if index.is_none() {
            if raw != Path::new(INDEX) || !kind.is_file() {
                return Err(bad(format!(
                    "the first entry must be {INDEX}, found {}; not a ferrovec snapshot",
                    raw.display()
                )));
            }
            if size > MAX_INDEX_BYTES {
                return Err(bad(format!("{INDEX} claims {size} bytes")));
            }
            let mut body = Vec::with_capacity(size as usize);
            entry
                .by_ref()
                .take(MAX_INDEX_BYTES)
                .read_to_end(&mut body)
                .map_err(|e| bad(format!("damaged archive: {e}")))?;
            let idx: Index = serde_json::from_slice(&body)
                .map_err(|e| bad(format!("{INDEX} does not parse: {e}")))?;
            if idx.format != FORMAT_NAME {
                return Err(bad(format!("not a ferrovec snapshot ({:?})", idx.format)));
            }
            check_version(archive, "snapshot", idx.version, SNAPSHOT_VERSION)?;
            check_version(
                archive,
                "snapshot's store",
                idx.store_format,
                FORMAT_VERSION,
            )?;
            if idx.files.len() > MAX_FILES {
                return Err(bad(format!("claims {} files", idx.files.len())));
            }
            let mut total: u64 = 0;
            for fe in &idx.files {
                let (col, _) = entry_target(archive, Path::new(&fe.path))?;
                if !idx.collections.contains_key(&col) {
                    return Err(bad(format!("{} belongs to no listed collection", fe.path)));
                }
                total = total.saturating_add(fe.size);
                if expected
                    .insert(fe.path.clone(), (fe.size, fe.sha256.clone()))
                    .is_some()
                {
                    return Err(bad(format!("{} is listed twice", fe.path)));
                }
            }
            for c in idx.collections.keys() {
                if !expected.contains_key(&format!("collections/{c}/MANIFEST")) {
                    return Err(bad(format!("collection {c} has no MANIFEST")));
                }
            }
            if let Some(free) = free {
                if total > free {
                    return Err(bad(format!(
                        "the files claim {total} bytes; only {free} are free at the target"
                    )));
                }
            }
            index = Some(idx);
            continue;
        }
        if kind.is_dir() {
            // Nothing is created from directory entries; only their paths are checked.
            if raw.components().any(|c| !matches!(c, Component::Normal(_))) {
                return Err(bad(format!(
                    "directory {} escapes the target directory",
                    raw.display()
                )));
            }
            continue;
        }
        if !kind.is_file() {
            return Err(bad(format!(
                "entry {} is a {:?}, not a regular file (links, devices and the like are refused)",
                raw.display(),
                kind
            )));
        }
        let (col, rel) = entry_target(archive, &raw)?;
        let key = raw
            .to_str()
            .ok_or_else(|| bad("entry path is not UTF-8".into()))?
            .to_string();
        let Some((want_size, want_sha)) = expected.get(&key).cloned() else {
            return Err(bad(format!("{key} is not listed in {INDEX}")));
        };
        if !seen.insert(key.clone()) {
            return Err(bad(format!("{key} appears twice")));
        }
        if size != want_size {
            return Err(bad(format!(
                "{key} is {size} bytes in the archive, {want_size} in {INDEX}"
            )));
        }
        let mut hashing = HashingReader {
            inner: entry.by_ref().take(want_size),
            hash: Sha256::new(),
            bytes: 0,
        };
        take(&col, &rel, &mut hashing)?;
        // Drain what `take` left (if it stopped early) so the hash covers the whole file.
        std::io::copy(&mut hashing, &mut std::io::sink())
            .map_err(|e| bad(format!("damaged archive: {e}")))?;
        if hashing.bytes != want_size {
            return Err(bad(format!("{key} is truncated")));
        }
        let got = hex(&hashing.hash.finalize());
        if got != want_sha {
            return Err(bad(format!(
                "{key}: SHA-256 {got} does not match {want_sha} in {INDEX}"
            )));
        }
    }
    let index = index.ok_or_else(|| bad("empty archive; not a ferrovec snapshot".into()))?;
    if let Some(missing) = expected.keys().find(|k| !seen.contains(*k)) {
        return Err(bad(format!("{missing} is listed but missing")));
    }
    Ok(index)
}

struct HashingReader<R> {
    inner: R,
    hash: Sha256,
    bytes: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// A staging directory inside a store's `collections/` (its leading dot gets it removed when
/// the store opens, should a crash leave it), from which restored collection directories
/// (`<dir>/<name>`, holding `MANIFEST` and `segments/`) are moved into place.
pub(crate) struct Staging<'a> {
    pub dir: PathBuf,
    store: &'a Store,
}

impl<'a> Staging<'a> {
    pub fn new(store: &'a Store) -> Result<Self> {
        let root = store
            .path()
            .ok_or_else(|| Error::invalid("cannot restore into an in-memory store"))?;
        let dir = root
            .join("collections")
            .join(format!(".restoring-{}", crate::store::unique_suffix()));
        store.fs().create_dir_all(&dir)?;
        Ok(Staging { dir, store })
    }

    /// Write the file `rel` of the staged collection `collection` from `r`, fsynced.
    pub fn write(&self, collection: &str, rel: &Path, r: &mut dyn Read) -> Result<()> {
        let fs = self.store.fs();
        let to = self.dir.join(collection).join(rel);
        if let Some(parent) = to.parent() {
            fs.create_dir_all(parent)?;
        }
        let mut sink = BufWriter::with_capacity(1 << 20, FileSink(fs.create(&to)?));
        std::io::copy(r, &mut sink).ctx("write", &to)?;
        let file = sink.into_inner().map_err(|e| Error::Io {
            op: "write",
            path: to.clone(),
            source: e.into_error(),
        })?;
        file.0.sync_data()
    }

    /// Complete the staged collections `names` (empty `wal/`, fsynced) and move them in.
    pub fn install(&self, names: &[String], replace: bool) -> Result<()> {
        let fs = self.store.fs();
        for n in names {
            for sub in ["segments", "wal"] {
                let d = self.dir.join(n).join(sub);
                fs.create_dir_all(&d)?;
                fs.sync_dir(&d)?;
            }
            fs.sync_dir(&self.dir.join(n))?;
        }
        self.store.install_restored(&self.dir, names, replace)
    }

    /// Remove what is left of the staging directory.
    pub fn finish(self) -> Result<()> {
        let fs = self.store.fs();
        if fs.exists(&self.dir)? {
            fs.remove_dir_all(&self.dir)?;
        }
        Ok(())
    }
}

/// Restore `archive` into `store`: every collection it holds, or just `collection`. An
/// existing collection of the same name is an error unless `replace`. Nothing in the store
/// changes unless the whole archive checks out. Returns the restored collections' names.
pub fn restore(
    archive: &Path,
    store: &Store,
    collection: Option<&str>,
    replace: bool,
) -> Result<Vec<String>> {
    if let Some(c) = collection {
        if !replace && store.list_collections()?.iter().any(|n| n == c) {
            return Err(Error::CollectionExists(format!(
                "{c} (pass replace=True to replace it)"
            )));
        }
    }
    let free = store.path().and_then(free_bytes);
    let staging = Staging::new(store)?;
    let result = (|| {
        let mut take = |col: &str, rel: &Path, r: &mut dyn Read| -> Result<()> {
            if collection.is_some_and(|c| c != col) {
                return Ok(());
            }
            staging.write(col, rel, r)
        };
        let raw = File::open(archive).ctx("open", archive)?;
        let (index, _) = read_archive(archive, raw, free, &mut take)?;
        let names: Vec<String> = match collection {
            Some(c) if !index.collections.contains_key(c) => {
                return Err(Error::invalid(format!(
                    "the snapshot holds no collection {c:?} (it holds {})",
                    index
                        .collections
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
            Some(c) => vec![c.to_string()],
            None => index.collections.keys().cloned().collect(),
        };
        staging.install(&names, replace)?;
        Ok(names)
    })();
    staging.finish()?;
    result
}
