//! Payload indexes of one sealed segment, and resolving a filter to the set of rows it matches.
//!
//! An index maps the values found at one key path to the rows holding them. Each condition an
//! index can answer resolves to a row set that is *exact* (exactly the rows where the condition
//! holds, the same rows the per-row evaluator would pick) or a *superset* (full-text `text` and
//! `phrase`, whose tokens may sit in different values). Everything else resolves to "every row,
//! superset". Supersets are narrowed by evaluating the filter on each remaining row's payload.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::rowset::RowSet;
use super::{geo_of, haversine_m, parse_datetime, tokenize, Cond, Filter, RangeKind, Scalar, Test};
use crate::error::{Error, Result};
use crate::format::{FileKind, Header};
use crate::payload::Path as KeyPath;
use crate::point::PointId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IndexKind {
    Keyword,
    Integer,
    Float,
    Bool,
    Datetime,
    Uuid,
    Geo,
    Text,
}

impl IndexKind {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "keyword" => IndexKind::Keyword,
            "integer" => IndexKind::Integer,
            "float" => IndexKind::Float,
            "bool" => IndexKind::Bool,
            "datetime" => IndexKind::Datetime,
            "uuid" => IndexKind::Uuid,
            "geo" => IndexKind::Geo,
            "text" => IndexKind::Text,
            _ => {
                return Err(Error::invalid(format!(
                    "unknown payload index type {s:?} (use keyword, integer, float, bool, \
                     datetime, uuid, geo, text)"
                )))
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            IndexKind::Keyword => "keyword",
            IndexKind::Integer => "integer",
            IndexKind::Float => "float",
            IndexKind::Bool => "bool",
            IndexKind::Datetime => "datetime",
            IndexKind::Uuid => "uuid",
            IndexKind::Geo => "geo",
            IndexKind::Text => "text",
        }
    }

    /// Orders points for `scroll(order_by=...)`.
    pub fn is_ordered(self) -> bool {
        matches!(
            self,
            IndexKind::Integer | IndexKind::Float | IndexKind::Datetime
        )
    }
}

/// Postings are ascending row numbers; sorted lists are (value, row) ascending by value.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Data {
    /// keyword and uuid: string values.
    Strings(BTreeMap<String, Vec<u32>>),
    /// integer: integer values for `match`, every numeric value for `range`.
    Integer {
        exact: BTreeMap<i64, Vec<u32>>,
        sorted: Vec<(f64, u32)>,
    },
    /// float (numbers) and datetime (microseconds since the epoch).
    Sorted(Vec<(f64, u32)>),
    Bool {
        yes: Vec<u32>,
        no: Vec<u32>,
    },
    Geo(Vec<(f64, f64, u32)>),
    Text(BTreeMap<String, Vec<u32>>),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FieldIndex {
    pub kind: IndexKind,
    pub rows: u32,
    data: Data,
}

fn push(map: &mut BTreeMap<String, Vec<u32>>, k: &str, row: u32) {
    let list = map.entry(k.to_string()).or_default();
    if list.last() != Some(&row) {
        list.push(row);
    }
}

/// Distinct values of an ascending (value, row) list.
fn distinct_sorted(v: &[(f64, u32)]) -> usize {
    let mut n = 0;
    let mut last: Option<f64> = None;
    for &(x, _) in v {
        if last != Some(x) {
            n += 1;
            last = Some(x);
        }
    }
    n
}

fn sort_pairs(v: &mut [(f64, u32)]) {
    v.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
}

impl FieldIndex {
    /// Index the values at `path` of `rows` payloads (`payload(r)` gives row r's, parsed).
    pub fn build(
        kind: IndexKind,
        path: &KeyPath,
        rows: usize,
        mut payload: impl FnMut(usize) -> Result<Option<Map<String, Value>>>,
    ) -> Result<FieldIndex> {
        let mut strings = BTreeMap::new();
        let mut ints: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
        let mut sorted = Vec::new();
        let (mut yes, mut no) = (Vec::new(), Vec::new());
        let mut geo = Vec::new();
        for r in 0..rows {
            let Some(p) = payload(r)? else { continue };
            let row = r as u32;
            for v in path.values(&p) {
                match kind {
                    IndexKind::Keyword | IndexKind::Uuid => {
                        if let Some(s) = v.as_str() {
                            push(&mut strings, s, row);
                        }
                    }
                    IndexKind::Text => {
                        if let Some(s) = v.as_str() {
                            for t in tokenize(s) {
                                push(&mut strings, &t, row);
                            }
                        }
                    }
                    IndexKind::Integer | IndexKind::Float => {
                        if kind == IndexKind::Integer {
                            if let Some(i) = v.as_i64() {
                                let l = ints.entry(i).or_default();
                                if l.last() != Some(&row) {
                                    l.push(row);
                                }
                            }
                        }
                        if let Some(x) = v.as_f64() {
                            sorted.push((x, row));
                        }
                    }
                    IndexKind::Datetime => {
                        if let Some(x) = v.as_str().and_then(parse_datetime) {
                            sorted.push((x, row));
                        }
                    }
                    IndexKind::Bool => match v.as_bool() {
                        Some(true) if yes.last() != Some(&row) => yes.push(row),
                        Some(false) if no.last() != Some(&row) => no.push(row),
                        _ => {}
                    },
                    IndexKind::Geo => {
                        if let Some((la, lo)) = geo_of(v) {
                            geo.push((la, lo, row));
                        }
                    }
                }
            }
        }
        sort_pairs(&mut sorted);
        let data = match kind {
            IndexKind::Keyword | IndexKind::Uuid => Data::Strings(strings),
            IndexKind::Text => Data::Text(strings),
            IndexKind::Integer => Data::Integer {
                exact: ints,
                sorted,
            },
            IndexKind::Float | IndexKind::Datetime => Data::Sorted(sorted),
            IndexKind::Bool => Data::Bool { yes, no },
            IndexKind::Geo => Data::Geo(geo),
        };
        Ok(FieldIndex {
            kind,
            rows: rows as u32,
            data,
        })
    }

    /// File body (postcard) for [`FileKind::PayloadIndex`].
    pub fn encode(&self) -> Result<Vec<u8>> {
        postcard::to_stdvec(self)
            .map_err(|e| Error::internal(format!("payload index does not encode: {e}")))
    }

    /// Read an index file written by `encode` behind the common header (checksum checked).
    pub fn decode_file(bytes: &[u8], path: &Path, rows: usize) -> Result<FieldIndex> {
        let (h, body) = Header::decode_whole(FileKind::PayloadIndex, bytes, path, true)?;
        let idx: FieldIndex = postcard::from_bytes(body)
            .map_err(|e| Error::corrupt(path, format!("payload index does not decode: {e}")))?;
        if h.count != rows as u64 || idx.rows as usize != rows {
            return Err(Error::corrupt(
                path,
                format!(
                    "payload index covers {} rows; its segment has {rows}",
                    idx.rows
                ),
            ));
        }
        if idx.max_row().is_some_and(|r| r as usize >= rows) {
            return Err(Error::corrupt(
                path,
                "payload index names a row past the end",
            ));
        }
        Ok(idx)
    }

    fn max_row(&self) -> Option<u32> {
        fn lists<K>(m: &BTreeMap<K, Vec<u32>>) -> Option<u32> {
            m.values().flat_map(|l| l.iter().copied()).max()
        }
        match &self.data {
            Data::Strings(m) | Data::Text(m) => lists(m),
            Data::Integer { exact, sorted } => lists(exact).max(sorted.iter().map(|p| p.1).max()),
            Data::Sorted(s) => s.iter().map(|p| p.1).max(),
            Data::Bool { yes, no } => yes.iter().chain(no).copied().max(),
            Data::Geo(g) => g.iter().map(|p| p.2).max(),
        }
    }

    fn set_of(&self, rows: &[u32]) -> RowSet {
        let mut s = RowSet::empty(self.rows as usize);
        for &r in rows {
            s.insert(r as usize);
        }
        s
    }

    fn range_set(&self, sorted: &[(f64, u32)], b: &super::Bounds) -> RowSet {
        let lo = sorted
            .partition_point(|p| b.gt.is_some_and(|g| p.0 <= g) || b.gte.is_some_and(|g| p.0 < g));
        let mut s = RowSet::empty(self.rows as usize);
        for &(x, r) in &sorted[lo..] {
            if b.lt.is_some_and(|l| x >= l) || b.lte.is_some_and(|l| x > l) {
                break;
            }
            s.insert(r as usize);
        }
        s
    }

    /// Rows where `test` holds, and whether the set is exact (else a superset). `None` if this
    /// index cannot answer the test.
    pub fn resolve(&self, test: &Test) -> Option<(RowSet, bool)> {
        fn strs(list: &[Scalar]) -> Option<Vec<&str>> {
            list.iter()
                .map(|s| match s {
                    Scalar::Str(s) => Some(s.as_str()),
                    _ => None,
                })
                .collect()
        }
        match (&self.data, test) {
            (Data::Strings(m), Test::Value(Scalar::Str(s))) => {
                Some((self.set_of(m.get(s).map_or(&[][..], |v| v)), true))
            }
            (Data::Strings(m), Test::Any(list)) => {
                let mut set = RowSet::empty(self.rows as usize);
                for s in strs(list)? {
                    for &r in m.get(s).map_or(&[][..], |v| v) {
                        set.insert(r as usize);
                    }
                }
                Some((set, true))
            }
            (Data::Integer { exact, .. }, Test::Value(Scalar::Int(i))) => {
                Some((self.set_of(exact.get(i).map_or(&[][..], |v| v)), true))
            }
            (Data::Integer { exact, .. }, Test::Any(list)) => {
                let mut set = RowSet::empty(self.rows as usize);
                for s in list {
                    let Scalar::Int(i) = s else { return None };
                    for &r in exact.get(i).map_or(&[][..], |v| v) {
                        set.insert(r as usize);
                    }
                }
                Some((set, true))
            }
            (Data::Integer { sorted, .. }, Test::Range(RangeKind::Number, b)) => {
                Some((self.range_set(sorted, b), true))
            }
            (Data::Sorted(sorted), Test::Range(kind, b)) => {
                let want = if self.kind == IndexKind::Datetime {
                    RangeKind::Datetime
                } else {
                    RangeKind::Number
                };
                (*kind == want).then(|| (self.range_set(sorted, b), true))
            }
            (Data::Bool { yes, no }, Test::Value(Scalar::Bool(v))) => {
                Some((self.set_of(if *v { yes } else { no }), true))
            }
            (Data::Geo(points), Test::GeoRadius { lat, lon, radius_m }) => {
                let mut set = RowSet::empty(self.rows as usize);
                for &(la, lo, r) in points {
                    if haversine_m(*lat, *lon, la, lo) <= *radius_m {
                        set.insert(r as usize);
                    }
                }
                Some((set, true))
            }
            (Data::Geo(points), Test::GeoBox(b)) => {
                let mut set = RowSet::empty(self.rows as usize);
                for &(la, lo, r) in points {
                    if b.contains(la, lo) {
                        set.insert(r as usize);
                    }
                }
                Some((set, true))
            }
            (Data::Text(m), Test::TextAny(words)) => {
                let mut set = RowSet::empty(self.rows as usize);
                for w in words {
                    for &r in m.get(w).map_or(&[][..], |v| v) {
                        set.insert(r as usize);
                    }
                }
                Some((set, true))
            }
            (Data::Text(m), Test::Text(words) | Test::Phrase(words)) => {
                let mut set = RowSet::full(self.rows as usize);
                for w in words {
                    set.and(&self.set_of(m.get(w).map_or(&[][..], |v| v)));
                }
                // One word in one value is exact for `text`; otherwise the words may sit in
                // different values (or out of order, for a phrase).
                let exact = words.len() == 1;
                Some((set, exact))
            }
            _ => None,
        }
    }

    /// Counts of points per string value (keyword and uuid indexes), restricted to `rows`.
    pub fn facet(&self, rows: &RowSet) -> Option<Vec<(String, usize)>> {
        let Data::Strings(m) = &self.data else {
            return None;
        };
        Some(
            m.iter()
                .map(|(k, list)| {
                    let n = list.iter().filter(|&&r| rows.contains(r as usize)).count();
                    (k.clone(), n)
                })
                .filter(|(_, n)| *n > 0)
                .collect(),
        )
    }

    /// Distinct values (terms for a text index) in this segment's index.
    pub fn distinct(&self) -> usize {
        match &self.data {
            Data::Strings(m) | Data::Text(m) => m.len(),
            Data::Integer { exact, sorted } => {
                if exact.is_empty() {
                    distinct_sorted(sorted)
                } else {
                    exact.len()
                }
            }
            Data::Sorted(v) => distinct_sorted(v),
            Data::Bool { yes, no } => usize::from(!yes.is_empty()) + usize::from(!no.is_empty()),
            Data::Geo(v) => v.len(),
        }
    }

    /// (value, row) pairs of an ordered index, ascending.
    pub fn ordered(&self) -> Option<&[(f64, u32)]> {
        match &self.data {
            Data::Integer { sorted, .. } | Data::Sorted(sorted) => Some(sorted),
            _ => None,
        }
    }
}

/// How a filter meets one source: its payload indexes by key, id lookup, and the row count.
pub struct SourceView<'a> {
    pub rows: usize,
    pub index: &'a dyn Fn(&str) -> Option<Arc<FieldIndex>>,
    /// The row holding a live point with this id, if any.
    pub find: &'a dyn Fn(&PointId) -> Result<Option<usize>>,
}

/// Resolve `filter` with the indexes: (rows, exact). Without any index, every row, inexact.
pub fn resolve(filter: &Filter, src: &SourceView<'_>) -> Result<(RowSet, bool)> {
    let n = src.rows;
    let mut set = RowSet::full(n);
    let mut exact = true;
    for c in &filter.must {
        let (s, e) = resolve_cond(c, src)?;
        set.and(&s);
        exact &= e;
    }
    if !filter.should.is_empty() {
        let mut any = RowSet::empty(n);
        for c in &filter.should {
            let (s, e) = resolve_cond(c, src)?;
            any.or(&s);
            exact &= e;
        }
        set.and(&any);
    }
    for c in &filter.must_not {
        let (mut s, e) = resolve_cond(c, src)?;
        if e {
            s.not();
            set.and(&s);
        } else {
            // The complement of a superset is not a superset: leave these rows to the evaluator.
            exact = false;
        }
    }
    if filter.min_should.is_some() {
        exact = false;
    }
    Ok((set, exact))
}

fn resolve_cond(c: &Cond, src: &SourceView<'_>) -> Result<(RowSet, bool)> {
    let every = || (RowSet::full(src.rows), false);
    Ok(match c {
        Cond::Field(f) => match (src.index)(&f.key).and_then(|i| i.resolve(&f.test)) {
            Some(r) => r,
            None => every(),
        },
        Cond::HasId(ids) => {
            let mut s = RowSet::empty(src.rows);
            for id in ids {
                if let Some(r) = (src.find)(id)? {
                    s.insert(r);
                }
            }
            (s, true)
        }
        Cond::Filter(f) => resolve(f, src)?,
        Cond::IsEmpty(_) | Cond::IsNull(_) | Cond::Nested(..) => every(),
    })
}
