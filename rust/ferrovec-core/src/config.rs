//! How a collection and a store are configured: vectors and their distances, the HNSW and
//! optimizer settings, retention, durability and the storage tunables. Each validates itself.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Largest vector dimension we accept.
pub const MAX_DIM: u32 = 65_536;

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

impl HnswConfig {
    pub fn validate(&self) -> Result<()> {
        if !(2..=256).contains(&self.m) {
            return Err(Error::invalid(format!(
                "hnsw m must be between 2 and 256, got {}",
                self.m
            )));
        }
        if !(1..=4096).contains(&self.ef_construct) {
            return Err(Error::invalid(format!(
                "hnsw ef_construct must be between 1 and 4096, got {}",
                self.ef_construct
            )));
        }
        Ok(())
    }
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

/// The compact codes a graph is walked on (`index/quant/`): int8 (one byte per value), int4
/// (half a byte) or binary (one bit, scored against a 4-bit query). The walk's best candidates
/// are then rescored on the f32 rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CodeKind {
    Int8,
    Int4,
    Binary,
}

impl CodeKind {
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "int8" => Ok(CodeKind::Int8),
            "int4" => Ok(CodeKind::Int4),
            "binary" => Ok(CodeKind::Binary),
            _ => Err(Error::invalid(format!(
                "unknown code kind {s:?}; expected \"int8\", \"int4\", \"binary\" or \"none\""
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CodeKind::Int8 => "int8",
            CodeKind::Int4 => "int4",
            CodeKind::Binary => "binary",
        }
    }

    /// Candidates rescored per result wanted when the collection and the search do not say,
    /// chosen on `benches/bench_scale.py` at 1M x 384 (docs/SCALE.md): int8 ranks well enough
    /// that rescoring more changes nothing; int4 reaches recall 0.95 only at 16 (0.943 at 4,
    /// ef 384); binary reaches 0.84 at 32 (0.56 at 8).
    pub fn default_oversampling(self) -> f32 {
        match self {
            CodeKind::Int8 => 4.0,
            CodeKind::Int4 => 16.0,
            CodeKind::Binary => 32.0,
        }
    }

    /// Whether vectors of this metric can be searched on codes: the codes estimate dot
    /// products, which rank cosine (unit vectors) and dot exactly as the metric does.
    pub fn supports(metric: Distance) -> bool {
        matches!(metric, Distance::Cosine | Distance::Dot)
    }
}

/// A collection's quantization (Qdrant's `quantization_config` maps onto it): which codes its
/// graphs are walked on, how many candidates are rescored, and whether they are by default.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quantization {
    /// `None`: the graphs are walked on the f32 rows.
    pub codes: Option<CodeKind>,
    /// Candidates rescored on f32 per result wanted; `None`: the kind's default.
    pub oversampling: Option<f32>,
    /// Rescore on f32 (a search may say otherwise); without it, scores are the codes' estimates.
    pub rescore: bool,
    /// Qdrant's `always_ram`, kept for migrations: codes here are always memory-mapped and
    /// stay resident while they are used.
    pub always_ram: Option<bool>,
}

/// Largest oversampling a collection or search may ask for.
pub const MAX_OVERSAMPLING: f32 = 100.0;

/// Check an oversampling factor (a collection's or a search's).
pub fn check_oversampling(x: f32) -> Result<()> {
    if x.is_finite() && (1.0..=MAX_OVERSAMPLING).contains(&x) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "oversampling must be between 1 and {MAX_OVERSAMPLING}, got {x}"
        )))
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

/// How a sparse vector's query weights are scaled before scoring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Modifier {
    #[default]
    None,
    /// Each query weight times the index's inverse document frequency over the collection's
    /// live points that have this vector: `ln((N - df + 0.5) / (df + 0.5) + 1)`, as Qdrant.
    Idf,
}

impl Modifier {
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Modifier::None),
            "idf" => Ok(Modifier::Idf),
            _ => Err(Error::invalid(format!(
                "unknown sparse vector modifier {s:?}; expected \"none\" or \"idf\""
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Modifier::None => "none",
            Modifier::Idf => "idf",
        }
    }
}

/// A sparse vector of every point (which a point may lack): its name and how it is scored.
/// `full_scan_threshold` and `on_disk` are Qdrant's `SparseIndexParams`, kept for reports and
/// migrations (the inverted index here is always memory-mapped, and always used).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SparseSpec {
    pub name: String,
    pub modifier: Modifier,
    pub full_scan_threshold: Option<u64>,
    pub on_disk: Option<bool>,
}

impl SparseSpec {
    pub fn new(name: &str, modifier: Modifier) -> Self {
        SparseSpec {
            name: name.to_string(),
            modifier,
            full_scan_threshold: None,
            on_disk: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CollectionConfig {
    /// One unnamed vector, or one or more named ones (or none, when there are sparse ones).
    pub vectors: Vec<VectorSpec>,
    /// Named sparse vectors (absent from the JSON of stores before format 6).
    #[serde(default)]
    pub sparse: Vec<SparseSpec>,
    pub hnsw: HnswConfig,
    pub optimizer: OptimizerConfig,
    /// `None`: int8 codes for cosine and dot vectors, none for the others (format 6's choice).
    pub quantization: Option<Quantization>,
    /// Where indexed segments keep their f32 rows (Qdrant's `VectorParams.on_disk`; format 8):
    /// `Some(true)` reads them from disk in every segment walked on codes, whatever its size;
    /// `Some(false)` keeps them resident (read through their mapping, counted in the memory
    /// budget); `None` leaves it to the store's `rows_from_disk_bytes`. Rows a walk reads
    /// (segments without codes) are always read through their mapping.
    #[serde(default)]
    pub vectors_on_disk: Option<bool>,
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
        Self::with_all(vectors, Vec::new())
    }

    /// A collection of the given dense and sparse vectors.
    pub fn with_all(vectors: Vec<VectorSpec>, sparse: Vec<SparseSpec>) -> Result<Self> {
        let config = CollectionConfig {
            vectors,
            sparse,
            hnsw: HnswConfig::default(),
            optimizer: OptimizerConfig::default(),
            quantization: None,
            vectors_on_disk: None,
        };
        config.validate_vectors()?;
        Ok(config)
    }

    /// The size of f32 rows from which a segment walked on codes reads them from disk:
    /// the collection's `vectors_on_disk` if set, else the store's `rows_from_disk_bytes`.
    pub fn rows_from_disk_bytes(&self, store_default: u64) -> u64 {
        match self.vectors_on_disk {
            Some(true) => 0,
            Some(false) => u64::MAX,
            None => store_default,
        }
    }

    fn validate_vectors(&self) -> Result<()> {
        let v = &self.vectors;
        let total = v.len() + self.sparse.len();
        if total == 0 || v.len() > MAX_VECTORS || self.sparse.len() > MAX_VECTORS {
            return Err(Error::invalid(format!(
                "a collection holds 1 to {MAX_VECTORS} dense vectors (or none, with sparse ones) and up to {MAX_VECTORS} sparse ones, got {} and {}",
                v.len(),
                self.sparse.len()
            )));
        }
        for (i, s) in self.sparse.iter().enumerate() {
            if s.name.is_empty() || s.name.len() > MAX_VECTOR_NAME_BYTES {
                return Err(Error::invalid(format!(
                    "sparse vector names are 1 to {MAX_VECTOR_NAME_BYTES} bytes, got {:?}",
                    s.name
                )));
            }
            if self.sparse[..i].iter().any(|o| o.name == s.name)
                || v.iter().any(|d| d.name == s.name)
            {
                return Err(Error::invalid(format!(
                    "vector name {:?} is given twice",
                    s.name
                )));
            }
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
        self.hnsw.validate()?;
        self.validate_quantization()?;
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

    fn validate_quantization(&self) -> Result<()> {
        let Some(q) = self.quantization else {
            return Ok(());
        };
        if let Some(x) = q.oversampling {
            check_oversampling(x)?;
        }
        if let Some(kind) = q.codes {
            if let Some(v) = self
                .vectors
                .iter()
                .find(|v| !CodeKind::supports(v.distance))
            {
                let which = match v.name.as_str() {
                    "" => String::from("the collection's vector"),
                    name => format!("vector {name:?}"),
                };
                return Err(Error::invalid(format!(
                    "{} codes are for cosine and dot vectors, and {which} uses {} distance; \
                     leave quantization unset (such vectors are searched on f32)",
                    kind.name(),
                    v.distance.name()
                )));
            }
        }
        Ok(())
    }

    /// The codes the graphs of vector `sp` are walked on.
    pub fn codes_for(&self, sp: Space) -> Option<CodeKind> {
        match self.quantization {
            None => CodeKind::supports(sp.distance).then_some(CodeKind::Int8),
            Some(q) => q.codes,
        }
    }

    /// The collection's rescoring defaults: (oversampling, rescore) for codes of `kind`.
    pub fn rescoring(&self, kind: CodeKind) -> (f32, bool) {
        match self.quantization {
            None => (kind.default_oversampling(), true),
            Some(q) => (
                q.oversampling.unwrap_or(kind.default_oversampling()),
                q.rescore,
            ),
        }
    }

    /// A point's vectors are given and returned by name: the collection holds named dense
    /// vectors, or sparse ones (beside which its unnamed dense vector is named `""`).
    pub fn is_named(&self) -> bool {
        !self.sparse.is_empty() || self.vectors.first().is_some_and(|s| !s.name.is_empty())
    }

    /// The collection has an unnamed dense vector (name `""`).
    pub fn has_unnamed(&self) -> bool {
        self.vectors.first().is_some_and(|s| s.name.is_empty())
    }

    /// The sparse vector named `name`: its position and spec.
    pub fn sparse_field(&self, name: &str) -> Option<(usize, &SparseSpec)> {
        self.sparse.iter().enumerate().find(|(_, s)| s.name == name)
    }

    /// What `name` names: a dense vector's place in a row, or a sparse vector's position.
    pub fn lookup(&self, name: Option<&str>) -> Result<Target> {
        if let Some((i, _)) = name.and_then(|n| self.sparse_field(n)) {
            return Ok(Target::Sparse(i));
        }
        self.space(name).map(Target::Dense)
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
            None | Some("") if self.has_unnamed() => Ok(spaces[0]),
            None | Some("") => Err(Error::invalid(format!(
                "this collection holds named vectors ({}); say which one to use",
                self.vector_names()
            ))),
            Some(n) if self.sparse_field(n).is_some() => Err(Error::invalid(format!(
                "{n:?} is a sparse vector; give a sparse vector (indices and values) for it"
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
        let dense = self.vectors.iter().map(|s| format!("{:?}", s.name));
        let sparse = self.sparse.iter().map(|s| format!("{:?} (sparse)", s.name));
        dense.chain(sparse).collect::<Vec<_>>().join(", ")
    }
}

/// What a vector name names in a collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Dense(Space),
    /// The sparse vector at this position of `CollectionConfig::sparse`.
    Sparse(usize),
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

/// Tunables of the storage layer, for every collection of a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StorageOptions {
    pub durability: Durability,
    /// A log file is sealed and a new one started past this size.
    pub wal_file_bytes: u64,
    /// The appendable rows are sealed into a segment once the log holds more than this.
    pub checkpoint_log_bytes: u64,
    /// Run the background optimizer (indexing, merging). Off, only `optimize()` indexes.
    pub background_optimizer: bool,
    /// Never write: no log lock, no optimizer, every write refused with `ReadOnly`.
    pub read_only: bool,
    /// Collections a store may hold; creating one more is refused.
    pub max_collections: usize,
    /// Segments with codes whose f32 rows take at least this many bytes read the rows they
    /// rescore from disk (`pread`), not through their mapping, so serving keeps only codes and
    /// graphs resident (docs/SCALE.md, "Memory"). 0: every segment with codes.
    pub rows_from_disk_bytes: u64,
    /// Most bytes serving the store's open collections may keep resident (their codes, graphs,
    /// ids and f32 rows read through a mapping; `collection::budget`). Loading a collection or
    /// writing new points past it is refused with `MemoryLimit`. `None`: no limit.
    pub memory_limit_bytes: Option<u64>,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            durability: Durability::Fsync,
            wal_file_bytes: 64 << 20,
            checkpoint_log_bytes: 128 << 20,
            background_optimizer: true,
            read_only: false,
            max_collections: 10_000,
            rows_from_disk_bytes: 256 << 20,
            memory_limit_bytes: None,
        }
    }
}

/// Check a collection name: 1 to 128 of letters, digits, `_` and `-`.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "invalid collection name {name:?}: use 1 to 128 letters, digits, '_' and '-'"
        )))
    }
}
