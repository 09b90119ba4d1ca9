//! Backups: full and incremental copies of a store into a backup directory, chained by their
//! manifests, with list, verify, restore, cleanup and status.
//!
//! ```text
//! DEST/<id>/BACKUP.json                  what the backup holds: every file of every collection,
//!                                        with size, SHA-256 and the backup whose files/ has it
//! DEST/<id>/files/collections/<name>/…   the files this backup added
//! DEST/.<id>.partial/                    a backup being written (never listed; removed later)
//! DEST/STATUS.json                       when a backup was last verified and last restored
//! ```
//! A backup is taken like a snapshot (checkpoint, then hard links under the structure lock, so
//! writers go on). An incremental backup copies only the files that are not already in the
//! newest backup of DEST (sealed files are immutable and uniquely named, so a file that is there
//! with the same path, size and SHA-256 is the same file) and refers to the older copy. Restore
//! gathers the files through those references, checks every checksum, and installs the
//! collections the way a snapshot restore does.

// Backups are written with std::fs, not the FileSystem trait: they are copies outside the
// store, made durable by their own protocol (files fsynced, the backup directory written under
// a temporary name, synced, renamed), tested by SIGKILL and restore tests rather than by the
// power-loss model.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cancel::Cancel;
use crate::config::validate_name;
use crate::error::{Error, IoContext, Result};
use crate::format::{check_version, check_version_in, FORMAT_VERSION, OLDEST_READ};
// Backups are written with the OS file system directly (not modelled by the power-loss tests).
use crate::io::OsFs;
use crate::snapshot::{self, copy_hashed, fsync_dir, write_json_atomic};
use crate::store::Store;

const FORMAT_NAME: &str = "ferrovec-backup";
pub const BACKUP_VERSION: u32 = 1;
const MANIFEST: &str = "BACKUP.json";
const STATUS: &str = "STATUS.json";

pub use crate::cancel::Report;

/// A long copy's reports, and the request that stops it.
#[derive(Clone, Copy)]
pub struct Progress<'a> {
    pub report: &'a dyn Report,
    pub cancel: &'a Cancel,
}

impl Progress<'_> {
    /// Nothing reported, never stopped.
    pub fn none() -> Progress<'static> {
        Progress {
            report: crate::cancel::SILENT,
            cancel: &crate::cancel::NEVER,
        }
    }

    /// Report, then fail with `Interrupted` if asked to stop.
    fn tick(&self, done: u64, total: u64, what: &str) -> Result<()> {
        self.report.report(done, total);
        self.cancel.check(what)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackupInfo {
    pub format: String,
    pub version: u32,
    pub store_format: u32,
    /// `YYYYmmddTHHMMSS.ffffffZ`: sorts by time.
    pub id: String,
    /// "full" or "incremental".
    pub kind: String,
    /// The backup this one was built on (incremental only).
    pub parent: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// When every collection had been frozen (RFC 3339, UTC): the backup holds no write made
    /// after this.
    pub consistent_at: String,
    pub collections: BTreeMap<String, BackupCollection>,
    /// Bytes this backup copied (its own files/).
    pub added_bytes: u64,
    /// Bytes of the store state it restores.
    pub total_bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackupCollection {
    /// The log sequence number the backup holds everything up to.
    pub sequence: u64,
    pub files: Vec<BackupFile>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackupFile {
    /// Relative to the collection directory: `MANIFEST` or `segments/<file>`.
    pub path: String,
    pub size: u64,
    pub sha256: String,
    /// The backup whose `files/` holds the bytes.
    pub stored_in: String,
}

/// Figures for monitoring a backup directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct BackupStatus {
    pub backups: usize,
    pub newest_id: Option<String>,
    /// Seconds since the newest backup was taken.
    pub newest_age_s: Option<f64>,
    /// Total bytes of the newest backup's state minus the previous one's.
    pub size_change_bytes: Option<i64>,
    /// RFC 3339 times of the last successful `verify` and `restore` from this directory.
    pub last_verified_at: Option<String>,
    pub last_verified_age_s: Option<f64>,
    pub last_restored_at: Option<String>,
    pub last_restored_age_s: Option<f64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StatusFile {
    last_verified_at: Option<String>,
    last_restored_at: Option<String>,
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now())
}

fn age_s(rfc3339: &str) -> Option<f64> {
    let t = chrono::DateTime::parse_from_rfc3339(rfc3339).ok()?;
    Some((now() - t.with_timezone(&chrono::Utc)).num_milliseconds() as f64 / 1e3)
}

fn read_info(dir: &Path) -> Result<BackupInfo> {
    let p = dir.join(MANIFEST);
    let body = std::fs::read(&p).ctx("read", &p)?;
    let info: BackupInfo = serde_json::from_slice(&body)
        .map_err(|e| Error::corrupt(&p, format!("backup manifest does not parse: {e}")))?;
    if info.format != FORMAT_NAME {
        return Err(Error::corrupt(&p, "not a ferrovec backup manifest"));
    }
    check_version(&p, "backup manifest", info.version, BACKUP_VERSION)?;
    check_version_in(&p, "backup's store", info.store_format, OLDEST_READ)?;
    for (name, c) in &info.collections {
        validate_name(name)
            .map_err(|_| Error::corrupt(&p, format!("bad collection name {name:?}")))?;
        for f in &c.files {
            let ok = f.path == "MANIFEST"
                || f.path
                    .strip_prefix("segments/")
                    .is_some_and(|r| !r.is_empty() && !r.contains('/') && !r.starts_with('.'));
            if !ok || f.stored_in.contains('/') || f.stored_in.starts_with('.') {
                return Err(Error::corrupt(&p, format!("bad file entry {:?}", f.path)));
            }
        }
    }
    Ok(info)
}

/// Complete backups in `dest`, oldest first.
pub fn list(dest: &Path) -> Result<Vec<BackupInfo>> {
    if !dest.exists() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir(dest).ctx("list", dest)? {
        let e = e.ctx("list", dest)?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !e.path().join(MANIFEST).is_file() {
            continue;
        }
        out.push(read_info(&e.path())?);
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

fn file_in(dest: &Path, collection: &str, f: &BackupFile) -> PathBuf {
    dest.join(&f.stored_in)
        .join("files/collections")
        .join(collection)
        .join(&f.path)
}

fn total_of(info: &BackupInfo) -> u64 {
    info.collections
        .values()
        .flat_map(|c| &c.files)
        .map(|f| f.size)
        .sum()
}

impl Store {
    /// Back up every collection into `dest`: a full copy, or with `incremental` only the files
    /// the newest backup in `dest` does not have. Writes go on meanwhile.
    pub fn backup(
        &self,
        dest: &Path,
        incremental: bool,
        progress: Progress<'_>,
    ) -> Result<BackupInfo> {
        let root = self
            .path()
            .ok_or_else(|| Error::invalid("an in-memory store cannot be backed up"))?
            .to_path_buf();
        std::fs::create_dir_all(dest).ctx("create directory", dest)?;
        let dest = dest.canonicalize().ctx("resolve path", dest)?;
        if dest.starts_with(root.join("collections")) {
            return Err(Error::invalid(
                "the backup directory cannot be inside a collection's folder",
            ));
        }
        remove_partials(&dest)?;
        let parent = if incremental {
            Some(list(&dest)?.pop().ok_or_else(|| {
                Error::invalid(format!(
                    "no backup in {} to build an incremental one on; take a full one first",
                    dest.display()
                ))
            })?)
        } else {
            None
        };
        let stamp = now();
        let id = stamp.format("%Y%m%dT%H%M%S%.6fZ").to_string();
        let partial = dest.join(format!(".{id}.partial"));
        let stage = snapshot::default_dir(&root).join(format!(".staging-backup-{id}"));
        let names = self.list_collections()?;
        let result = self.observed(crate::observe::Op::Backup, &names, || {
            // Freeze a consistent copy of every collection (links; writers go on).
            let mut staged: BTreeMap<String, (u64, Vec<String>)> = BTreeMap::new();
            for name in self.list_collections()? {
                let col = self.collection(&name)?;
                staged.insert(name.clone(), col.stage_snapshot(&stage.join(&name))?);
            }
            let stage_ref = &stage;
            let consistent_at = now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            let total: u64 = staged
                .iter()
                .flat_map(|(n, (_, rel))| rel.iter().map(move |r| stage_ref.join(n).join(r)))
                .map(|p| std::fs::metadata(&p).map_or(0, |m| m.len()))
                .sum();
            let mut done = 0u64;
            let mut tick = |k: u64| {
                done += k;
                progress.tick(done, total, "the backup")
            };
            let mut info = BackupInfo {
                format: FORMAT_NAME.into(),
                version: BACKUP_VERSION,
                store_format: FORMAT_VERSION,
                id: id.clone(),
                kind: if incremental { "incremental" } else { "full" }.into(),
                parent: parent.as_ref().map(|p| p.id.clone()),
                created_at: stamp.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                consistent_at,
                collections: BTreeMap::new(),
                added_bytes: 0,
                total_bytes: 0,
            };
            for (name, (sequence, rel)) in &staged {
                let known: BTreeMap<&str, &BackupFile> = parent
                    .as_ref()
                    .and_then(|p| p.collections.get(name))
                    .map(|c| c.files.iter().map(|f| (f.path.as_str(), f)).collect())
                    .unwrap_or_default();
                let copy = Copy {
                    from: &stage.join(name),
                    to: &partial.join("files/collections").join(name),
                    id: &id,
                };
                let files = copy.files(rel, &known, &mut tick)?;
                for f in files.iter().filter(|f| f.stored_in == id) {
                    info.added_bytes += f.size;
                }
                info.total_bytes += files.iter().map(|f| f.size).sum::<u64>();
                info.collections.insert(
                    name.clone(),
                    BackupCollection {
                        sequence: *sequence,
                        files,
                    },
                );
            }
            std::fs::create_dir_all(&partial).ctx("create directory", &partial)?;
            write_json_atomic(&OsFs, &partial.join(MANIFEST), &info)?;
            sync_tree(&partial)?;
            std::fs::rename(&partial, dest.join(&id)).ctx("rename", &partial)?;
            fsync_dir(&dest)?;
            Ok(info)
        });
        if stage.exists() {
            std::fs::remove_dir_all(&stage).ctx("remove", &stage)?;
        }
        if result.is_err() && partial.exists() {
            let _ = std::fs::remove_dir_all(&partial);
        }
        result
    }
}

/// One collection's files into a backup: from the staged links `from` into `to`, for the backup
/// `id`.
struct Copy<'a> {
    from: &'a Path,
    to: &'a Path,
    id: &'a str,
}

impl Copy<'_> {
    /// Back up the staged files `rel`: a file that `known` (the newest backup's entries) lists
    /// with the same size is hashed to see whether it is the same, and then refers to that
    /// backup's copy; any other file is copied (and hashed) in one read. `tick` counts bytes.
    fn files(
        &self,
        rel: &[String],
        known: &BTreeMap<&str, &BackupFile>,
        tick: &mut dyn FnMut(u64) -> Result<()>,
    ) -> Result<Vec<BackupFile>> {
        let mut files = Vec::with_capacity(rel.len());
        for r in rel {
            let from = self.from.join(r);
            let len = std::fs::metadata(&from).ctx("stat", &from)?.len();
            let same = match known.get(r.as_str()).filter(|k| k.size == len) {
                Some(k) => {
                    let (sha256, size) = copy_hashed(&from, None, &mut |_| Ok(()))?;
                    (k.sha256 == sha256).then(|| (sha256, size, k.stored_in.clone()))
                }
                None => None,
            };
            let (sha256, size, stored_in) = match same {
                Some(found) => {
                    tick(found.1)?;
                    found
                }
                None => {
                    let (sha256, size) = copy_hashed(&from, Some(&self.to.join(r)), tick)?;
                    (sha256, size, self.id.to_string())
                }
            };
            files.push(BackupFile {
                path: r.clone(),
                size,
                sha256,
                stored_in,
            });
        }
        Ok(files)
    }
}

/// fsync every directory under `dir` (files were fsynced as they were written).
fn sync_tree(dir: &Path) -> Result<()> {
    for e in std::fs::read_dir(dir).ctx("list", dir)? {
        let e = e.ctx("list", dir)?;
        if e.file_type().ctx("stat", &e.path())?.is_dir() {
            sync_tree(&e.path())?;
        }
    }
    fsync_dir(dir)
}

fn remove_partials(dest: &Path) -> Result<()> {
    for e in std::fs::read_dir(dest).ctx("list", dest)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && (name.ends_with(".partial") || name.starts_with(".deleting-")) {
            let p = e.path();
            if p.is_dir() {
                std::fs::remove_dir_all(&p).ctx("remove", &p)?;
            } else {
                std::fs::remove_file(&p).ctx("remove", &p)?;
            }
        }
    }
    Ok(())
}

fn find(dest: &Path, id: Option<&str>) -> Result<BackupInfo> {
    let all = list(dest)?;
    match id {
        Some(id) => all
            .into_iter()
            .find(|b| b.id == id)
            .ok_or_else(|| Error::invalid(format!("no backup {id:?} in {}", dest.display()))),
        None => all
            .into_iter()
            .next_back()
            .ok_or_else(|| Error::invalid(format!("no backups in {}", dest.display()))),
    }
}

fn update_status(dest: &Path, f: impl FnOnce(&mut StatusFile)) -> Result<()> {
    let p = dest.join(STATUS);
    let mut st: StatusFile = std::fs::read(&p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    f(&mut st);
    write_json_atomic(&OsFs, &p, &st)
}

/// Check every file backup `id` (default: the newest) restores from: present, of the recorded
/// size and SHA-256. Returns the backup's manifest.
pub fn verify(dest: &Path, id: Option<&str>, progress: Progress<'_>) -> Result<BackupInfo> {
    let info = find(dest, id)?;
    let total = total_of(&info);
    let mut done = 0u64;
    for (name, c) in &info.collections {
        for f in &c.files {
            let p = file_in(dest, name, f);
            let (sha, size) = copy_hashed(&p, None, &mut |k| {
                done += k;
                progress.tick(done, total, "the verification")
            })?;
            if size != f.size || sha != f.sha256 {
                return Err(Error::corrupt(
                    &p,
                    format!(
                        "backup {}: {size} bytes with SHA-256 {sha}; the manifest says {} bytes, {}",
                        info.id, f.size, f.sha256
                    ),
                ));
            }
        }
    }
    let at = now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    update_status(dest, |s| s.last_verified_at = Some(at))?;
    Ok(info)
}

/// Point-in-time recovery: replay the archived log (`Store::set_log_archive`) on top of the
/// backup, up to and including this log sequence number.
#[derive(Clone, Copy, Debug)]
pub struct PointInTime<'a> {
    pub target: crate::wal::Target,
    /// The archive root given to `set_log_archive` (it holds `<collection>/*.wal`).
    pub log_archive: &'a Path,
}

/// Restore backup `id` (default: the newest) of `dest` into `store`: every collection, or just
/// `collection`; an existing one only with `replace`. With `pitr` (one collection only), the
/// newest backup at or before the sequence number is restored and the archived log replayed
/// up to exactly that record. Every checksum is checked before anything in the store
/// changes. Returns the restored collections.
pub fn restore(
    dest: &Path,
    id: Option<&str>,
    store: &Store,
    collection: Option<&str>,
    replace: bool,
    pitr: Option<PointInTime<'_>>,
    progress: Progress<'_>,
) -> Result<Vec<String>> {
    let info = match (pitr, collection) {
        (None, _) => find(dest, id)?,
        (Some(_), None) => {
            return Err(Error::invalid(
                "a point-in-time restore needs the collection to restore (sequence numbers are per collection)",
            ))
        }
        (Some(p), Some(c)) => {
            let fits = |b: &BackupInfo| {
                let Some(x) = b.collections.get(c) else {
                    return false;
                };
                match p.target {
                    crate::wal::Target::Sequence(n) => x.sequence <= n,
                    crate::wal::Target::Time(t) => crate::filter::parse_datetime(&b.consistent_at)
                        .is_some_and(|at| at as i64 <= t),
                }
            };
            match id {
                Some(_) => Some(find(dest, id)?).filter(fits),
                None => list(dest)?.into_iter().rev().find(fits),
            }
            .ok_or_else(|| {
                let at = match p.target {
                    crate::wal::Target::Sequence(n) => format!("sequence {n}"),
                    crate::wal::Target::Time(t) => format!("time {t} µs since the epoch"),
                };
                Error::invalid(format!(
                    "no backup in {} holds {c:?} at or before {at}",
                    dest.display()
                ))
            })?
        }
    };
    let names: Vec<String> = match collection {
        Some(c) if !info.collections.contains_key(c) => {
            return Err(Error::invalid(format!(
                "backup {} holds no collection {c:?}",
                info.id
            )))
        }
        Some(c) => vec![c.to_string()],
        None => info.collections.keys().cloned().collect(),
    };
    let total: u64 = names
        .iter()
        .flat_map(|n| &info.collections[n].files)
        .map(|f| f.size)
        .sum();
    let mut done = 0u64;
    let staging = snapshot::Staging::new(store)?;
    let staged = &staging.dir;
    let result = (|| {
        for n in &names {
            for f in &info.collections[n].files {
                let from = file_in(dest, n, f);
                let to = staged.join(n).join(&f.path);
                let (sha, size) = copy_hashed(&from, Some(&to), &mut |k| {
                    done += k;
                    progress.tick(done, total, "the restore")
                })?;
                if size != f.size || sha != f.sha256 {
                    return Err(Error::corrupt(
                        &from,
                        format!(
                            "backup {}: {size} bytes with SHA-256 {sha}; the manifest says {} bytes, {}",
                            info.id, f.size, f.sha256
                        ),
                    ));
                }
            }
            if let Some(p) = pitr {
                let from = info.collections[n].sequence + 1;
                stage_archived_log(&p, n, &staged.join(n).join("wal"), from, progress.cancel)?;
            }
        }
        progress.cancel.check("the restore")?;
        staging.install(&names, replace)?;
        Ok(names.clone())
    })();
    staging.finish()?;
    let names = result?;
    let at = now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    update_status(dest, |s| {
        s.last_restored_at = Some(at.clone());
        s.last_verified_at = Some(at);
    })?;
    Ok(names)
}

/// Copy collection `name`'s archived log files (`p.log_archive`) into `wal`, fsynced (the
/// collection is acknowledged as restored once it is moved into place, so its log must be on
/// disk by then), and cut them to hold exactly the records from `from` to the target.
fn stage_archived_log(
    p: &PointInTime<'_>,
    name: &str,
    wal: &Path,
    from: u64,
    cancel: &Cancel,
) -> Result<()> {
    let archived = p.log_archive.join(name);
    std::fs::create_dir_all(wal).ctx("create directory", wal)?;
    for e in std::fs::read_dir(&archived).ctx("list", &archived)? {
        let e = e.ctx("list", &archived)?;
        let file = e.file_name().to_string_lossy().into_owned();
        if !file.starts_with('.') && file.ends_with(".wal") {
            copy_hashed(&e.path(), Some(&wal.join(&file)), &mut |_| {
                cancel.check("the restore")
            })?;
        }
    }
    crate::wal::cut_to(&crate::io::OsFs, wal, from, p.target)
}

/// Remove backups beyond the newest `keep_last` and those older than `max_age_days`, but
/// never the newest one nor one whose files a kept backup refers to. Returns the removed ids.
pub fn cleanup(
    dest: &Path,
    keep_last: Option<usize>,
    max_age_days: Option<f64>,
) -> Result<Vec<String>> {
    let all = list(dest)?;
    let n = all.len();
    let mut keep: Vec<bool> = all
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let by_count = keep_last.is_none_or(|k| i + k >= n);
            let by_age = max_age_days
                .is_none_or(|d| age_s(&b.created_at).is_some_and(|a| a <= d * 86_400.0));
            i + 1 == n || (by_count && by_age)
        })
        .collect();
    // Keep every backup a kept one refers to.
    let mut needed: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for (b, k) in all.iter().zip(&keep) {
        if *k {
            for c in b.collections.values() {
                for f in &c.files {
                    needed.insert(f.stored_in.clone());
                }
            }
        }
    }
    for (b, k) in all.iter().zip(keep.iter_mut()) {
        *k |= needed.contains(&b.id);
    }
    let mut removed = Vec::new();
    for (b, k) in all.iter().zip(&keep) {
        if !k {
            let from = dest.join(&b.id);
            let gone = dest.join(format!(".deleting-{}", b.id));
            // Renamed first: from then on it is not listed, whatever happens next.
            std::fs::rename(&from, &gone).ctx("rename", &from)?;
            fsync_dir(dest)?;
            std::fs::remove_dir_all(&gone).ctx("remove", &gone)?;
            removed.push(b.id.clone());
        }
    }
    Ok(removed)
}

/// Monitoring figures of `dest`.
pub fn status(dest: &Path) -> Result<BackupStatus> {
    let all = list(dest)?;
    let st: StatusFile = std::fs::read(dest.join(STATUS))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let newest = all.last();
    Ok(BackupStatus {
        backups: all.len(),
        newest_id: newest.map(|b| b.id.clone()),
        newest_age_s: newest.and_then(|b| age_s(&b.created_at)),
        size_change_bytes: (all.len() >= 2)
            .then(|| total_of(&all[all.len() - 1]) as i64 - total_of(&all[all.len() - 2]) as i64),
        last_verified_age_s: st.last_verified_at.as_deref().and_then(age_s),
        last_verified_at: st.last_verified_at,
        last_restored_age_s: st.last_restored_at.as_deref().and_then(age_s),
        last_restored_at: st.last_restored_at,
    })
}
