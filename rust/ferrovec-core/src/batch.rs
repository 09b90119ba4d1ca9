//! What a write hands over: the vectors of a batch of points as the caller has them. The
//! collection alone checks them and lays them out as stored rows (`collection/validate.rs`),
//! reading the caller's values exactly once; callers (the Python bindings) only convert.

use crate::error::{Error, Result};
use crate::point::SparseVector;

/// `rows` vectors of `cols` values each, row-major.
#[derive(Clone, Copy, Debug)]
pub struct Matrix<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
}

impl<'a> Matrix<'a> {
    /// `data` read as `rows` rows of `cols` values; its length must be `rows * cols`.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Result<Self> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(Error::invalid(format!(
                "{} values are not {rows} rows of {cols}",
                data.len()
            )));
        }
        Ok(Matrix { data, rows, cols })
    }

    pub fn data(&self) -> &'a [f32] {
        self.data
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }
}

/// The vectors of a batch of points.
#[derive(Clone, Debug)]
pub enum Vectors<'a> {
    /// One row per point holding all of its dense vectors, concatenated in the collection's
    /// order (for named vectors, a vector of all NaN is one the point lacks).
    Rows(Matrix<'a>),
    /// Vectors by name, one entry per point each (`""`: a collection's unnamed vector). An
    /// upsert stores the vectors not given as absent; `update_vectors` keeps them. A dense row
    /// of NaN, or a sparse entry of `None`: that point lacks the vector.
    Named(Vec<(String, VectorData<'a>)>),
}

/// One named vector of every point of a batch.
#[derive(Clone, Debug)]
pub enum VectorData<'a> {
    Dense(Matrix<'a>),
    Sparse(Vec<Option<SparseInput>>),
}

/// A point's sparse vector as given: the vector, or a text the collection turns into one.
#[derive(Clone, Debug, PartialEq)]
pub enum SparseInput {
    Vector(SparseVector),
    Document(Document),
}

/// A text to embed in the core (Qdrant's `models.Document`): `model` names how, and `options`
/// tune it (see `bm25.rs`, the one model: "qdrant/bm25").
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    pub text: String,
    pub model: String,
    pub options: serde_json::Map<String, serde_json::Value>,
}
