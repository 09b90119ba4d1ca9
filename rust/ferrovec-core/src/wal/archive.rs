//! Log files after they are sealed: kept in the archive (continuous archiving), removed once
//! checkpointed, and cut to a point in time for a restore.

use std::path::{Path, PathBuf};

use super::record::{self, parse_frame};
use super::{file_name, parse_file_name, Wal};
use crate::error::{Error, Result};
use crate::format::{FileKind, Header, HEADER_LEN};
use crate::io::FileSystem;

impl Wal {
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
    pub(super) fn archive_file(&self, path: &Path) -> Result<()> {
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
