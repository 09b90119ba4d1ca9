//! What a read asks for and gets back: search parameters, which payload to return, which
//! points an operation picks, and the records and hits it returns.

pub mod formula;
pub mod fusion;
mod parse;
pub mod universal;

pub use parse::{document, DEFAULT_PREFETCH_LIMIT, DEFAULT_RRF_K};

use crate::error::Result;
use crate::filter::Filter;
use crate::payload::{Path, PathTree};
use crate::point::{Payload, PointId, SparseVector};

/// Which part of the payload to return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayloadSelector {
    None,
    All,
    /// Only what these keys name: top-level names or paths (`a.b`, `a[].b`), in payload
    /// order; missing keys are left out. Made by [`PayloadSelector::include`].
    Include(PathTree),
    /// Everything but what these keys name. Made by [`PayloadSelector::exclude`].
    Exclude(PathTree),
}

impl PayloadSelector {
    fn tree(keys: &[String]) -> Result<PathTree> {
        let paths = keys
            .iter()
            .map(|k| Path::parse(k, "with_payload"))
            .collect::<Result<Vec<_>>>()?;
        Ok(PathTree::new(&paths))
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
    /// All of its dense vectors, as stored (absent ones all NaN).
    pub vector: Option<Vec<f32>>,
    /// Per sparse vector of the collection, the point's (when vectors were asked for).
    pub sparse: Vec<Option<SparseVector>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ScoredPoint {
    pub id: PointId,
    pub score: f32,
    pub payload: Option<Payload>,
    pub vector: Option<Vec<f32>>,
    pub sparse: Vec<Option<SparseVector>>,
    /// The value an `order_by` query ordered it by.
    pub order_value: Option<f64>,
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
    pub filter: Option<Filter>,
    /// Under cosine, take a zero query vector (every score 0) instead of rejecting it, as
    /// Qdrant does (the Qdrant-compatible client sets it).
    pub allow_zero: bool,
    /// The named vector to search (`None` or `""`: the collection's unnamed vector).
    pub using: Option<String>,
    /// How this search uses the codes (`None`: as the collection's quantization says).
    pub quantization: Option<QuantizationParams>,
}

/// Qdrant's `QuantizationSearchParams`: walk the f32 rows instead of the codes (`ignore`),
/// rescore the candidates on f32 or not, and how many per result wanted (`oversampling`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct QuantizationParams {
    pub ignore: bool,
    pub rescore: Option<bool>,
    pub oversampling: Option<f32>,
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
            quantization: None,
        }
    }
}

/// Direction of `scroll(order_by=...)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

/// A value counted by `facet`: strings (keywords, UUIDs), integers and booleans, as Qdrant
/// facets them. Ordered booleans first, then integers, then strings (ties in counts sort so).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FacetValue {
    Bool(bool),
    Int(i64),
    Str(String),
}

/// Which points an operation applies to.
#[derive(Clone, Copy, Debug)]
pub enum Selector<'a> {
    Ids(&'a [PointId]),
    Filter(&'a Filter),
}
