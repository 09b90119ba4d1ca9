//! Qdrant's JSON filter → [`Filter`], with errors that name the offending part (`filter.must[0].key`).

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::{
    parse_datetime, tokenize, Bounds, Cond, FieldCond, Filter, GeoBox, RangeKind, Scalar, Test,
};
use crate::error::{Error, Result};
use crate::payload::Path;
use crate::point::PointId;

fn conds(v: &Value, at: &str) -> Result<Vec<Cond>> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, c)| Cond::parse(c, &format!("{at}[{i}]")))
            .collect(),
        Value::Object(_) => Ok(vec![Cond::parse(v, at)?]),
        _ => Err(Error::invalid(format!(
            "{at}: expected a condition or a list of conditions, got {}",
            kind_of(v)
        ))),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn object<'a>(v: &'a Value, at: &str) -> Result<&'a Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| Error::invalid(format!("{at}: expected an object, got {}", kind_of(v))))
}

/// Fields set to something other than null.
fn set_fields(m: &Map<String, Value>) -> impl Iterator<Item = (&String, &Value)> {
    m.iter().filter(|(_, v)| !v.is_null())
}

fn number(v: &Value, at: &str) -> Result<f64> {
    v.as_f64()
        .ok_or_else(|| Error::invalid(format!("{at}: expected a number, got {}", kind_of(v))))
}

fn scalar(v: &Value, at: &str) -> Result<Scalar> {
    match v {
        Value::String(s) => Ok(Scalar::Str(s.clone())),
        Value::Bool(b) => Ok(Scalar::Bool(*b)),
        Value::Number(n) => n.as_i64().map(Scalar::Int).ok_or_else(|| {
            Error::invalid(format!(
                "{at}: match compares strings, integers and booleans; {n} is not an integer"
            ))
        }),
        _ => Err(Error::invalid(format!(
            "{at}: expected a string, an integer or a boolean, got {}",
            kind_of(v)
        ))),
    }
}

fn scalars(v: &Value, at: &str) -> Result<Vec<Scalar>> {
    let items = v.as_array().ok_or_else(|| {
        Error::invalid(format!(
            "{at}: expected a list of values, got {}",
            kind_of(v)
        ))
    })?;
    items
        .iter()
        .enumerate()
        .map(|(i, x)| scalar(x, &format!("{at}[{i}]")))
        .collect()
}

fn words(v: &Value, at: &str) -> Result<Vec<String>> {
    let s = v
        .as_str()
        .ok_or_else(|| Error::invalid(format!("{at}: expected a string, got {}", kind_of(v))))?;
    let t = tokenize(s);
    if t.is_empty() {
        return Err(Error::invalid(format!(
            "{at}: {s:?} holds no words to match"
        )));
    }
    Ok(t)
}

fn bounds(v: &Value, at: &str, allow_dates: bool) -> Result<(RangeKind, Bounds)> {
    let m = object(v, at)?;
    let mut b = Bounds {
        gt: None,
        gte: None,
        lt: None,
        lte: None,
    };
    let mut kind: Option<RangeKind> = None;
    for (k, x) in set_fields(m) {
        let here = format!("{at}.{k}");
        let (val, kd) = match x {
            Value::Number(_) => (number(x, &here)?, RangeKind::Number),
            Value::String(s) if allow_dates => (
                parse_datetime(s).ok_or_else(|| {
                    Error::invalid(format!("{here}: {s:?} is not an RFC 3339 datetime"))
                })?,
                RangeKind::Datetime,
            ),
            _ => {
                return Err(Error::invalid(format!(
                    "{here}: expected a number{}, got {}",
                    if allow_dates {
                        " or an RFC 3339 datetime"
                    } else {
                        ""
                    },
                    kind_of(x)
                )))
            }
        };
        if kind.is_some_and(|have| have != kd) {
            return Err(Error::invalid(format!(
                "{at}: mixes numbers and datetimes in one range"
            )));
        }
        kind = Some(kd);
        let slot = match k.as_str() {
            "gt" => &mut b.gt,
            "gte" => &mut b.gte,
            "lt" => &mut b.lt,
            "lte" => &mut b.lte,
            _ => {
                return Err(Error::invalid(format!(
                    "{here}: unknown bound (use gt, gte, lt, lte)"
                )))
            }
        };
        *slot = Some(val);
    }
    Ok((kind.unwrap_or(RangeKind::Number), b))
}

fn geo_point(v: &Value, at: &str) -> Result<(f64, f64)> {
    let m = object(v, at)?;
    let get = |name: &str| -> Result<f64> {
        let x = m
            .get(name)
            .ok_or_else(|| Error::invalid(format!("{at}: missing {name}")))?;
        number(x, &format!("{at}.{name}"))
    };
    let (lat, lon) = (get("lat")?, get("lon")?);
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(Error::invalid(format!(
            "{at}: lat must be in [-90, 90] and lon in [-180, 180]"
        )));
    }
    Ok((lat, lon))
}

/// A point id inside a filter (`has_id`): a non-negative integer or a string.
fn point_id(v: &Value, at: &str) -> Result<PointId> {
    let id = match v {
        Value::Number(n) => n.as_u64().map(PointId::Num),
        Value::String(s) => Some(PointId::Str(s.clone())),
        _ => None,
    };
    let id = id.ok_or_else(|| {
        Error::invalid(format!(
            "{at}: a point id is a non-negative integer or a string, got {v}"
        ))
    })?;
    id.validate()
        .map_err(|e| Error::invalid(format!("{at}: {e}")))?;
    Ok(id)
}

impl Filter {
    /// Parse Qdrant's JSON filter (`null` is the empty filter, which matches every point).
    pub fn parse(v: &Value) -> Result<Filter> {
        Self::parse_at(v, "filter", true)
    }

    fn parse_at(v: &Value, at: &str, ids_allowed: bool) -> Result<Filter> {
        if v.is_null() {
            return Ok(Filter::default());
        }
        let m = object(v, at)?;
        let mut f = Filter::default();
        for (k, x) in set_fields(m) {
            let here = format!("{at}.{k}");
            match k.as_str() {
                "must" => f.must = conds(x, &here)?,
                "should" => f.should = conds(x, &here)?,
                "must_not" => f.must_not = conds(x, &here)?,
                "min_should" => {
                    let ms = object(x, &here)?;
                    let list = conds(
                        ms.get("conditions").unwrap_or(&Value::Null),
                        &format!("{here}.conditions"),
                    )?;
                    let count = ms.get("min_count").and_then(Value::as_u64).ok_or_else(|| {
                        Error::invalid(format!("{here}.min_count: expected a non-negative integer"))
                    })?;
                    f.min_should = Some((list, count as usize));
                }
                _ => {
                    return Err(Error::invalid(format!(
                        "{here}: unknown filter clause (use must, should, must_not, min_should)"
                    )))
                }
            }
        }
        if !ids_allowed && f.uses_ids() {
            return Err(Error::invalid(format!(
                "{at}: has_id is not allowed inside a nested filter"
            )));
        }
        Ok(f)
    }
}

impl Cond {
    /// Parse one condition (as a formula holds one); `at` names it in errors.
    pub fn parse_one(v: &Value, at: &str) -> Result<Cond> {
        Self::parse(v, at)
    }

    fn parse(v: &Value, at: &str) -> Result<Cond> {
        let m = object(v, at)?;
        if m.contains_key("key") {
            return Self::parse_field(m, at);
        }
        let mut fields = set_fields(m);
        let Some((k, x)) = fields.next() else {
            // `{}` is an empty nested filter (as in Qdrant): it matches every point.
            return Ok(Cond::Filter(Box::default()));
        };
        let here = format!("{at}.{k}");
        let cond = match k.as_str() {
            "is_empty" | "is_null" => {
                let key = object(x, &here)?
                    .get("key")
                    .and_then(Value::as_str)
                    .ok_or_else(|| Error::invalid(format!("{here}: expected {{\"key\": ...}}")))?;
                let path = Path::parse(key, &here)?;
                if k == "is_empty" {
                    Cond::IsEmpty(path)
                } else {
                    Cond::IsNull(path)
                }
            }
            "has_id" => {
                let items = x.as_array().ok_or_else(|| {
                    Error::invalid(format!("{here}: expected a list of point ids"))
                })?;
                let ids = items
                    .iter()
                    .enumerate()
                    .map(|(i, id)| point_id(id, &format!("{here}[{i}]")))
                    .collect::<Result<HashSet<_>>>()?;
                Cond::HasId(ids)
            }
            "nested" => {
                let n = object(x, &here)?;
                let key = n.get("key").and_then(Value::as_str).ok_or_else(|| {
                    Error::invalid(format!(
                        "{here}.key: expected the key of an array of objects"
                    ))
                })?;
                let filter = Filter::parse_at(
                    n.get("filter").unwrap_or(&Value::Null),
                    &format!("{here}.filter"),
                    false,
                )?;
                Cond::Nested(Path::parse(key, &here)?, Box::new(filter))
            }
            "must" | "should" | "must_not" | "min_should" => {
                return Ok(Cond::Filter(Box::new(Filter::parse_at(v, at, true)?)))
            }
            "has_vector" => {
                return Err(Error::invalid(format!(
                    "{here}: has_vector is not supported (collections have one unnamed vector)"
                )))
            }
            _ => {
                return Err(Error::invalid(format!(
                    "{here}: unknown condition (use a field condition with \"key\", is_empty, \
                     is_null, has_id, nested, or a nested filter)"
                )))
            }
        };
        if let Some((extra, _)) = fields.next() {
            return Err(Error::invalid(format!(
                "{at}: unexpected {extra:?} beside {k:?} (one condition per object)"
            )));
        }
        Ok(cond)
    }

    fn parse_field(m: &Map<String, Value>, at: &str) -> Result<Cond> {
        let key = m
            .get("key")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid(format!("{at}.key: expected a string")))?;
        let path = Path::parse(key, &format!("{at}.key"))?;
        let mut test = None;
        for (k, x) in set_fields(m) {
            let here = format!("{at}.{k}");
            let t = match k.as_str() {
                "key" => continue,
                "match" => Some(Self::parse_match(x, &here)?),
                "range" => {
                    let (kind, b) = bounds(x, &here, true)?;
                    Some(Test::Range(kind, b))
                }
                "values_count" => {
                    let (kind, b) = bounds(x, &here, false)?;
                    debug_assert_eq!(kind, RangeKind::Number);
                    Some(Test::ValuesCount(b))
                }
                "geo_radius" => {
                    let g = object(x, &here)?;
                    let (lat, lon) = geo_point(
                        g.get("center").unwrap_or(&Value::Null),
                        &format!("{here}.center"),
                    )?;
                    let radius_m = number(
                        g.get("radius").unwrap_or(&Value::Null),
                        &format!("{here}.radius"),
                    )?;
                    Some(Test::GeoRadius { lat, lon, radius_m })
                }
                "geo_bounding_box" => {
                    let g = object(x, &here)?;
                    let (top, left) = geo_point(
                        g.get("top_left").unwrap_or(&Value::Null),
                        &format!("{here}.top_left"),
                    )?;
                    let (bottom, right) = geo_point(
                        g.get("bottom_right").unwrap_or(&Value::Null),
                        &format!("{here}.bottom_right"),
                    )?;
                    Some(Test::GeoBox(GeoBox {
                        top,
                        left,
                        bottom,
                        right,
                    }))
                }
                "is_empty" | "is_null" => {
                    if x.as_bool() != Some(true) {
                        return Err(Error::invalid(format!(
                            "{here}: only `true` is meaningful here; use must_not to negate"
                        )));
                    }
                    if m.iter().any(|(o, v)| !v.is_null() && o != "key" && o != k) {
                        return Err(Error::invalid(format!(
                            "{at}: {k} cannot be combined with another test"
                        )));
                    }
                    return Ok(if k == "is_empty" {
                        Cond::IsEmpty(path)
                    } else {
                        Cond::IsNull(path)
                    });
                }
                "geo_polygon" => {
                    return Err(Error::invalid(format!(
                        "{here}: geo_polygon is not supported"
                    )))
                }
                _ => {
                    return Err(Error::invalid(format!(
                        "{here}: unknown field test (use match, range, values_count, \
                         geo_radius, geo_bounding_box, is_empty, is_null)"
                    )))
                }
            };
            if test.is_some() {
                return Err(Error::invalid(format!(
                    "{at}: a field condition takes one test; combine several with must"
                )));
            }
            test = t;
        }
        let test = test.ok_or_else(|| {
            Error::invalid(format!("{at}: field condition on {key:?} has no test"))
        })?;
        Ok(Cond::Field(FieldCond {
            key: key.to_string(),
            path,
            test,
        }))
    }

    fn parse_match(v: &Value, at: &str) -> Result<Test> {
        let m = object(v, at)?;
        let mut fields = set_fields(m);
        let Some((k, x)) = fields.next() else {
            return Err(Error::invalid(format!("{at}: empty match")));
        };
        if let Some((extra, _)) = fields.next() {
            return Err(Error::invalid(format!(
                "{at}: {extra:?} beside {k:?}; a match takes one of value, any, except, text, \
                 text_any, phrase"
            )));
        }
        let here = format!("{at}.{k}");
        Ok(match k.as_str() {
            "value" => Test::Value(scalar(x, &here)?),
            "any" => Test::Any(scalars(x, &here)?),
            "except" => Test::Except(scalars(x, &here)?),
            "text" => Test::Text(words(x, &here)?),
            "text_any" => Test::TextAny(words(x, &here)?),
            "phrase" => Test::Phrase(words(x, &here)?),
            _ => {
                return Err(Error::invalid(format!(
                    "{here}: unknown match (use value, any, except, text, text_any, phrase)"
                )))
            }
        })
    }
}
