//! Scoring points by a vector query exactly, as Qdrant does: nearest (the metric's score),
//! recommend by best or summed scores, discovery and context (sigmoids of similarities), and
//! maximal marginal relevance over a set of candidates.

use super::super::search::{key_of, score_of};
use super::super::state::{Loc, State};
use super::resolve::{Field, Vector};
use crate::config::{is_absent, Distance};
use crate::error::Result;
use crate::point::SparseVector;
use crate::query::universal::RecommendStrategy;

const EPSILON: f32 = f32::EPSILON;

fn fast_sigmoid(x: f32) -> f32 {
    if x.is_finite() {
        x / (1.0 + x.abs())
    } else {
        x
    }
}

fn scaled_fast_sigmoid(x: f32) -> f32 {
    0.5 * (fast_sigmoid(x) + 1.0)
}

/// How a stage's vector query scores one point.
#[derive(Clone, Debug)]
pub enum Scorer {
    Nearest(Vector),
    Recommend {
        positive: Vec<Vector>,
        negative: Vec<Vector>,
        strategy: RecommendStrategy,
    },
    Discover {
        target: Vector,
        pairs: Vec<(Vector, Vector)>,
    },
    Context {
        pairs: Vec<(Vector, Vector)>,
    },
}

/// A point's vector of the field, borrowed.
enum Stored<'a> {
    Dense(&'a [f32]),
    Sparse(crate::point::SparseRef<'a>),
}

fn stored<'a>(st: &'a State, loc: Loc, field: Field) -> Result<Option<Stored<'a>>> {
    Ok(match field {
        Field::Dense(sp) => {
            let v = &st.vector(loc)[sp.offset..sp.offset + sp.dim];
            (!is_absent(v)).then_some(Stored::Dense(v))
        }
        Field::Sparse { k, .. } => st.sparse(loc, k)?.map(Stored::Sparse),
    })
}

/// The metric's internal similarity (larger is better: distances negated, euclid squared);
/// sparse: the dot product, `None` when nothing overlaps.
fn similarity(q: &Vector, v: &Stored<'_>, metric: Distance) -> Option<f32> {
    match (q, v) {
        (Vector::Dense(q), Stored::Dense(v)) => Some(key_of(metric, q, v)),
        (Vector::Sparse(q), Stored::Sparse(v)) => v.dot(q),
        _ => None,
    }
}

fn metric_of(field: Field) -> Distance {
    match field {
        Field::Dense(sp) => sp.distance,
        Field::Sparse { .. } => Distance::Dot,
    }
}

impl Scorer {
    /// The IDF-weighted form of every sparse query vector (weights from the live points).
    pub fn weighed(self, weigh: &dyn Fn(&SparseVector) -> SparseVector) -> Scorer {
        let w = |v: Vector| match v {
            Vector::Sparse(s) => Vector::Sparse(weigh(&s)),
            d => d,
        };
        let wp = |p: Vec<(Vector, Vector)>| p.into_iter().map(|(a, b)| (w(a), w(b))).collect();
        match self {
            Scorer::Nearest(v) => Scorer::Nearest(w(v)),
            Scorer::Recommend {
                positive,
                negative,
                strategy,
            } => Scorer::Recommend {
                positive: positive.into_iter().map(w).collect(),
                negative: negative.into_iter().map(w).collect(),
                strategy,
            },
            Scorer::Discover { target, pairs } => Scorer::Discover {
                target: w(target),
                pairs: wp(pairs),
            },
            Scorer::Context { pairs } => Scorer::Context { pairs: wp(pairs) },
        }
    }

    /// The key (larger is better) of the point at `loc`, `None` if it is no result: it lacks
    /// the vector, or (nearest, sparse) shares no dimension with the query.
    pub fn key(&self, st: &State, loc: Loc, field: Field) -> Result<Option<f32>> {
        let Some(v) = stored(st, loc, field)? else {
            return Ok(None);
        };
        let metric = metric_of(field);
        // Examples of recommend, discover and context score 0 where nothing overlaps.
        let sim = |q: &Vector| similarity(q, &v, metric).unwrap_or(0.0);
        Ok(match self {
            Scorer::Nearest(q) => similarity(q, &v, metric),
            Scorer::Recommend {
                positive,
                negative,
                strategy,
            } => Some(match strategy {
                RecommendStrategy::BestScore => {
                    let best = |xs: &[Vector]| xs.iter().map(sim).fold(f32::NEG_INFINITY, f32::max);
                    let (p, n) = (best(positive), best(negative));
                    if p > n {
                        scaled_fast_sigmoid(p)
                    } else {
                        -scaled_fast_sigmoid(n)
                    }
                }
                // The average strategy searches near one vector (`Scorer::Nearest`); reaching
                // here, it scores like sum_scores, which it never does in practice.
                RecommendStrategy::SumScores | RecommendStrategy::AverageVector => {
                    let sum = |xs: &[Vector]| xs.iter().map(sim).sum::<f32>();
                    sum(positive) - sum(negative)
                }
            }),
            Scorer::Discover { target, pairs } => {
                let rank: i32 = pairs
                    .iter()
                    .map(|(p, n)| {
                        let (p, n) = (sim(p), sim(n));
                        if p > n {
                            1
                        } else if p == n {
                            0
                        } else {
                            -1
                        }
                    })
                    .sum();
                Some(rank as f32 + scaled_fast_sigmoid(sim(target)))
            }
            Scorer::Context { pairs } => Some(
                pairs
                    .iter()
                    .map(|(p, n)| fast_sigmoid((sim(p) - sim(n) - EPSILON).min(0.0)))
                    .sum(),
            ),
        })
    }

    /// The score a user sees for `key`: nearest dense queries report the metric's score
    /// (distances positive), everything else the key itself.
    pub fn score(&self, key: f32, field: Field) -> f32 {
        match (self, field) {
            (Scorer::Nearest(_), Field::Dense(sp)) => score_of(sp.distance, key),
            _ => key,
        }
    }
}

/// Maximal marginal relevance: from `cands` (with their scores), pick up to `limit` greedily,
/// each maximising `(1 − diversity) · sim(query) − diversity · max sim(picked)`, the first the
/// most relevant. Similarities are the metric's internal ones (sparse: dot products, 0 where
/// nothing overlaps, the query without IDF). Ties go to the last candidate, and the pending
/// list loses its picks by swap-remove, as in Qdrant.
pub fn mmr(
    st: &State,
    cands: Vec<(Loc, f32)>,
    query: &Vector,
    field: Field,
    diversity: f64,
    limit: usize,
) -> Result<Vec<(Loc, f32)>> {
    if cands.is_empty() {
        return Ok(cands);
    }
    let metric = metric_of(field);
    let vectors: Vec<Option<Stored<'_>>> = cands
        .iter()
        .map(|(loc, _)| stored(st, *loc, field))
        .collect::<Result<_>>()?;
    let sim = |a: &Stored<'_>, b: &Stored<'_>| -> f64 {
        let s = match (a, b) {
            (Stored::Dense(a), Stored::Dense(b)) => Some(key_of(metric, a, b)),
            (Stored::Sparse(a), Stored::Sparse(b)) => b.dot_ref(*a),
            _ => None,
        };
        f64::from(s.unwrap_or(0.0))
    };
    let relevance: Vec<f64> = vectors
        .iter()
        .map(|v| {
            v.as_ref()
                .and_then(|v| similarity(query, v, metric))
                .map_or(0.0, f64::from)
        })
        .collect();
    let n = cands.len();
    let pair = |i: usize, j: usize| match (&vectors[i], &vectors[j]) {
        (Some(a), Some(b)) => sim(a, b),
        _ => 0.0,
    };
    let lambda = 1.0 - diversity;
    let last_argmax = |xs: &[f64]| {
        let mut best = 0;
        for (i, x) in xs.iter().enumerate() {
            if *x >= xs[best] {
                best = i;
            }
        }
        best
    };
    let mut pending: Vec<usize> = (0..n).collect();
    let rel: Vec<f64> = pending.iter().map(|&i| relevance[i]).collect();
    let mut picked = vec![pending.swap_remove(last_argmax(&rel))];
    // Each pending candidate's highest similarity to the picked ones so far.
    let mut closest: Vec<f64> = vec![f64::NEG_INFINITY; n];
    while picked.len() < limit && !pending.is_empty() {
        let last = picked[picked.len() - 1];
        for &p in &pending {
            closest[p] = closest[p].max(pair(p, last));
        }
        let scores: Vec<f64> = pending
            .iter()
            .map(|&p| lambda * relevance[p] - (1.0 - lambda) * closest[p])
            .collect();
        if scores.iter().all(|s| *s == f64::NEG_INFINITY) {
            break;
        }
        picked.push(pending.swap_remove(last_argmax(&scores)));
    }
    Ok(picked.into_iter().map(|i| cands[i]).collect())
}
