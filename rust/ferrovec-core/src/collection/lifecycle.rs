//! Checkpoints and optimization on request, closing, and dropping.

use std::sync::atomic::Ordering;

use serde_json::json;

use super::optimize;
use super::{Collection, CLOSED, DROPPED, OPEN};
use crate::cancel::{Cancel, Report, SILENT};
use crate::error::Result;
use crate::observe::Op;
use crate::shared::Shared;

impl Collection {
    /// Checkpoint: seal everything logged so far into a segment file and trim the log.
    pub fn flush(&self) -> Result<()> {
        self.observed(
            Op::Flush,
            || json!({}),
            || {
                self.check_open()?;
                let _s = self.structure.lock();
                let _lease = self.lease(true)?;
                optimize::seal(self)
            },
        )
    }

    /// Expire points past retention, then seal, index and merge now: afterwards a collection
    /// smaller than `max_segment_points` is one segment with a graph (if it has at least
    /// `full_scan_threshold` points). `cancel` stops it early (with `Interrupted`), keeping
    /// every merge finished by then.
    pub fn optimize(&self, cancel: &Cancel) -> Result<()> {
        self.optimize_reporting(cancel, SILENT)
    }

    /// `optimize`, telling `report` the graph insertions done of those planned as it goes
    /// (`stats()["optimizer"]["progress"]` shows the same to other callers).
    pub fn optimize_reporting(&self, cancel: &Cancel, report: &dyn Report) -> Result<()> {
        self.observed(
            Op::Optimize,
            || json!({}),
            || {
                self.check_open()?;
                self.expire()?;
                let _s = self.structure.lock();
                let _lease = self.lease(true)?;
                optimize::optimize_all(self, cancel, report)
            },
        )
    }

    /// Rebuild every graph and payload index from the stored rows (each segment rewritten,
    /// no graph kept and extended), then check every checksum. `cancel` stops it between
    /// segments or inside one.
    pub fn reindex(&self, cancel: &Cancel) -> Result<()> {
        self.observed(
            Op::Optimize,
            || json!({"reindex": true}),
            || {
                self.check_open()?;
                {
                    let _s = self.structure.lock();
                    let _lease = self.lease(true)?;
                    optimize::reindex_all(self, cancel)?;
                }
                self.verify()
            },
        )
    }

    /// Ask the background optimizer to run a full optimization soon; returns at once.
    pub fn optimize_in_background(&self) -> Result<()> {
        self.check_open()?;
        self.optimizer.request_full();
        Ok(())
    }

    /// Stop the optimizer, checkpoint and stop the log. Later calls fail with `Closed`.
    /// With other processes sharing the collection, the checkpoint is left to whichever holds
    /// the optimizer lease, if one does.
    pub fn close(&self) -> Result<()> {
        if self.pid != std::process::id() {
            return Ok(()); // a copy made by fork: the parent owns these files and locks
        }
        optimize::stop(self);
        let _s = self.structure.lock();
        if self.status.load(Ordering::Acquire) != OPEN {
            return Ok(());
        }
        let result = if self.options.read_only || self.shared.as_ref().is_some_and(Shared::retired)
        {
            Ok(())
        } else {
            match self.lease(false) {
                Ok(Some(_lease)) => optimize::seal(self),
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            }
        };
        self.status.store(CLOSED, Ordering::Release);
        let closed = self.wal.as_ref().map_or(Ok(()), |w| w.close());
        result.and(closed)
    }

    /// Mark the collection dropped: every later call on a handle fails with `CollectionNotFound`.
    pub fn mark_dropped(&self) {
        if let Some(s) = &self.shared {
            s.retire();
        }
        optimize::stop(self);
        let _s = self.structure.lock();
        let _m = self.writer.lock();
        self.status.store(DROPPED, Ordering::Release);
        if let Some(w) = &self.wal {
            // The files are about to be removed; nothing of the log needs to be kept.
            let _ = w.close();
        }
    }
}
