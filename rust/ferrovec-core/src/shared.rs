//! What the processes sharing one collection coordinate through: `<collection>/SHARED`, a
//! small file each of them maps. Nothing in it has to survive a reboot (it is never fsynced):
//! it holds hints that let a process see at the cost of two atomic loads whether anything
//! changed, and byte ranges whose OS locks (`fcntl` open-file-description locks, released by
//! the kernel when a process dies) serialise the log's writers, elect the one optimizer and
//! pin the manifest generation each process still uses.
//!
//! ```text
//!     0..64     common header, kind "shared"
//!    64..72     log end: sequence number of the last record appended (u64 LE, atomic)
//!    72..80     generation of the manifest last published (u64 LE, atomic)
//!    80..88     retired: non-zero once the collection was dropped or replaced (u64 LE)
//!    88..96     reader slots ever claimed, a high-water mark (u64 LE)
//!  byte 0       locked (write) by the process appending to the log
//!  byte 1       locked (write) by the process that holds the optimizer lease
//!  4096 + 8 i   reader slot i: the manifest generation + 1 its owner pins (0: none); owned by
//!               whoever holds the write lock on these 8 bytes
//! ```
//! Whatever these hints say, a process trusts only the log and the manifest: a stale hint can
//! make it look again, never miss a write (see `Collection::sync`).

// The coordination file is mapped and locked with fcntl, which the FileSystem trait does not
// model: nothing in it has to survive a crash (see above), so the power-loss tests have
// nothing to check in it.
#![allow(clippy::disallowed_methods)]

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, IoContext, Result};
use crate::format::{FileKind, Header, HEADER_LEN};

pub const SHARED: &str = "SHARED";
const LOG_END: usize = 64;
const GENERATION: usize = 72;
const RETIRED: usize = 80;
const SLOTS_USED: usize = 88;
const SLOTS_AT: usize = 4096;
/// Processes that can have one collection open at once.
pub const MAX_READERS: usize = 1024;
const FILE_LEN: usize = SLOTS_AT + 8 * MAX_READERS;
const WRITE_LOCK: i64 = 0;
const LEASE_LOCK: i64 = 1;

/// One process's handle on a collection's `SHARED` file.
pub struct Shared {
    path: PathBuf,
    file: File,
    map: memmap2::MmapMut,
    /// This process's reader slot.
    slot: usize,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("path", &self.path)
            .field("slot", &self.slot)
            .finish()
    }
}

/// Held while this process may append to the log; released on drop (or by the OS on death).
#[must_use]
pub struct WriteLock<'a>(&'a Shared);

impl Drop for WriteLock<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.0.unlock(WRITE_LOCK, 1) {
            log::error!("releasing the log lock of {}: {e}", self.0.path.display());
        }
    }
}

/// The optimizer lease: while held, no other process checkpoints, merges, indexes or removes
/// files of the collection.
#[must_use]
pub struct Lease<'a>(&'a Shared);

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.0.unlock(LEASE_LOCK, 1) {
            log::error!(
                "releasing the optimizer lease of {}: {e}",
                self.0.path.display()
            );
        }
    }
}

/// The `SHARED` file of a new collection, written into its (not yet published) directory.
pub fn create(dir: &Path) -> Result<()> {
    write_new(&dir.join(SHARED))
}

fn write_new(path: &Path) -> Result<()> {
    let mut bytes = vec![0u8; FILE_LEN];
    bytes[..HEADER_LEN].copy_from_slice(&Header::new(FileKind::Shared, 0, 0, &[]).encode());
    std::fs::write(path, &bytes).ctx("write", path)
}

/// Mark the collection in `dir` dropped or replaced for every process that has it open.
pub fn retire(dir: &Path) -> Result<()> {
    Shared::open(dir)?.retire();
    Ok(())
}

/// Undo [`retire`] when the drop or replacement failed before anything moved: the collection
/// in `dir` is the same one, and every process may open it again (handles that saw it retired
/// stay closed; `Store::collection` gives new ones).
pub fn reinstate(dir: &Path) -> Result<()> {
    Shared::open(dir)?.word(RETIRED).store(0, Ordering::SeqCst);
    Ok(())
}

impl Shared {
    /// Open (creating it if a collection of an earlier build lacks it) the `SHARED` file of the
    /// collection in `dir`, and claim a reader slot.
    pub fn open(dir: &Path) -> Result<Shared> {
        let path = dir.join(SHARED);
        if !path.exists() {
            // Made aside and linked into place, so that two processes doing this at once both
            // end up with the same, complete file.
            let tmp = dir.join(format!(".{SHARED}.{}.tmp", std::process::id()));
            let made = write_new(&tmp).and_then(|()| match std::fs::hard_link(&tmp, &path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                Err(e) => Err(e).ctx("link", &path),
            });
            let _ = std::fs::remove_file(&tmp);
            made?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .ctx("open", &path)?;
        let len = file.metadata().ctx("stat", &path)?.len();
        let mut head = [0u8; HEADER_LEN];
        let got = {
            use std::os::unix::fs::FileExt;
            file.read_at(&mut head, 0).ctx("read", &path)?
        };
        Header::decode(FileKind::Shared, &head[..got], &path)?;
        if len != FILE_LEN as u64 {
            return Err(Error::corrupt(
                &path,
                format!("the coordination file is {len} bytes, expected {FILE_LEN}"),
            ));
        }
        // SAFETY: the file is FILE_LEN bytes and never truncated by ferrovec (it is only ever
        // created whole and linked into place). Every process accesses the mapped words only
        // through the atomics of `word`, so concurrent access is sound. Covered by every test
        // that opens a collection, and the multi-process tests.
        let map = unsafe { memmap2::MmapMut::map_mut(&file) }.ctx("mmap", &path)?;
        let mut shared = Shared {
            path,
            file,
            map,
            slot: usize::MAX,
        };
        shared.slot = shared.claim_slot()?;
        Ok(shared)
    }

    fn word(&self, offset: usize) -> &AtomicU64 {
        debug_assert!(offset.is_multiple_of(8) && offset + 8 <= FILE_LEN);
        // SAFETY: the map is page-aligned and FILE_LEN long, `offset` is a multiple of 8 within
        // it, and it lives as long as `self`. AtomicU64 has the layout of u64; every access to
        // these bytes, in any process, goes through such an atomic.
        unsafe { &*(self.map.as_ptr().add(offset) as *const AtomicU64) }
    }

    pub fn log_end(&self) -> u64 {
        self.word(LOG_END).load(Ordering::SeqCst)
    }

    /// Record that the log now ends at `seq`. Only a holder of the write lock, caught up with
    /// the log, knows where it ends, so only it may say so.
    pub fn set_log_end(&self, _lock: &WriteLock<'_>, seq: u64) {
        self.word(LOG_END).store(seq, Ordering::SeqCst);
    }

    pub fn generation(&self) -> u64 {
        self.word(GENERATION).load(Ordering::SeqCst)
    }

    /// Record that the manifest of generation `g` is in place (only ever raised).
    pub fn publish_generation(&self, g: u64) {
        self.word(GENERATION).fetch_max(g, Ordering::SeqCst);
    }

    pub fn retired(&self) -> bool {
        self.word(RETIRED).load(Ordering::SeqCst) != 0
    }

    /// Tell every process that this collection was dropped or replaced.
    pub fn retire(&self) {
        self.word(RETIRED).store(1, Ordering::SeqCst);
    }

    /// Pin generation `g`: no file it names is removed while the pin stands.
    pub fn pin(&self, g: u64) {
        self.word(SLOTS_AT + 8 * self.slot)
            .store(g + 1, Ordering::SeqCst);
    }

    /// The oldest generation pinned by any live process (this one included), if any.
    pub fn oldest_pin(&self) -> Result<Option<u64>> {
        let used = (self.word(SLOTS_USED).load(Ordering::SeqCst) as usize).min(MAX_READERS);
        let mut oldest = None;
        for i in 0..used {
            let value = self.word(SLOTS_AT + 8 * i).load(Ordering::SeqCst);
            if value == 0 || (i != self.slot && !self.is_locked((SLOTS_AT + 8 * i) as i64, 8)?) {
                continue; // unused, or left by a process that died
            }
            let g = value - 1;
            oldest = Some(oldest.map_or(g, |o: u64| o.min(g)));
        }
        Ok(oldest)
    }

    /// Live processes that have the collection open (each holds a reader slot), this one
    /// included.
    pub fn processes(&self) -> Result<usize> {
        let used = (self.word(SLOTS_USED).load(Ordering::SeqCst) as usize).min(MAX_READERS);
        let mut n = 0;
        for i in 0..used {
            if i == self.slot || self.is_locked((SLOTS_AT + 8 * i) as i64, 8)? {
                n += 1;
            }
        }
        Ok(n)
    }

    fn claim_slot(&self) -> Result<usize> {
        for i in 0..MAX_READERS {
            let at = SLOTS_AT + 8 * i;
            if self.lock(at as i64, 8, false)? {
                self.word(at).store(0, Ordering::SeqCst);
                self.word(SLOTS_USED)
                    .fetch_max(i as u64 + 1, Ordering::SeqCst);
                return Ok(i);
            }
        }
        Err(Error::invalid(format!(
            "more than {MAX_READERS} processes have {} open",
            self.path.display()
        )))
    }

    /// Wait for the log's write lock.
    pub fn lock_writes(&self) -> Result<WriteLock<'_>> {
        self.lock(WRITE_LOCK, 1, true)?;
        Ok(WriteLock(self))
    }

    /// Wait for the optimizer lease.
    pub fn lease(&self) -> Result<Lease<'_>> {
        self.lock(LEASE_LOCK, 1, true)?;
        Ok(Lease(self))
    }

    /// The optimizer lease if no other process holds it.
    pub fn try_lease(&self) -> Result<Option<Lease<'_>>> {
        Ok(self.lock(LEASE_LOCK, 1, false)?.then_some(Lease(self)))
    }

    fn flock(start: i64, len: i64, kind: i32) -> libc::flock {
        // SAFETY: `flock` is a plain C struct for which all-zero bytes are a valid value.
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = kind as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        fl.l_start = start as libc::off_t;
        fl.l_len = len as libc::off_t;
        fl
    }

    /// Take a write lock on `start..start+len`, waiting for it if `wait`; `false` if it is
    /// held elsewhere and we did not wait.
    fn lock(&self, start: i64, len: i64, wait: bool) -> Result<bool> {
        let fl = Self::flock(start, len, libc::F_WRLCK);
        let cmd = if wait {
            libc::F_OFD_SETLKW
        } else {
            libc::F_OFD_SETLK
        };
        loop {
            // SAFETY: a valid descriptor we own and a pointer to a live `flock`.
            let rc = unsafe { libc::fcntl(self.file.as_raw_fd(), cmd, &fl) };
            if rc == 0 {
                return Ok(true);
            }
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) | Some(libc::EACCES) if !wait => return Ok(false),
                _ => return Err(err).ctx("lock", &self.path),
            }
        }
    }

    fn unlock(&self, start: i64, len: i64) -> Result<()> {
        let fl = Self::flock(start, len, libc::F_UNLCK);
        // SAFETY: as in `lock`.
        let rc = unsafe { libc::fcntl(self.file.as_raw_fd(), libc::F_OFD_SETLK, &fl) };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error()).ctx("unlock", &self.path)
        }
    }

    /// Whether another open file description holds a lock on `start..start+len`.
    fn is_locked(&self, start: i64, len: i64) -> Result<bool> {
        let mut fl = Self::flock(start, len, libc::F_WRLCK);
        // SAFETY: as in `lock`; F_OFD_GETLK writes the answer into `fl`.
        let rc = unsafe { libc::fcntl(self.file.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error()).ctx("test lock", &self.path);
        }
        Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_exclude_other_descriptions_and_pins_are_seen() {
        let tmp = tempfile::tempdir().expect("tmp");
        let a = Shared::open(tmp.path()).expect("a");
        let b = Shared::open(tmp.path()).expect("b");
        assert_ne!(a.slot, b.slot);
        let lease = a.try_lease().expect("try").expect("free");
        assert!(b.try_lease().expect("try").is_none());
        drop(lease);
        assert!(b.try_lease().expect("try").is_some());
        assert_eq!(a.oldest_pin().expect("scan"), None);
        a.pin(7);
        b.pin(3);
        assert_eq!(a.oldest_pin().expect("scan"), Some(3));
        drop(b); // its slot lock goes with its descriptor
        assert_eq!(a.oldest_pin().expect("scan"), Some(7));
        let lock = a.lock_writes().expect("lock");
        a.set_log_end(&lock, 5);
        drop(lock);
        assert_eq!(a.log_end(), 5);
        let c = Shared::open(tmp.path()).expect("c");
        assert_eq!(c.log_end(), 5, "the hints are shared through the file");
    }

    #[test]
    fn a_foreign_file_is_refused() {
        let tmp = tempfile::tempdir().expect("tmp");
        std::fs::write(tmp.path().join(SHARED), b"not ours").expect("write");
        assert!(matches!(
            Shared::open(tmp.path()),
            Err(Error::Corruption { .. })
        ));
    }

    #[test]
    fn write_lock_excludes_under_contention() {
        use std::sync::atomic::AtomicUsize;
        use std::sync::Arc;

        let tmp = tempfile::tempdir().expect("tmp");
        create(tmp.path()).expect("create");
        let inside = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..4)
            .map(|k| {
                let dir = tmp.path().to_path_buf();
                let inside = inside.clone();
                std::thread::spawn(move || {
                    let s = Shared::open(&dir).expect("open");
                    for i in 0..2000 {
                        if i % 7 == k {
                            let _l = s.try_lease().expect("lease");
                        }
                        let _g = s.lock_writes().expect("lock");
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                        std::hint::spin_loop();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().expect("thread");
        }
    }
}
