//! Checking a batch before anything changes: ids, vectors, payload sizes. This is the one
//! place that checks a batch's vectors (their count, dimensions, named-vector layout, NaN as
//! "absent", finiteness, zero vectors under cosine) and lays them out as stored rows.
//!
//! The caller's values are read exactly once, into a buffer of our own, before any check: the
//! caller (a Python thread, without the GIL) may change its array while we work, and what is
//! checked, logged and stored must be the same values.

use std::collections::HashMap;

use super::Collection;
use crate::batch::{Matrix, SparseInput, VectorData, Vectors};
use crate::bm25::Bm25;
use crate::cancel::Cancel;
use crate::config::{Distance, Space, Target};
use crate::distance;
use crate::error::{Error, Result};
use crate::point::{PointId, SparseVector, MAX_PAYLOAD_BYTES};

/// Rows a write lays out between two checks of its `Cancel`.
const ROWS_PER_CHECK: usize = 1 << 14;

/// Rows laid out from a batch: `spaces` says where each dense vector lies in a row of
/// `width`; `sparse` holds the sparse vectors given, by their position in the collection's
/// config, one entry per point (`None`: the point lacks it).
pub(super) struct Laid {
    pub spaces: Vec<Space>,
    pub width: usize,
    pub rows: Vec<f32>,
    pub sparse: Vec<(usize, Vec<Option<SparseVector>>)>,
}

/// Which vectors laid-out rows hold.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    /// Every vector of the collection in its order (an upsert: those not given are absent).
    Stored,
    /// Only the vectors given, in the order given (an update of some vectors).
    Given,
}

/// What a batch gives: each dense vector's place in the collection, its matrix and where the
/// vector starts in that matrix's rows; each sparse vector's position and entries.
struct Given<'v> {
    dense: Vec<(Space, &'v Matrix<'v>, usize)>,
    sparse: Vec<(usize, &'v [Option<SparseInput>])>,
}

impl Collection {
    /// Check `vectors` for `n` points and copy them, once, into rows as `layout` says, every
    /// cosine vector unit-normalised (a zero one kept as zero only with `allow_zero`), every
    /// sparse vector checked and sorted, every document embedded. `cancel` is checked every
    /// `ROWS_PER_CHECK` rows.
    pub(super) fn lay_out(
        &self,
        n: usize,
        vectors: &Vectors<'_>,
        layout: Layout,
        allow_zero: bool,
        cancel: &Cancel,
    ) -> Result<Laid> {
        let given = self.given(n, vectors)?;
        if given.dense.is_empty() && given.sparse.is_empty() && layout == Layout::Given {
            return Err(Error::invalid("no vector named"));
        }
        let (width, spaces) = match layout {
            Layout::Stored => (self.config.width(), self.config.spaces()),
            Layout::Given => given_layout(&given.dense.iter().map(|g| g.0).collect::<Vec<_>>()),
        };
        // The one read of the caller's values.
        let mut rows = match vectors {
            // Already in the stored layout: copied as it is.
            Vectors::Rows(m) if layout == Layout::Stored => {
                let mut rows = Vec::with_capacity(m.data().len());
                for part in m.data().chunks(ROWS_PER_CHECK * width.max(1)) {
                    cancel.check("the write")?;
                    rows.extend_from_slice(part);
                }
                rows
            }
            // Vectors not given stay NaN: absent.
            _ => vec![f32::NAN; n * width],
        };
        let in_place = matches!(vectors, Vectors::Rows(_)) && layout == Layout::Stored;
        for (sp, m, from) in given.dense.iter().filter(|_| !in_place) {
            let to = spaces
                .iter()
                .find(|s| s.index == sp.index)
                .map_or(0, |s| s.offset);
            let src = m.data();
            for (r, row) in rows.chunks_exact_mut(width).enumerate() {
                if r % ROWS_PER_CHECK == 0 {
                    cancel.check("the write")?;
                }
                let at = r * m.cols() + from;
                row[to..to + sp.dim].copy_from_slice(&src[at..at + sp.dim]);
            }
        }
        let named = self.config.is_named();
        let specs = &self.config.vectors;
        for (i, part) in rows.chunks_mut(ROWS_PER_CHECK * width.max(1)).enumerate() {
            cancel.check("the write")?;
            let first = i * ROWS_PER_CHECK;
            check_rows(part, first, &spaces, specs, "vectors", allow_zero, named)?;
        }
        let mut sparse = Vec::new();
        for (field, entries) in &given.sparse {
            cancel.check("the write")?;
            let name = &self.config.sparse[*field].name;
            sparse.push((*field, sparse_vectors(entries, name)?));
        }
        if layout == Layout::Stored {
            // Every sparse vector, in the config's order; those not given are absent.
            sparse = (0..self.config.sparse.len())
                .map(|f| match sparse.iter().position(|(g, _)| *g == f) {
                    Some(i) => (f, std::mem::take(&mut sparse[i].1)),
                    None => (f, vec![None; n]),
                })
                .collect();
        }
        Ok(Laid {
            spaces,
            width,
            rows,
            sparse,
        })
    }

    /// What `vectors` gives, checked against the collection (names, counts, dimensions).
    fn given<'v>(&self, n: usize, vectors: &'v Vectors<'_>) -> Result<Given<'v>> {
        let mut given = Given {
            dense: Vec::new(),
            sparse: Vec::new(),
        };
        match vectors {
            Vectors::Rows(m) => {
                if m.rows() != n {
                    return Err(Error::invalid(format!(
                        "got {n} ids but {} vectors",
                        m.rows()
                    )));
                }
                let width = self.config.width();
                if m.cols() != width {
                    return Err(Error::invalid(format!(
                        "vectors have dimension {}, the collection {:?} has dimension {width}",
                        m.cols(),
                        self.name
                    )));
                }
                given.dense = self
                    .config
                    .spaces()
                    .into_iter()
                    .map(|sp| (sp, m, sp.offset))
                    .collect();
            }
            Vectors::Named(named) => {
                for (i, (name, data)) in named.iter().enumerate() {
                    if named[..i].iter().any(|(other, _)| other == name) {
                        return Err(Error::invalid(format!("vector {name:?} is given twice")));
                    }
                    match (self.config.lookup(Some(name))?, data) {
                        (Target::Dense(sp), VectorData::Dense(m)) => {
                            if m.rows() != n {
                                return Err(Error::invalid(format!(
                                    "got {n} ids but {} vectors named {name:?}",
                                    m.rows()
                                )));
                            }
                            if m.cols() != sp.dim {
                                return Err(Error::invalid(format!(
                                    "vectors named {name:?} have dimension {}, the vector has dimension {}",
                                    m.cols(),
                                    sp.dim
                                )));
                            }
                            given.dense.push((sp, m, 0));
                        }
                        (Target::Sparse(field), VectorData::Sparse(entries)) => {
                            if entries.len() != n {
                                return Err(Error::invalid(format!(
                                    "got {n} ids but {} sparse vectors named {name:?}",
                                    entries.len()
                                )));
                            }
                            given.sparse.push((field, entries));
                        }
                        (Target::Dense(_), VectorData::Sparse(_)) => {
                            return Err(Error::invalid(format!(
                                "{name:?} is a dense vector; a sparse vector (or document) was given for it"
                            )))
                        }
                        (Target::Sparse(_), VectorData::Dense(_)) => {
                            return Err(Error::invalid(format!(
                                "{name:?} is a sparse vector; a dense array was given for it"
                            )))
                        }
                    }
                }
            }
        }
        Ok(given)
    }

    /// Queries for the vector `sp`, copied (once) and checked, cosine ones normalised.
    pub(super) fn prepare_queries(
        &self,
        queries: &[f32],
        sp: Space,
        allow_zero: bool,
    ) -> Result<Vec<f32>> {
        let alone = Space {
            offset: 0,
            stride: sp.dim,
            ..sp
        };
        let mut q = queries.to_vec();
        let specs = &self.config.vectors;
        check_rows(&mut q, 0, &[alone], specs, "query", allow_zero, false)?;
        Ok(q)
    }
}

/// Check rows of vectors (the first is row `first` of the batch), each holding the vectors
/// `spaces` (of the collection's `specs`) at their offsets, and unit-normalise every cosine
/// vector (a zero vector, if `allow_zero`, stays zero). With `allow_absent` (named vectors), a
/// vector of all NaN is one the point does not have (`config::is_absent`).
fn check_rows(
    rows: &mut [f32],
    first: usize,
    spaces: &[Space],
    specs: &[crate::config::VectorSpec],
    what: &str,
    allow_zero: bool,
    allow_absent: bool,
) -> Result<()> {
    let Some(stride) = spaces.first().map(|s| s.stride) else {
        return Ok(());
    };
    for (i, row) in rows.chunks_exact_mut(stride).enumerate() {
        let r = first + i;
        for sp in spaces {
            let v = &mut row[sp.offset..sp.offset + sp.dim];
            let name = specs.get(sp.index).map_or("", |s| s.name.as_str());
            let which = || match name {
                "" => String::new(),
                n => format!(" (vector {n:?})"),
            };
            if allow_absent && v.iter().all(|x| x.is_nan()) {
                continue;
            }
            if let Some(col) = v.iter().position(|x| !x.is_finite()) {
                let absent = if allow_absent && v[col].is_nan() {
                    "; a row of NaN leaves the vector out"
                } else {
                    ""
                };
                return Err(Error::invalid(format!(
                    "{what} row {r}{}: component {col} is {} (only finite numbers are allowed{absent})",
                    which(),
                    v[col]
                )));
            }
            if sp.distance == Distance::Cosine {
                if v.iter().all(|&x| x == 0.0) {
                    if !allow_zero {
                        return Err(Error::invalid(format!(
                            "{what} row {r}{} is a zero vector, which has no direction under cosine distance",
                            which()
                        )));
                    }
                } else {
                    distance::normalize_in_place(v);
                }
            }
        }
    }
    Ok(())
}

/// The sparse vectors of a batch's points for the vector `name`: each given vector checked and
/// sorted, each document embedded (with one model per model and options, in parallel).
fn sparse_vectors(
    entries: &[Option<SparseInput>],
    name: &str,
) -> Result<Vec<Option<SparseVector>>> {
    use rayon::prelude::*;
    let mut models: Vec<(&crate::batch::Document, Bm25)> = Vec::new();
    for doc in entries.iter().flatten().filter_map(|e| match e {
        SparseInput::Document(d) => Some(d),
        SparseInput::Vector(_) => None,
    }) {
        if !models
            .iter()
            .any(|(d, _)| d.model == doc.model && d.options == doc.options)
        {
            models.push((doc, Bm25::new(&doc.model, &doc.options)?));
        }
    }
    let convert = |(i, e): (usize, &Option<SparseInput>)| -> Result<Option<SparseVector>> {
        Ok(match e {
            None => None,
            Some(SparseInput::Vector(v)) => Some(SparseVector::new(
                v.indices.clone(),
                v.values.clone(),
                &format!("sparse vector {name:?} of point #{i}"),
            )?),
            Some(SparseInput::Document(doc)) => {
                let model = models
                    .iter()
                    .find(|(d, _)| d.model == doc.model && d.options == doc.options)
                    .map(|(_, m)| m)
                    .ok_or_else(|| Error::internal("a document's model was not prepared"))?;
                Some(model.document(&doc.text))
            }
        })
    };
    crate::pool::install(|| {
        entries
            .par_iter()
            .enumerate()
            .with_min_len(64)
            .map(convert)
            .collect()
    })
}

/// Some of a point's vectors as a row of their own, in the order given: its width, and where
/// each lies in it.
pub(super) fn given_layout(spaces: &[Space]) -> (usize, Vec<Space>) {
    let width: usize = spaces.iter().map(|s| s.dim).sum();
    let mut offset = 0;
    let layout = spaces
        .iter()
        .map(|s| {
            offset += s.dim;
            Space {
                offset: offset - s.dim,
                stride: width,
                ..*s
            }
        })
        .collect();
    (width, layout)
}

/// `(offset in the given row, offset in the stored row, dim)` for each vector of `given`
/// (laid out by `given_layout`), to copy given rows into stored ones.
pub(super) fn copies(
    config: &crate::config::CollectionConfig,
    given: &[Space],
) -> Vec<(usize, usize, usize)> {
    let stored = config.spaces();
    given
        .iter()
        .map(|g| (g.offset, stored[g.index].offset, g.dim))
        .collect()
}

/// "vector \"name\"", or "collection" for the unnamed vector (in errors).
pub(super) fn vector_what(using: Option<&str>) -> String {
    match using {
        None | Some("") => String::from("collection"),
        Some(n) => format!("vector {n:?}"),
    }
}

/// Refuse a payload larger than `MAX_PAYLOAD_BYTES` as JSON, naming its point.
pub(super) fn check_payload_sizes(ids: &[PointId], payloads: &[Option<Box<[u8]>>]) -> Result<()> {
    let limit = MAX_PAYLOAD_BYTES;
    match payloads
        .iter()
        .position(|p| p.as_ref().is_some_and(|b| b.len() > limit))
    {
        None => Ok(()),
        Some(i) => Err(Error::invalid(format!(
            "the payload of point {} would be {} bytes as JSON; a point's payload is at most {} MiB",
            ids.get(i).map_or_else(|| format!("#{i}"), |id| id.to_string()),
            payloads[i].as_ref().map_or(0, |b| b.len()),
            limit >> 20
        ))),
    }
}

/// Check ids; with `unique`, a repeated id is an error naming both positions.
pub(super) fn validate_ids(ids: &[PointId], unique: bool, cancel: &Cancel) -> Result<()> {
    let mut first_at: HashMap<&PointId, usize> = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        if i % ROWS_PER_CHECK == 0 {
            cancel.check("the write")?;
        }
        id.validate()
            .map_err(|e| Error::invalid(format!("ids[{i}]: {e}")))?;
        if unique {
            if let Some(j) = first_at.insert(id, i) {
                return Err(Error::invalid(format!(
                    "ids[{i}]: duplicate id {id} in the batch (first at ids[{j}])"
                )));
            }
        }
    }
    Ok(())
}
