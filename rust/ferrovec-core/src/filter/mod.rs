//! Qdrant's JSON filter language: parsing, with errors that name the offending part, and
//! evaluation against one point (its id and payload).
//!
//! Semantics (see docs/FILTERS.md): a key is a path (`a.b`, `tags[]`, `a[].b`, `a[0]`); the
//! values at a path are collected through `[]` and a final array is flattened, and a condition
//! on several values holds if it holds for any of them. `must` needs all, `should` any (when
//! non-empty), `must_not` none, `min_should` at least `min_count`.

pub mod index;
pub mod rowset;

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::types::PointId;

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

/// One step of a key path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Key(String),
    /// `[]`: every element of an array.
    All,
    /// `[n]`: one element of an array.
    Index(usize),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path(pub Vec<Step>);

/// The keys of a payload selector (`with_payload=[...]`, or an exclude list) merged into a
/// prefix tree, applied the way Qdrant applies them: object keys by name, `[]` to every element
/// of an array; `[n]` selects nothing; a shorter path takes in everything under it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathTree {
    keys: std::collections::BTreeMap<String, Sub>,
    items: Option<Sub>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Sub {
    All,
    Tree(Box<PathTree>),
}

impl Sub {
    fn include(&self, v: &Value) -> Value {
        match self {
            Sub::All => v.clone(),
            Sub::Tree(t) => t.include(v),
        }
    }
}

impl PathTree {
    pub fn new(paths: &[Path]) -> Self {
        let mut tree = PathTree::default();
        for p in paths {
            tree.insert(&p.0);
        }
        tree
    }

    fn insert(&mut self, steps: &[Step]) {
        let Some((first, rest)) = steps.split_first() else {
            return;
        };
        let slot = match first {
            Step::Key(k) => self
                .keys
                .entry(k.clone())
                .or_insert_with(|| Sub::Tree(Box::default())),
            Step::All => self.items.get_or_insert_with(|| Sub::Tree(Box::default())),
            Step::Index(_) => return, // selects nothing, but its parent stays a tree
        };
        if rest.is_empty() {
            *slot = Sub::All;
        } else if let Sub::Tree(t) = slot {
            t.insert(rest);
        }
    }

    /// Only the parts of `payload` the paths name, in payload order.
    pub fn include_map(&self, payload: &Map<String, Value>) -> Map<String, Value> {
        payload
            .iter()
            .filter_map(|(k, x)| self.keys.get(k).map(|s| (k.clone(), s.include(x))))
            .collect()
    }

    fn include(&self, v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(self.include_map(m)),
            Value::Array(items) => match &self.items {
                None => Value::Array(Vec::new()),
                Some(s) => Value::Array(items.iter().map(|x| s.include(x)).collect()),
            },
            other => other.clone(),
        }
    }

    /// `payload` without the parts the paths name.
    pub fn exclude_map(&self, payload: &Map<String, Value>) -> Map<String, Value> {
        payload
            .iter()
            .filter_map(|(k, x)| match self.keys.get(k) {
                None => Some((k.clone(), x.clone())),
                Some(Sub::All) => None,
                Some(Sub::Tree(t)) => Some((k.clone(), t.exclude(x))),
            })
            .collect()
    }

    fn exclude(&self, v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(self.exclude_map(m)),
            Value::Array(items) => match &self.items {
                None => v.clone(),
                Some(Sub::All) => Value::Array(Vec::new()),
                Some(Sub::Tree(t)) => Value::Array(items.iter().map(|x| t.exclude(x)).collect()),
            },
            other => other.clone(),
        }
    }
}

impl Path {
    pub fn parse(key: &str, at: &str) -> Result<Path> {
        let bad = |why: &str| Error::invalid(format!("{at}: invalid key {key:?}: {why}"));
        if key.is_empty() {
            return Err(bad("it is empty"));
        }
        let mut steps = Vec::new();
        for part in key.split('.') {
            let (name, mut rest) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if name.is_empty() {
                return Err(bad("a part between dots is empty"));
            }
            steps.push(Step::Key(name.to_string()));
            while !rest.is_empty() {
                let close = rest.find(']').ok_or_else(|| bad("'[' without ']'"))?;
                let inner = &rest[1..close];
                if inner.is_empty() {
                    steps.push(Step::All);
                } else {
                    let n = inner
                        .parse::<usize>()
                        .map_err(|_| bad("only [] and [number] may follow a name"))?;
                    steps.push(Step::Index(n));
                }
                rest = &rest[close + 1..];
                if !rest.is_empty() && !rest.starts_with('[') {
                    return Err(bad("text after ']' must be another '[' or a '.'"));
                }
            }
        }
        Ok(Path(steps))
    }

    /// The values at this path in `payload`; a final array is flattened.
    pub fn values<'a>(&self, payload: &'a Map<String, Value>) -> Vec<&'a Value> {
        let mut out = Vec::new();
        if let Some((Step::Key(first), rest)) = self.0.split_first() {
            if let Some(v) = payload.get(first) {
                collect(v, rest, &mut out);
            }
        }
        out
    }
}

impl Path {
    /// Remove what this path names, as Qdrant's `delete_payload` does: a path that names
    /// nothing changes nothing; one ending in `[]` empties that array; one ending in `[n]`
    /// changes nothing (a Qdrant server does not remove array elements by index, since doing
    /// so twice would remove two).
    pub fn remove(&self, payload: &mut Map<String, Value>) {
        match self.0.split_first() {
            Some((Step::Key(first), [])) => {
                payload.shift_remove(first);
            }
            Some((Step::Key(first), rest)) => {
                if let Some(v) = payload.get_mut(first) {
                    remove_in(v, rest);
                }
            }
            _ => {}
        }
    }
}

impl Path {
    /// Set `value`'s keys in the object at this path, as Qdrant's `set_payload(key=...)` does:
    /// missing objects on the way are created and a value of another type in the way is
    /// replaced (by an object at a key; by an empty array at `[n]` or `[]`, which then takes
    /// nothing); `[]` applies to every element, `[n]` only to an element that exists. With
    /// `null_removes`, a null in `value` removes its key.
    pub fn set(
        &self,
        payload: &mut Map<String, Value>,
        value: &Map<String, Value>,
        null_removes: bool,
    ) {
        if let Some((Step::Key(first), rest)) = self.0.split_first() {
            let slot = payload
                .entry(first.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            set_at(slot, rest, value, null_removes);
        }
    }
}

/// Merge `value` into the object `slot` leads to along `steps` (see `Path::set`).
fn set_at(slot: &mut Value, steps: &[Step], value: &Map<String, Value>, null_removes: bool) {
    match steps.split_first() {
        None | Some((Step::Key(_), _)) if !slot.is_object() => {
            *slot = Value::Object(Map::new());
            set_at(slot, steps, value, null_removes);
        }
        None => {
            if let Value::Object(m) = slot {
                for (k, v) in value {
                    if null_removes && v.is_null() {
                        m.shift_remove(k);
                    } else {
                        m.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        Some((Step::Key(k), rest)) => {
            if let Value::Object(m) = slot {
                let next = m
                    .entry(k.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                set_at(next, rest, value, null_removes);
            }
        }
        Some((Step::Index(i), rest)) => match slot {
            Value::Array(items) => {
                if let Some(x) = items.get_mut(*i) {
                    set_at(x, rest, value, null_removes);
                }
            }
            other => *other = Value::Array(Vec::new()),
        },
        Some((Step::All, rest)) => match slot {
            Value::Array(items) => {
                for x in items {
                    set_at(x, rest, value, null_removes);
                }
            }
            other => *other = Value::Array(Vec::new()),
        },
    }
}

fn remove_in(v: &mut Value, steps: &[Step]) {
    match (steps, v) {
        ([Step::Key(k)], Value::Object(m)) => {
            m.shift_remove(k);
        }
        ([Step::Key(k), rest @ ..], Value::Object(m)) => {
            if let Some(x) = m.get_mut(k) {
                remove_in(x, rest);
            }
        }
        ([Step::All], Value::Array(items)) => items.clear(),
        ([Step::All, rest @ ..], Value::Array(items)) => {
            for x in items {
                remove_in(x, rest);
            }
        }
        ([Step::Index(i), rest @ ..], Value::Array(items)) if !rest.is_empty() => {
            if let Some(x) = items.get_mut(*i) {
                remove_in(x, rest);
            }
        }
        _ => {}
    }
}

fn collect<'a>(v: &'a Value, steps: &[Step], out: &mut Vec<&'a Value>) {
    match steps.split_first() {
        None => match v {
            Value::Array(items) => out.extend(items.iter()),
            _ => out.push(v),
        },
        Some((Step::Key(k), rest)) => {
            if let Some(x) = v.as_object().and_then(|m| m.get(k)) {
                collect(x, rest, out);
            }
        }
        Some((Step::All, rest)) => {
            if let Value::Array(items) = v {
                for x in items {
                    collect(x, rest, out);
                }
            }
        }
        Some((Step::Index(i), rest)) => {
            if let Some(x) = v.as_array().and_then(|a| a.get(*i)) {
                collect(x, rest, out);
            }
        }
    }
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

// ----- parsing ------------------------------------------------------------------------------

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

    /// The filter matches every point.
    pub fn is_empty(&self) -> bool {
        self.must.is_empty()
            && self.should.is_empty()
            && self.must_not.is_empty()
            && self.min_should.is_none()
    }

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

#[cfg(test)]
mod tests {
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
