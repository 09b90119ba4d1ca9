//! Turning a stage's vector inputs into vectors of the field it ranks by: point ids read
//! (here, or in its `lookup_from` collection), documents embedded (BM25), and every vector
//! checked against the field's kind and dimension.

use std::collections::HashMap;
use std::sync::Arc;

use super::super::state::State;
use super::super::Collection;
use crate::bm25::Bm25;
use crate::config::{is_absent, Modifier, Space, Target};
use crate::error::{Error, Result};
use crate::point::{PointId, SparseVector};
use crate::query::universal::{Stage, VectorInput};

/// The other collections a query's `lookup_from`s name, opened by the caller.
pub type Lookups = HashMap<String, Arc<Collection>>;

/// A vector as a query ranks by it.
#[derive(Clone, Debug)]
pub enum Vector {
    /// Of the field's dimension; the plan checks and (cosine) normalises it.
    Dense(Vec<f32>),
    Sparse(SparseVector),
}

/// The vector of the points a stage ranks by.
#[derive(Clone, Copy, Debug)]
pub enum Field {
    Dense(Space),
    Sparse { k: usize, idf: bool },
}

pub struct Resolver<'a> {
    pub col: &'a Collection,
    pub st: &'a State,
    pub lookups: &'a Lookups,
}

fn name_of(using: Option<&str>) -> String {
    match using {
        None | Some("") => String::from("unnamed vector"),
        Some(n) => format!("vector {n:?}"),
    }
}

impl Resolver<'_> {
    pub fn field(&self, using: Option<&str>) -> Result<Field> {
        Ok(match self.col.config.lookup(using)? {
            Target::Dense(sp) => Field::Dense(sp),
            Target::Sparse(k) => Field::Sparse {
                k,
                idf: self.col.config.sparse[k].modifier == Modifier::Idf,
            },
        })
    }

    /// `input` as a vector of `field` (the field of `stage.using`); ids read here are pushed
    /// onto `mentioned` (they are left out of the stage's results).
    pub fn vector(
        &self,
        input: &VectorInput,
        field: Field,
        stage: &Stage,
        mentioned: &mut Vec<PointId>,
    ) -> Result<Vector> {
        let using = stage.using.as_deref();
        let raw = match input {
            VectorInput::Dense(v) => Vector::Dense(v.clone()),
            VectorInput::Sparse(v) => Vector::Sparse(v.clone()),
            VectorInput::Document(doc) => match field {
                Field::Sparse { .. } => {
                    Vector::Sparse(Bm25::new(&doc.model, &doc.options)?.query(&doc.text))
                }
                Field::Dense(_) => {
                    return Err(Error::invalid(format!(
                        "a document was given for the dense {}: the core embeds documents only \
                         into sparse vectors (model \"qdrant/bm25\"); pass the dense vector",
                        name_of(using)
                    )))
                }
            },
            VectorInput::Id(id) => {
                let lookup = stage
                    .lookup_from
                    .as_ref()
                    .filter(|l| l.collection != self.col.name());
                let name = stage
                    .lookup_from
                    .as_ref()
                    .and_then(|l| l.vector.as_deref())
                    .or(using);
                match lookup {
                    Some(l) => {
                        let other = self
                            .lookups
                            .get(&l.collection)
                            .ok_or_else(|| Error::CollectionNotFound(l.collection.clone()))?;
                        let st = other.state.read();
                        vector_of(other, &st, id, name)?
                    }
                    None => {
                        mentioned.push(id.clone());
                        vector_of(self.col, self.st, id, name)?
                    }
                }
            }
        };
        match (raw, field) {
            (Vector::Dense(v), Field::Dense(sp)) => {
                if v.len() != sp.dim {
                    return Err(Error::invalid(format!(
                        "query vector has dimension {}, the {} has dimension {}",
                        v.len(),
                        name_of(using),
                        sp.dim
                    )));
                }
                // As given: the plan normalises (cosine) after averaging, as Qdrant does.
                Ok(Vector::Dense(v))
            }
            (Vector::Sparse(v), Field::Sparse { .. }) => Ok(Vector::Sparse(v)),
            (Vector::Sparse(_), Field::Dense(_)) => Err(Error::invalid(format!(
                "a sparse vector was given for the dense {}",
                name_of(using)
            ))),
            (Vector::Dense(_), Field::Sparse { .. }) => Err(Error::invalid(format!(
                "a dense vector was given for the sparse {}",
                name_of(using)
            ))),
        }
    }
}

/// The vector `name` of point `id` in `col` (whose state is `st`).
fn vector_of(col: &Collection, st: &State, id: &PointId, name: Option<&str>) -> Result<Vector> {
    let loc = st.locate(id)?.ok_or_else(|| {
        Error::invalid(format!(
            "point {id} is not found in collection {:?}",
            col.name()
        ))
    })?;
    let missing = || {
        Error::invalid(format!(
            "{} for point {id} not found (collection {:?})",
            name_of(name),
            col.name()
        ))
    };
    match col.config.lookup(name)? {
        Target::Dense(sp) => {
            let v = &st.vector(loc)[sp.offset..sp.offset + sp.dim];
            if is_absent(v) {
                return Err(missing());
            }
            Ok(Vector::Dense(v.to_vec()))
        }
        Target::Sparse(k) => Ok(Vector::Sparse(
            st.sparse(loc, k)?.ok_or_else(missing)?.to_owned(),
        )),
    }
}
