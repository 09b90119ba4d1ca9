//! Qdrant's JSON filter language: parsing, with errors that name the offending part, and
//! evaluation against one point (its id and payload).
//!
//! Semantics (see docs/FILTERS.md): a key is a path (`a.b`, `tags[]`, `a[].b`, `a[0]`); the
//! values at a path are collected through `[]` and a final array is flattened, and a condition
//! on several values holds if it holds for any of them. `must` needs all, `should` any (when
//! non-empty), `must_not` none, `min_should` at least `min_count`.

mod eval;
pub mod index;
mod parse;
pub mod rowset;

use std::collections::HashSet;

pub use eval::{geo_of, scalar_eq};

use crate::payload::Path;
use crate::point::PointId;

/// A parsed filter.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    pub must: Vec<Cond>,
    pub should: Vec<Cond>,
    pub must_not: Vec<Cond>,
    pub min_should: Option<(Vec<Cond>, usize)>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Cond {
    Field(FieldCond),
    IsEmpty(Path),
    IsNull(Path),
    HasId(HashSet<PointId>),
    Nested(Path, Box<Filter>),
    Filter(Box<Filter>),
}

impl Filter {
    fn clauses(&self) -> impl Iterator<Item = &Cond> {
        self.must
            .iter()
            .chain(&self.should)
            .chain(&self.must_not)
            .chain(self.min_should.iter().flat_map(|(c, _)| c))
    }

    /// Keys of the field conditions, outside `nested` (those a payload index could answer).
    pub fn field_keys<'a>(&'a self, out: &mut Vec<&'a str>) {
        for c in self.clauses() {
            match c {
                Cond::Field(fc) => out.push(&fc.key),
                Cond::Filter(inner) => inner.field_keys(out),
                _ => {}
            }
        }
    }

    /// Conditions, counted through nested clauses.
    pub fn conditions(&self) -> usize {
        self.clauses()
            .map(|c| match c {
                Cond::Filter(inner) | Cond::Nested(_, inner) => inner.conditions(),
                _ => 1,
            })
            .sum()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct FieldCond {
    /// The key as written (index lookups use it).
    pub key: String,
    pub path: Path,
    pub test: Test,
}

/// A scalar a `match` compares with.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scalar {
    Str(String),
    Int(i64),
    Bool(bool),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RangeKind {
    Number,
    /// Bounds and values are RFC 3339 datetimes, compared as microseconds since the epoch.
    Datetime,
}

/// Bounds of a `range` or `values_count` (absent bounds are open).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bounds {
    pub gt: Option<f64>,
    pub gte: Option<f64>,
    pub lt: Option<f64>,
    pub lte: Option<f64>,
}

impl Bounds {
    pub fn contains(&self, x: f64) -> bool {
        self.gt.is_none_or(|b| x > b)
            && self.gte.is_none_or(|b| x >= b)
            && self.lt.is_none_or(|b| x < b)
            && self.lte.is_none_or(|b| x <= b)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Test {
    Value(Scalar),
    Any(Vec<Scalar>),
    Except(Vec<Scalar>),
    /// Every token appears in one value.
    Text(Vec<String>),
    /// Some token appears in a value.
    TextAny(Vec<String>),
    /// The tokens appear consecutively in one value.
    Phrase(Vec<String>),
    Range(RangeKind, Bounds),
    ValuesCount(Bounds),
    GeoRadius {
        lat: f64,
        lon: f64,
        radius_m: f64,
    },
    GeoBox(GeoBox),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GeoBox {
    pub top: f64,
    pub left: f64,
    pub bottom: f64,
    pub right: f64,
}

impl GeoBox {
    pub fn contains(&self, lat: f64, lon: f64) -> bool {
        let lon_ok = if self.left <= self.right {
            (self.left..=self.right).contains(&lon)
        } else {
            // The box crosses the antimeridian.
            lon >= self.left || lon <= self.right
        };
        lon_ok && (self.bottom..=self.top).contains(&lat)
    }
}

/// Great-circle distance in metres (haversine, mean Earth radius).
pub fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    const R: f64 = 6_371_008.8;
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * R * a.sqrt().min(1.0).asin()
}

/// Lower-cased words (runs of letters and digits): the tokens of full-text matching.
pub fn tokenize(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Parse an RFC 3339 datetime (also `YYYY-MM-DD HH:MM:SS`, without zone meaning UTC, and a bare
/// date) into microseconds since the Unix epoch.
pub fn parse_datetime(s: &str) -> Option<f64> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    let micros = if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        t.timestamp_micros()
    } else if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        t.and_utc().timestamp_micros()
    } else if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f") {
        t.and_utc().timestamp_micros()
    } else if let Ok(t) = DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z") {
        t.timestamp_micros()
    } else {
        let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
        d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros()
    };
    Some(micros as f64)
}

impl Filter {
    /// Whether a `has_id` condition appears (only then does evaluation need the point's id).
    pub fn uses_ids(&self) -> bool {
        let all = self
            .must
            .iter()
            .chain(&self.should)
            .chain(&self.must_not)
            .chain(self.min_should.iter().flat_map(|(c, _)| c));
        all.into_iter().any(|c| match c {
            Cond::HasId(_) => true,
            Cond::Filter(f) => f.uses_ids(),
            _ => false,
        })
    }

    /// `outer` and `inner` together, as Qdrant propagates a filter into a prefetch: clause by
    /// clause concatenated (so the `should`s of both become alternatives of each other), the
    /// `min_should`s' conditions pooled with the larger count.
    pub fn merged(outer: Option<&Filter>, inner: Option<&Filter>) -> Option<Filter> {
        let (o, i) = match (outer, inner) {
            (None, x) | (x, None) => return x.cloned(),
            (Some(o), Some(i)) => (o, i),
        };
        let cat = |a: &[Cond], b: &[Cond]| a.iter().chain(b).cloned().collect::<Vec<_>>();
        Some(Filter {
            must: cat(&o.must, &i.must),
            should: cat(&o.should, &i.should),
            must_not: cat(&o.must_not, &i.must_not),
            min_should: match (&o.min_should, &i.min_should) {
                (None, x) | (x, None) => x.clone(),
                (Some((a, n)), Some((b, m))) => Some((cat(a, b), (*n).max(*m))),
            },
        })
    }

    /// `f` (if any) that also leaves out the points `ids`.
    pub fn excluding(f: Option<Filter>, ids: Vec<PointId>) -> Option<Filter> {
        if ids.is_empty() {
            return f;
        }
        let mut f = f.unwrap_or_default();
        f.must_not.push(Cond::HasId(ids.into_iter().collect()));
        Some(f)
    }

    /// The filter matches every point.
    pub fn is_empty(&self) -> bool {
        self.must.is_empty()
            && self.should.is_empty()
            && self.must_not.is_empty()
            && self.min_should.is_none()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value};

    use super::*;
    use serde_json::json;

    fn m(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn f(v: Value) -> Filter {
        match Filter::parse(&v) {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn paths_and_arrays() {
        let p = m(json!({"a": [{"b": 1}, {"b": [2, 3]}], "tags": ["x", "y"], "c": {"d": "e"}}));
        assert!(f(json!({"must": {"key": "a[].b", "match": {"value": 3}}})).matches(None, &p));
        assert!(!f(json!({"must": {"key": "a.b", "match": {"value": 3}}})).matches(None, &p));
        assert!(f(json!({"must": {"key": "tags", "match": {"value": "y"}}})).matches(None, &p));
        assert!(
            f(json!({"must": {"key": "tags[]", "match": {"any": ["q", "x"]}}})).matches(None, &p)
        );
        assert!(f(json!({"must": {"key": "c.d", "match": {"value": "e"}}})).matches(None, &p));
        assert!(
            f(json!({"must": {"key": "a[1].b", "values_count": {"gte": 2}}})).matches(None, &p)
        );
    }

    #[test]
    fn errors_name_the_part() {
        let e = Filter::parse(&json!({"must": [{"key": "a", "range": {"gt": "soon"}}]}));
        let msg = e.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("filter.must[0].range.gt"), "{msg}");
        let e = Filter::parse(&json!({"must": [{"key": "a", "match": {"valu": 1}}]}));
        assert!(e.is_err());
        let e = Filter::parse(&json!({"nested": 1}));
        assert!(e.is_err());
    }

    #[test]
    fn datetimes_parse() {
        let a = parse_datetime("2024-01-02T03:04:05Z");
        let b = parse_datetime("2024-01-02T04:04:05+01:00");
        assert!(a.is_some() && a == b);
        assert!(parse_datetime("2024-01-02").is_some());
        assert!(parse_datetime("2024-01-02 03:04:05").is_some());
        assert!(parse_datetime("yesterday").is_none());
    }
}
