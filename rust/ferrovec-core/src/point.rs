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

/// A sparse vector as stored (sorted, no index twice), borrowed from a segment's mapped file
/// or from memory.
#[derive(Clone, Copy, Debug)]
pub struct SparseRef<'a> {
    pub indices: &'a [u32],
    pub values: &'a [f32],
}

impl SparseRef<'_> {
    /// The dot product with `q` (both sorted); `None` when they share no index.
    pub fn dot(self, q: &SparseVector) -> Option<f32> {
        self.dot_ref(q.as_ref())
    }

    /// The dot product with another borrowed vector; `None` when they share no index.
    pub fn dot_ref(self, q: SparseRef<'_>) -> Option<f32> {
        let (a, b) = (self.indices, q.indices);
        let (mut i, mut j, mut sum, mut overlap) = (0, 0, 0.0f32, false);
        while i < a.len() && j < b.len() {
            match a[i].cmp(&b[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    sum += self.values[i] * q.values[j];
                    overlap = true;
                    i += 1;
                    j += 1;
                }
            }
        }
        overlap.then_some(sum)
    }

    pub fn to_owned(self) -> SparseVector {
        SparseVector {
            indices: self.indices.to_vec(),
            values: self.values.to_vec(),
        }
    }
}

/// Most nonzero entries one sparse vector may hold.
pub const MAX_SPARSE_NNZ: usize = 1 << 16;

/// A sparse vector: nonzero `values` at `indices`, kept sorted by index with no index twice.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SparseVector {
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl SparseVector {
    /// Check a caller's vector and sort it by index: lengths must agree, values be finite, no
    /// index repeat (as Qdrant refuses), at most `MAX_SPARSE_NNZ` entries. `what` names it in
    /// errors.
    pub fn new(indices: Vec<u32>, values: Vec<f32>, what: &str) -> Result<Self> {
        if indices.len() != values.len() {
            return Err(Error::invalid(format!(
                "{what}: {} indices but {} values",
                indices.len(),
                values.len()
            )));
        }
        if indices.len() > MAX_SPARSE_NNZ {
            return Err(Error::invalid(format!(
                "{what}: {} entries; a sparse vector holds at most {MAX_SPARSE_NNZ}",
                indices.len()
            )));
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(format!(
                "{what}: value {} (at index {}) is not a finite number",
                values[i], indices[i]
            )));
        }
        let mut v = SparseVector { indices, values };
        if !v.indices.windows(2).all(|w| w[0] < w[1]) {
            let mut order: Vec<usize> = (0..v.indices.len()).collect();
            order.sort_unstable_by_key(|&i| v.indices[i]);
            v = SparseVector {
                indices: order.iter().map(|&i| v.indices[i]).collect(),
                values: order.iter().map(|&i| v.values[i]).collect(),
            };
            if let Some(w) = v.indices.windows(2).find(|w| w[0] == w[1]) {
                return Err(Error::invalid(format!(
                    "{what}: index {} is given twice",
                    w[0]
                )));
            }
        }
        Ok(v)
    }

    pub fn len(&self) -> usize {
        self.indices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    pub fn as_ref(&self) -> SparseRef<'_> {
        SparseRef {
            indices: &self.indices,
            values: &self.values,
        }
    }

    /// The dot product with `other` (both sorted); `None` when they share no index.
    pub fn dot(&self, other: &SparseVector) -> Option<f32> {
        self.as_ref().dot(other)
    }
}
