//! Qdrant's score formulas (`FormulaQuery`): an expression over the prefetches' scores
//! (`$score`, `$score[i]`), payload values, conditions (1 if they hold, else 0), constants,
//! arithmetic and decay functions, with `defaults` for what a point lacks. Evaluated in f64 and
//! turned into an f32 score, as Qdrant does; a non-finite result is an error, never a score.

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::filter::{geo_of, haversine_m, parse_datetime, Cond};
use crate::payload::Path;
use crate::point::PointId;

/// Nesting depth an expression may reach.
pub const MAX_DEPTH: usize = 64;

const DEFAULT_MIDPOINT: f64 = 0.5;
const DEFAULT_SCALE: f64 = 1.0;

#[derive(Clone, Debug, PartialEq)]
pub struct Formula {
    pub expr: Expr,
    /// Values for payload keys a point lacks, and for `$score[i]` a point has no score in.
    pub defaults: Map<String, Value>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Const(f64),
    /// The score of prefetch `i`.
    Score(usize),
    /// A payload value (a number).
    Var(String, Path),
    Cond(Box<Cond>),
    Mult(Vec<Expr>),
    Sum(Vec<Expr>),
    Max(Vec<Expr>),
    Min(Vec<Expr>),
    Unary(Unary, Box<Expr>),
    Div {
        left: Box<Expr>,
        right: Box<Expr>,
        by_zero: Option<f64>,
    },
    Pow(Box<Expr>, Box<Expr>),
    /// Metres from (lat, lon) to the geo point at the key.
    GeoDistance {
        lat: f64,
        lon: f64,
        key: String,
        path: Path,
    },
    /// Seconds since the epoch.
    Datetime(f64),
    DatetimeKey(String, Path),
    Decay(DecayKind, Box<Decay>),
}

/// A function of one value; a result that is not a finite number is an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unary {
    Neg,
    Abs,
    Sqrt,
    Exp,
    Log10,
    Ln,
    Acosh,
}

impl Unary {
    fn named(name: &str) -> Option<Unary> {
        Some(match name {
            "neg" => Unary::Neg,
            "abs" => Unary::Abs,
            "sqrt" => Unary::Sqrt,
            "exp" => Unary::Exp,
            "log10" => Unary::Log10,
            "ln" => Unary::Ln,
            "acosh" => Unary::Acosh,
            _ => return None,
        })
    }

    fn apply(self, v: f64) -> Result<f64> {
        let (r, name) = match self {
            Unary::Neg => return Ok(-v),
            Unary::Abs => return Ok(v.abs()),
            Unary::Sqrt => (if v < 0.0 { f64::NAN } else { v.sqrt() }, "sqrt"),
            Unary::Exp => (v.exp(), "exp"),
            Unary::Log10 => (if v <= 0.0 { f64::NAN } else { v.log10() }, "log10"),
            Unary::Ln => (if v <= 0.0 { f64::NAN } else { v.ln() }, "ln"),
            Unary::Acosh => (if v < 1.0 { f64::NAN } else { v.acosh() }, "acosh"),
        };
        if r.is_finite() {
            Ok(r)
        } else {
            Err(non_finite(format!("{name}({v})")))
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecayKind {
    Lin,
    Exp,
    Gauss,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Decay {
    pub x: Expr,
    pub target: Option<Expr>,
    pub midpoint: f64,
    pub scale: f64,
}

fn bad(at: &str, what: impl std::fmt::Display) -> Error {
    Error::invalid(format!("{at}: {what}"))
}

fn number(v: &Value, at: &str) -> Result<f64> {
    v.as_f64()
        .filter(|x| x.is_finite())
        .ok_or_else(|| bad(at, format!("expected a finite number, got {v}")))
}

/// `$score` → 0, `$score[3]` → 3; anything else starting with `$score` is an error; other
/// strings are payload keys.
fn parse_variable(s: &str, at: &str) -> Result<Expr> {
    let Some(rest) = s.strip_prefix("$score") else {
        return Ok(Expr::Var(s.to_string(), Path::parse(s, at)?));
    };
    if rest.is_empty() {
        return Ok(Expr::Score(0));
    }
    let digits = rest
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
    match digits.and_then(|d| d.parse::<usize>().ok()) {
        Some(i) => Ok(Expr::Score(i)),
        None => Err(bad(
            at,
            format!("invalid score variable {s:?} (use $score or $score[N])"),
        )),
    }
}

impl Formula {
    /// Parse `{"formula": <expression>, "defaults": {...}}`'s two parts.
    pub fn parse(expr: &Value, defaults: Option<&Value>, at: &str) -> Result<Formula> {
        let defaults = match defaults {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => {
                // `$score` and `$score[0]` name the same default.
                let mut out = Map::new();
                for (k, v) in m {
                    let key = match parse_variable(k, &format!("{at}.defaults"))? {
                        Expr::Score(i) => format!("$score[{i}]"),
                        _ => k.clone(),
                    };
                    out.insert(key, v.clone());
                }
                out
            }
            Some(v) => {
                return Err(bad(
                    &format!("{at}.defaults"),
                    format!("expected an object, got {v}"),
                ))
            }
        };
        Ok(Formula {
            expr: Expr::parse(expr, &format!("{at}.formula"), 0)?,
            defaults,
        })
    }
}

impl Expr {
    fn parse(v: &Value, at: &str, depth: usize) -> Result<Expr> {
        if depth > MAX_DEPTH {
            return Err(bad(at, format!("nested deeper than {MAX_DEPTH} levels")));
        }
        let sub = |v: &Value, name: &str| Expr::parse(v, &format!("{at}.{name}"), depth + 1);
        let boxed = |v: &Value, name: &str| sub(v, name).map(Box::new);
        let list = |v: &Value, name: &str| -> Result<Vec<Expr>> {
            let items = v
                .as_array()
                .ok_or_else(|| bad(&format!("{at}.{name}"), "expected a list of expressions"))?;
            items
                .iter()
                .enumerate()
                .map(|(i, e)| Expr::parse(e, &format!("{at}.{name}[{i}]"), depth + 1))
                .collect()
        };
        let m = match v {
            Value::Number(_) => return Ok(Expr::Const(number(v, at)?)),
            Value::String(s) => return parse_variable(s, at),
            Value::Object(m) => m,
            _ => return Err(bad(at, format!("expected an expression, got {v}"))),
        };
        let field = |name: &str| m.get(name).filter(|v| !v.is_null());
        let (name, body) = match m.iter().find(|(_, v)| !v.is_null()) {
            Some((k, b)) => (k.as_str(), b),
            None => return Err(bad(at, "empty expression")),
        };
        let e = match name {
            "mult" => Expr::Mult(list(body, name)?),
            "sum" => Expr::Sum(list(body, name)?),
            "max" | "min" => {
                let items = list(body, name)?;
                if items.is_empty() {
                    return Err(bad(at, format!("`{name}` needs at least one operand")));
                }
                if name == "max" {
                    Expr::Max(items)
                } else {
                    Expr::Min(items)
                }
            }
            _ if Unary::named(name).is_some() => {
                let op = Unary::named(name).ok_or_else(|| Error::internal("unary op"))?;
                Expr::Unary(op, boxed(body, name)?)
            }
            "div" => {
                let at = format!("{at}.div");
                let get = |k: &str| {
                    body.get(k)
                        .filter(|v| !v.is_null())
                        .ok_or_else(|| bad(&at, format!("missing {k:?}")))
                };
                Expr::Div {
                    left: Box::new(Expr::parse(get("left")?, &format!("{at}.left"), depth + 1)?),
                    right: Box::new(Expr::parse(
                        get("right")?,
                        &format!("{at}.right"),
                        depth + 1,
                    )?),
                    by_zero: match body.get("by_zero_default") {
                        None | Some(Value::Null) => None,
                        Some(v) => Some(number(v, &format!("{at}.by_zero_default"))?),
                    },
                }
            }
            "pow" => {
                let at = format!("{at}.pow");
                let get = |k: &str| {
                    body.get(k)
                        .filter(|v| !v.is_null())
                        .ok_or_else(|| bad(&at, format!("missing {k:?}")))
                };
                Expr::Pow(
                    Box::new(Expr::parse(get("base")?, &format!("{at}.base"), depth + 1)?),
                    Box::new(Expr::parse(
                        get("exponent")?,
                        &format!("{at}.exponent"),
                        depth + 1,
                    )?),
                )
            }
            "geo_distance" => {
                let at = format!("{at}.geo_distance");
                let origin = body
                    .get("origin")
                    .and_then(geo_of)
                    .ok_or_else(|| bad(&at, "origin must be {\"lat\": .., \"lon\": ..}"))?;
                let key = body
                    .get("to")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad(&at, "\"to\" must name a payload key"))?;
                Expr::GeoDistance {
                    lat: origin.0,
                    lon: origin.1,
                    key: key.to_string(),
                    path: Path::parse(key, &at)?,
                }
            }
            "datetime" => {
                let s = body
                    .as_str()
                    .ok_or_else(|| bad(at, "datetime must be a string"))?;
                let micros = parse_datetime(s)
                    .ok_or_else(|| bad(at, format!("{s:?} is not an RFC 3339 datetime")))?;
                Expr::Datetime(micros / 1e6)
            }
            "datetime_key" => {
                let key = body
                    .as_str()
                    .ok_or_else(|| bad(at, "datetime_key must name a payload key"))?;
                Expr::DatetimeKey(key.to_string(), Path::parse(key, at)?)
            }
            "lin_decay" => Expr::Decay(
                DecayKind::Lin,
                Box::new(Decay::parse(
                    body,
                    DecayKind::Lin,
                    &format!("{at}.{name}"),
                    depth,
                )?),
            ),
            "exp_decay" => Expr::Decay(
                DecayKind::Exp,
                Box::new(Decay::parse(
                    body,
                    DecayKind::Exp,
                    &format!("{at}.{name}"),
                    depth,
                )?),
            ),
            "gauss_decay" => Expr::Decay(
                DecayKind::Gauss,
                Box::new(Decay::parse(
                    body,
                    DecayKind::Gauss,
                    &format!("{at}.{name}"),
                    depth,
                )?),
            ),
            _ if field("key").is_some()
                || [
                    "is_empty",
                    "is_null",
                    "has_id",
                    "nested",
                    "must",
                    "should",
                    "must_not",
                    "min_should",
                    "has_vector",
                ]
                .contains(&name) =>
            {
                Expr::Cond(Box::new(Cond::parse_one(v, at)?))
            }
            other => return Err(bad(at, format!("unknown expression {other:?}"))),
        };
        Ok(e)
    }
}

impl Decay {
    fn parse(body: &Value, kind: DecayKind, at: &str, depth: usize) -> Result<Decay> {
        let x = body
            .get("x")
            .filter(|v| !v.is_null())
            .ok_or_else(|| bad(at, "missing \"x\""))?;
        let opt = |k: &str| -> Result<Option<f64>> {
            match body.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => number(v, &format!("{at}.{k}")).map(Some),
            }
        };
        let midpoint = opt("midpoint")?.unwrap_or(DEFAULT_MIDPOINT);
        let scale = opt("scale")?.unwrap_or(DEFAULT_SCALE);
        if kind == DecayKind::Lin {
            if !(0.0..=1.0).contains(&midpoint) {
                return Err(bad(
                    at,
                    format!("linear decay midpoint must be in [0, 1], got {midpoint}"),
                ));
            }
        } else if midpoint <= 0.0 || midpoint >= 1.0 {
            return Err(bad(
                at,
                format!("decay midpoint must be in (0, 1), got {midpoint}"),
            ));
        }
        if scale <= 0.0 {
            return Err(bad(at, format!("scale must be positive, got {scale}")));
        }
        let target = match body.get("target") {
            None | Some(Value::Null) => None,
            Some(t) => Some(Expr::parse(t, &format!("{at}.target"), depth + 1)?),
        };
        Ok(Decay {
            x: Expr::parse(x, &format!("{at}.x"), depth + 1)?,
            target,
            midpoint,
            scale,
        })
    }

    /// The decay of `x` from `target`: 1 at the target, `midpoint` at `scale` from it.
    fn apply(&self, kind: DecayKind, x: f64, target: f64) -> f64 {
        match kind {
            DecayKind::Lin => {
                let lambda = (1.0 - self.midpoint) / self.scale;
                (1.0 - lambda * (x - target).abs()).max(0.0)
            }
            DecayKind::Exp => {
                let lambda = self.midpoint.ln() / self.scale;
                (lambda * (x - target).abs()).exp()
            }
            DecayKind::Gauss => {
                let lambda = self.midpoint.ln() / (self.scale * self.scale);
                (lambda * (x - target) * (x - target)).exp()
            }
        }
    }
}

/// What one point's evaluation reads.
pub struct Point<'a> {
    pub id: &'a PointId,
    /// Its score in each prefetch, if it was found there.
    pub scores: &'a [Option<f32>],
    pub payload: &'a Map<String, Value>,
}

fn non_finite(what: String) -> Error {
    Error::invalid(format!("formula: {what} is not a finite number"))
}

impl Formula {
    /// The point's score.
    pub fn score(&self, p: &Point<'_>) -> Result<f32> {
        let x = self.eval(&self.expr, p)?;
        let s = x as f32;
        if !s.is_finite() {
            return Err(non_finite(format!("the score {x} as f32")));
        }
        Ok(s)
    }

    /// The value at `key`: from the payload, else from the defaults; one value, or several.
    fn value<'v>(&'v self, key: &str, path: &Path, p: &'v Point<'_>) -> Result<Value> {
        let found = path.values(p.payload);
        let one = match found.len() {
            0 => match self.defaults.get(key) {
                None => None,
                Some(Value::Array(a)) if a.is_empty() => None,
                Some(Value::Array(a)) if a.len() == 1 => Some(a[0].clone()),
                Some(v) => Some(v.clone()),
            },
            1 => Some(found[0].clone()),
            _ => Some(Value::Array(found.into_iter().cloned().collect())),
        };
        one.ok_or_else(|| {
            Error::invalid(format!(
                "formula: no value for {key:?} in the payload of point {} nor in the defaults",
                p.id
            ))
        })
    }

    fn eval(&self, e: &Expr, p: &Point<'_>) -> Result<f64> {
        Ok(match e {
            Expr::Const(c) => *c,
            Expr::Score(i) => match p.scores.get(*i).copied().flatten() {
                Some(s) => f64::from(s),
                None => match self.defaults.get(&format!("$score[{i}]")) {
                    Some(v) => v.as_f64().ok_or_else(|| {
                        Error::invalid(format!(
                            "formula: the default of $score[{i}] is not a number"
                        ))
                    })?,
                    None => 0.0,
                },
            },
            Expr::Var(key, path) => {
                let v = self.value(key, path, p)?;
                match v {
                    Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
                    other => {
                        return Err(Error::invalid(format!(
                            "formula: {key:?} of point {} is {other}, not a number",
                            p.id
                        )))
                    }
                }
            }
            Expr::Cond(c) => {
                if c.matches(Some(p.id), p.payload) {
                    1.0
                } else {
                    0.0
                }
            }
            Expr::Mult(items) => {
                let mut prod = 1.0;
                for it in items {
                    let f = self.eval(it, p)?;
                    if f == 0.0 {
                        return Ok(f);
                    }
                    prod *= f;
                }
                prod
            }
            Expr::Sum(items) => {
                let mut sum = 0.0;
                for it in items {
                    sum += self.eval(it, p)?;
                }
                sum
            }
            Expr::Max(items) => {
                let mut m = f64::NEG_INFINITY;
                for it in items {
                    m = m.max(self.eval(it, p)?);
                }
                m
            }
            Expr::Min(items) => {
                let mut m = f64::INFINITY;
                for it in items {
                    m = m.min(self.eval(it, p)?);
                }
                m
            }
            Expr::Unary(op, x) => op.apply(self.eval(x, p)?)?,
            Expr::Div {
                left,
                right,
                by_zero,
            } => {
                let l = self.eval(left, p)?;
                if l == 0.0 {
                    return Ok(l);
                }
                let r = self.eval(right, p)?;
                if r == 0.0 {
                    return by_zero.ok_or_else(|| {
                        Error::invalid(format!(
                            "formula: division by zero ({l}/{r}) for point {} and no by_zero_default",
                            p.id
                        ))
                    });
                }
                let q = l / r;
                if !q.is_finite() {
                    return Err(non_finite(format!("{l}/{r}")));
                }
                q
            }
            Expr::Pow(b, x) => {
                let (b, x) = (self.eval(b, p)?, self.eval(x, p)?);
                let r = b.powf(x);
                if !r.is_finite() {
                    return Err(non_finite(format!("{b}^{x}")));
                }
                r
            }
            Expr::GeoDistance {
                lat,
                lon,
                key,
                path,
            } => {
                let v = self.value(key, path, p)?;
                let (lat2, lon2) = geo_of(&v).ok_or_else(|| {
                    Error::invalid(format!(
                        "formula: {key:?} of point {} is not a geo point",
                        p.id
                    ))
                })?;
                haversine_m(*lat, *lon, lat2, lon2)
            }
            Expr::Datetime(secs) => *secs,
            Expr::DatetimeKey(key, path) => {
                let v = self.value(key, path, p)?;
                let micros = v.as_str().and_then(parse_datetime).ok_or_else(|| {
                    Error::invalid(format!(
                        "formula: {key:?} of point {} is not a datetime",
                        p.id
                    ))
                })?;
                micros / 1e6
            }
            Expr::Decay(kind, d) => {
                let x = self.eval(&d.x, p)?;
                let target = match &d.target {
                    Some(t) => self.eval(t, p)?,
                    None => 0.0,
                };
                d.apply(*kind, x, target)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn eval(f: Value, defaults: Value, payload: Value, scores: &[Option<f32>]) -> Result<f32> {
        let f = Formula::parse(&f, Some(&defaults), "query")?;
        let payload = payload.as_object().cloned().unwrap_or_default();
        f.score(&Point {
            id: &PointId::Num(1),
            scores,
            payload: &payload,
        })
    }

    #[test]
    fn arithmetic_scores_and_payload() -> Result<()> {
        let f = json!({"sum": ["$score", {"mult": [0.5, "price"]}, {"key": "a", "match": {"value": 1}}]});
        let s = eval(
            f.clone(),
            json!({}),
            json!({"price": 4, "a": 1}),
            &[Some(2.0)],
        )?;
        assert_eq!(s, 2.0 + 2.0 + 1.0);
        let s = eval(f, json!({"price": 10}), json!({"a": 2}), &[None])?;
        assert_eq!(s, 5.0);
        assert_eq!(
            eval(
                json!("$score[1]"),
                json!({"$score[1]": 7}),
                json!({}),
                &[Some(1.0)]
            )?,
            7.0
        );
        assert_eq!(
            eval(json!("$score[1]"), json!({}), json!({}), &[Some(1.0)])?,
            0.0
        );
        Ok(())
    }

    #[test]
    fn errors_name_the_problem() {
        let e = eval(json!("price"), json!({}), json!({}), &[]).expect_err("refused");
        assert!(e.to_string().contains("no value for \"price\""), "{e}");
        let e = eval(
            json!({"div": {"left": 1, "right": "x"}}),
            json!({}),
            json!({"x": 0}),
            &[],
        )
        .expect_err("refused");
        assert!(e.to_string().contains("division by zero"), "{e}");
        let ok = eval(
            json!({"div": {"left": 1, "right": "x", "by_zero_default": 3}}),
            json!({}),
            json!({"x": 0}),
            &[],
        );
        assert_eq!(ok.ok(), Some(3.0));
        assert!(eval(json!({"ln": 0}), json!({}), json!({}), &[]).is_err());
        assert!(eval(json!("$score[x]"), json!({}), json!({}), &[]).is_err());
        assert!(eval(json!({"max": []}), json!({}), json!({}), &[]).is_err());
        assert!(eval(json!({"frobnicate": 1}), json!({}), json!({}), &[]).is_err());
    }

    #[test]
    fn decays_and_dates() -> Result<()> {
        let g = eval(
            json!({"gauss_decay": {"x": 1.0, "scale": 1.0, "midpoint": 0.5}}),
            json!({}),
            json!({}),
            &[],
        )?;
        assert!((g - 0.5).abs() < 1e-6);
        let l = eval(
            json!({"lin_decay": {"x": 2.0, "target": 1.0, "scale": 2.0}}),
            json!({}),
            json!({}),
            &[],
        )?;
        assert!((l - 0.75).abs() < 1e-6);
        let d = eval(
            json!({"datetime_key": "t"}),
            json!({}),
            json!({"t": "1970-01-02T00:00:00Z"}),
            &[],
        )?;
        assert_eq!(d, 86400.0);
        Ok(())
    }
}
