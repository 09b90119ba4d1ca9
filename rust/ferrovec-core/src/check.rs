//! `ferrovec check`: everything `verify` checks (every checksum of every sealed file), plus
//! each collection's manifest and its whole log, on a store opened read-only (nothing is
//! written, not even a torn tail's cut), for scripts that want an exit status.

use std::path::Path;

use crate::collection::{Manifest, WAL_DIR};
use crate::config::StorageOptions;
use crate::error::Result;
use crate::io::{FileSystem, OsFs};
use crate::store::{Store, COLLECTIONS};
use crate::wal::check_log;

/// What `check` found in one collection.
#[derive(Debug, Default)]
pub struct CollectionCheck {
    pub name: String,
    /// Log records after the checkpoint that read back intact.
    pub log_records: u64,
    /// Damage: each one loses data or stops the collection from opening.
    pub problems: Vec<String>,
    /// Findings that lose nothing (a torn tail of a write never acknowledged).
    pub notes: Vec<String>,
}

/// Check every collection of the store at `path`.
pub fn check_store(path: &Path) -> Result<Vec<CollectionCheck>> {
    let options = StorageOptions {
        read_only: true,
        background_optimizer: false,
        ..StorageOptions::default()
    };
    let store = Store::open(path, options)?;
    let fs = OsFs;
    let mut out = Vec::new();
    for name in store.list_collections()? {
        let mut c = CollectionCheck {
            name: name.clone(),
            ..CollectionCheck::default()
        };
        let dir = path.join(COLLECTIONS).join(&name);
        match Manifest::read(&fs, &dir) {
            Err(e) => c.problems.push(format!("manifest: {e}")),
            Ok(m) => {
                match check_log(&fs as &dyn FileSystem, &dir.join(WAL_DIR), m.checkpoint_seq) {
                    Err(e) => c.problems.push(format!("log: {e}")),
                    Ok(log) => {
                        c.log_records = log.records;
                        c.problems.extend(log.problems);
                        c.notes.extend(log.notes);
                    }
                }
            }
        }
        if c.problems.is_empty() {
            if let Err(e) = store.collection(&name).and_then(|col| col.verify()) {
                c.problems.push(e.to_string());
            }
        }
        out.push(c);
    }
    Ok(out)
}
