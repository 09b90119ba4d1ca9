//! Payloads: the paths into them (`path`) and the operations that change them (`PayloadOp`).

mod path;

pub use path::{Path, PathTree, Step};

use crate::error::Result;
use crate::point::Payload;

/// A payload operation (`set_payload` and friends).
#[derive(Clone, Debug, PartialEq)]
pub enum PayloadOp {
    /// Set these top-level keys, keeping the others.
    Set(Payload),
    /// Like `Set`, but a null value removes its key (Qdrant's `set_payload`).
    Merge(Payload),
    /// Set these keys in the object at a path (`a.b`, `a[].b`, `a[0]`), as Qdrant's
    /// `set_payload(key=...)`; see `Path::set`.
    SetAt {
        path: Path,
        payload: Payload,
        null_removes: bool,
    },
    /// Replace the whole payload.
    Overwrite(Payload),
    /// Remove the values at these keys: top-level names, or paths such as `a.b`, `a[].b`
    /// (see `Path::remove`). Made by [`PayloadOp::delete_keys`].
    DeleteKeys(Vec<Path>),
    /// Remove every key.
    Clear,
}

impl PayloadOp {
    /// Removal of `keys`, each a top-level name or a path (`a.b`, `a[].b`, `a[0].b`, as in
    /// filters); an invalid key is an `InvalidInput` error.
    pub fn delete_keys(keys: &[String]) -> Result<Self> {
        let paths = keys
            .iter()
            .map(|k| Path::parse(k, "keys"))
            .collect::<Result<Vec<_>>>()?;
        Ok(PayloadOp::DeleteKeys(paths))
    }

    /// Apply to a point's current payload.
    pub fn apply(&self, mut current: Payload) -> Payload {
        match self {
            PayloadOp::Set(p) => {
                for (k, v) in p {
                    current.insert(k.clone(), v.clone());
                }
                current
            }
            PayloadOp::Merge(p) => {
                for (k, v) in p {
                    if v.is_null() {
                        current.shift_remove(k);
                    } else {
                        current.insert(k.clone(), v.clone());
                    }
                }
                current
            }
            PayloadOp::SetAt {
                path,
                payload,
                null_removes,
            } => {
                path.set(&mut current, payload, *null_removes);
                current
            }
            PayloadOp::Overwrite(p) => p.clone(),
            PayloadOp::DeleteKeys(paths) => {
                for path in paths {
                    path.remove(&mut current);
                }
                current
            }
            PayloadOp::Clear => Payload::new(),
        }
    }
}
