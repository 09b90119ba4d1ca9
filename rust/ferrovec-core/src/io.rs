//! Every file operation of the core goes through [`FileSystem`]. The real implementation is
//! [`OsFs`]; tests can substitute one that injects faults or simulates power loss, so nothing
//! else in the crate may touch `std::fs` directly.

// The implementation of the FileSystem trait: the one place that writes with std::fs.
#![allow(clippy::disallowed_methods)]

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::ops::Deref;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

/// A file opened for writing. Methods take `&self` so that one thread can fsync while another
/// appends (group commit).
pub trait WriteFile: Send + Sync {
    fn write_all(&self, buf: &[u8]) -> Result<()>;
    /// Make everything written so far durable (fdatasync).
    fn sync_data(&self) -> Result<()>;
    fn path(&self) -> &Path;
}

/// A file opened for reads at given offsets (`pread`), for rows read a few at a time that
/// should not be mapped into the process (see `Segment::rescorer`).
pub trait ReadAt: Send + Sync {
    /// Fill `buf` from `offset`; a short file is an error.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()>;
}

/// Bytes of a file, mapped read-only or (for small or special files) read into memory.
pub struct Mapped(MappedInner);

enum MappedInner {
    Map(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Mapped {
    pub fn from_vec(v: Vec<u8>) -> Self {
        Mapped(MappedInner::Owned(v))
    }

    /// Drop this process's resident pages of `range` (widened to whole pages): a pass that
    /// reads a large mapping once (a merge copying its inputs) then holds no more of it in
    /// memory than it reads at a time. Touched again, the pages fault back in from the page
    /// cache with the same bytes. A hint: a failure only leaves the pages resident.
    pub fn release(&self, range: std::ops::Range<usize>) {
        let MappedInner::Map(m) = &self.0 else { return };
        let page = page_size();
        let start = range.start / page * page;
        let end = range.end.min(m.len());
        if start >= end {
            return;
        }
        // SAFETY: `m` is a shared, read-only mapping of a file that is never modified once
        // written (see `OsFs::map`). MADV_DONTNEED on such a mapping only unmaps this
        // process's pages; the next access reads the same bytes back from the page cache, so
        // no live reference sees its contents change. `start..end` lies within the mapping.
        // Tested by `released_pages_read_back_the_same_bytes`.
        let advised = unsafe {
            m.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
        };
        if let Err(e) = advised {
            log::debug!("madvise(DONTNEED) failed: {e}");
        }
    }
}

/// The system's page size.
fn page_size() -> usize {
    // SAFETY: sysconf only reads a system constant.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as usize
    } else {
        4096
    }
}

impl Deref for Mapped {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.0 {
            MappedInner::Map(m) => m,
            MappedInner::Owned(v) => v,
        }
    }
}

impl fmt::Debug for Mapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mapped({} bytes)", self.len())
    }
}

/// The outcome of trying to take a store's lock.
pub enum LockOutcome {
    /// We hold the lock for as long as the guard lives.
    Acquired(Box<dyn Send + Sync>),
    /// Another process holds it; `holder` is what that process wrote into the lock file.
    Held { holder: String },
}

pub trait FileSystem: Send + Sync + fmt::Debug {
    fn create_dir_all(&self, path: &Path) -> Result<()>;
    /// Names (not paths) of the entries of a directory, sorted.
    fn list_dir(&self, path: &Path) -> Result<Vec<String>>;
    fn exists(&self, path: &Path) -> Result<bool>;
    fn is_dir(&self, path: &Path) -> Result<bool>;
    fn file_len(&self, path: &Path) -> Result<u64>;
    fn read(&self, path: &Path) -> Result<Vec<u8>>;
    /// Create (or truncate) a file for writing.
    fn create(&self, path: &Path) -> Result<Box<dyn WriteFile>>;
    /// Open an existing file for appending (every write goes to its end).
    fn open_append(&self, path: &Path) -> Result<Box<dyn WriteFile>>;
    /// The bytes of a file from `offset` to its end (read, not mapped: the file may grow or
    /// be cut meanwhile, which a map would turn into a SIGBUS).
    fn read_from(&self, path: &Path, offset: u64) -> Result<Vec<u8>>;
    /// Map a file read-only. The caller promises the file is never modified while mapped.
    fn map(&self, path: &Path) -> Result<Mapped>;
    /// Open a file for random reads at offsets (readahead off: `POSIX_FADV_RANDOM`).
    fn open_read(&self, path: &Path) -> Result<Box<dyn ReadAt>>;
    fn rename(&self, from: &Path, to: &Path) -> Result<()>;
    /// A second name for the file `from` (a hard link; durable once `to`'s directory is synced).
    fn hard_link(&self, from: &Path, to: &Path) -> Result<()>;
    /// Swap two paths atomically (both must exist).
    fn exchange(&self, a: &Path, b: &Path) -> Result<()>;
    fn remove_file(&self, path: &Path) -> Result<()>;
    fn remove_dir_all(&self, path: &Path) -> Result<()>;
    /// Cut a file to `len` bytes and make the new length durable.
    fn truncate(&self, path: &Path, len: u64) -> Result<()>;
    /// fsync a directory, making creates, renames and removes inside it durable.
    fn sync_dir(&self, path: &Path) -> Result<()>;
    /// Take a non-blocking lock on `path` (an OS file lock, `flock`), shared or exclusive; an
    /// exclusive holder writes `holder` into the file.
    fn try_lock(&self, path: &Path, holder: &str, exclusive: bool) -> Result<LockOutcome>;
    /// The file system's type (`statfs` magic number) of the directory `path`.
    fn fs_type(&self, path: &Path) -> Result<i64>;
}

/// The operating system's file system.
#[derive(Debug, Default)]
pub struct OsFs;

struct OsFile {
    file: File,
    path: PathBuf,
}

impl WriteFile for OsFile {
    fn write_all(&self, buf: &[u8]) -> Result<()> {
        (&self.file).write_all(buf).ctx("write", &self.path)
    }
    fn sync_data(&self) -> Result<()> {
        self.file.sync_data().ctx("fsync", &self.path)
    }
    fn path(&self) -> &Path {
        &self.path
    }
}

struct OsReadFile {
    file: File,
    path: PathBuf,
}

impl ReadAt for OsReadFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.read_exact_at(buf, offset).ctx("read", &self.path)
    }
}

impl FileSystem for OsFs {
    fn create_dir_all(&self, path: &Path) -> Result<()> {
        fs::create_dir_all(path).ctx("create directory", path)
    }

    fn list_dir(&self, path: &Path) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(path).ctx("list directory", path)? {
            let entry = entry.ctx("list directory", path)?;
            match entry.file_name().into_string() {
                Ok(name) => names.push(name),
                Err(name) => {
                    return Err(Error::corrupt(
                        path,
                        format!("unexpected file with a non-UTF-8 name {name:?}"),
                    ))
                }
            }
        }
        names.sort();
        Ok(names)
    }

    fn exists(&self, path: &Path) -> Result<bool> {
        path.try_exists().ctx("stat", path)
    }

    fn is_dir(&self, path: &Path) -> Result<bool> {
        match fs::metadata(path) {
            Ok(m) => Ok(m.is_dir()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).ctx("stat", path),
        }
    }

    fn file_len(&self, path: &Path) -> Result<u64> {
        Ok(fs::metadata(path).ctx("stat", path)?.len())
    }

    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        fs::read(path).ctx("read", path)
    }

    fn create(&self, path: &Path) -> Result<Box<dyn WriteFile>> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .ctx("create", path)?;
        Ok(Box::new(OsFile {
            file,
            path: path.to_path_buf(),
        }))
    }

    fn open_append(&self, path: &Path) -> Result<Box<dyn WriteFile>> {
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .ctx("open", path)?;
        Ok(Box::new(OsFile {
            file,
            path: path.to_path_buf(),
        }))
    }

    fn read_from(&self, path: &Path, offset: u64) -> Result<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = File::open(path).ctx("open", path)?;
        file.seek(SeekFrom::Start(offset)).ctx("seek", path)?;
        let mut out = Vec::new();
        file.read_to_end(&mut out).ctx("read", path)?;
        Ok(out)
    }

    fn map(&self, path: &Path) -> Result<Mapped> {
        let file = File::open(path).ctx("open", path)?;
        let len = file.metadata().ctx("stat", path)?.len();
        if len == 0 {
            // mmap of an empty file fails on Linux.
            return Ok(Mapped::from_vec(Vec::new()));
        }
        // SAFETY: ferrovec never modifies a file after it has been written, synced and named
        // (segments and logs are immutable once published; a log tail is cut only before it is
        // mapped for replay, by this process, under the store lock). Another program truncating
        // the file under us is outside what we can defend against, as for every mmap-based store.
        let map = unsafe { memmap2::Mmap::map(&file) }.ctx("mmap", path)?;
        Ok(Mapped(MappedInner::Map(map)))
    }

    fn open_read(&self, path: &Path) -> Result<Box<dyn ReadAt>> {
        use std::os::fd::AsRawFd;
        let file = File::open(path).ctx("open", path)?;
        // SAFETY: a plain syscall on a descriptor we own; it only sets the file's readahead
        // policy. Covered by every search of a segment with codes (`Segment::rescorer`).
        let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_RANDOM) };
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(rc)).ctx("fadvise", path);
        }
        Ok(Box::new(OsReadFile {
            file,
            path: path.to_path_buf(),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        fs::rename(from, to).ctx("rename", from)
    }

    fn hard_link(&self, from: &Path, to: &Path) -> Result<()> {
        fs::hard_link(from, to).ctx("link", from)
    }

    fn exchange(&self, a: &Path, b: &Path) -> Result<()> {
        use std::os::unix::ffi::OsStrExt;
        let cstr = |p: &Path| {
            std::ffi::CString::new(p.as_os_str().as_bytes())
                .map_err(|_| Error::invalid(format!("{} contains a NUL byte", p.display())))
        };
        let (ca, cb) = (cstr(a)?, cstr(b)?);
        // SAFETY: both are valid NUL-terminated paths that outlive the call; renameat2 only
        // reads them. Covered by the snapshot restore tests that replace a collection.
        let rc = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                ca.as_ptr(),
                libc::AT_FDCWD,
                cb.as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error()).ctx("exchange", a)
        }
    }

    fn remove_file(&self, path: &Path) -> Result<()> {
        fs::remove_file(path).ctx("remove", path)
    }

    fn remove_dir_all(&self, path: &Path) -> Result<()> {
        fs::remove_dir_all(path).ctx("remove directory", path)
    }

    fn truncate(&self, path: &Path, len: u64) -> Result<()> {
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .ctx("open", path)?;
        file.set_len(len).ctx("truncate", path)?;
        file.sync_all().ctx("fsync", path)
    }

    fn sync_dir(&self, path: &Path) -> Result<()> {
        File::open(path)
            .and_then(|d| d.sync_all())
            .ctx("fsync directory", path)
    }

    fn try_lock(&self, path: &Path, holder: &str, exclusive: bool) -> Result<LockOutcome> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .ctx("open lock file", path)?;
        if !exclusive {
            return match file.try_lock_shared() {
                Ok(()) => Ok(LockOutcome::Acquired(Box::new(file))),
                Err(fs::TryLockError::WouldBlock) => Ok(LockOutcome::Held {
                    holder: fs::read_to_string(path)
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                }),
                Err(fs::TryLockError::Error(e)) => Err(e).ctx("lock", path),
            };
        }
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0).ctx("write lock file", path)?;
                (&file)
                    .write_all(holder.as_bytes())
                    .ctx("write lock file", path)?;
                Ok(LockOutcome::Acquired(Box::new(file)))
            }
            Err(fs::TryLockError::WouldBlock) => {
                let holder = fs::read_to_string(path).unwrap_or_default();
                Ok(LockOutcome::Held {
                    holder: holder.trim().to_string(),
                })
            }
            Err(fs::TryLockError::Error(e)) => Err(e).ctx("lock", path),
        }
    }

    fn fs_type(&self, path: &Path) -> Result<i64> {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|_| Error::invalid(format!("{} contains a NUL byte", path.display())))?;
        // SAFETY: all-zero bytes are a valid `statfs`; statfs reads the NUL-terminated path and
        // writes only into the struct we pass. Covered by every test that opens a store.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error()).ctx("statfs", path);
        }
        Ok(st.f_type as i64)
    }
}

/// File systems on which the OS file locks that let processes share a store are not reliable
/// (or not coherent with other machines' caches): (magic number, name).
pub const UNSHAREABLE_FILE_SYSTEMS: &[(i64, &str)] = &[
    (0x6969, "NFS"),
    (0x517B, "SMB"),
    (0xFF53_4D42, "CIFS"),
    (0xFE53_4D42, "SMB2"),
    (0x0102_1997, "9P"),
    (0x5346_414F, "AFS"),
    (0x6573_5546, "FUSE"),
    (0x0BD0_0BD0, "Lustre"),
    (0x00C3_6400, "CephFS"),
];

/// `std::fs::copy`, started again when a signal interrupts it (its kernel-copy path returns
/// EINTR rather than retrying; the copy rewrites the destination from the start each time).
pub fn copy_file(from: &Path, to: &Path) -> std::io::Result<u64> {
    loop {
        match fs::copy(from, to) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Give `to` the bytes of `from` (which is never modified): a hard link, or a copy, fsynced,
/// where links are not possible (another file system, or one without them). Any other error
/// is reported.
pub fn link_or_copy(fs: &dyn FileSystem, from: &Path, to: &Path) -> Result<()> {
    match fs.hard_link(from, to) {
        Err(Error::Io { ref source, .. })
            if matches!(
                source.raw_os_error(),
                Some(libc::EXDEV | libc::EPERM | libc::EOPNOTSUPP | libc::EMLINK)
            ) =>
        {
            copy_file(from, to).ctx("copy", from)?;
            File::open(to).and_then(|f| f.sync_all()).ctx("fsync", to)
        }
        other => other,
    }
}

/// The name of the file system type `magic` if stores on it are refused.
pub fn unshareable_file_system(magic: i64) -> Option<&'static str> {
    UNSHAREABLE_FILE_SYSTEMS
        .iter()
        .find(|(m, _)| *m == magic)
        .map(|(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resident bytes of this process's mappings of `path` (from /proc/self/smaps).
    fn resident(path: &Path) -> u64 {
        let smaps = crate::observe::memory::read_smaps();
        let dir = path.parent().expect("a directory");
        crate::observe::memory::residency(&smaps, dir)
            .resident
            .values()
            .sum()
    }

    #[test]
    fn released_pages_read_back_the_same_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0000000000000001.vec");
        let bytes: Vec<u8> = (0..8u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &bytes).expect("write");
        let map = OsFs.map(&path).expect("map");
        let sum = |m: &Mapped| m.iter().map(|&b| u64::from(b)).sum::<u64>();
        let want = sum(&map);
        let touched = resident(&path);
        assert!(touched >= 6 << 20, "{touched} bytes resident after reading");
        // A range not on page boundaries, then the rest.
        map.release(100..(4 << 20) + 100);
        map.release((4 << 20) + 100..map.len());
        assert!(
            resident(&path) < touched / 4,
            "{} bytes still resident",
            resident(&path)
        );
        assert_eq!(sum(&map), want);
        assert_eq!(&map[..], &bytes[..]);
        // An owned buffer has nothing to release.
        let owned = Mapped::from_vec(vec![1, 2, 3]);
        owned.release(0..3);
        assert_eq!(&owned[..], &[1, 2, 3]);
    }
}
