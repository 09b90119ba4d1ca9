//! What copies of a collection need: a checkpoint held still while its files are copied
//! (snapshots, backups), and the continuous archive of sealed log files.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use super::optimize;
use super::{Collection, CopyGuard};
use crate::error::{Error, Result};

impl Collection {
    /// Continuous log archiving: every sealed log file is also put into `dir`, and the open
    /// one is sealed at least every `every` while it holds records (so an archive lags the
    /// acknowledged writes by at most about `every`). `None` turns it off.
    pub fn set_log_archive(&self, dir: Option<PathBuf>, every: std::time::Duration) -> Result<()> {
        let Some(wal) = &self.wal else {
            return Err(Error::invalid(
                "an in-memory collection has no log to archive",
            ));
        };
        let on = dir.is_some();
        wal.set_archive(dir)?;
        let ms = if on {
            every.as_millis().max(1) as u64
        } else {
            0
        };
        self.archive_every_ms.store(ms, Ordering::Relaxed);
        Ok(())
    }

    /// Seal the log file for the archive if `archive_every_ms` has passed (background thread).
    pub(crate) fn archive_if_due(&self) -> Result<()> {
        let every = self.archive_every_ms.load(Ordering::Relaxed);
        let Some(wal) = self.wal.as_ref().filter(|_| every > 0) else {
            return Ok(());
        };
        let now = self.opened.elapsed().as_millis() as u64;
        if now.saturating_sub(self.last_archive_ms.load(Ordering::Relaxed)) < every {
            return Ok(());
        }
        self.last_archive_ms.store(now, Ordering::Relaxed);
        if wal.has_open_records() {
            let _g = self.begin_write()?;
            wal.rotate()?;
        }
        Ok(())
    }

    /// Checkpoint, and hold the structure lock and the optimizer lease (no file of the manifest
    /// is retired while they are held, in any process; writers go on) so the caller can copy
    /// the files the manifest names.
    pub(crate) fn checkpoint_for_copy(&self) -> Result<(PathBuf, CopyGuard<'_>)> {
        self.check_open()?;
        let dir = self
            .dir
            .clone()
            .ok_or_else(|| Error::invalid("an in-memory collection has no files to copy"))?;
        let s = self.structure.lock();
        self.check_open()?;
        let lease = self.lease(true)?;
        optimize::seal(self)?;
        Ok((dir, CopyGuard(lease, s)))
    }
}
