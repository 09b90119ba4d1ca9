//! What a point is: its id and its JSON payload. A leaf: it depends on nothing else here.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A JSON object; key order is preserved (serde_json's `preserve_order`).
pub type Payload = serde_json::Map<String, serde_json::Value>;

/// Longest string id we accept, in bytes.
pub const MAX_STR_ID_BYTES: usize = 1024;
/// Largest payload of one point, as compact JSON (a Qdrant server's default request limit).
pub const MAX_PAYLOAD_BYTES: usize = 32 << 20;

/// A point id. The derived order (all numbers, ascending, then strings in byte order) is the
/// order of `scroll`, as Qdrant orders integer ids before UUIDs.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PointId {
    Num(u64),
    Str(String),
}

impl PointId {
    pub fn validate(&self) -> Result<()> {
        if let PointId::Str(s) = self {
            if s.is_empty() {
                return Err(Error::invalid("string ids must not be empty"));
            }
            if s.len() > MAX_STR_ID_BYTES {
                return Err(Error::invalid(format!(
                    "string ids are at most {MAX_STR_ID_BYTES} bytes, got {}",
                    s.len()
                )));
            }
        }
        Ok(())
    }
}

impl fmt::Display for PointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PointId::Num(n) => write!(f, "{n}"),
            PointId::Str(s) => write!(f, "{s:?}"),
        }
    }
}

impl From<u64> for PointId {
    fn from(v: u64) -> Self {
        PointId::Num(v)
    }
}

impl From<&str> for PointId {
    fn from(v: &str) -> Self {
        PointId::Str(v.to_string())
    }
}
