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

mod archive;
mod check;
mod commit;
pub mod record;
mod replay;
mod salvage;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Weak};
use std::thread;

use parking_lot::{Condvar, Mutex};

use crate::config::Durability;
use crate::error::{Error, Result};
use crate::format::HEADER_LEN;
use crate::io::{FileSystem, WriteFile};
use crate::observe::metrics::LogMetrics;
pub use archive::{cut_to, Target};
pub use check::{check_log, LogCheck};
use record::Op;
pub use salvage::{salvage_log, LogSalvage};

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
    /// Appends and fsyncs made by this process.
    pub metrics: LogMetrics,
    /// The last record `time_of_first_after` read, and its time.
    first_time: Mutex<Option<(u64, i64)>>,
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

/// The first sequence numbers of the log files in `dir` that may hold records after
/// `checkpoint_seq` (the one holding the record after it, and those after), in order.
pub(crate) fn files_after_checkpoint(
    fs: &dyn FileSystem,
    dir: &Path,
    checkpoint_seq: u64,
) -> Result<Vec<u64>> {
    let mut numbered: Vec<u64> = fs
        .list_dir(dir)?
        .iter()
        .filter_map(|n| parse_file_name(n))
        .collect();
    numbered.sort_unstable();
    let start = numbered
        .iter()
        .rposition(|&f| f <= checkpoint_seq + 1)
        .unwrap_or(0);
    numbered.drain(..start.min(numbered.len()));
    Ok(numbered)
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
            metrics: LogMetrics::default(),
            first_time: Mutex::new(None),
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

    /// Sequence number of the last record this process read or appended (0 if none ever).
    pub fn last_seq(&self) -> u64 {
        self.seen.load(Ordering::SeqCst)
    }

    /// Bytes of the log files this process knows of that may hold records after `seq` (the
    /// others, all checkpointed, may already be gone).
    pub fn bytes_after(&self, seq: u64) -> u64 {
        self.extent_after(seq).1
    }

    /// How many log files this process knows of may hold records after `seq`, and their bytes.
    pub fn extent_after(&self, seq: u64) -> (usize, u64) {
        let w = self.writer.lock();
        let mut extent = (0, 0);
        for (i, f) in w.files.iter().enumerate() {
            let last = w.files.get(i + 1).map_or(u64::MAX, |next| next.0 - 1);
            if last > seq {
                extent.0 += 1;
                extent.1 += f.1;
            }
        }
        extent
    }

    /// When record `seq + 1`, the oldest not in the checkpoint at `seq`, was made (µs since
    /// the epoch); `None` if there is none yet. Reads its file up to it the first time it is
    /// asked for a record (a record never changes, so its time is kept).
    pub fn time_of_first_after(&self, seq: u64) -> Result<Option<i64>> {
        let want = seq + 1;
        if let Some((known, at)) = *self.first_time.lock() {
            if known == want {
                return Ok(Some(at));
            }
        }
        let first = {
            let w = self.writer.lock();
            if w.next_seq <= want {
                return Ok(None);
            }
            w.files.iter().map(|f| f.0).filter(|&f| f <= want).max()
        };
        let Some(first) = first else { return Ok(None) };
        let path = self.dir.join(file_name(first));
        let data = self.fs.read(&path)?;
        let mut pos = HEADER_LEN;
        while pos < data.len() {
            let Ok(frame) = record::parse_frame(&data[pos..]) else {
                return Ok(None);
            };
            if frame.seq == want {
                let at = record::split_body(frame.body).map(|b| b.0);
                *self.first_time.lock() = at.map(|at| (want, at));
                return Ok(at);
            }
            pos += frame.len;
        }
        Ok(None)
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
