//! Qdrant's REST JSON of a universal query (`POST /collections/{name}/points/query`, the
//! pydantic models of qdrant-client dumped) → [`QueryRequest`], with errors naming the part at
//! fault (`query.prefetch[1].query.rrf.k`).

use serde_json::{Map, Value};

use super::formula::Formula;
use super::universal::{
    Fusion, GroupsRequest, LookupFrom, Mmr, Query, QueryRequest, RecommendStrategy, Stage,
    VectorInput, MAX_EXAMPLES, MAX_LIMIT, MAX_MMR_CANDIDATES, MAX_PREFETCHES, MAX_PREFETCH_DEPTH,
};
use super::{Direction, PayloadSelector, QuantizationParams};
use crate::batch::Document;
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::point::{PointId, SparseVector};

/// Prefetches without a limit pass on this many points (as in Qdrant).
pub const DEFAULT_PREFETCH_LIMIT: usize = 10;
/// Qdrant's default RRF constant.
pub const DEFAULT_RRF_K: usize = 2;

fn bad(at: &str, what: impl std::fmt::Display) -> Error {
    Error::invalid(format!("{at}: {what}"))
}

fn object<'a>(v: &'a Value, at: &str) -> Result<&'a Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| bad(at, format!("expected an object, got {v}")))
}

/// A field that is present and not null.
fn get<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a Value> {
    m.get(k).filter(|v| !v.is_null())
}

fn count(v: &Value, at: &str) -> Result<usize> {
    v.as_u64()
        .map(|n| n as usize)
        .ok_or_else(|| bad(at, format!("expected a non-negative integer, got {v}")))
}

fn point_id(v: &Value, at: &str) -> Result<PointId> {
    match v {
        Value::Number(n) => n.as_u64().map(PointId::Num).ok_or_else(|| {
            bad(
                at,
                format!("a point id must be a non-negative integer, got {n}"),
            )
        }),
        Value::String(s) => {
            let id = PointId::Str(s.clone());
            id.validate().map_err(|e| bad(at, e))?;
            Ok(id)
        }
        _ => Err(bad(at, format!("expected a point id, got {v}"))),
    }
}

fn sparse(m: &Map<String, Value>, at: &str) -> Result<SparseVector> {
    let list = |k: &str| {
        get(m, k)
            .and_then(Value::as_array)
            .ok_or_else(|| bad(at, format!("a sparse vector needs a list {k:?}")))
    };
    let indices = list("indices")?
        .iter()
        .map(|x| {
            x.as_u64()
                .filter(|&i| i <= u64::from(u32::MAX))
                .map(|i| i as u32)
                .ok_or_else(|| {
                    bad(
                        at,
                        format!("sparse index {x} is not an integer in 0..=4294967295"),
                    )
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let values = list("values")?
        .iter()
        .map(|x| {
            x.as_f64()
                .map(|f| f as f32)
                .ok_or_else(|| bad(at, format!("sparse value {x} is not a number")))
        })
        .collect::<Result<Vec<_>>>()?;
    SparseVector::new(indices, values, at)
}

/// A `Document` (`{"text", "model", "options"}`).
pub fn document(m: &Map<String, Value>, at: &str) -> Result<Document> {
    let text = get(m, "text")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(at, "a document needs a string \"text\""))?;
    let model = get(m, "model")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(at, "a document needs a string \"model\" (\"qdrant/bm25\")"))?;
    let options = match get(m, "options") {
        None => Map::new(),
        Some(Value::Object(o)) => o.clone(),
        Some(v) => {
            return Err(bad(
                at,
                format!("document options must be an object, got {v}"),
            ))
        }
    };
    Ok(Document {
        text: text.to_string(),
        model: model.to_string(),
        options,
    })
}

fn vector_input(v: &Value, at: &str) -> Result<VectorInput> {
    match v {
        Value::Array(items) => {
            if items.iter().any(Value::is_array) {
                return Err(bad(at, "multivectors are not supported"));
            }
            let values = items
                .iter()
                .map(|x| {
                    x.as_f64()
                        .map(|f| f as f32)
                        .ok_or_else(|| bad(at, format!("vector value {x} is not a number")))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(VectorInput::Dense(values))
        }
        Value::Object(m) if m.contains_key("indices") => Ok(VectorInput::Sparse(sparse(m, at)?)),
        Value::Object(m) if m.contains_key("text") => Ok(VectorInput::Document(document(m, at)?)),
        Value::Object(m) if m.contains_key("image") || m.contains_key("object") => Err(bad(
            at,
            "only text documents are embedded in the core (model \"qdrant/bm25\")",
        )),
        Value::Number(_) | Value::String(_) => Ok(VectorInput::Id(point_id(v, at)?)),
        _ => Err(bad(
            at,
            format!("expected a vector, a sparse vector, a document or a point id, got {v}"),
        )),
    }
}

fn examples(v: Option<&Value>, at: &str) -> Result<Vec<VectorInput>> {
    let Some(v) = v else {
        return Ok(Vec::new());
    };
    let items = v
        .as_array()
        .ok_or_else(|| bad(at, "expected a list of examples"))?;
    if items.len() > MAX_EXAMPLES {
        return Err(bad(
            at,
            format!("{} examples; at most {MAX_EXAMPLES}", items.len()),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, x)| vector_input(x, &format!("{at}[{i}]")))
        .collect()
}

fn pairs(v: &Value, at: &str) -> Result<Vec<(VectorInput, VectorInput)>> {
    let one = |p: &Value, at: &str| -> Result<(VectorInput, VectorInput)> {
        let m = object(p, at)?;
        let side = |k: &str| {
            get(m, k)
                .ok_or_else(|| bad(at, format!("a context pair needs {k:?}")))
                .and_then(|x| vector_input(x, &format!("{at}.{k}")))
        };
        Ok((side("positive")?, side("negative")?))
    };
    match v {
        Value::Array(items) => {
            if items.len() > MAX_EXAMPLES {
                return Err(bad(
                    at,
                    format!("{} pairs; at most {MAX_EXAMPLES}", items.len()),
                ));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, p)| one(p, &format!("{at}[{i}]")))
                .collect()
        }
        _ => Ok(vec![one(v, at)?]),
    }
}

fn mmr(x: &Value, at: &str) -> Result<Mmr> {
    let mm = object(x, at)?;
    let diversity = match get(mm, "diversity") {
        None => 0.5,
        Some(d) => d
            .as_f64()
            .filter(|d| (0.0..=1.0).contains(d))
            .ok_or_else(|| {
                bad(
                    &format!("{at}.diversity"),
                    format!("must be between 0 and 1, got {d}"),
                )
            })?,
    };
    let candidates = match get(mm, "candidates_limit") {
        None => None,
        Some(c) => {
            let c = count(c, &format!("{at}.candidates_limit"))?;
            if c > MAX_MMR_CANDIDATES {
                return Err(bad(
                    &format!("{at}.candidates_limit"),
                    format!("{c} is more than {MAX_MMR_CANDIDATES}"),
                ));
            }
            Some(c)
        }
    };
    Ok(Mmr {
        diversity,
        candidates,
    })
}

fn recommend(body: &Value, at: &str) -> Result<Query> {
    let r = object(body, at)?;
    let strategy = match get(r, "strategy").map(|s| s.as_str()) {
        None | Some(Some("average_vector")) => RecommendStrategy::AverageVector,
        Some(Some("best_score")) => RecommendStrategy::BestScore,
        Some(Some("sum_scores")) => RecommendStrategy::SumScores,
        Some(_) => {
            return Err(bad(
                &format!("{at}.strategy"),
                "must be average_vector, best_score or sum_scores",
            ))
        }
    };
    let positive = examples(get(r, "positive"), &format!("{at}.positive"))?;
    let negative = examples(get(r, "negative"), &format!("{at}.negative"))?;
    if strategy == RecommendStrategy::AverageVector && positive.is_empty() {
        return Err(bad(
            at,
            "the average_vector strategy needs a positive example",
        ));
    }
    if positive.is_empty() && negative.is_empty() {
        return Err(bad(at, "no positive or negative examples given"));
    }
    Ok(Query::Recommend {
        positive,
        negative,
        strategy,
    })
}

fn discover(body: &Value, at: &str) -> Result<Query> {
    let d = object(body, at)?;
    let target = get(d, "target")
        .ok_or_else(|| bad(at, "discover needs a target"))
        .and_then(|t| vector_input(t, &format!("{at}.target")))?;
    let context = match get(d, "context") {
        None => Vec::new(),
        Some(c) => pairs(c, &format!("{at}.context"))?,
    };
    Ok(Query::Discover { target, context })
}

fn order_by(body: &Value, at: &str) -> Result<Query> {
    if let Value::String(key) = body {
        return Ok(Query::OrderBy {
            key: key.clone(),
            direction: Direction::Asc,
            start_from: None,
        });
    }
    let o = object(body, at)?;
    let key = get(o, "key")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(at, "order_by needs a \"key\""))?;
    let direction = match get(o, "direction").map(|d| d.as_str()) {
        None | Some(Some("asc")) => Direction::Asc,
        Some(Some("desc")) => Direction::Desc,
        Some(_) => return Err(bad(&format!("{at}.direction"), "must be asc or desc")),
    };
    Ok(Query::OrderBy {
        key: key.to_string(),
        direction,
        start_from: get(o, "start_from").cloned(),
    })
}

fn rrf(body: &Value, at: &str) -> Result<Query> {
    let r = object(body, at)?;
    let k = match get(r, "k") {
        None => DEFAULT_RRF_K,
        Some(k) => {
            let k = count(k, &format!("{at}.k"))?;
            if k < 1 {
                return Err(bad(&format!("{at}.k"), "must be 1 or larger"));
            }
            k
        }
    };
    let weights = match get(r, "weights") {
        None => None,
        Some(w) => Some(
            w.as_array()
                .ok_or_else(|| bad(&format!("{at}.weights"), "expected a list of numbers"))?
                .iter()
                .map(|x| {
                    x.as_f64().filter(|f| f.is_finite()).ok_or_else(|| {
                        bad(&format!("{at}.weights"), format!("{x} is not a number"))
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        ),
    };
    Ok(Query::Fusion(Fusion::Rrf { k, weights }))
}

fn query(v: &Value, at: &str) -> Result<Option<Query>> {
    let m = match v {
        Value::Null => return Ok(None),
        Value::Object(m)
            if !m.contains_key("indices")
                && !m.contains_key("text")
                && !m.contains_key("image") =>
        {
            m
        }
        _ => {
            return Ok(Some(Query::Nearest {
                vector: vector_input(v, at)?,
                mmr: None,
            }))
        }
    };
    let (name, body) = m
        .iter()
        .find(|(k, x)| !x.is_null() && k.as_str() != "defaults" && k.as_str() != "mmr")
        .ok_or_else(|| bad(at, "empty query"))?;
    let here = format!("{at}.{name}");
    let q = match name.as_str() {
        "nearest" => Query::Nearest {
            vector: vector_input(body, &here)?,
            mmr: get(m, "mmr")
                .map(|x| mmr(x, &format!("{at}.mmr")))
                .transpose()?,
        },
        "recommend" => recommend(body, &here)?,
        "discover" => discover(body, &here)?,
        "context" => Query::Context {
            pairs: pairs(body, &here)?,
        },
        "order_by" => order_by(body, &here)?,
        "fusion" => match body.as_str() {
            Some("rrf") => Query::Fusion(Fusion::Rrf {
                k: DEFAULT_RRF_K,
                weights: None,
            }),
            Some("dbsf") => Query::Fusion(Fusion::Dbsf),
            _ => return Err(bad(&here, format!("unknown fusion {body} (rrf or dbsf)"))),
        },
        "rrf" => rrf(body, &here)?,
        "formula" => Query::Formula(Formula::parse(body, m.get("defaults"), at)?),
        "sample" => match body.as_str() {
            Some("random") => Query::Sample,
            _ => return Err(bad(&here, "the one sample is \"random\"")),
        },
        other => {
            return Err(bad(
                at,
                format!(
                    "unknown query {other:?} (nearest, recommend, discover, context, order_by, \
                     fusion, rrf, formula, sample)"
                ),
            ))
        }
    };
    Ok(Some(q))
}

/// Qdrant's own checks of a stage's shape.
fn check_shape(
    prefetch: &[Stage],
    query: Option<&Query>,
    using: bool,
    threshold: bool,
    at: &str,
) -> Result<()> {
    if !prefetch.is_empty() && query.is_none() {
        return Err(bad(at, "a query is needed to merge the prefetches"));
    }
    if threshold {
        match query {
            None => return Err(bad(at, "a query is needed to use score_threshold")),
            Some(Query::OrderBy { .. }) => {
                return Err(bad(
                    at,
                    "score_threshold cannot be used with an order_by query",
                ))
            }
            _ => {}
        }
    }
    if matches!(query, Some(Query::Fusion(_))) && using {
        return Err(bad(at, "a fusion query cannot be combined with \"using\""));
    }
    if let Some(Query::Fusion(Fusion::Rrf {
        weights: Some(w), ..
    })) = query
    {
        if w.len() != prefetch.len() {
            return Err(bad(
                at,
                format!("{} RRF weights for {} prefetches", w.len(), prefetch.len()),
            ));
        }
    }
    if let Some(Query::Formula(_)) = query {
        if prefetch.is_empty() {
            return Err(bad(at, "a formula re-scores prefetches: give at least one"));
        }
    }
    if matches!(query, Some(Query::Fusion(_))) && prefetch.is_empty() {
        return Err(bad(
            at,
            "a fusion query fuses prefetches: give at least one",
        ));
    }
    Ok(())
}

fn stage(m: &Map<String, Value>, at: &str, depth: usize, outer: bool) -> Result<Stage> {
    if depth > MAX_PREFETCH_DEPTH {
        return Err(bad(
            at,
            format!("prefetches nested deeper than {MAX_PREFETCH_DEPTH} levels"),
        ));
    }
    let prefetch = match get(m, "prefetch") {
        None => Vec::new(),
        Some(Value::Array(items)) => {
            if items.len() > MAX_PREFETCHES {
                return Err(bad(
                    at,
                    format!("{} prefetches; at most {MAX_PREFETCHES}", items.len()),
                ));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let here = format!("{at}.prefetch[{i}]");
                    stage(object(p, &here)?, &here, depth + 1, false)
                })
                .collect::<Result<Vec<_>>>()?
        }
        Some(p) => {
            let here = format!("{at}.prefetch");
            vec![stage(object(p, &here)?, &here, depth + 1, false)?]
        }
    };
    let query = query(
        m.get("query").unwrap_or(&Value::Null),
        &format!("{at}.query"),
    )?;
    let using = match get(m, "using") {
        None => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => {
            return Err(bad(
                &format!("{at}.using"),
                format!("expected a vector name, got {v}"),
            ))
        }
    };
    let filter = match get(m, "filter") {
        None => None,
        Some(f) => Some(Filter::parse(f).map_err(|e| bad(&format!("{at}.filter"), e))?),
    };
    let score_threshold = match get(m, "score_threshold") {
        None => None,
        Some(t) => Some(t.as_f64().filter(|t| !t.is_nan()).ok_or_else(|| {
            bad(
                &format!("{at}.score_threshold"),
                format!("{t} is not a number"),
            )
        })? as f32),
    };
    let limit = match get(m, "limit") {
        None if outer => 10,
        None => DEFAULT_PREFETCH_LIMIT,
        Some(l) => {
            let l = count(l, &format!("{at}.limit"))?;
            if !(1..=MAX_LIMIT).contains(&l) {
                return Err(bad(
                    &format!("{at}.limit"),
                    format!("{l} is not in 1..={MAX_LIMIT}"),
                ));
            }
            l
        }
    };
    let (exact, ef, quantization) = match get(m, "params") {
        None => (false, None, None),
        Some(p) => {
            let p = object(p, &format!("{at}.params"))?;
            let ef = match get(p, "hnsw_ef") {
                None => None,
                Some(e) => Some(count(e, &format!("{at}.params.hnsw_ef"))?.max(1)),
            };
            let quantization = match get(p, "quantization") {
                None => None,
                Some(q) => Some(QuantizationParams::from_json(
                    q,
                    &format!("{at}.params.quantization"),
                )?),
            };
            (
                get(p, "exact").and_then(Value::as_bool).unwrap_or(false),
                ef,
                quantization,
            )
        }
    };
    let lookup_from = match get(m, "lookup_from") {
        None => None,
        Some(l) => {
            let l = object(l, &format!("{at}.lookup_from"))?;
            Some(LookupFrom {
                collection: get(l, "collection")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad(&format!("{at}.lookup_from"), "needs a \"collection\""))?
                    .to_string(),
                vector: get(l, "vector").and_then(Value::as_str).map(str::to_string),
            })
        }
    };
    check_shape(
        &prefetch,
        query.as_ref(),
        using.is_some(),
        score_threshold.is_some(),
        at,
    )?;
    Ok(Stage {
        prefetch,
        query,
        using,
        filter,
        score_threshold,
        limit,
        exact,
        ef,
        quantization,
        lookup_from,
    })
}

impl QuantizationParams {
    /// Qdrant's `QuantizationSearchParams`: `{"ignore": bool, "rescore": bool, "oversampling":
    /// number}`, each optional (null is absent).
    pub fn from_json(v: &Value, at: &str) -> Result<QuantizationParams> {
        let m = object(v, at)?;
        for key in m.keys() {
            if !["ignore", "rescore", "oversampling"].contains(&key.as_str()) {
                return Err(bad(
                    at,
                    format!("unknown key {key:?}; expected ignore, rescore or oversampling"),
                ));
            }
        }
        let flag = |key: &str| -> Result<Option<bool>> {
            match get(m, key) {
                None => Ok(None),
                Some(Value::Bool(b)) => Ok(Some(*b)),
                Some(v) => Err(bad(
                    &format!("{at}.{key}"),
                    format!("expected a boolean, got {v}"),
                )),
            }
        };
        let oversampling = match get(m, "oversampling") {
            None => None,
            Some(x) => {
                let x = x.as_f64().ok_or_else(|| {
                    bad(
                        &format!("{at}.oversampling"),
                        format!("expected a number, got {x}"),
                    )
                })? as f32;
                crate::config::check_oversampling(x)?;
                Some(x)
            }
        };
        Ok(QuantizationParams {
            ignore: flag("ignore")?.unwrap_or(false),
            rescore: flag("rescore")?,
            oversampling,
        })
    }
}

impl PayloadSelector {
    /// Qdrant's `with_payload`: a boolean, a list of keys, `{"include": [...]}` or
    /// `{"exclude": [...]}`.
    pub fn from_json(v: &Value, at: &str) -> Result<PayloadSelector> {
        let keys = |v: &Value| -> Result<Vec<String>> {
            v.as_array()
                .and_then(|a| a.iter().map(|k| k.as_str().map(str::to_string)).collect())
                .ok_or_else(|| bad(at, "expected a list of payload keys"))
        };
        match v {
            Value::Null | Value::Bool(false) => Ok(PayloadSelector::None),
            Value::Bool(true) => Ok(PayloadSelector::All),
            Value::Array(_) => PayloadSelector::include(&keys(v)?),
            Value::Object(m) => match (get(m, "include"), get(m, "exclude")) {
                (Some(i), None) => PayloadSelector::include(&keys(i)?),
                (None, Some(e)) => PayloadSelector::exclude(&keys(e)?),
                _ => Err(bad(
                    at,
                    "expected {\"include\": [...]} or {\"exclude\": [...]}",
                )),
            },
            _ => Err(bad(
                at,
                format!("expected a boolean or a list of keys, got {v}"),
            )),
        }
    }
}

/// Whether `with_vector` asks for any vector (the caller picks which names it returns).
fn wants_vectors(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Array(a)) => !a.is_empty(),
        Some(_) => true,
    }
}

impl QueryRequest {
    /// Parse a request; `with_payload` missing means `default_payload` (`query_points` returns
    /// payloads unless told otherwise, a batch request's entry does not).
    pub fn parse(v: &Value, default_payload: bool) -> Result<QueryRequest> {
        let m = object(v, "query")?;
        let stage = stage(m, "query", 0, true)?;
        let offset = match get(m, "offset") {
            None => 0,
            Some(o) => count(o, "query.offset")?,
        };
        let with_payload = match m.get("with_payload") {
            None | Some(Value::Null) => {
                if default_payload {
                    PayloadSelector::All
                } else {
                    PayloadSelector::None
                }
            }
            Some(p) => PayloadSelector::from_json(p, "query.with_payload")?,
        };
        Ok(QueryRequest {
            stage,
            offset,
            with_payload,
            with_vector: wants_vectors(m.get("with_vector").or(m.get("with_vectors"))),
        })
    }
}

impl GroupsRequest {
    /// `query_points_groups`' body: a query plus `group_by` and `group_size` (the caller looks
    /// up `with_lookup`).
    pub fn parse(v: &Value) -> Result<GroupsRequest> {
        let query = QueryRequest::parse(v, true)?;
        let m = object(v, "query")?;
        let group_by = get(m, "group_by")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("query", "group_by must name a payload key"))?
            .to_string();
        let group_size = match get(m, "group_size") {
            None => 3,
            Some(g) => count(g, "query.group_size")?,
        };
        if group_size < 1 {
            return Err(bad("query.group_size", "must be 1 or larger"));
        }
        Ok(GroupsRequest {
            query,
            group_by,
            group_size,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(v: Value) -> Result<QueryRequest> {
        QueryRequest::parse(&v, true)
    }

    #[test]
    fn hybrid_request() -> Result<()> {
        let r = parse(json!({
            "prefetch": [
                {"query": [0.1, 0.2], "using": "d", "limit": 20},
                {"query": {"indices": [3, 1], "values": [1.0, 2.0]}, "using": "s"}
            ],
            "query": {"fusion": "rrf"},
            "limit": 5
        }))?;
        assert_eq!(r.stage.limit, 5);
        assert_eq!(r.stage.prefetch.len(), 2);
        assert_eq!(r.stage.prefetch[1].limit, DEFAULT_PREFETCH_LIMIT);
        assert_eq!(
            r.stage.query,
            Some(Query::Fusion(Fusion::Rrf {
                k: 2,
                weights: None
            }))
        );
        match &r.stage.prefetch[1].query {
            Some(Query::Nearest {
                vector: VectorInput::Sparse(s),
                ..
            }) => assert_eq!(s.indices, vec![1, 3]),
            q => panic!("{q:?}"),
        }
        Ok(())
    }

    #[test]
    fn bad_shapes_are_named() {
        let cases = [
            (json!({"prefetch": [{"query": [1.0]}]}), "a query is needed"),
            (
                json!({"query": {"fusion": "rrf"}, "using": "x", "prefetch": {"query": [1.0]}}),
                "using",
            ),
            (
                json!({"query": {"rrf": {"k": 0}}, "prefetch": {"query": [1.0]}}),
                "query.query.rrf.k",
            ),
            (
                json!({"query": {"indices": [1, 1], "values": [1.0, 2.0]}}),
                "given twice",
            ),
            (
                json!({"query": {"indices": [-1], "values": [1.0]}}),
                "0..=4294967295",
            ),
            (
                json!({"query": {"indices": [4294967296u64], "values": [1.0]}}),
                "0..=4294967295",
            ),
            (
                json!({"query": {"indices": [1], "values": [1.0, 2.0]}}),
                "1 indices but 2 values",
            ),
            (json!({"query": {"fusion": "rrf"}}), "give at least one"),
            (json!({"query": {"frob": 1}}), "unknown query"),
            (json!({"query": [1.0], "limit": 0}), "query.limit"),
        ];
        for (v, want) in cases {
            match parse(v.clone()) {
                Ok(r) => panic!("{v} parsed: {r:?}"),
                Err(e) => assert!(e.to_string().contains(want), "{v}: {e}"),
            }
        }
        let mut deep = json!({"query": [1.0]});
        for _ in 0..=MAX_PREFETCH_DEPTH {
            deep = json!({"query": [1.0], "prefetch": [deep]});
        }
        let e = parse(deep).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("nested deeper"), "{e}");
    }
}
