//! Checking a batch before anything changes: ids, vectors, payload sizes.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::config::{Distance, Space, VectorSpec};
use crate::distance;
use crate::error::{Error, Result};
use crate::point::PointId;
/// Check rows of vectors, each holding the vectors `spaces` (of the collection's `specs`) at
/// their offsets; return them with every cosine vector unit-normalised (a zero vector, if
/// `allow_zero`, stays zero). With `allow_absent` (named vectors), a vector of all NaN is one
/// the point does not have (`types::is_absent`).
pub(super) fn prepare<'a>(
    rows: &'a [f32],
    spaces: &[Space],
    specs: &[VectorSpec],
    what: &str,
    allow_zero: bool,
    allow_absent: bool,
) -> Result<Cow<'a, [f32]>> {
    let Some(stride) = spaces.first().map(|s| s.stride) else {
        return Ok(Cow::Borrowed(rows));
    };
    for (r, row) in rows.chunks_exact(stride).enumerate() {
        for sp in spaces {
            let v = &row[sp.offset..sp.offset + sp.dim];
            let name = specs.get(sp.index).map_or("", |s| s.name.as_str());
            let which = || match name {
                "" => String::new(),
                n => format!(" (vector {n:?})"),
            };
            if allow_absent && v.iter().all(|x| x.is_nan()) {
                continue;
            }
            if let Some(col) = v.iter().position(|x| !x.is_finite()) {
                return Err(Error::invalid(format!(
                    "{what} row {r}{}: component {col} is {} (only finite numbers are allowed)",
                    which(),
                    v[col]
                )));
            }
            if sp.distance == Distance::Cosine && !allow_zero && v.iter().all(|&x| x == 0.0) {
                return Err(Error::invalid(format!(
                    "{what} row {r}{} is a zero vector, which has no direction under cosine distance",
                    which()
                )));
            }
        }
    }
    if spaces.iter().all(|s| s.distance != Distance::Cosine) {
        return Ok(Cow::Borrowed(rows));
    }
    let mut out = rows.to_vec();
    for row in out.chunks_exact_mut(stride) {
        for sp in spaces.iter().filter(|s| s.distance == Distance::Cosine) {
            distance::normalize_in_place(&mut row[sp.offset..sp.offset + sp.dim]);
        }
    }
    Ok(Cow::Owned(out))
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

/// `(offset in the given row, offset in the stored row, dim)` for each vector given.
pub(super) fn copies(stored: &[Space], given: &[Space]) -> Vec<(usize, usize, usize)> {
    stored
        .iter()
        .zip(given)
        .map(|(to, from)| (from.offset, to.offset, to.dim))
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
    let limit = crate::point::MAX_PAYLOAD_BYTES;
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
pub(super) fn validate_ids(ids: &[PointId], unique: bool) -> Result<()> {
    let mut first_at: HashMap<&PointId, usize> = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
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
