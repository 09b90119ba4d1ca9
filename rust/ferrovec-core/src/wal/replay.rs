//! Reading the log: replay at open, a rewind to a newer checkpoint, and catching up with the
//! records other processes appended; and telling a torn tail (cut) from damage (refused).

use std::path::Path;
use std::sync::atomic::Ordering;

use super::record::{self, parse_frame, Op};
use super::{file_name, not_found, parse_file_name, ReplayStats, Wal, Writer, SEQ_WINDOW};
use crate::error::{Error, Result};
use crate::format::{FileKind, Header, HEADER_LEN};

/// Bytes read from one log file: `data` is the file `first` from `offset` on.
struct Chunk<'a> {
    path: &'a Path,
    data: &'a [u8],
    offset: u64,
    first: u64,
}

impl Wal {
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

    pub(super) fn catch_up_locked(
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
            let chunk = Chunk {
                path: &path,
                data: &data,
                offset,
                first,
            };
            let (pos, damaged) = self.read_records(w, &chunk, pos, repair, apply, &mut stats)?;
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

    /// Hand the records of `chunk` from `pos` on to `apply`, in order (those the checkpoint
    /// holds are read past); returns where reading stopped and whether damage stopped it.
    fn read_records(
        &self,
        w: &mut Writer,
        chunk: &Chunk<'_>,
        mut pos: usize,
        repair: bool,
        apply: &mut dyn FnMut(u64, Op) -> Result<()>,
        stats: &mut ReplayStats,
    ) -> Result<(usize, bool)> {
        let (path, data, offset) = (chunk.path, chunk.data, chunk.offset);
        while pos < data.len() {
            match parse_frame(&data[pos..]) {
                Ok(frame) if frame.seq == w.next_seq => {
                    if frame.seq > w.skip_through {
                        let body = record::split_body(frame.body).map_or(&[][..], |b| b.1);
                        let op: Op = postcard::from_bytes(body).map_err(|e| {
                            Error::corrupt(
                                path,
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
                        path,
                        format!(
                            "record at offset {} has sequence number {}, expected {}",
                            offset + pos as u64,
                            frame.seq,
                            w.next_seq
                        ),
                    ))
                }
                Err(why) => {
                    // Without the write lock this may be a record still being written (a read
                    // can even see part of it and a later one whole): stop here. The next
                    // writer, alone, tells a torn tail from damage.
                    if repair {
                        self.cut_torn_tail(w, chunk, pos, &why.to_string(), stats)?;
                    }
                    return Ok((pos, true));
                }
            }
        }
        Ok((pos, false))
    }

    /// The record at `pos` of `chunk` is damaged and the caller holds the write lock: cut it
    /// off if it is a torn tail (nothing intact follows it, no later file exists), else refuse.
    fn cut_torn_tail(
        &self,
        w: &Writer,
        chunk: &Chunk<'_>,
        pos: usize,
        why: &str,
        stats: &mut ReplayStats,
    ) -> Result<()> {
        let (path, data) = (chunk.path, chunk.data);
        let at = chunk.offset + pos as u64;
        if intact_record_follows(&data[pos + 1..], w.next_seq)
            || w.next_seq != chunk.first && self.fs.exists(&self.dir.join(file_name(w.next_seq)))?
        {
            return Err(Error::corrupt(
                path,
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
        self.fs.truncate(path, at)?;
        stats.truncated_bytes += cut;
        Ok(())
    }

    /// The cursor entered the file starting at `first`: list it, and archive the file before
    /// it (now sealed) if archiving is on.
    pub(super) fn moved_to(&self, w: &mut Writer, first: u64) -> Result<()> {
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
}

/// Is there an intact frame anywhere in `rest` with a plausible sequence number? Used to tell a
/// torn tail (nothing valid after the damage) from damage in the middle of the log.
fn intact_record_follows(rest: &[u8], next: u64) -> bool {
    next_intact(rest, 0, next).is_some()
}

/// The first offset from `from` of an intact frame whose sequence number could follow `next`.
pub(super) fn next_intact(data: &[u8], from: usize, next: u64) -> Option<usize> {
    if data.len() < from + record::FRAME_HEADER_LEN {
        return None;
    }
    (from..=data.len() - record::FRAME_HEADER_LEN).find(|&at| {
        let seq = crate::format::read_u64(data, at + 8);
        // Cheap filter first: only a frame whose sequence number could follow is checked.
        seq >= next && seq - next < SEQ_WINDOW && parse_frame(&data[at..]).is_ok()
    })
}
