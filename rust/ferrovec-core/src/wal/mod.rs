//! The write-ahead log of one collection: framed, checksummed records in numbered files,
//! appended to by any of the processes that share the collection, group-committed fsyncs,
//! background fsync for the interval mode, and torn-tail repair.
//!
//! Files are `wal/<first seq, 20 digits>.wal`; each starts with the common 64-byte header
//! (`count` = sequence number of its first record) followed by frames (see [`record`]).
//! Sequence numbers are consecutive across files, so the file after one whose last record is
//! `n` is always named `n + 1`: a reader at the end of a file finds the next one by that name,
//! without listing the directory.
//!
//! Every process keeps a cursor: the file and offset of the next record it has not read.
//! [`Wal::catch_up`] reads from there to the end of the log, handing each record to the caller
//! (which applies it to its in-memory state). A writer holds the collection's cross-process write
//! lock (`shared.rs`), catches up, and only then appends at the end; so it is the one process
//! that may cut a torn tail (left by a writer that died mid-append) or start a new file.

pub mod record;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Weak};
use std::thread;

use parking_lot::{Condvar, Mutex};

use crate::config::Durability;
use crate::error::{Error, Result};
use crate::format::{FileKind, Header, HEADER_LEN};
use crate::io::{FileSystem, WriteFile};
use record::{parse_frame, seal_frame, Op, OpRef};

/// How far past a damaged record we look for intact records that would prove the damage is not
/// a torn tail. Sequence numbers in a frame must lie within this distance of the last good one.
const SEQ_WINDOW: u64 = 1 << 32;

pub struct Wal {
    dir: PathBuf,
    fs: Arc<dyn FileSystem>,
    durability: Durability,
    max_file_bytes: u64,
    writer: Mutex<Writer>,
    /// Sequence number of the last record read or appended (for lock-free "anything new?").
    seen: AtomicU64,
    sync: Mutex<SyncState>,
    synced_cv: Condvar,
    stop_background: Mutex<Option<mpsc::Sender<()>>>,
    /// Continuous archiving: every log file, once sealed, is also put here (see `archive`).
    archive: Mutex<Option<PathBuf>>,
}

struct Writer {
    /// The file this process appends to, and its first sequence number; `None` until its first
    /// append (and again after the log moved on to another file).
    file: Option<(u64, Arc<dyn WriteFile>)>,
    /// Every log file known to this process, oldest first: (first seq, bytes).
    files: Vec<(u64, u64)>,
    /// Where the next unread record is: (first seq of its file, offset). `None`: in a file not
    /// yet started, which will be named `next_seq`.
    cursor: Option<(u64, u64)>,
    /// Sequence number of the next record to read (or to append, once caught up).
    next_seq: u64,
    /// Records up to this one are in the checkpoint the caller's state was built from: read
    /// past, not handed over.
    skip_through: u64,
}

struct SyncState {
    /// Every record with a sequence number up to this one is durable.
    synced: u64,
    in_progress: bool,
    /// Set by the first failed write or fsync; the log refuses all later writes.
    failed: Option<String>,
}

/// What a replay or catch-up found.
#[derive(Default)]
pub struct ReplayStats {
    pub records: u64,
    pub applied: u64,
    pub truncated_bytes: u64,
}

fn file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.wal")
}

fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".wal")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn not_found(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}

impl Wal {
    /// Open the log in `dir` and replay every record after `checkpoint_seq` through `apply`,
    /// in order. Replay stops at a damaged last record without cutting it (another process
    /// may be writing it; the next writer cuts a torn tail); damage that intact records follow,
    /// or a gap between files, is a `Corruption` error.
    pub fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        durability: Durability,
        max_file_bytes: u64,
        checkpoint_seq: u64,
        mut apply: impl FnMut(u64, Op) -> Result<()>,
    ) -> Result<(Arc<Wal>, ReplayStats)> {
        fs.create_dir_all(dir)?;
        let wal = Arc::new(Wal {
            dir: dir.to_path_buf(),
            fs,
            durability,
            max_file_bytes,
            writer: Mutex::new(Writer {
                file: None,
                files: Vec::new(),
                cursor: None,
                next_seq: checkpoint_seq + 1,
                skip_through: checkpoint_seq,
            }),
            seen: AtomicU64::new(checkpoint_seq),
            sync: Mutex::new(SyncState {
                synced: 0,
                in_progress: false,
                failed: None,
            }),
            synced_cv: Condvar::new(),
            stop_background: Mutex::new(None),
            archive: Mutex::new(None),
        });
        let stats = wal.rewind(checkpoint_seq, &mut apply)?;
        wal.sync.lock().synced = wal.last_seq();
        if let Durability::Interval(every) = durability {
            let (tx, rx) = mpsc::channel::<()>();
            *wal.stop_background.lock() = Some(tx);
            let weak: Weak<Wal> = Arc::downgrade(&wal);
            thread::Builder::new()
                .name("ferrovec-wal-fsync".into())
                .spawn(move || loop {
                    match rx.recv_timeout(every) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                    let Some(wal) = weak.upgrade() else { return };
                    if let Err(e) = wal.sync_all() {
                        log::error!("background fsync of the log failed: {e}");
                    }
                })
                .map_err(|e| Error::Io {
                    op: "spawn fsync thread",
                    path: dir.to_path_buf(),
                    source: e,
                })?;
        }
        Ok((wal, stats))
    }

    /// Read the log again from the first record after `checkpoint_seq` (a state rebuilt from
    /// the checkpoint of a newer manifest), handing every later record to `apply`.
    pub fn rewind(
        &self,
        checkpoint_seq: u64,
        apply: &mut dyn FnMut(u64, Op) -> Result<()>,
    ) -> Result<ReplayStats> {
        let mut numbered = Vec::new();
        for name in self.fs.list_dir(&self.dir)? {
            match parse_file_name(&name) {
                Some(seq) => numbered.push(seq),
                None if name.starts_with('.') => {}
                None => log::warn!("ignoring unexpected file {name} in the log directory"),
            }
        }
        numbered.sort_unstable();
        // The file holding the first record after the checkpoint: the last that starts at or
        // before it (earlier ones hold only checkpointed records).
        let start = numbered
            .iter()
            .rposition(|&f| f <= checkpoint_seq + 1)
            .unwrap_or(0);
        if let Some(&first) = numbered.get(start).filter(|&&f| f > checkpoint_seq + 1) {
            return Err(Error::corrupt(
                self.dir.join(file_name(first)),
                format!(
                    "log records {} to {} are missing (checkpoint at {checkpoint_seq})",
                    checkpoint_seq + 1,
                    first - 1
                ),
            ));
        }
        let mut w = self.writer.lock();
        w.file = None;
        w.files = numbered[start..].iter().map(|&f| (f, 0)).collect();
        w.cursor = None;
        w.next_seq = numbered.get(start).copied().unwrap_or(checkpoint_seq + 1);
        w.skip_through = checkpoint_seq;
        let stats = self.catch_up_locked(&mut w, false, apply)?;
        // Whatever lies beyond where reading stopped is damage, not a torn tail: a file the
        // sequence numbers do not lead to.
        let reached = w.cursor.map_or(w.next_seq, |c| c.0);
        if let Some(&beyond) = numbered.iter().find(|&&f| f > reached) {
            return Err(Error::corrupt(
                self.dir.join(file_name(beyond)),
                format!(
                    "log file starts at record {beyond}, but the log before it ends at record {}",
                    w.next_seq - 1
                ),
            ));
        }
        w.next_seq = w.next_seq.max(checkpoint_seq + 1);
        self.seen.store(w.next_seq - 1, Ordering::SeqCst);
        Ok(stats)
    }

    /// Read every record appended (by any process) since this one last looked, handing those
    /// after the checkpoint to `apply`. With `repair` (the caller holds the write lock, so no
    /// one else is appending), a torn tail left by a writer that died is cut off.
    pub fn catch_up(
        &self,
        repair: bool,
        apply: &mut dyn FnMut(u64, Op) -> Result<()>,
    ) -> Result<ReplayStats> {
        let mut w = self.writer.lock();
        self.catch_up_locked(&mut w, repair, apply)
    }

    fn catch_up_locked(
        &self,
        w: &mut Writer,
        repair: bool,
        apply: &mut dyn FnMut(u64, Op) -> Result<()>,
    ) -> Result<ReplayStats> {
        let mut stats = ReplayStats::default();
        loop {
            let (first, offset) = w.cursor.unwrap_or((w.next_seq, 0));
            let path = self.dir.join(file_name(first));
            let data = match self.fs.read_from(&path, offset) {
                Ok(d) => d,
                // Not started yet; or, read to its end, removed once checkpointed (a file is
                // removed only when the next one exists, which is named `next_seq`).
                Err(e) if not_found(&e) => {
                    if offset == 0 || w.cursor.is_none() {
                        break;
                    }
                    w.cursor = None;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut pos = 0;
            if offset == 0 {
                match Header::decode(FileKind::Log, &data, &path) {
                    Ok(h) if h.count == first => pos = HEADER_LEN,
                    Ok(h) => {
                        return Err(Error::corrupt(
                            &path,
                            format!(
                                "log file name says first record {first}, header says {}",
                                h.count
                            ),
                        ))
                    }
                    // Being started by a writer, or torn by one that died doing so: nothing in
                    // it was ever acknowledged. A writer starts it again (`start_file`).
                    Err(_) if data.len() <= HEADER_LEN => break,
                    Err(e) => return Err(e),
                }
                self.moved_to(w, first)?;
            }
            let mut damaged = false;
            while pos < data.len() {
                match parse_frame(&data[pos..]) {
                    Ok(frame) if frame.seq == w.next_seq => {
                        if frame.seq > w.skip_through {
                            let body = record::split_body(frame.body).map_or(&[][..], |b| b.1);
                            let op: Op = postcard::from_bytes(body).map_err(|e| {
                                Error::corrupt(
                                    &path,
                                    format!(
                                        "record {} at offset {} does not decode: {e}",
                                        frame.seq,
                                        offset + pos as u64
                                    ),
                                )
                            })?;
                            apply(frame.seq, op)?;
                            stats.applied += 1;
                        }
                        stats.records += 1;
                        w.next_seq += 1;
                        pos += frame.len;
                    }
                    Ok(frame) => {
                        return Err(Error::corrupt(
                            &path,
                            format!(
                                "record at offset {} has sequence number {}, expected {}",
                                offset + pos as u64,
                                frame.seq,
                                w.next_seq
                            ),
                        ))
                    }
                    Err(why) => {
                        // Without the write lock this may be a record still being written
                        // (a read can even see part of it and a later one whole): stop here.
                        // The next writer, alone, tells a torn tail from damage.
                        if repair {
                            let at = offset + pos as u64;
                            if intact_record_follows(&data[pos + 1..], w.next_seq)
                                || w.next_seq != first
                                    && self.fs.exists(&self.dir.join(file_name(w.next_seq)))?
                            {
                                return Err(Error::corrupt(
                                    &path,
                                    format!(
                                        "record {} at offset {at} is damaged ({why}) and intact records follow it",
                                        w.next_seq
                                    ),
                                ));
                            }
                            let cut = (data.len() - pos) as u64;
                            log::warn!(
                                "cutting a torn tail of {cut} bytes off {} at offset {at} ({why}); records from {} on were never acknowledged",
                                path.display(),
                                w.next_seq
                            );
                            self.fs.truncate(&path, at)?;
                            stats.truncated_bytes += cut;
                        }
                        damaged = true;
                        break;
                    }
                }
            }
            let end = offset + pos as u64;
            w.cursor = Some((first, end));
            if let Some(f) = w.files.iter_mut().find(|f| f.0 == first) {
                f.1 = end;
            }
            if damaged {
                break;
            }
            // At the end of this file: has the log moved on to the next one?
            if w.next_seq == first || !self.fs.exists(&self.dir.join(file_name(w.next_seq)))? {
                break;
            }
            w.cursor = None;
        }
        self.seen.store(w.next_seq - 1, Ordering::SeqCst);
        Ok(stats)
    }

    /// The cursor entered the file starting at `first`: list it, and archive the file before
    /// it (now sealed) if archiving is on.
    fn moved_to(&self, w: &mut Writer, first: u64) -> Result<()> {
        w.cursor = Some((first, HEADER_LEN as u64));
        if w.files.iter().all(|f| f.0 != first) {
            w.files.push((first, HEADER_LEN as u64));
        }
        let before = w.files.iter().map(|f| f.0).filter(|&f| f < first).max();
        if let Some(prev) = before {
            self.archive_file(&self.dir.join(file_name(prev)))?;
        }
        Ok(())
    }

    fn fail(&self, err: &Error) -> Error {
        let mut s = self.sync.lock();
        if s.failed.is_none() {
            s.failed = Some(err.to_string());
        }
        self.synced_cv.notify_all();
        Error::LogFailed {
            reason: err.to_string(),
            path: self.dir.clone(),
        }
    }

    fn check_failed(&self) -> Result<()> {
        match &self.sync.lock().failed {
            Some(msg) => Err(Error::LogFailed {
                reason: msg.clone(),
                path: self.dir.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Append one record; returns its sequence number. The caller holds the collection's write
    /// lock and has just caught up (so the cursor is at the end of the log). The bytes are
    /// handed to the OS before this returns; durability is [`Wal::commit`]'s job.
    pub fn append(&self, op: &OpRef<'_>) -> Result<u64> {
        let mut frame = record::encode_frame(op)?;
        let mut w = self.writer.lock();
        self.check_failed()?;
        let seq = w.next_seq;
        seal_frame(&mut frame, seq);
        let needs_new_file = match w.cursor {
            None => true,
            Some((_, len)) => {
                len > HEADER_LEN as u64 && len + frame.len() as u64 > self.max_file_bytes
            }
        };
        if needs_new_file {
            self.start_file(&mut w, seq)?;
        }
        let Some((first, _)) = w.cursor else {
            return Err(Error::LogFailed {
                reason: "no open log file".into(),
                path: self.dir.clone(),
            });
        };
        let file = match &w.file {
            Some((f, file)) if *f == first => file.clone(),
            _ => {
                let path = self.dir.join(file_name(first));
                let file: Arc<dyn WriteFile> = match self.fs.open_append(&path) {
                    Ok(f) => Arc::from(f),
                    Err(e) => return Err(self.fail(&e)),
                };
                w.file = Some((first, file.clone()));
                file
            }
        };
        if let Err(e) = file.write_all(&frame) {
            // Part of the frame may be in the file: nothing may be appended after it.
            return Err(self.fail(&e));
        }
        let len = w.cursor.map_or(0, |c| c.1) + frame.len() as u64;
        w.cursor = Some((first, len));
        if let Some(f) = w.files.iter_mut().find(|f| f.0 == first) {
            f.1 = len;
        }
        w.next_seq = seq + 1;
        self.seen.store(seq, Ordering::SeqCst);
        Ok(seq)
    }

    /// Seal the current file (fsync: it may hold other processes' records that were not) and
    /// start a new one whose first record is `first_seq`. The caller holds the write lock.
    fn start_file(&self, w: &mut Writer, first_seq: u64) -> Result<()> {
        if let Some((prev, _)) = w.cursor.filter(|c| c.0 != first_seq) {
            let file = match &w.file {
                Some((f, file)) if *f == prev => Ok(file.clone()),
                _ => self
                    .fs
                    .open_append(&self.dir.join(file_name(prev)))
                    .map(Arc::from),
            };
            if let Err(e) = file.and_then(|f| f.sync_data()) {
                return Err(self.fail(&e));
            }
            {
                let mut s = self.sync.lock();
                s.synced = s.synced.max(first_seq - 1);
            }
            self.archive_file(&self.dir.join(file_name(prev)))?;
        }
        let path = self.dir.join(file_name(first_seq));
        let header = Header::new(FileKind::Log, first_seq, 0, &[]).encode();
        let file: Arc<dyn WriteFile> = match self.fs.create(&path) {
            Ok(f) => Arc::from(f),
            Err(e) => return Err(self.fail(&e)),
        };
        let made = file
            .write_all(&header)
            .and_then(|()| file.sync_data())
            .and_then(|()| self.fs.sync_dir(&self.dir));
        if let Err(e) = made {
            return Err(self.fail(&e));
        }
        // Appends go through a descriptor opened for appending: other processes append to the
        // file too, and a plain descriptor would write at its own, stale offset.
        let file: Arc<dyn WriteFile> = match self.fs.open_append(&path) {
            Ok(f) => Arc::from(f),
            Err(e) => return Err(self.fail(&e)),
        };
        // A file left with a torn header (a crash right after it was started) has the same
        // name: it was just truncated and re-created, so it is listed once.
        w.files.retain(|f| f.0 != first_seq);
        w.files.push((first_seq, HEADER_LEN as u64));
        w.file = Some((first_seq, file));
        w.cursor = Some((first_seq, HEADER_LEN as u64));
        Ok(())
    }

    /// Wait until record `seq` is as durable as the durability mode promises at acknowledgement:
    /// fsynced for `Fsync`; nothing more for `Interval` and `Off`.
    pub fn commit(&self, seq: u64) -> Result<()> {
        match self.durability {
            Durability::Fsync => self.sync_to(seq),
            Durability::Interval(_) | Durability::Off => self.check_failed(),
        }
    }

    /// fsync everything this process appended so far.
    pub fn sync_all(&self) -> Result<()> {
        let last = self.writer.lock().next_seq - 1;
        self.sync_to(last)
    }

    /// Group commit: one thread fsyncs on behalf of all that wait for records up to what had
    /// been appended when it started. A record of this process is in the file it appends to,
    /// or in an earlier one, fsynced when the log moved past it (`start_file`).
    fn sync_to(&self, target: u64) -> Result<()> {
        let mut s = self.sync.lock();
        loop {
            if let Some(msg) = &s.failed {
                return Err(Error::LogFailed {
                    reason: msg.clone(),
                    path: self.dir.clone(),
                });
            }
            if s.synced >= target {
                return Ok(());
            }
            if s.in_progress {
                self.synced_cv.wait(&mut s);
                continue;
            }
            s.in_progress = true;
            drop(s);
            let (file, upto) = {
                let w = self.writer.lock();
                (w.file.as_ref().map(|f| f.1.clone()), w.next_seq - 1)
            };
            let result = match file {
                Some(f) => f.sync_data(),
                None => Ok(()),
            };
            s = self.sync.lock();
            s.in_progress = false;
            match result {
                Ok(()) => s.synced = s.synced.max(upto),
                // fsyncgate: after a failed fsync the kernel may have dropped the dirty pages, so
                // a retry that succeeds proves nothing. The log is dead for this process.
                Err(e) => {
                    if s.failed.is_none() {
                        s.failed = Some(e.to_string());
                    }
                }
            }
            self.synced_cv.notify_all();
        }
    }

    /// Sequence number of the last record this process read or appended (0 if none ever).
    pub fn last_seq(&self) -> u64 {
        self.seen.load(Ordering::SeqCst)
    }

    /// Bytes of the log files this process knows of that may hold records after `seq` (the
    /// others, all checkpointed, may already be gone).
    pub fn bytes_after(&self, seq: u64) -> u64 {
        let w = self.writer.lock();
        let mut total = 0;
        for (i, f) in w.files.iter().enumerate() {
            let last = w.files.get(i + 1).map_or(u64::MAX, |next| next.0 - 1);
            if last > seq {
                total += f.1;
            }
        }
        total
    }

    /// Seal the current file (fsync) and start the next one, so that the files holding only
    /// what a checkpoint wrote can be removed while new records go on being appended. The
    /// caller holds the write lock and has caught up. Nothing to do if the current file holds
    /// no records.
    pub fn rotate(&self) -> Result<()> {
        let mut w = self.writer.lock();
        self.check_failed()?;
        if w.cursor.is_some_and(|c| c.1 > HEADER_LEN as u64) {
            let next = w.next_seq;
            self.start_file(&mut w, next)?;
        }
        Ok(())
    }

    /// Whether the file being appended to holds records (so `rotate` would seal something).
    pub fn has_open_records(&self) -> bool {
        self.writer
            .lock()
            .cursor
            .is_some_and(|c| c.1 > HEADER_LEN as u64)
    }

    /// Archive every sealed log file into `dir` from now on (and those sealed already).
    pub fn set_archive(&self, dir: Option<PathBuf>) -> Result<()> {
        if let Some(d) = &dir {
            self.fs.create_dir_all(d)?;
        }
        *self.archive.lock() = dir;
        let w = self.writer.lock();
        let current = w.cursor.map(|c| c.0);
        for &(first, _) in &w.files {
            if Some(first) != current {
                self.archive_file(&self.dir.join(file_name(first)))?;
            }
        }
        Ok(())
    }

    /// Put a sealed log file into the archive (a hard link if the archive is on the same file
    /// system, else a copy), fsynced. Already there with the same length: nothing to do.
    fn archive_file(&self, path: &Path) -> Result<()> {
        let Some(dir) = self.archive.lock().clone() else {
            return Ok(());
        };
        let Some(name) = path.file_name() else {
            return Ok(());
        };
        let to = dir.join(name);
        if !self.fs.exists(path)?
            || self.fs.exists(&to)? && self.fs.file_len(&to)? == self.fs.file_len(path)?
        {
            return Ok(());
        }
        let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
        let _ = self.fs.remove_file(&tmp); // left by an interrupted archiving, if any
        crate::io::link_or_copy(self.fs.as_ref(), path, &tmp)?;
        self.fs.rename(&tmp, &to)?;
        self.fs.sync_dir(&dir)
    }

    /// Remove the log files that hold nothing after record `seq` (made durable elsewhere by a
    /// checkpoint that every process has moved to). The last file is kept: it is the one
    /// writers append to.
    pub fn remove_through(&self, seq: u64) -> Result<()> {
        let mut numbered: Vec<u64> = self
            .fs
            .list_dir(&self.dir)?
            .iter()
            .filter_map(|n| parse_file_name(n))
            .collect();
        numbered.sort_unstable();
        let mut removed = Vec::new();
        for pair in numbered.windows(2) {
            if pair[1] - 1 > seq {
                break;
            }
            let path = self.dir.join(file_name(pair[0]));
            self.archive_file(&path)?;
            self.fs.remove_file(&path)?;
            removed.push(pair[0]);
        }
        if !removed.is_empty() {
            self.fs.sync_dir(&self.dir)?;
            let mut w = self.writer.lock();
            w.files.retain(|f| !removed.contains(&f.0));
            if w.file.as_ref().is_some_and(|f| removed.contains(&f.0)) {
                w.file = None;
            }
        }
        Ok(())
    }

    /// Stop the background thread and make everything appended durable (interval mode), so a
    /// clean close never loses the last interval's writes.
    pub fn close(&self) -> Result<()> {
        self.stop_background.lock().take();
        match self.durability {
            Durability::Off => self.check_failed(),
            _ => self.sync_all(),
        }
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.stop_background.lock().take();
    }
}

/// Where a point-in-time recovery stops.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// Up to and including this record.
    Sequence(u64),
    /// Up to the last record made at or before this time (µs since the epoch): the records
    /// before the first later one.
    Time(i64),
}

/// Point-in-time recovery: make the log files in `dir` hold exactly the records from `from`
/// (a checkpoint at `from - 1` precedes them) to `target`: files wholly outside are removed,
/// the file holding the last record kept is cut after it. Refuses (Corruption) a gap or a
/// damaged record, and a log that ends before a target sequence number (a log that ends
/// before a target time is the best there is: kept whole, with a warning).
pub fn cut_to(fs: &dyn FileSystem, dir: &Path, from: u64, target: Target) -> Result<()> {
    let to = match target {
        Target::Sequence(s) => s,
        Target::Time(_) => u64::MAX,
    };
    let mut stopped = false;
    let mut numbered: Vec<(u64, PathBuf)> = fs
        .list_dir(dir)?
        .into_iter()
        .filter_map(|n| parse_file_name(&n).map(|s| (s, dir.join(n))))
        .collect();
    numbered.sort();
    let mut next: Option<u64> = None;
    let mut reached = from.saturating_sub(1);
    let mut kept_any = false;
    for (first, path) in numbered {
        let data = fs.read(&path)?;
        let header = Header::decode(FileKind::Log, &data, &path)?;
        if header.count != first {
            return Err(Error::corrupt(&path, "log file name and header disagree"));
        }
        if first > to || stopped {
            // Wholly after the target (what it holds does not matter).
            fs.remove_file(&path)?;
            continue;
        }
        if let Some(n) = next {
            if n != first {
                return Err(Error::corrupt(
                    &path,
                    format!(
                        "archived log files leave a gap: records {n} to {} are missing",
                        first - 1
                    ),
                ));
            }
        }
        let mut seq = first;
        let mut pos = HEADER_LEN;
        let mut cut_at = None;
        while pos < data.len() {
            let frame = parse_frame(&data[pos..]).map_err(|why| {
                Error::corrupt(
                    &path,
                    format!("record {seq} at offset {pos} is damaged ({why})"),
                )
            })?;
            if frame.seq != seq {
                return Err(Error::corrupt(
                    &path,
                    format!("record {} out of order", frame.seq),
                ));
            }
            let late = match target {
                Target::Sequence(_) => seq > to,
                Target::Time(t) => {
                    seq >= from && record::split_body(frame.body).is_none_or(|(at, _)| at > t)
                }
            };
            if late {
                cut_at = Some(pos);
                stopped = true;
                break;
            }
            reached = seq;
            seq += 1;
            pos += frame.len;
        }
        let ends_before_from = seq <= from && cut_at.is_none();
        next = Some(seq);
        if !ends_before_from && !kept_any {
            kept_any = true;
            if first > from {
                return Err(Error::corrupt(
                    &path,
                    format!(
                        "the log archive starts at record {first}; records from {from} are missing"
                    ),
                ));
            }
        }
        if ends_before_from {
            // Wholly covered by the checkpoint the restore starts from.
            fs.remove_file(&path)?;
        } else if let Some(at) = cut_at {
            fs.truncate(&path, at as u64)?;
        }
    }
    match target {
        Target::Sequence(to) if from <= to && reached < to => {
            return Err(Error::invalid(format!(
                "the log archive holds records only up to {reached}; cannot recover to {to}"
            )));
        }
        Target::Time(_) if !stopped => log::warn!(
            "the log archive ends at record {reached}, before the requested time: recovering to it"
        ),
        _ => {}
    }
    fs.sync_dir(dir)
}

/// Is there an intact frame anywhere in `rest` with a plausible sequence number? Used to tell a
/// torn tail (nothing valid after the damage) from damage in the middle of the log.
fn intact_record_follows(rest: &[u8], next: u64) -> bool {
    if rest.len() < record::FRAME_HEADER_LEN {
        return false;
    }
    (0..=rest.len() - record::FRAME_HEADER_LEN).any(|at| {
        let seq = crate::format::read_u64(rest, at + 8);
        // Cheap filter first: only a frame whose sequence number could follow is checked.
        seq >= next && seq - next < SEQ_WINDOW && parse_frame(&rest[at..]).is_ok()
    })
}
