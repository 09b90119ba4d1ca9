//! Qdrant's universal query as the core takes it: a tree of stages, each with its own query,
//! whose leaves search the collection and whose inner nodes merge what their prefetches found
//! (fusion, a formula, or re-scoring by a vector query). Parsed from Qdrant's REST JSON by
//! `parse.rs`, run by `collection/query/`.

use serde_json::{Map, Value};

use super::formula::Formula;
use super::{Direction, PayloadSelector, QuantizationParams};
use crate::batch::Document;
use crate::filter::Filter;
use crate::point::{PointId, SparseVector};

/// Deepest prefetch nesting accepted (the outer query is level 0).
pub const MAX_PREFETCH_DEPTH: usize = 8;
/// Most prefetches one stage may hold, and most examples one query may name.
pub const MAX_PREFETCHES: usize = 64;
pub const MAX_EXAMPLES: usize = 1024;
/// Largest `limit` of one stage, and of MMR's candidates.
pub const MAX_LIMIT: usize = 1 << 20;
pub const MAX_MMR_CANDIDATES: usize = 16_384;

/// A vector as a query gives it: a vector, a point's (by id) or a text to embed.
#[derive(Clone, Debug, PartialEq)]
pub enum VectorInput {
    Dense(Vec<f32>),
    Sparse(SparseVector),
    Document(Document),
    Id(PointId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecommendStrategy {
    AverageVector,
    BestScore,
    SumScores,
}

/// Maximal marginal relevance over the nearest `candidates` points.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mmr {
    pub diversity: f64,
    pub candidates: Option<usize>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Fusion {
    /// Reciprocal rank fusion: a point at position `p` (0-based) of a list of weight `w` gains
    /// `1 / ((p + 1) / w + k - 1)`.
    Rrf { k: usize, weights: Option<Vec<f64>> },
    /// Distribution-based score fusion: each list's scores mapped from mean ± 3σ to 0..1, then
    /// summed.
    Dbsf,
}

/// What a stage ranks by.
#[derive(Clone, Debug, PartialEq)]
pub enum Query {
    Nearest {
        vector: VectorInput,
        mmr: Option<Mmr>,
    },
    Recommend {
        positive: Vec<VectorInput>,
        negative: Vec<VectorInput>,
        strategy: RecommendStrategy,
    },
    Discover {
        target: VectorInput,
        context: Vec<(VectorInput, VectorInput)>,
    },
    Context {
        pairs: Vec<(VectorInput, VectorInput)>,
    },
    OrderBy {
        key: String,
        direction: Direction,
        start_from: Option<Value>,
    },
    Fusion(Fusion),
    Formula(Formula),
    Sample,
}

impl Query {
    /// Its kind as the profiler and `explain` name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Query::Nearest { mmr: Some(_), .. } => "nearest_mmr",
            Query::Nearest { .. } => "nearest",
            Query::Recommend { .. } => "recommend",
            Query::Discover { .. } => "discover",
            Query::Context { .. } => "context",
            Query::OrderBy { .. } => "order_by",
            Query::Fusion(Fusion::Rrf { .. }) => "rrf",
            Query::Fusion(_) => "dbsf",
            Query::Formula(_) => "formula",
            Query::Sample => "sample",
        }
    }

    /// Whether it ranks by a vector (and so needs `using`).
    pub fn is_vector(&self) -> bool {
        matches!(
            self,
            Query::Nearest { .. }
                | Query::Recommend { .. }
                | Query::Discover { .. }
                | Query::Context { .. }
        )
    }
}

/// Where the vectors of a stage's point ids are read: another collection and vector.
#[derive(Clone, Debug, PartialEq)]
pub struct LookupFrom {
    pub collection: String,
    pub vector: Option<String>,
}

/// One level of the tree: the outer request or one prefetch.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    pub prefetch: Vec<Stage>,
    pub query: Option<Query>,
    /// The vector searched (`None`: the unnamed one).
    pub using: Option<String>,
    pub filter: Option<Filter>,
    pub score_threshold: Option<f32>,
    /// How many points the stage passes on (prefetches: 10 unless given).
    pub limit: usize,
    pub exact: bool,
    pub ef: Option<usize>,
    /// How its search uses the codes (`params.quantization`).
    pub quantization: Option<QuantizationParams>,
    pub lookup_from: Option<LookupFrom>,
}

/// A whole query: the outer stage and what its results carry.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryRequest {
    pub stage: Stage,
    pub offset: usize,
    pub with_payload: PayloadSelector,
    pub with_vector: bool,
}

/// A `query_points_groups` request: the query and how its points are grouped.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupsRequest {
    pub query: QueryRequest,
    pub group_by: String,
    pub group_size: usize,
}

impl QueryRequest {
    /// Every collection named by a `lookup_from` in the tree (the caller opens them).
    pub fn lookup_collections(&self) -> Vec<String> {
        fn walk(s: &Stage, out: &mut Vec<String>) {
            if let Some(l) = &s.lookup_from {
                if !out.contains(&l.collection) {
                    out.push(l.collection.clone());
                }
            }
            for p in &s.prefetch {
                walk(p, out);
            }
        }
        let mut out = Vec::new();
        walk(&self.stage, &mut out);
        out
    }
}

/// Options of a document's model, as JSON (kept for error messages and for BM25).
pub type ModelOptions = Map<String, Value>;
