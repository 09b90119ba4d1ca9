//! Restoring an archive into a store: staged inside the store, every checksum checked, then
//! moved into place whole.

use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};

use super::archive::{read_archive, FileSink};
use crate::cancel::Cancel;
use crate::error::{Error, IoContext, Result};
use crate::store::Store;

/// Bytes free for an unprivileged writer on the file system holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a valid NUL-terminated path and `st` points to writable memory of the
    // right type; statvfs only writes into it. Exercised by every restore test.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it filled the struct.
    let st = unsafe { st.assume_init() };
    // The field types differ between platforms (fsblkcnt_t, c_ulong): widen explicitly.
    #[allow(clippy::unnecessary_cast)]
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// A staging directory inside a store's `collections/` (its leading dot gets it removed when
/// the store opens, should a crash leave it), from which restored collection directories
/// (`<dir>/<name>`, holding `MANIFEST` and `segments/`) are moved into place.
pub(crate) struct Staging<'a> {
    pub dir: PathBuf,
    store: &'a Store,
}

impl<'a> Staging<'a> {
    pub fn new(store: &'a Store) -> Result<Self> {
        let root = store
            .path()
            .ok_or_else(|| Error::invalid("cannot restore into an in-memory store"))?;
        let dir = root
            .join("collections")
            .join(format!(".restoring-{}", crate::store::unique_suffix()));
        store.fs().create_dir_all(&dir)?;
        Ok(Staging { dir, store })
    }

    /// Write the file `rel` of the staged collection `collection` from `r`, fsynced.
    pub fn write(&self, collection: &str, rel: &Path, r: &mut dyn Read) -> Result<()> {
        let fs = self.store.fs();
        let to = self.dir.join(collection).join(rel);
        if let Some(parent) = to.parent() {
            fs.create_dir_all(parent)?;
        }
        let mut sink = BufWriter::with_capacity(1 << 20, FileSink(fs.create(&to)?));
        std::io::copy(r, &mut sink).ctx("write", &to)?;
        let file = sink.into_inner().map_err(|e| Error::Io {
            op: "write",
            path: to.clone(),
            source: e.into_error(),
        })?;
        file.0.sync_data()
    }

    /// Complete the staged collections `names` (empty `wal/`, fsynced) and move them in.
    pub fn install(&self, names: &[String], replace: bool) -> Result<()> {
        let fs = self.store.fs();
        for n in names {
            for sub in ["segments", "wal"] {
                let d = self.dir.join(n).join(sub);
                fs.create_dir_all(&d)?;
                fs.sync_dir(&d)?;
            }
            fs.sync_dir(&self.dir.join(n))?;
        }
        self.store.install_restored(&self.dir, names, replace)
    }

    /// Remove what is left of the staging directory.
    pub fn finish(self) -> Result<()> {
        let fs = self.store.fs();
        if fs.exists(&self.dir)? {
            fs.remove_dir_all(&self.dir)?;
        }
        Ok(())
    }
}

/// Restore `archive` into `store`: every collection it holds, or just `collection`. An
/// existing collection of the same name is an error unless `replace`. Nothing in the store
/// changes unless the whole archive checks out; `cancel` stops it until the collections are
/// moved in, leaving the store as it was. Returns the restored collections' names.
pub fn restore(
    archive: &Path,
    store: &Store,
    collection: Option<&str>,
    replace: bool,
    cancel: &Cancel,
) -> Result<Vec<String>> {
    if let Some(c) = collection {
        if !replace && store.list_collections()?.iter().any(|n| n == c) {
            return Err(Error::CollectionExists(format!(
                "{c} (pass replace=True to replace it)"
            )));
        }
    }
    let free = store.path().and_then(free_bytes);
    let staging = Staging::new(store)?;
    let result = (|| {
        let mut take = |col: &str, rel: &Path, r: &mut dyn Read| -> Result<()> {
            cancel.check("the restore")?;
            if collection.is_some_and(|c| c != col) {
                return Ok(());
            }
            staging.write(col, rel, r)
        };
        let raw = File::open(archive).ctx("open", archive)?;
        let (index, _) = read_archive(archive, raw, free, &mut take)?;
        let names: Vec<String> = match collection {
            Some(c) if !index.collections.contains_key(c) => {
                return Err(Error::invalid(format!(
                    "the snapshot holds no collection {c:?} (it holds {})",
                    index
                        .collections
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
            Some(c) => vec![c.to_string()],
            None => index.collections.keys().cloned().collect(),
        };
        cancel.check("the restore")?;
        staging.install(&names, replace)?;
        Ok(names)
    })();
    staging.finish()?;
    result
}
