//! The view this process shares with the others that have the collection open: catching up
//! with their log records and manifests, the cross-process write lock and optimizer lease,
//! publishing a manifest, and removing the files no process uses any more.

use std::sync::atomic::Ordering;

use super::manifest::{self, Manifest};
use super::open::{apply_logged, load_segments};
use super::{Collection, LeaseGuard, WriteGuard, SEGMENTS_DIR, WAL_DIR};
use crate::error::{Error, Result};
use crate::shared::Shared;
use crate::wal::record::OpRef;
use crate::wal::Wal;

impl Collection {
    /// See what other processes did since this one last looked: switch to a newer manifest,
    /// read the records appended since. When nothing changed this is two atomic loads of the
    /// shared hints. The log end is set after the record is written, before it is
    /// acknowledged; the generation is raised before the manifest is renamed into place, and a
    /// process that finds the old one then looks again at every call until the new one is
    /// there. So a write or optimization acknowledged anywhere is seen here at the next call.
    pub fn sync(&self) -> Result<()> {
        let (Some(shared), Some(wal)) = (&self.shared, &self.wal) else {
            return Ok(());
        };
        if shared.generation() <= self.generation.load(Ordering::SeqCst)
            && shared.log_end() <= wal.last_seq()
        {
            return Ok(());
        }
        let mut m = self.writer.lock();
        self.check_open()?;
        self.sync_locked(&mut m, false)
    }

    /// `sync` under the writer lock. With `repair` (the caller holds the write lock) a torn
    /// log tail is cut.
    pub(super) fn sync_locked(&self, m: &mut Manifest, repair: bool) -> Result<()> {
        let (Some(shared), Some(dir)) = (&self.shared, &self.dir) else {
            return Ok(());
        };
        if shared.generation() > m.generation {
            let current = Manifest::read(self.fs.as_ref(), dir)?;
            if current.generation != m.generation {
                self.reload(m, current)?;
            }
        }
        self.catch_up(repair)
    }

    /// Read the log's new records into the state. The caller holds the writer lock.
    pub(super) fn catch_up(&self, repair: bool) -> Result<()> {
        let (Some(wal), Some(dir)) = (&self.wal, &self.dir) else {
            return Ok(());
        };
        let log_dir = dir.join(WAL_DIR);
        let mut st = self.state.write();
        let stats = wal.catch_up(repair, &mut |seq, op| {
            apply_logged(&mut st, seq, op, &log_dir)
        })?;
        if stats.applied > 0 {
            drop(st);
            self.note_write();
        }
        Ok(())
    }

    /// Switch to `current`, a manifest another process published: the state is rebuilt from
    /// its segments (those this process has mapped already are kept) and the log after its
    /// checkpoint. Searches go on in the old state meanwhile. The pin stays at the old
    /// generation until the switch, which keeps both generations' files.
    pub(super) fn reload(&self, m: &mut Manifest, current: Manifest) -> Result<()> {
        let (Some(wal), Some(dir)) = (&self.wal, &self.dir) else {
            return Ok(());
        };
        if current.config.vectors != self.config.vectors {
            return Err(Error::corrupt(
                dir.join(manifest::MANIFEST),
                "the manifest now describes other vectors than when the collection was opened",
            ));
        }
        let mut state = load_segments(
            &self.fs,
            dir,
            &current,
            &self.state.read(),
            self.options.rows_from_disk_bytes,
        )?;
        let log_dir = dir.join(WAL_DIR);
        wal.rewind(current.checkpoint_seq, &mut |seq, op| {
            apply_logged(&mut state, seq, op, &log_dir)
        })?;
        *self.state.write() = state;
        self.generation.store(current.generation, Ordering::SeqCst);
        if let Some(shared) = &self.shared {
            shared.pin(current.generation);
        }
        *m = current;
        self.note_write();
        Ok(())
    }

    /// Start a write: take the writer lock and the cross-process write lock, and catch up
    /// with the log, so the write is planned against everything acknowledged before it.
    pub(super) fn begin_write(&self) -> Result<WriteGuard<'_>> {
        self.check_writable()?;
        let mut manifest = self.waited(|| self.writer.lock());
        self.check_open()?;
        let lock = match &self.shared {
            Some(s) => Some(self.waited(|| s.lock_writes())?),
            None => None,
        };
        self.sync_locked(&mut manifest, true)?;
        if let (Some(s), Some(w), Some(l)) = (&self.shared, &self.wal, &lock) {
            s.set_log_end(l, w.last_seq());
        }
        Ok(WriteGuard { lock, manifest })
    }

    /// Append a record to the log (under `begin_write`) and tell the other processes.
    pub(super) fn append(&self, guard: &WriteGuard<'_>, wal: &Wal, op: &OpRef<'_>) -> Result<u64> {
        let seq = {
            let _s = crate::observe::trace::span(crate::observe::trace::Phase::LogAppend);
            wal.append(op)?
        };
        if let (Some(s), Some(l)) = (&self.shared, &guard.lock) {
            s.set_log_end(l, seq);
        }
        Ok(seq)
    }

    /// The generation of the next manifest after `m`: past the shared hint too, which a
    /// publisher that died between raising it and renaming its manifest may have left ahead.
    pub(super) fn next_generation(&self, m: &Manifest) -> u64 {
        let hint = self.shared.as_ref().map_or(0, Shared::generation);
        m.generation.max(hint) + 1
    }

    /// A copy of `m` to edit into the next manifest, with its generation already set (files
    /// written for it are named after it).
    pub(super) fn next_manifest(&self, m: &Manifest) -> Manifest {
        let mut next = m.clone();
        next.generation = self.next_generation(m);
        next
    }

    /// Write `next` as the manifest and tell the other processes. The caller holds the lease.
    /// The hint is raised first: a process that reads it early finds the old manifest, and
    /// looks again at its next call, until the new one is in place. (Raised after, a publisher
    /// dying in between would leave the others on the old one unawares.)
    pub(super) fn publish(&self, next: &Manifest) -> Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        if let Some(s) = &self.shared {
            s.publish_generation(next.generation);
        }
        next.write(self.fs.as_ref(), dir)?;
        self.generation.store(next.generation, Ordering::SeqCst);
        Ok(())
    }

    /// Take the optimizer lease (waiting for it if `wait`), then catch up: whoever holds the
    /// lease is the one process that writes manifests and removes files. `None` if another
    /// process holds it and we did not wait.
    pub(crate) fn lease(&self, wait: bool) -> Result<Option<LeaseGuard<'_>>> {
        self.check_writable()?;
        let Some(shared) = &self.shared else {
            return Ok(Some(LeaseGuard(None)));
        };
        let lease = if wait {
            shared.lease()?
        } else {
            match shared.try_lease()? {
                Some(l) => l,
                None => return Ok(None),
            }
        };
        {
            let mut m = self.writer.lock();
            self.check_open()?;
            self.sync_locked(&mut m, false)?;
            if shared.generation() > m.generation {
                // A publisher died after raising the hint, before its manifest was in place:
                // publish the current one past it, so that every process stops looking.
                let next = self.next_manifest(&m);
                self.publish(&next)?;
                *m = next;
            }
        }
        if self.garbage_pending.load(Ordering::SeqCst) {
            self.collect_garbage()?;
        }
        Ok(Some(LeaseGuard(Some(lease))))
    }

    /// After a manifest switch (the state already holds the new manifest's segments): move
    /// this process's pin to it, then remove the files no manifest names any more and the log
    /// files it checkpointed, once no process pins an older generation. Until then they wait
    /// (`garbage_pending`). The caller holds the lease.
    pub(crate) fn collect_garbage(&self) -> Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let m = self.writer.lock().clone();
        if let Some(shared) = &self.shared {
            shared.pin(m.generation);
            if shared.oldest_pin()?.is_some_and(|g| g < m.generation) {
                self.garbage_pending.store(true, Ordering::SeqCst);
                return Ok(());
            }
        }
        self.garbage_pending.store(false, Ordering::SeqCst);
        let tmp = dir.join(manifest::MANIFEST_TMP);
        if self.fs.exists(&tmp)? {
            self.fs.remove_file(&tmp)?;
        }
        let seg_dir = dir.join(SEGMENTS_DIR);
        let live = m.live_segment_files();
        let mut removed = false;
        for name in self.fs.list_dir(&seg_dir)? {
            if !live.contains(&name) {
                log::debug!("removing {name}: no manifest in use names it");
                self.fs.remove_file(&seg_dir.join(&name))?;
                removed = true;
            }
        }
        if removed {
            self.fs.sync_dir(&seg_dir)?;
        }
        if let Some(wal) = &self.wal {
            wal.remove_through(m.checkpoint_seq)?;
        }
        Ok(())
    }

    /// Bytes of the log after the current manifest's checkpoint (what a checkpoint would
    /// turn into a segment).
    pub(crate) fn log_bytes(&self) -> u64 {
        let checkpoint = self.writer.lock().checkpoint_seq;
        self.wal.as_ref().map_or(0, |w| w.bytes_after(checkpoint))
    }
}
