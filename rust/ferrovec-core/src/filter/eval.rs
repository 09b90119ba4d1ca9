//! Evaluation of a [`Filter`] against one point (its id and payload).

use serde_json::{Map, Value};

use super::{haversine_m, parse_datetime, tokenize, Cond, Filter, RangeKind, Scalar, Test};
use crate::point::PointId;

impl Filter {
    /// Does the point with `id` and `payload` match?
    pub fn matches(&self, id: Option<&PointId>, payload: &Map<String, Value>) -> bool {
        self.must.iter().all(|c| c.matches(id, payload))
            && (self.should.is_empty() || self.should.iter().any(|c| c.matches(id, payload)))
            && !self.must_not.iter().any(|c| c.matches(id, payload))
            && self.min_should.as_ref().is_none_or(|(cs, n)| {
                cs.iter()
                    .filter(|c| c.matches(id, payload))
                    .take(*n)
                    .count()
                    >= *n
            })
    }
}

impl Cond {
    pub fn matches(&self, id: Option<&PointId>, payload: &Map<String, Value>) -> bool {
        match self {
            Cond::Field(f) => f.test.matches(&f.path.values(payload)),
            Cond::IsEmpty(p) => p.values(payload).iter().all(|v| v.is_null()),
            Cond::IsNull(p) => p.values(payload).iter().any(|v| v.is_null()),
            Cond::HasId(ids) => id.is_some_and(|id| ids.contains(id)),
            Cond::Nested(p, f) => p
                .values(payload)
                .iter()
                .filter_map(|v| v.as_object())
                .any(|obj| f.matches(None, obj)),
            Cond::Filter(f) => f.matches(id, payload),
        }
    }
}

/// Does a payload value equal a match scalar? (No coercion between kinds.)
pub fn scalar_eq(v: &Value, s: &Scalar) -> bool {
    match (v, s) {
        (Value::String(a), Scalar::Str(b)) => a == b,
        (Value::Bool(a), Scalar::Bool(b)) => a == b,
        (Value::Number(a), Scalar::Int(b)) => a.as_i64() == Some(*b),
        _ => false,
    }
}

fn is_scalar(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Bool(_)) || v.as_i64().is_some()
}

/// Geo point of a payload value (`{"lat": .., "lon": ..}`).
pub fn geo_of(v: &Value) -> Option<(f64, f64)> {
    let m = v.as_object()?;
    Some((m.get("lat")?.as_f64()?, m.get("lon")?.as_f64()?))
}

fn contains_run(hay: &[String], needle: &[String]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

impl Test {
    pub fn matches(&self, values: &[&Value]) -> bool {
        match self {
            Test::Value(s) => values.iter().any(|v| scalar_eq(v, s)),
            Test::Any(list) => values.iter().any(|v| list.iter().any(|s| scalar_eq(v, s))),
            Test::Except(list) => values
                .iter()
                .any(|v| is_scalar(v) && !list.iter().any(|s| scalar_eq(v, s))),
            Test::Text(words) => values.iter().filter_map(|v| v.as_str()).any(|s| {
                let toks = tokenize(s);
                words.iter().all(|w| toks.contains(w))
            }),
            Test::TextAny(words) => values.iter().filter_map(|v| v.as_str()).any(|s| {
                let toks = tokenize(s);
                words.iter().any(|w| toks.contains(w))
            }),
            Test::Phrase(words) => values
                .iter()
                .filter_map(|v| v.as_str())
                .any(|s| contains_run(&tokenize(s), words)),
            Test::Range(RangeKind::Number, b) => values
                .iter()
                .filter_map(|v| v.as_f64())
                .any(|x| b.contains(x)),
            Test::Range(RangeKind::Datetime, b) => values
                .iter()
                .filter_map(|v| v.as_str().and_then(parse_datetime))
                .any(|x| b.contains(x)),
            Test::ValuesCount(b) => {
                b.contains(values.iter().filter(|v| !v.is_null()).count() as f64)
            }
            Test::GeoRadius { lat, lon, radius_m } => values
                .iter()
                .filter_map(|v| geo_of(v))
                .any(|(la, lo)| haversine_m(*lat, *lon, la, lo) <= *radius_m),
            Test::GeoBox(b) => values
                .iter()
                .filter_map(|v| geo_of(v))
                .any(|(la, lo)| b.contains(la, lo)),
        }
    }
}
