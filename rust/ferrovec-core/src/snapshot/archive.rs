//! The archive itself: a zstd-compressed tar whose first entry is the index, written in one
//! pass, and read in one pass that checks every entry against the index before handing it on.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{hex, sidecar_path, Index, SnapshotInfo};
use super::{FORMAT_NAME, INDEX, MAX_FILES, MAX_INDEX_BYTES, SNAPSHOT_VERSION, ZSTD_LEVEL};
use crate::cancel::Cancel;
use crate::error::{Error, IoContext, Result};
use crate::format::{check_version, check_version_in, OLDEST_READ};
use crate::io::{FileSystem, WriteFile};

/// Read `from` whole, hashing it, and (with `to`) copy it into a new file there, fsynced.
/// `progress` gets the bytes of each chunk, and stops the copy by failing. Returns (SHA-256
/// hex, bytes).
// Writes only into backup directories (see backup.rs for why those use std::fs); snapshots
// only hash through it.
#[allow(clippy::disallowed_methods)]
pub(crate) fn copy_hashed(
    from: &Path,
    to: Option<&Path>,
    progress: &mut dyn FnMut(u64) -> Result<()>,
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
        progress(k as u64)?;
    }
    if let Some((f, to)) = dst {
        f.sync_all().ctx("fsync", to)?;
    }
    Ok((hex(&h.finalize()), n))
}

/// SHA-256 and length of a file.
pub(super) fn hash_file(path: &Path, cancel: &Cancel) -> Result<(String, u64)> {
    copy_hashed(path, None, &mut |_| cancel.check("the snapshot"))
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
pub(super) struct FileSink(pub(super) Box<dyn WriteFile>);

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

pub(super) fn write_archive(
    fs: &dyn FileSystem,
    path: &Path,
    index: &Index,
    files: &[(String, PathBuf)],
    cancel: &Cancel,
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
        cancel.check("the snapshot")?;
        let f = File::open(src).ctx("open", src)?;
        let len = f.metadata().ctx("stat", src)?.len();
        let mut h = tar::Header::new_gnu();
        h.set_size(len);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        let mut reader = Cancellable { inner: f, cancel };
        if let Err(e) = tar.append_data(&mut h, rel, &mut reader) {
            cancel.check("the snapshot")?;
            return Err(e).ctx("write", path);
        }
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
pub(super) fn read_archive<R: Read>(
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
            let (idx, files) = read_index(archive, &mut entry, &raw, kind, size, free)?;
            expected = files;
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

/// The index, the archive's first entry (`raw`, of `kind` and `size`): parsed and checked
/// against the format, version, file count, collections and `free` bytes. Returns it and each
/// listed file's (size, SHA-256) by path.
#[allow(clippy::type_complexity)]
fn read_index<R: Read>(
    archive: &Path,
    entry: &mut tar::Entry<'_, R>,
    raw: &Path,
    kind: tar::EntryType,
    size: u64,
    free: Option<u64>,
) -> Result<(Index, BTreeMap<String, (u64, String)>)> {
    let bad = |d: String| Error::corrupt(archive, d);
    let mut expected: BTreeMap<String, (u64, String)> = BTreeMap::new();
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
    let idx: Index =
        serde_json::from_slice(&body).map_err(|e| bad(format!("{INDEX} does not parse: {e}")))?;
    if idx.format != FORMAT_NAME {
        return Err(bad(format!("not a ferrovec snapshot ({:?})", idx.format)));
    }
    check_version(archive, "snapshot", idx.version, SNAPSHOT_VERSION)?;
    check_version_in(archive, "snapshot's store", idx.store_format, OLDEST_READ)?;
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
    Ok((idx, expected))
}

/// A file read for the archive that stops (with an error) once its `Cancel` is set.
struct Cancellable<'a> {
    inner: File,
    cancel: &'a Cancel,
}

impl Read for Cancellable<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.cancel.is_cancelled() {
            return Err(std::io::Error::other("cancelled"));
        }
        self.inner.read(buf)
    }
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
