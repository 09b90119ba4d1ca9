//! The write-ahead log of one collection: framed, checksummed records in numbered files,
//! group-committed fsyncs, background fsync for the interval mode, replay with torn-tail repair.
//!
//! Files are `wal/<first seq, 20 digits>.wal`; each starts with the common 64-byte header
//! (`count` = sequence number of its first record) followed by frames (see [`record`]).
//! Sequence numbers are consecutive across files. A new file is started lazily at the first
//! append after open or after a checkpoint, and when the current one passes the size limit.

pub mod record;

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Weak};
use std::thread;

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};
use crate::format::{FileKind, Header, HEADER_LEN};
use crate::io::{FileSystem, WriteFile};
use crate::types::Durability;
use record::{parse_frame, seal_frame, Op};

/// How far past a damaged record we look for intact records that would prove the damage is not
/// a torn tail. Sequence numbers in a frame must lie within this distance of the last good one.
const SEQ_WINDOW: u64 = 1 << 32;

pub struct Wal {
    dir: PathBuf,
    fs: Arc<dyn FileSystem>,
    durability: Durability,
    max_file_bytes: u64,
    writer: Mutex<Writer>,
    sync: Mutex<SyncState>,
    synced_cv: Condvar,
    stop_background: Mutex<Option<mpsc::Sender<()>>>,
    /// Continuous archiving: every log file, once sealed, is also put here (see `archive`).
    archive: Mutex<Option<PathBuf>>,
}

struct Writer {
    /// The file being appended to; `None` until the first append after open or a checkpoint.
    file: Option<Arc<dyn WriteFile>>,
    file_len: u64,
    /// Every log file on disk, oldest first: (first seq, path, bytes).
    files: Vec<(u64, PathBuf, u64)>,
    next_seq: u64,
}

struct SyncState {
    /// Every record with a sequence number up to this one is durable.
    synced: u64,
    in_progress: bool,
    /// Set by the first failed write or fsync; the log refuses all later writes.
    failed: Option<String>,
}

/// What replay found.
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

impl Wal {
    /// Open the log in `dir`, replaying every record after `checkpoint_seq` through `apply`, in
    /// order. A torn tail of the last file is cut off (and logged); damage anywhere else is a
    /// `Corruption` error.
    pub fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        durability: Durability,
        max_file_bytes: u64,
        checkpoint_seq: u64,
        mut apply: impl FnMut(u64, Op) -> Result<()>,
    ) -> Result<(Arc<Wal>, ReplayStats)> {
        fs.create_dir_all(dir)?;
        let mut numbered = Vec::new();
        for name in fs.list_dir(dir)? {
            match parse_file_name(&name) {
                Some(seq) => numbered.push((seq, dir.join(&name))),
                None => log::warn!("ignoring unexpected file {} in the log directory", name),
            }
        }
        numbered.sort();

        let mut stats = ReplayStats {
            records: 0,
            applied: 0,
            truncated_bytes: 0,
        };
        let mut files = Vec::new();
        // The sequence number the next record must carry; `None` until the first file fixes it.
        let mut expected: Option<u64> = None;
        let count = numbered.len();
        for (i, (first_seq, path)) in numbered.into_iter().enumerate() {
            let is_last = i + 1 == count;
            let data = fs.map(&path)?;
            let header = match Header::decode(FileKind::Log, &data, &path) {
                Ok(h) => h,
                // A crash while a new file's header was being written leaves a short or zeroed
                // file with no records in it: nothing was acknowledged from it.
                Err(_) if is_last && data.len() <= HEADER_LEN => {
                    log::warn!(
                        "removing log file {} with a torn header ({} bytes)",
                        path.display(),
                        data.len()
                    );
                    drop(data);
                    fs.remove_file(&path)?;
                    fs.sync_dir(dir)?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if header.count != first_seq {
                return Err(Error::corrupt(
                    &path,
                    format!(
                        "log file name says first record {first_seq}, header says {}",
                        header.count
                    ),
                ));
            }
            match expected {
                None if first_seq > checkpoint_seq + 1 => {
                    return Err(Error::corrupt(
                        &path,
                        format!(
                            "log records {} to {} are missing (checkpoint at {checkpoint_seq})",
                            checkpoint_seq + 1,
                            first_seq - 1
                        ),
                    ))
                }
                Some(e) if e != first_seq => {
                    return Err(Error::corrupt(
                        &path,
                        format!("log file starts at record {first_seq}, expected {e}"),
                    ))
                }
                _ => {}
            }
            let mut next = first_seq;
            let mut pos = HEADER_LEN;
            while pos < data.len() {
                match parse_frame(&data[pos..]) {
                    Ok(frame) if frame.seq == next => {
                        if frame.seq > checkpoint_seq {
                            let body = record::split_body(frame.body).map_or(&[][..], |b| b.1);
                            let op: Op = postcard::from_bytes(body).map_err(|e| {
                                Error::corrupt(
                                    &path,
                                    format!(
                                        "record {} at offset {pos} does not decode: {e}",
                                        frame.seq
                                    ),
                                )
                            })?;
                            apply(frame.seq, op)?;
                            stats.applied += 1;
                        }
                        stats.records += 1;
                        next += 1;
                        pos += frame.len;
                    }
                    Ok(frame) => {
                        return Err(Error::corrupt(
                            &path,
                            format!(
                                "record at offset {pos} has sequence number {}, expected {next}",
                                frame.seq
                            ),
                        ))
                    }
                    Err(why) => {
                        if !is_last || intact_record_follows(&data[pos + 1..], next) {
                            return Err(Error::corrupt(
                                &path,
                                format!(
                                    "record {next} at offset {pos} is damaged ({why}) and intact records follow it"
                                ),
                            ));
                        }
                        let cut = (data.len() - pos) as u64;
                        log::warn!(
                            "cutting a torn tail of {cut} bytes off {} at offset {pos} ({why}); records from {next} on were never acknowledged",
                            path.display()
                        );
                        drop(data);
                        fs.truncate(&path, pos as u64)?;
                        stats.truncated_bytes = cut;
                        break;
                    }
                }
            }
            let len = fs.file_len(&path)?;
            files.push((first_seq, path, len));
            expected = Some(next);
        }
        let next_seq = expected
            .unwrap_or(checkpoint_seq + 1)
            .max(checkpoint_seq + 1);
        let wal = Arc::new(Wal {
            dir: dir.to_path_buf(),
            fs,
            durability,
            max_file_bytes,
            writer: Mutex::new(Writer {
                file: None,
                file_len: 0,
                files,
                next_seq,
            }),
            sync: Mutex::new(SyncState {
                synced: next_seq - 1,
                in_progress: false,
                failed: None,
            }),
            synced_cv: Condvar::new(),
            stop_background: Mutex::new(None),
            archive: Mutex::new(None),
        });
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

    /// Append one frame (built by [`record::encode_frame`]); returns its sequence number. The
    /// bytes are handed to the OS before this returns; durability is [`Wal::commit`]'s job.
    pub fn append(&self, mut frame: Vec<u8>) -> Result<u64> {
        let mut w = self.writer.lock();
        self.check_failed()?;
        let seq = w.next_seq;
        seal_frame(&mut frame, seq);
        let needs_new_file = match w.file {
            None => true,
            Some(_) => {
                w.file_len > HEADER_LEN as u64
                    && w.file_len + frame.len() as u64 > self.max_file_bytes
            }
        };
        if needs_new_file {
            self.start_file(&mut w, seq)?;
        }
        let Some(file) = w.file.clone() else {
            return Err(Error::LogFailed {
                reason: "no open log file".into(),
                path: self.dir.clone(),
            });
        };
        if let Err(e) = file.write_all(&frame) {
            // Part of the frame may be in the file: nothing may be appended after it.
            return Err(self.fail(&e));
        }
        w.file_len += frame.len() as u64;
        let len = w.file_len;
        if let Some(last) = w.files.last_mut() {
            last.2 = len;
        }
        w.next_seq = seq + 1;
        Ok(seq)
    }

    /// Seal the current file (fsync) and start a new one whose first record is `first_seq`.
    fn start_file(&self, w: &mut Writer, first_seq: u64) -> Result<()> {
        if let Some(old) = w.file.take() {
            if let Err(e) = old.sync_data() {
                return Err(self.fail(&e));
            }
            {
                let mut s = self.sync.lock();
                s.synced = s.synced.max(first_seq - 1);
            }
            if let Some((_, path, _)) = w.files.last() {
                self.archive_file(path)?;
            }
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
        // A file left with a header and no records (a crash right after it was started) has
        // the same name: it was just truncated and re-created, so it is listed once.
        if w.files.last().is_some_and(|f| f.0 == first_seq) {
            w.files.pop();
        }
        w.files.push((first_seq, path, HEADER_LEN as u64));
        w.file = Some(file);
        w.file_len = HEADER_LEN as u64;
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

    /// fsync everything appended so far.
    pub fn sync_all(&self) -> Result<()> {
        let last = self.writer.lock().next_seq - 1;
        self.sync_to(last)
    }

    /// Group commit: one thread fsyncs on behalf of all that wait for records up to what had
    /// been appended when it started.
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
                (w.file.clone(), w.next_seq - 1)
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

    /// Sequence number of the last appended record (0 if none ever).
    pub fn last_seq(&self) -> u64 {
        self.writer.lock().next_seq - 1
    }

    pub fn bytes(&self) -> u64 {
        self.writer.lock().files.iter().map(|f| f.2).sum()
    }

    /// Seal the current file (fsync) so that the next append starts a new one. A checkpoint
    /// rotates when it freezes the rows it will write, so that afterwards the files holding only
    /// what it wrote can be removed while new records go on being appended.
    pub fn rotate(&self) -> Result<()> {
        let mut w = self.writer.lock();
        self.check_failed()?;
        if let Some(old) = w.file.take() {
            if let Err(e) = old.sync_data() {
                return Err(self.fail(&e));
            }
            let last = w.next_seq - 1;
            {
                let mut s = self.sync.lock();
                s.synced = s.synced.max(last);
            }
            if let Some((_, path, _)) = w.files.last() {
                self.archive_file(path)?;
            }
        }
        w.file_len = 0;
        Ok(())
    }

    /// Whether the file being appended to holds records (so `rotate` would seal something).
    pub fn has_open_records(&self) -> bool {
        let w = self.writer.lock();
        w.file.is_some() && w.file_len > HEADER_LEN as u64
    }

    /// Archive every sealed log file into `dir` from now on (and those sealed already).
    pub fn set_archive(&self, dir: Option<PathBuf>) -> Result<()> {
        if let Some(d) = &dir {
            self.fs.create_dir_all(d)?;
        }
        *self.archive.lock() = dir;
        let w = self.writer.lock();
        let sealed = w.files.len() - usize::from(w.file.is_some());
        for (_, path, _) in &w.files[..sealed] {
            self.archive_file(path)?;
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
        if self.fs.exists(&to)? && self.fs.file_len(&to)? == self.fs.file_len(path)? {
            return Ok(());
        }
        let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
        if std::fs::hard_link(path, &tmp).is_err() {
            std::fs::copy(path, &tmp).map_err(|source| Error::Io {
                op: "archive log file",
                path: path.to_path_buf(),
                source,
            })?;
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(|source| Error::Io {
                    op: "fsync",
                    path: tmp.clone(),
                    source,
                })?;
        }
        self.fs.rename(&tmp, &to)?;
        self.fs.sync_dir(&dir)
    }

    /// After a checkpoint has made every record up to `seq` durable elsewhere, remove the log
    /// files that hold nothing newer.
    pub fn remove_through(&self, seq: u64) -> Result<()> {
        let mut w = self.writer.lock();
        let next_seq = w.next_seq;
        let ends: Vec<u64> = (0..w.files.len())
            .map(|i| w.files.get(i + 1).map_or(next_seq - 1, |f| f.0 - 1))
            .collect();
        let mut removed = 0;
        for end in ends {
            if end > seq {
                break;
            }
            let (_, path, _) = w.files.remove(0);
            if w.files.is_empty() {
                // That was the file being appended to: the next append starts a new one.
                w.file = None;
                w.file_len = 0;
            }
            self.fs.remove_file(&path)?;
            removed += 1;
        }
        if removed > 0 {
            self.fs.sync_dir(&self.dir)?;
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
