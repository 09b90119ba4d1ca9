//! Appending and making durable: one record at a time under the collection's write lock, new
//! files as the log grows, group-committed fsyncs, and the fsyncgate rule (after a failed
//! write or fsync, the log refuses everything until the store is reopened).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::record::{self, seal_frame, OpRef};
use super::{file_name, Wal, Writer};
use crate::config::Durability;
use crate::error::{Error, Result};
use crate::format::{FileKind, Header, HEADER_LEN};
use crate::io::WriteFile;

impl Wal {
    pub(super) fn fail(&self, err: &Error) -> Error {
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

    pub(super) fn check_failed(&self) -> Result<()> {
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
        self.metrics.appends.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .appended_bytes
            .fetch_add(frame.len() as u64, Ordering::Relaxed);
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
    pub(super) fn start_file(&self, w: &mut Writer, first_seq: u64) -> Result<()> {
        if let Some((prev, _)) = w.cursor.filter(|c| c.0 != first_seq) {
            let file = match &w.file {
                Some((f, file)) if *f == prev => Ok(file.clone()),
                _ => self
                    .fs
                    .open_append(&self.dir.join(file_name(prev)))
                    .map(Arc::from),
            };
            if let Err(e) = file.and_then(|f| self.timed_sync(&*f)) {
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

    /// fsync `file`, counted and timed in the log's metrics.
    fn timed_sync(&self, file: &dyn WriteFile) -> Result<()> {
        let started = std::time::Instant::now();
        let r = file.sync_data();
        self.metrics.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.metrics.fsync_latency.observe(started.elapsed());
        r
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
    pub(super) fn sync_to(&self, target: u64) -> Result<()> {
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
                Some(f) => self.timed_sync(&*f),
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
}
