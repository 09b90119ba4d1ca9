//! The universal query (`query/universal.rs`), run over one consistent view of the collection
//! (the state's read lock is held throughout), with Qdrant's semantics:
//!
//! - A stage's filter is its own (plus "not the points given by id") merged with every filter
//!   above it, so prefetch limits count filtered candidates.
//! - A leaf stage searches the collection: nearest (through the graphs, or the sparse index),
//!   with MMR, recommend, discover, context (exact scans), order_by, a random sample, or, with
//!   no query, the first points by id.
//! - An inner stage merges its prefetches' results, each computed once: fusion (RRF, DBSF), a
//!   formula, or re-scoring the candidates by a vector query. A batch runs its queries in
//!   parallel.
//! - Vector queries keep scores strictly better than `score_threshold`; fusion and formulas keep
//!   scores at least it. Payloads and vectors are read for the final results only.

mod resolve;
mod score;

use rayon::prelude::*;
use serde_json::{json, Value};

use super::observed::query_json;
use super::search::{min_key_for, Cand, TopK, Tuning};
use super::state::{Loc, State, MEM};
use super::Collection;
use crate::error::{Error, Result};
use crate::filter::{parse_datetime, Filter};
use crate::observe::Op;
use crate::payload::Path;
use crate::point::{PointId, SparseVector};
use crate::query::formula::{Formula, Point};
use crate::query::fusion::fuse;
use crate::query::universal::{
    Fusion, GroupsRequest, Mmr, Query, QueryRequest, RecommendStrategy, Stage, VectorInput,
};
use crate::query::{Direction, PayloadSelector, ScoredPoint, SearchParams};
pub use resolve::Lookups;
use resolve::{Field, Resolver, Vector};
use score::Scorer;

/// A point a stage found: where it lives, its score, and the value an order_by ordered it by.
#[derive(Clone, Copy, Debug)]
struct Hit {
    loc: Loc,
    score: f32,
    order: Option<f64>,
}

impl Hit {
    fn plain(loc: Loc) -> Hit {
        Hit {
            loc,
            score: 1.0,
            order: None,
        }
    }
}

/// One group of `query_groups`: the payload value its points share, and its best points.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub id: Value,
    pub hits: Vec<ScoredPoint>,
}

/// How a stage ranks, its inputs resolved.
enum Plan<'q> {
    /// No query: the first points by id.
    Scroll,
    Vector {
        field: Field,
        scorer: Scorer,
        /// The query as given (MMR's relevance ignores IDF, as Qdrant's does).
        raw: Vector,
        mmr: Option<Mmr>,
    },
    OrderBy {
        key: &'q str,
        direction: Direction,
        start: Option<f64>,
    },
    Fusion(&'q Fusion),
    Formula(&'q Formula),
    Sample,
}

struct Run<'a> {
    r: Resolver<'a>,
}

impl Collection {
    /// Run a universal query; `lookups` holds the collections its `lookup_from`s name.
    pub fn query(&self, req: &QueryRequest, lookups: &Lookups) -> Result<Vec<ScoredPoint>> {
        self.observed(
            Op::Query,
            || query_json(req),
            || {
                self.enter()?;
                let st = self.waited(|| self.state.read());
                self.query_in(&st, req, lookups)
            },
        )
    }

    /// Several queries over one view of the collection, in parallel.
    pub fn query_batch(
        &self,
        reqs: &[QueryRequest],
        lookups: &Lookups,
    ) -> Result<Vec<Vec<ScoredPoint>>> {
        self.observed(
            Op::Query,
            || json!({"queries": reqs.len()}),
            || {
                self.enter()?;
                let st = self.state.read();
                crate::pool::install(|| {
                    reqs.par_iter()
                        .map(|r| self.query_in(&st, r, lookups))
                        .collect()
                })
            },
        )
    }

    fn query_in(
        &self,
        st: &State,
        req: &QueryRequest,
        lookups: &Lookups,
    ) -> Result<Vec<ScoredPoint>> {
        let run = Run {
            r: Resolver {
                col: self,
                st,
                lookups,
            },
        };
        let hits = run.stage(&req.stage, None, req.offset)?;
        hits.into_iter()
            .skip(req.offset)
            .map(|h| run.output(h, &req.with_payload, req.with_vector))
            .collect()
    }

    /// The best `limit` groups of points sharing a value (a string or an integer) at
    /// `group_by`, each with its best `group_size` points, groups ordered by their best point.
    /// As in Qdrant's local mode, every stage of the query may pass on all points.
    pub fn query_groups(&self, g: &GroupsRequest, lookups: &Lookups) -> Result<Vec<Group>> {
        self.observed(Op::Query, || json!({"group_by": g.group_by, "group_size": g.group_size, "query": query_json(&g.query)}), || {
        self.enter()?;
        let st = self.state.read();
        let all = st.live.max(1);
        let mut stage = g.query.stage.clone();
        fn widen(s: &mut Stage, all: usize) {
            for p in &mut s.prefetch {
                p.limit = all;
                widen(p, all);
            }
        }
        widen(&mut stage, all);
        let limit = stage.limit;
        stage.limit = all;
        let path = Path::parse(&g.group_by, "group_by")?;
        let run = Run {
            r: Resolver {
                col: self,
                st: &st,
                lookups,
            },
        };
        let mut groups: Vec<(Value, Vec<Hit>)> = Vec::new();
        for h in run.stage(&stage, None, 0)? {
            let payload = st
                .payload(h.loc, &PayloadSelector::All)?
                .unwrap_or_default();
            let values = path.values(&payload);
            // A point with any value that cannot be a group id joins no group (as in Qdrant).
            if values.is_empty()
                || !values
                    .iter()
                    .all(|v| v.is_string() || v.is_i64() || v.is_u64())
            {
                continue;
            }
            let mut seen: Vec<&Value> = Vec::new();
            for v in values {
                if seen.contains(&v) {
                    continue;
                }
                seen.push(v);
                match groups.iter_mut().find(|(id, _)| id == v) {
                    Some((_, hits)) => {
                        if hits.len() < g.group_size {
                            hits.push(h);
                        }
                    }
                    None => groups.push((v.clone(), vec![h])),
                }
            }
        }
        groups.truncate(limit);
        groups
            .into_iter()
            .map(|(id, hits)| {
                let hits = hits
                    .into_iter()
                    .map(|h| run.output(h, &g.query.with_payload, g.query.with_vector))
                    .collect::<Result<_>>()?;
                Ok(Group { id, hits })
            })
            .collect()
        })
    }
}

impl Run<'_> {
    fn st(&self) -> &State {
        self.r.st
    }

    fn output(&self, h: Hit, sel: &PayloadSelector, with_vector: bool) -> Result<ScoredPoint> {
        let st = self.st();
        Ok(ScoredPoint {
            id: st.id(h.loc)?,
            score: h.score,
            payload: st.payload(h.loc, sel)?,
            vector: with_vector.then(|| st.vector(h.loc).to_vec()),
            sparse: st.sparse_vectors(h.loc, with_vector)?,
            order_value: h.order,
        })
    }

    /// The stage's best `limit + offset` points (the caller drops the first `offset`).
    fn stage(&self, s: &Stage, inherited: Option<&Filter>, offset: usize) -> Result<Vec<Hit>> {
        let n = s.limit.saturating_add(offset);
        let mut mentioned = Vec::new();
        let plan = self.plan(s, &mut mentioned)?;
        let own = Filter::excluding(s.filter.clone(), mentioned);
        let filter = Filter::merged(inherited, own.as_ref()).filter(|f| !f.is_empty());
        let filter = filter.as_ref();
        if s.prefetch.is_empty() {
            return self.leaf(s, &plan, filter, n);
        }
        // On the calling thread, one after the other: each prefetch is a graph walk or an index
        // scan of well under a millisecond, less than handing it to the pool costs on a busy
        // machine; a batch of queries (`query_batch`) is what runs in parallel.
        let sources = s
            .prefetch
            .iter()
            .map(|p| self.stage(p, filter, 0))
            .collect::<Result<Vec<_>>>()?;
        self.merge(s, &plan, sources, filter, n)
    }

    fn plan<'q>(&self, s: &'q Stage, mentioned: &mut Vec<PointId>) -> Result<Plan<'q>> {
        let Some(q) = &s.query else {
            return Ok(Plan::Scroll);
        };
        let field = || self.r.field(s.using.as_deref());
        let mut vector = |input: &VectorInput, field: Field| -> Result<Vector> {
            self.r.vector(input, field, s, mentioned)
        };
        let (scorer, mmr, field, raw) = match q {
            Query::Fusion(f) => return Ok(Plan::Fusion(f)),
            Query::Formula(f) => return Ok(Plan::Formula(f)),
            Query::Sample => return Ok(Plan::Sample),
            Query::OrderBy {
                key,
                direction,
                start_from,
            } => {
                let start = match start_from {
                    None | Some(Value::Null) => None,
                    Some(Value::String(t)) => Some(parse_datetime(t).ok_or_else(|| {
                        Error::invalid(format!(
                            "order_by start_from {t:?} is not an RFC 3339 datetime"
                        ))
                    })?),
                    Some(v) => Some(v.as_f64().ok_or_else(|| {
                        Error::invalid(format!(
                            "order_by start_from must be a number or a datetime, got {v}"
                        ))
                    })?),
                };
                return Ok(Plan::OrderBy {
                    key,
                    direction: *direction,
                    start,
                });
            }
            Query::Nearest { vector: v, mmr } => {
                let field = field()?;
                let v = self.prepare(vector(v, field)?, field)?;
                (Scorer::Nearest(v.clone()), *mmr, field, v)
            }
            Query::Recommend {
                positive,
                negative,
                strategy,
            } => {
                let field = field()?;
                let pos = positive
                    .iter()
                    .map(|x| vector(x, field))
                    .collect::<Result<Vec<_>>>()?;
                let neg = negative
                    .iter()
                    .map(|x| vector(x, field))
                    .collect::<Result<Vec<_>>>()?;
                if *strategy == RecommendStrategy::AverageVector {
                    let v = self.prepare(average(&pos, &neg), field)?;
                    (Scorer::Nearest(v.clone()), None, field, v)
                } else {
                    let prep = |xs: Vec<Vector>| -> Result<Vec<Vector>> {
                        xs.into_iter().map(|x| self.prepare(x, field)).collect()
                    };
                    let scorer = Scorer::Recommend {
                        positive: prep(pos)?,
                        negative: prep(neg)?,
                        strategy: *strategy,
                    };
                    (scorer, None, field, Vector::Dense(Vec::new()))
                }
            }
            Query::Discover { target, context } => {
                let field = field()?;
                let target = self.prepare(vector(target, field)?, field)?;
                let mut pairs = Vec::new();
                for (p, n) in context {
                    let p = self.prepare(vector(p, field)?, field)?;
                    pairs.push((p, self.prepare(vector(n, field)?, field)?));
                }
                (
                    Scorer::Discover { target, pairs },
                    None,
                    field,
                    Vector::Dense(Vec::new()),
                )
            }
            Query::Context { pairs: given } => {
                let field = field()?;
                let mut pairs = Vec::new();
                for (p, n) in given {
                    let p = self.prepare(vector(p, field)?, field)?;
                    pairs.push((p, self.prepare(vector(n, field)?, field)?));
                }
                (
                    Scorer::Context { pairs },
                    None,
                    field,
                    Vector::Dense(Vec::new()),
                )
            }
        };
        let scorer = match field {
            Field::Sparse { k, idf: true } => {
                let stats = &self.st().sparse_stats[k];
                scorer.weighed(&|q: &SparseVector| stats.weigh(q))
            }
            _ => scorer,
        };
        Ok(Plan::Vector {
            field,
            scorer,
            raw,
            mmr,
        })
    }

    /// A dense vector checked and, under cosine, unit-normalised (a zero vector stays zero).
    fn prepare(&self, v: Vector, field: Field) -> Result<Vector> {
        match (v, field) {
            (Vector::Dense(d), Field::Dense(sp)) => {
                Ok(Vector::Dense(self.r.col.prepare_queries(&d, sp, true)?))
            }
            (v, _) => Ok(v),
        }
    }

    /// The lowest key a vector query keeps (it keeps keys strictly above it).
    fn floor(scorer: &Scorer, field: Field, threshold: Option<f32>) -> f32 {
        match (scorer, field, threshold) {
            (_, _, None) => f32::NEG_INFINITY,
            (Scorer::Nearest(_), Field::Dense(sp), t) => min_key_for(sp.distance, t),
            (_, _, Some(t)) => t,
        }
    }

    fn leaf(
        &self,
        s: &Stage,
        plan: &Plan<'_>,
        filter: Option<&Filter>,
        n: usize,
    ) -> Result<Vec<Hit>> {
        let st = self.st();
        match plan {
            Plan::Scroll => {
                let (records, _) = st.scroll(n, None, &PayloadSelector::None, false, filter)?;
                records
                    .iter()
                    .map(|r| self.locate(&r.id).map(Hit::plain))
                    .collect()
            }
            Plan::Vector {
                field,
                scorer,
                raw,
                mmr,
            } => {
                let floor = Self::floor(scorer, *field, s.score_threshold);
                let want = match mmr {
                    Some(m) => m.candidates.unwrap_or(s.limit),
                    None => n,
                };
                let cands = match (scorer, field) {
                    (Scorer::Nearest(Vector::Dense(q)), Field::Dense(sp)) => {
                        let params = SearchParams {
                            k: want.max(1),
                            filter: filter.cloned(),
                            exact: s.exact,
                            ef: s.ef,
                            ..SearchParams::default()
                        };
                        let tuning = Tuning::of(&self.r.col.config, *sp, s.quantization.as_ref())?;
                        if want == 0 {
                            Vec::new()
                        } else {
                            st.search(*sp, q, want, floor, &params, &tuning)?
                                .pop()
                                .unwrap_or_default()
                        }
                    }
                    (Scorer::Nearest(Vector::Sparse(q)), Field::Sparse { k, .. }) => {
                        st.search_sparse(*k, q, want, floor, filter)?
                    }
                    _ => self.scan(scorer, *field, filter, want, floor)?,
                };
                self.finish(cands, scorer, *field, raw, *mmr, floor, n)
            }
            Plan::OrderBy {
                key,
                direction,
                start,
            } => {
                let all = Filter::default();
                Ok(st
                    .ordered(key, *direction, *start, filter.unwrap_or(&all), n)?
                    .into_iter()
                    .map(|(v, loc)| Hit {
                        order: Some(v),
                        ..Hit::plain(loc)
                    })
                    .collect())
            }
            Plan::Sample => {
                let mut locs = Vec::new();
                self.each_live(filter, |loc| {
                    locs.push(loc);
                    Ok(())
                })?;
                Ok(sample(locs, n).into_iter().map(Hit::plain).collect())
            }
            Plan::Fusion(_) | Plan::Formula(_) => Err(Error::invalid(
                "fusion and formula queries merge prefetches: give at least one",
            )),
        }
    }

    /// Candidates (best first) → hits: strictly above the floor, at most `n`, MMR applied.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        mut cands: Vec<Cand>,
        scorer: &Scorer,
        field: Field,
        raw: &Vector,
        mmr: Option<Mmr>,
        floor: f32,
        n: usize,
    ) -> Result<Vec<Hit>> {
        cands.retain(|c| c.key > floor || floor == f32::NEG_INFINITY);
        let scored: Vec<(Loc, f32)> = cands
            .iter()
            .map(|c| {
                (
                    Loc {
                        source: c.source,
                        row: c.row,
                    },
                    scorer.score(c.key, field),
                )
            })
            .collect();
        let picked = match mmr {
            Some(m) => score::mmr(self.st(), scored, raw, field, m.diversity, n)?,
            None => scored.into_iter().take(n).collect(),
        };
        Ok(picked
            .into_iter()
            .map(|(loc, score)| Hit {
                loc,
                score,
                order: None,
            })
            .collect())
    }

    fn merge(
        &self,
        s: &Stage,
        plan: &Plan<'_>,
        sources: Vec<Vec<Hit>>,
        filter: Option<&Filter>,
        n: usize,
    ) -> Result<Vec<Hit>> {
        let st = self.st();
        let at_least = |hits: Vec<Hit>| -> Vec<Hit> {
            match s.score_threshold {
                Some(t) => hits.into_iter().filter(|h| h.score >= t).collect(),
                None => hits,
            }
        };
        // Every candidate once, in the order first seen.
        let union = || -> Vec<Loc> {
            let mut seen = std::collections::HashSet::new();
            sources
                .iter()
                .flatten()
                .filter(|h| seen.insert((h.loc.source, h.loc.row)))
                .map(|h| h.loc)
                .collect()
        };
        match plan {
            Plan::Fusion(how) => {
                let lists: Vec<Vec<(Loc, f32)>> = sources
                    .iter()
                    .map(|l| l.iter().map(|h| (h.loc, h.score)).collect())
                    .collect();
                Ok(at_least(
                    fuse(how, &lists, n)
                        .into_iter()
                        .map(|(loc, score)| Hit {
                            loc,
                            score,
                            order: None,
                        })
                        .collect(),
                ))
            }
            Plan::Formula(f) => Ok(at_least(self.formula(f, &sources, union(), n)?)),
            Plan::Vector {
                field,
                scorer,
                raw,
                mmr,
            } => {
                let floor = Self::floor(scorer, *field, s.score_threshold);
                let want = match mmr {
                    Some(m) => m.candidates.unwrap_or(s.limit),
                    None => n,
                };
                let mut top = TopK::new(want, f32::NEG_INFINITY);
                for loc in union() {
                    if !self.passes(loc, filter)? {
                        continue;
                    }
                    if let Some(key) = scorer.key(st, loc, *field)? {
                        top.push(Cand {
                            key,
                            source: loc.source,
                            row: loc.row,
                        });
                    }
                }
                self.finish(top.into_sorted(), scorer, *field, raw, *mmr, floor, n)
            }
            Plan::OrderBy {
                key,
                direction,
                start,
            } => {
                let ids = union()
                    .into_iter()
                    .map(|loc| st.id(loc))
                    .collect::<Result<Vec<_>>>()?;
                let mut only = filter.cloned().unwrap_or_default();
                only.must
                    .push(crate::filter::Cond::HasId(ids.into_iter().collect()));
                Ok(st
                    .ordered(key, *direction, *start, &only, n)?
                    .into_iter()
                    .map(|(v, loc)| Hit {
                        order: Some(v),
                        ..Hit::plain(loc)
                    })
                    .collect())
            }
            Plan::Sample => {
                let mut locs = Vec::new();
                for loc in union() {
                    if self.passes(loc, filter)? {
                        locs.push(loc);
                    }
                }
                Ok(sample(locs, n).into_iter().map(Hit::plain).collect())
            }
            Plan::Scroll => Err(Error::invalid("a query is needed to merge the prefetches")),
        }
    }

    /// The candidates (`union`, in first-seen order) scored by a formula over the prefetches'
    /// scores and their payloads, best first (ties in that order), at most `n`.
    fn formula(
        &self,
        f: &Formula,
        sources: &[Vec<Hit>],
        union: Vec<Loc>,
        n: usize,
    ) -> Result<Vec<Hit>> {
        let st = self.st();
        let maps: Vec<std::collections::HashMap<Loc, f32>> = sources
            .iter()
            .map(|l| l.iter().map(|h| (h.loc, h.score)).collect())
            .collect();
        let mut hits = Vec::new();
        for loc in union {
            let id = st.id(loc)?;
            let payload = st.payload(loc, &PayloadSelector::All)?.unwrap_or_default();
            let scores: Vec<Option<f32>> = maps.iter().map(|m| m.get(&loc).copied()).collect();
            let score = f.score(&Point {
                id: &id,
                scores: &scores,
                payload: &payload,
            })?;
            hits.push(Hit {
                loc,
                score,
                order: None,
            });
        }
        // Stable: equal scores keep the order first seen.
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        hits.truncate(n);
        Ok(hits)
    }

    fn locate(&self, id: &PointId) -> Result<Loc> {
        self.st()
            .locate(id)?
            .ok_or_else(|| Error::internal(format!("point {id} vanished during a query")))
    }

    /// Whether the live point at `loc` matches `filter`.
    fn passes(&self, loc: Loc, filter: Option<&Filter>) -> Result<bool> {
        let Some(f) = filter else {
            return Ok(true);
        };
        let st = self.st();
        let id = f.uses_ids().then(|| st.id(loc)).transpose()?;
        let payload = st.payload(loc, &PayloadSelector::All)?.unwrap_or_default();
        Ok(f.matches(id.as_ref(), &payload))
    }

    /// Call `f` for every live point matching `filter`.
    fn each_live(
        &self,
        filter: Option<&Filter>,
        mut f: impl FnMut(Loc) -> Result<()>,
    ) -> Result<()> {
        let st = self.st();
        let srcs = (0..st.sources.len() as u32).chain((!st.mem.is_empty()).then_some(MEM));
        for src in srcs {
            let rows: Box<dyn Iterator<Item = usize>> = match filter {
                Some(flt) => Box::new(
                    st.matching(src, flt)?
                        .iter()
                        .collect::<Vec<_>>()
                        .into_iter(),
                ),
                None if src == MEM => Box::new(0..st.mem.len()),
                None => {
                    let s = &st.sources[src as usize];
                    Box::new((0..s.rows()).filter(|&r| !s.deleted.get(r)))
                }
            };
            for r in rows {
                f(Loc {
                    source: src,
                    row: r as u32,
                })?;
            }
        }
        Ok(())
    }

    /// Every matching point scored exactly (recommend by scores, discover, context).
    fn scan(
        &self,
        scorer: &Scorer,
        field: Field,
        filter: Option<&Filter>,
        n: usize,
        floor: f32,
    ) -> Result<Vec<Cand>> {
        let st = self.st();
        let mut top = TopK::new(n, floor);
        self.each_live(filter, |loc| {
            if let Some(key) = scorer.key(st, loc, field)? {
                top.push(Cand {
                    key,
                    source: loc.source,
                    row: loc.row,
                });
            }
            Ok(())
        })?;
        Ok(top.into_sorted())
    }
}

/// The average-vector recommendation: `avg(positive) + avg(positive) − avg(negative)` (sparse:
/// over the union of dimensions, missing entries 0).
fn average(pos: &[Vector], neg: &[Vector]) -> Vector {
    fn dense_mean(xs: &[&[f32]]) -> Vec<f64> {
        let dim = xs.first().map_or(0, |x| x.len());
        let mut m = vec![0.0f64; dim];
        for x in xs {
            for (a, b) in m.iter_mut().zip(x.iter()) {
                *a += f64::from(*b);
            }
        }
        m.iter_mut().for_each(|a| *a /= xs.len() as f64);
        m
    }
    fn sparse_mean(xs: &[&SparseVector]) -> std::collections::BTreeMap<u32, f64> {
        let mut m = std::collections::BTreeMap::new();
        for x in xs {
            for (i, v) in x.indices.iter().zip(&x.values) {
                *m.entry(*i).or_insert(0.0) += f64::from(*v);
            }
        }
        m.values_mut().for_each(|v| *v /= xs.len() as f64);
        m
    }
    fn dense(xs: &[Vector]) -> Vec<&[f32]> {
        xs.iter()
            .filter_map(|x| match x {
                Vector::Dense(d) => Some(d.as_slice()),
                Vector::Sparse(_) => None,
            })
            .collect()
    }
    fn sparse(xs: &[Vector]) -> Vec<&SparseVector> {
        xs.iter()
            .filter_map(|x| match x {
                Vector::Sparse(s) => Some(s),
                Vector::Dense(_) => None,
            })
            .collect()
    }
    if matches!(pos.first(), Some(Vector::Sparse(_))) {
        let p = sparse_mean(&sparse(pos));
        let mut out = p.clone();
        if !neg.is_empty() {
            let n = sparse_mean(&sparse(neg));
            out = p.iter().map(|(i, v)| (*i, 2.0 * v)).collect();
            for (i, v) in n {
                *out.entry(i).or_insert(0.0) -= v;
            }
        }
        return Vector::Sparse(SparseVector {
            indices: out.keys().copied().collect(),
            values: out.values().map(|v| *v as f32).collect(),
        });
    }
    let p = dense_mean(&dense(pos));
    let v = if neg.is_empty() {
        p
    } else {
        let n = dense_mean(&dense(neg));
        p.iter().zip(&n).map(|(a, b)| a + a - b).collect()
    };
    Vector::Dense(v.into_iter().map(|x| x as f32).collect())
}

/// Up to `n` of `items`, uniformly at random.
fn sample<T>(mut items: Vec<T>, n: usize) -> Vec<T> {
    use std::hash::{BuildHasher, Hasher};
    // A fresh random seed per call (the standard library's hasher keys are random).
    let mut seed = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        | 1;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let take = n.min(items.len());
    for i in 0..take {
        let j = i + (next() % (items.len() - i) as u64) as usize;
        items.swap(i, j);
    }
    items.truncate(take);
    items
}
