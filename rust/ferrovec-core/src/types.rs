//! Plain data types shared by the whole crate.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A JSON object; key order is preserved (serde_json's `preserve_order`).
pub type Payload = serde_json::Map<String, serde_json::Value>;

/// Longest string id we accept, in bytes.
pub const MAX_STR_ID_BYTES: usize = 1024;
/// Largest vector dimension we accept.
pub const MAX_DIM: u32 = 65_536;
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

/// How scores are computed. Cosine and dot: similarity, higher is better. Euclid and manhattan:
/// distance, lower is better (as in Qdrant).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Distance {
    Cosine,
    Dot,
    Euclid,
    Manhattan,
}

impl Distance {
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "cosine" => Ok(Distance::Cosine),
            "dot" => Ok(Distance::Dot),
            "euclid" | "euclidean" => Ok(Distance::Euclid),
            "manhattan" => Ok(Distance::Manhattan),
            _ => Err(Error::invalid(format!(
                "unknown distance {s:?}; expected \"cosine\", \"dot\", \"euclid\" or \"manhattan\""
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Distance::Cosine => "cosine",
            Distance::Dot => "dot",
            Distance::Euclid => "euclid",
            Distance::Manhattan => "manhattan",
        }
    }

    pub fn higher_is_better(self) -> bool {
        matches!(self, Distance::Cosine | Distance::Dot)
    }
}

/// HNSW parameters of a collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HnswConfig {
    /// Links per node (twice as many on level 0).
    pub m: usize,
    /// Candidate list size while building.
    pub ef_construct: usize,
    /// A segment with fewer points than this is scanned exactly, without a graph. Counted in
    /// points (Qdrant counts kilobytes; the compatibility layer converts).
    pub full_scan_threshold: usize,
}

impl Default for HnswConfig {
    fn default() -> Self {
        HnswConfig {
            m: 16,
            ef_construct: 100,
            full_scan_threshold: 10_000,
        }
    }
}

/// When the background optimizer indexes and merges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    /// Once this many points are not in any graph, they are indexed: after `idle_ms` without
    /// writes, or at once when there are ten times as many.
    pub indexing_threshold: usize,
    /// The optimizer never builds a segment larger than this.
    pub max_segment_points: usize,
    /// How long writes must pause before the optimizer indexes.
    pub idle_ms: u64,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig {
            indexing_threshold: 20_000,
            max_segment_points: 2_000_000,
            idle_ms: 1_000,
        }
    }
}

/// Retention: points whose RFC 3339 datetime at `key` is more than `max_age_secs` old are
/// deleted by the optimizer (see `docs/FILTERS.md`, "Retention").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    pub key: String,
    pub max_age_secs: u64,
}

/// A stored vector that a point does not have (a named vector left out, or deleted) is all NaN,
/// which input can never be otherwise (vectors must be finite); its first value tells.
pub fn is_absent(v: &[f32]) -> bool {
    v.first().is_some_and(|x| x.is_nan())
}

/// Most named vectors a collection may hold.
pub const MAX_VECTORS: usize = 64;
/// Longest vector name, in bytes.
pub const MAX_VECTOR_NAME_BYTES: usize = 128;

/// One vector of every point: its name (`""` for a collection's single unnamed vector), its
/// dimension and its distance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VectorSpec {
    pub name: String,
    pub dim: u32,
    pub distance: Distance,
}

/// Where one vector lives inside a point's stored row: the row holds every vector of the
/// point, concatenated in the collection's order (`VectorSpec`s), so `offset` and `dim` pick
/// it out of a row of `stride` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Space {
    /// Position among the collection's vectors.
    pub index: usize,
    pub offset: usize,
    pub dim: usize,
    /// Values per stored row (all vectors of a point).
    pub stride: usize,
    pub distance: Distance,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionConfig {
    /// One unnamed vector, or one or more named ones.
    pub vectors: Vec<VectorSpec>,
    pub hnsw: HnswConfig,
    pub optimizer: OptimizerConfig,
}

impl CollectionConfig {
    /// A collection of one unnamed vector.
    pub fn new(dim: u32, distance: Distance) -> Result<Self> {
        Self::with_vectors(vec![VectorSpec {
            name: String::new(),
            dim,
            distance,
        }])
    }

    /// A collection of the given vectors: one unnamed (name `""`), or named ones.
    pub fn with_vectors(vectors: Vec<VectorSpec>) -> Result<Self> {
        let config = CollectionConfig {
            vectors,
            hnsw: HnswConfig::default(),
            optimizer: OptimizerConfig::default(),
        };
        config.validate_vectors()?;
        Ok(config)
    }

    fn validate_vectors(&self) -> Result<()> {
        let v = &self.vectors;
        if v.is_empty() || v.len() > MAX_VECTORS {
            return Err(Error::invalid(format!(
                "a collection holds 1 to {MAX_VECTORS} vectors, got {}",
                v.len()
            )));
        }
        let unnamed = v.iter().filter(|s| s.name.is_empty()).count();
        if unnamed > 0 && v.len() > 1 {
            return Err(Error::invalid(
                "the unnamed vector (name \"\") cannot be combined with named vectors",
            ));
        }
        for (i, spec) in v.iter().enumerate() {
            if spec.dim == 0 || spec.dim > MAX_DIM {
                let what = if spec.name.is_empty() {
                    String::from("dim")
                } else {
                    format!("vector {:?}: dim", spec.name)
                };
                return Err(Error::invalid(format!(
                    "{what} must be between 1 and {MAX_DIM}, got {}",
                    spec.dim
                )));
            }
            if spec.name.len() > MAX_VECTOR_NAME_BYTES {
                return Err(Error::invalid(format!(
                    "vector names are at most {MAX_VECTOR_NAME_BYTES} bytes, got {}",
                    spec.name.len()
                )));
            }
            if v[..i].iter().any(|o| o.name == spec.name) {
                return Err(Error::invalid(format!(
                    "vector name {:?} is given twice",
                    spec.name
                )));
            }
        }
        let width: u64 = v.iter().map(|s| u64::from(s.dim)).sum();
        if width > u64::from(MAX_DIM) {
            return Err(Error::invalid(format!(
                "the vectors of a point hold at most {MAX_DIM} values together, got {width}"
            )));
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<()> {
        self.validate_vectors()?;
        crate::index::hnsw::HnswParams {
            m: self.hnsw.m,
            ef_construct: self.hnsw.ef_construct,
        }
        .validate()?;
        let o = &self.optimizer;
        if o.indexing_threshold == 0
            || o.max_segment_points < 1000
            || o.max_segment_points > (1 << 31)
        {
            return Err(Error::invalid(
                "optimizer: indexing_threshold must be at least 1 and max_segment_points between 1,000 and 2^31",
            ));
        }
        Ok(())
    }

    /// The collection holds named vectors (rather than one unnamed vector).
    pub fn is_named(&self) -> bool {
        self.vectors.first().is_some_and(|s| !s.name.is_empty())
    }

    /// Values per stored row: every vector of a point, concatenated.
    pub fn width(&self) -> usize {
        self.vectors.iter().map(|s| s.dim as usize).sum()
    }

    /// Every vector's place in a row, in order.
    pub fn spaces(&self) -> Vec<Space> {
        let stride = self.width();
        let mut offset = 0;
        self.vectors
            .iter()
            .enumerate()
            .map(|(index, s)| {
                let space = Space {
                    index,
                    offset,
                    dim: s.dim as usize,
                    stride,
                    distance: s.distance,
                };
                offset += s.dim as usize;
                space
            })
            .collect()
    }

    /// The vector a search uses: `name`, or the collection's only vector when `None` or `""`.
    pub fn space(&self, name: Option<&str>) -> Result<Space> {
        let spaces = self.spaces();
        match name {
            None | Some("") if !self.is_named() => Ok(spaces[0]),
            None | Some("") => Err(Error::invalid(format!(
                "this collection holds named vectors ({}); say which one to use",
                self.vector_names()
            ))),
            Some(n) => self
                .vectors
                .iter()
                .position(|s| s.name == n)
                .map(|i| spaces[i])
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "no vector named {n:?}; this collection holds {}",
                        self.vector_names()
                    ))
                }),
        }
    }

    fn vector_names(&self) -> String {
        if !self.is_named() {
            return String::from("one unnamed vector");
        }
        self.vectors
            .iter()
            .map(|s| format!("{:?}", s.name))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// When an acknowledged write is durable. See `docs/DURABILITY.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// `upsert`/`delete` return after the log is fsynced (group commit across threads).
    Fsync,
    /// The log is fsynced in the background at this interval.
    Interval(Duration),
    /// Written to the OS page cache only: survives a crash of the process, not of the machine.
    Off,
}

impl Durability {
    pub fn parse(mode: &str, interval_ms: u64) -> Result<Self> {
        match mode {
            "fsync" => Ok(Durability::Fsync),
            "interval" => {
                if interval_ms == 0 {
                    return Err(Error::invalid("fsync_interval_ms must be at least 1"));
                }
                Ok(Durability::Interval(Duration::from_millis(interval_ms)))
            }
            "off" => Ok(Durability::Off),
            _ => Err(Error::invalid(format!(
                "unknown durability {mode:?}; expected \"fsync\", \"interval\" or \"off\""
            ))),
        }
    }
}

/// Which part of the payload to return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayloadSelector {
    None,
    All,
    /// Only what these keys name: top-level names or paths (`a.b`, `a[].b`), in payload
    /// order; missing keys are left out. Made by [`PayloadSelector::include`].
    Include(crate::filter::PathTree),
    /// Everything but what these keys name. Made by [`PayloadSelector::exclude`].
    Exclude(crate::filter::PathTree),
}

impl PayloadSelector {
    fn tree(keys: &[String]) -> Result<crate::filter::PathTree> {
        let paths = keys
            .iter()
            .map(|k| crate::filter::Path::parse(k, "with_payload"))
            .collect::<Result<Vec<_>>>()?;
        Ok(crate::filter::PathTree::new(&paths))
    }

    pub fn include(keys: &[String]) -> Result<Self> {
        Ok(PayloadSelector::Include(Self::tree(keys)?))
    }

    pub fn exclude(keys: &[String]) -> Result<Self> {
        Ok(PayloadSelector::Exclude(Self::tree(keys)?))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub id: PointId,
    pub payload: Option<Payload>,
    pub vector: Option<Vec<f32>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ScoredPoint {
    pub id: PointId,
    pub score: f32,
    pub payload: Option<Payload>,
    pub vector: Option<Vec<f32>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SearchParams {
    pub k: usize,
    pub offset: usize,
    pub score_threshold: Option<f32>,
    pub with_payload: PayloadSelector,
    pub with_vector: bool,
    /// Size of the graph search's candidate list; `None`: `max(ef_construct, k + offset)`.
    pub ef: Option<usize>,
    /// Scan every point exactly instead of using the graphs.
    pub exact: bool,
    /// Only points matching this filter.
    pub filter: Option<crate::filter::Filter>,
    /// Under cosine, take a zero query vector (every score 0) instead of rejecting it, as
    /// Qdrant does (the Qdrant-compatible client sets it).
    pub allow_zero: bool,
    /// The named vector to search (`None` or `""`: the collection's unnamed vector).
    pub using: Option<String>,
}

impl Default for SearchParams {
    fn default() -> Self {
        SearchParams {
            k: 10,
            offset: 0,
            score_threshold: None,
            with_payload: PayloadSelector::All,
            with_vector: false,
            ef: None,
            exact: false,
            filter: None,
            allow_zero: false,
            using: None,
        }
    }
}

/// A value counted by `facet`: strings (keywords, UUIDs), integers and booleans, as Qdrant
/// facets them. Ordered booleans first, then integers, then strings (ties in counts sort so).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FacetValue {
    Bool(bool),
    Int(i64),
    Str(String),
}

/// One segment in [`CollectionInfo`].
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentInfo {
    pub rows: usize,
    pub deleted: usize,
    /// "appendable" (in memory and the log), "sealing" (being written), or "sealed".
    pub kind: &'static str,
    pub indexed: bool,
    /// Recall@10 the graph's self-check measured after its build.
    pub self_check_recall: Option<f32>,
}

/// What `info` reports about a collection.
#[derive(Clone, Debug, PartialEq)]
pub struct CollectionInfo {
    pub name: String,
    pub config: CollectionConfig,
    pub points: usize,
    /// Live points in segments with a graph, and in segments searched exactly.
    pub indexed_points: usize,
    pub unindexed_points: usize,
    pub segments: Vec<SegmentInfo>,
    /// Points written since the last checkpoint (held in memory and in the log).
    pub unflushed_points: usize,
    /// "idle", "sealing", "indexing", "merging", or "failed: <error>".
    pub optimizer_status: String,
    /// Bytes of segment files and the manifest.
    pub disk_bytes: u64,
    /// Bytes of write-ahead log files.
    pub log_bytes: u64,
    pub payload_indexes: Vec<PayloadIndexInfo>,
    pub retention: Option<Retention>,
}

/// One payload index in [`CollectionInfo`].
#[derive(Clone, Debug, PartialEq)]
pub struct PayloadIndexInfo {
    pub key: String,
    pub kind: &'static str,
    /// Sealed points covered (newer points are checked one by one until sealed).
    pub points: usize,
    pub disk_bytes: u64,
}

/// A payload operation (`set_payload` and friends).
#[derive(Clone, Debug, PartialEq)]
pub enum PayloadOp {
    /// Set these top-level keys, keeping the others.
    Set(Payload),
    /// Like `Set`, but a null value removes its key (Qdrant's `set_payload`).
    Merge(Payload),
    /// Set these keys in the object at a path (`a.b`, `a[].b`, `a[0]`), as Qdrant's
    /// `set_payload(key=...)`; see `filter::Path::set`.
    SetAt {
        path: crate::filter::Path,
        payload: Payload,
        null_removes: bool,
    },
    /// Replace the whole payload.
    Overwrite(Payload),
    /// Remove the values at these keys: top-level names, or paths such as `a.b`, `a[].b`
    /// (see `filter::Path::remove`). Made by [`PayloadOp::delete_keys`].
    DeleteKeys(Vec<crate::filter::Path>),
    /// Remove every key.
    Clear,
}

impl PayloadOp {
    /// Removal of `keys`, each a top-level name or a path (`a.b`, `a[].b`, `a[0].b`, as in
    /// filters); an invalid key is an `InvalidInput` error.
    pub fn delete_keys(keys: &[String]) -> Result<Self> {
        let paths = keys
            .iter()
            .map(|k| crate::filter::Path::parse(k, "keys"))
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

/// Which points an operation applies to.
#[derive(Clone, Copy, Debug)]
pub enum Selector<'a> {
    Ids(&'a [PointId]),
    Filter(&'a crate::filter::Filter),
}
