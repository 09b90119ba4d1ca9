//! Filtered reads: which rows of each source match a filter, and the planner that searches
//! them. A sealed segment resolves the filter with its payload indexes (`filter/index.rs`) and
//! checks what the indexes leave open against each row's payload; in-memory rows are checked
//! one by one (they are few: the optimizer seals them after a second of quiet).
//!
//! Planning, per source and query: with few matching rows (fewer than a filtered graph search
//! would cost), or no graph, the matching rows are scored exactly; with more, the graph is
//! searched with the filter applied during traversal (non-matching nodes still route, and the
//! search keeps going until it holds `ef` matching ones), falling back to the exact scan if it
//! ends short.

use crate::observe::trace::{self, span, Count, Phase};
use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use rayon::prelude::*;

use super::manifest::PayloadIndexDef;
use super::search::{self, Cand, TopK, Tuning};
use super::state::{
    found_len, graph_choice, method_filtered, method_scan, Choice, Loc, Source, State, MEM,
};
use crate::config::Space;
use crate::error::{Error, Result};
use crate::filter::index::{self as pindex, FieldIndex, SourceView};
use crate::filter::rowset::RowSet;
use crate::filter::{parse_datetime, Filter};
use crate::index::hnsw;
use crate::index::quant::{AnyQuery, Codes};
use crate::payload::Path as KeyPath;
use crate::point::{Payload, PointId};
use crate::query::{Direction, FacetValue, PayloadSelector, Record, SearchParams};
use crate::segment::{Bitmap, Segment};

/// Rows of exact scoring that one filtered graph search costs, per unit of ef and of
/// 1/sqrt(selectivity) (see `search_filtered`).
const GRAPH_COST: f64 = 80.0;

/// Remove the rows set in `deleted` from `set`.
fn remove_deleted(set: &mut RowSet, deleted: &Bitmap) {
    if deleted.count_ones() == 0 {
        return;
    }
    for (i, &b) in deleted.as_bytes().iter().enumerate() {
        let mut b = b;
        while b != 0 {
            let bit = b.trailing_zeros() as usize;
            set.remove(i * 8 + bit);
            b &= b - 1;
        }
    }
}

impl State {
    pub fn index_def(&self, key: &str) -> Option<&PayloadIndexDef> {
        self.index_defs.iter().find(|d| d.key == key)
    }

    fn source_rows(&self, src: u32) -> usize {
        if src == MEM {
            self.mem.len()
        } else {
            self.sources[src as usize].rows()
        }
    }

    fn row_payload(&self, src: u32, row: usize) -> Result<Payload> {
        let loc = Loc {
            source: src,
            row: row as u32,
        };
        Ok(self
            .payload(loc, &PayloadSelector::All)?
            .unwrap_or_default())
    }

    /// The payload index of source `src` on `key`, if the key is indexed and the source has it.
    fn source_index(&self, src: u32, key: &str) -> Result<Option<Arc<FieldIndex>>> {
        let (Some(def), false) = (self.index_def(key), src == MEM) else {
            return Ok(None);
        };
        match self.sources[src as usize].segment() {
            Some(seg) => seg.payload_index(def.number),
            None => Ok(None),
        }
    }

    /// Live rows of source `src` (`MEM`: the appendable rows) that match `filter`.
    pub fn matching(&self, src: u32, filter: &Filter) -> Result<RowSet> {
        Ok(self.matching_checked(src, filter)?.0)
    }

    /// The payload indexes source `src` has for the keys `filter` tests (none for the
    /// appendable rows).
    pub(super) fn filter_indexes<'f>(
        &self,
        src: u32,
        filter: &'f Filter,
    ) -> Result<HashMap<&'f str, Arc<FieldIndex>>> {
        let mut keys = Vec::new();
        filter.field_keys(&mut keys);
        let mut loaded = HashMap::new();
        for k in keys {
            if let Some(i) = self.source_index(src, k)? {
                loaded.insert(k, i);
            }
        }
        Ok(loaded)
    }

    /// `matching`, and how many rows had their payload checked one by one (those the payload
    /// indexes left open, or all).
    fn matching_checked(&self, src: u32, filter: &Filter) -> Result<(RowSet, usize)> {
        let rows = self.source_rows(src);
        let mut set = RowSet::full(rows);
        let mut exact = filter.is_empty();
        let mut checked = 0;
        if src != MEM {
            let s = &self.sources[src as usize];
            if !exact && s.segment().is_some() {
                let loaded = self.filter_indexes(src, filter)?;
                let index = |k: &str| loaded.get(k).cloned();
                let find = |id: &PointId| s.find_live(id);
                let view = SourceView {
                    rows,
                    index: &index,
                    find: &find,
                };
                (set, exact) = pindex::resolve(filter, &view)?;
            }
            remove_deleted(&mut set, &s.deleted);
        }
        if !exact {
            let with_ids = filter.uses_ids();
            let candidates: Vec<usize> = set.iter().collect();
            checked = candidates.len();
            trace::add(Count::FilterChecks, candidates.len() as u64);
            for r in candidates {
                let loc = Loc {
                    source: src,
                    row: r as u32,
                };
                let id = with_ids.then(|| self.id(loc)).transpose()?;
                if !filter.matches(id.as_ref(), &self.row_payload(src, r)?) {
                    set.remove(r);
                }
            }
        }
        Ok((set, checked))
    }

    /// Every source with rows matching `filter`: (source, rows).
    fn matching_all(&self, filter: &Filter) -> Result<Vec<(u32, RowSet)>> {
        Ok(self
            .matching_all_checked(filter)?
            .into_iter()
            .filter(|m| m.1.count() > 0)
            .map(|(src, set, _)| (src, set))
            .collect())
    }

    /// Every source, the rows of it matching `filter`, and how many payloads were checked.
    fn matching_all_checked(&self, filter: &Filter) -> Result<Vec<(u32, RowSet, usize)>> {
        let _s = span(Phase::Filter);
        let srcs = (0..self.sources.len() as u32).chain((!self.mem.is_empty()).then_some(MEM));
        let mut out = Vec::new();
        for src in srcs {
            let (set, checked) = self.matching_checked(src, filter)?;
            out.push((src, set, checked));
        }
        Ok(out)
    }

    pub fn count_matching(&self, filter: &Filter) -> Result<usize> {
        if filter.is_empty() {
            return Ok(self.live);
        }
        Ok(self
            .matching_all(filter)?
            .iter()
            .map(|(_, s)| s.count())
            .sum())
    }

    /// Ids of every live point matching `filter`.
    pub fn ids_matching(&self, filter: &Filter) -> Result<Vec<PointId>> {
        let mut ids = Vec::new();
        for (src, set) in self.matching_all(filter)? {
            for r in set.iter() {
                ids.push(self.id(Loc {
                    source: src,
                    row: r as u32,
                })?);
            }
        }
        Ok(ids)
    }

    fn source_vectors(&self, src: u32) -> &[f32] {
        if src == MEM {
            &self.mem.vectors[..self.mem.len() * self.width]
        } else {
            self.sources[src as usize].vectors()
        }
    }

    /// Top-`n` candidates per query among the points matching `filter` (see the module doc).
    #[allow(clippy::too_many_arguments)]
    pub fn search_filtered(
        &self,
        sp: Space,
        queries: &[f32],
        n: usize,
        min_key: f32,
        params: &SearchParams,
        tuning: &Tuning,
        filter: &Filter,
    ) -> Result<Vec<Vec<Cand>>> {
        let ef = params.ef.unwrap_or(tuning.ef_construct).max(n);
        let plans = self.filtered_plans(sp, filter, params.exact, ef, tuning)?;
        let single = queries.len() == sp.dim;
        search::each_query(queries, sp.dim, |q| {
            search_planned(self, &plans, sp, q, n, ef, min_key, single, tuning)
        })
    }

    /// For each source, the rows matching `filter` and how to search them: through the graph
    /// (on its codes, if it has them and `tuning` uses them) when that is cheaper than scoring
    /// every matching row.
    pub(super) fn filtered_plans(
        &self,
        sp: Space,
        filter: &Filter,
        exact: bool,
        ef: usize,
        tuning: &Tuning,
    ) -> Result<Vec<Planned<'_>>> {
        let full_scan_threshold = tuning.full_scan_threshold;
        let mut plans = Vec::new();
        for (src, set, checked) in self.matching_all_checked(filter)? {
            let count = set.count();
            if count == 0 {
                continue;
            }
            let why = match (src, exact) {
                (MEM, _) => Choice::Appendable,
                (_, true) => Choice::ExactAsked,
                _ => {
                    let s = &self.sources[src as usize];
                    // Exact costs one distance per matching row; a filtered graph search about
                    // GRAPH_COST · ef / sqrt(selectivity) (measured on 100k × 384: at 10% of the
                    // points, 25,000 rows' worth). The cheaper one runs.
                    let sel = count as f64 / s.live().max(1) as f64;
                    let walk_cost = GRAPH_COST * ef as f64 / sel.sqrt();
                    match graph_choice(s, false, full_scan_threshold) {
                        c if c.walks() => Choice::Filtered {
                            walk: count as f64 > walk_cost,
                            matching: count,
                            live: s.live(),
                            walk_cost,
                            ef,
                        },
                        no_graph => no_graph,
                    }
                }
            };
            let walked = self
                .sources
                .get(src as usize)
                .and_then(Source::segment)
                .filter(|_| why.walks());
            let graph = walked.map(|seg| seg.graph(sp.index)).transpose()?.flatten();
            // The graph is walked on its segment's codes, if it has them. Rows scored one by
            // one are scored on them too where the segment reads its f32 rows from disk
            // (scoring them all on f32 would page the whole vector file into memory), and the
            // best rescored on f32.
            let seg = self.sources.get(src as usize).and_then(Source::segment);
            let coded = match seg
                .filter(|seg| tuning.use_codes && (graph.is_some() || seg.reads_rows_from_disk()))
            {
                Some(seg) => seg.codes(sp.index)?.map(|c| (&**seg, c)),
                None => None,
            };
            plans.push(Planned {
                src,
                why,
                checked,
                count,
                vectors: self.source_vectors(src),
                set,
                graph,
                coded,
                absent: seg.and_then(|seg| seg.absent(sp)),
            });
        }
        Ok(plans)
    }

    /// Points per string value at `key` among those matching `filter`, most frequent first.
    pub fn facet(
        &self,
        key: &str,
        filter: &Filter,
        limit: usize,
    ) -> Result<Vec<(FacetValue, usize)>> {
        let path = KeyPath::parse(key, "key")?;
        let mut counts: HashMap<FacetValue, usize> = HashMap::new();
        for (src, set) in self.matching_all(filter)? {
            if let Some(idx) = self.source_index(src, key)? {
                // A keyword (or uuid) index holds the key's strings, as a Qdrant server counts.
                if let Some(per_value) = idx.facet(&set) {
                    for (v, c) in per_value {
                        *counts.entry(FacetValue::Str(v)).or_default() += c;
                    }
                    continue;
                }
            }
            for r in set.iter() {
                let p = self.row_payload(src, r)?;
                let mut seen: Vec<FacetValue> = path
                    .values(&p)
                    .iter()
                    .filter_map(|v| match v {
                        serde_json::Value::String(s) => Some(FacetValue::Str(s.clone())),
                        serde_json::Value::Bool(b) => Some(FacetValue::Bool(*b)),
                        serde_json::Value::Number(n) => n.as_i64().map(FacetValue::Int),
                        _ => None,
                    })
                    .collect();
                seen.sort_unstable();
                seen.dedup();
                for v in seen {
                    *counts.entry(v).or_default() += 1;
                }
            }
        }
        let mut out: Vec<(FacetValue, usize)> = counts.into_iter().collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out.truncate(limit);
        Ok(out)
    }

    /// Up to `limit` points matching `filter`, ordered by the value at the indexed numeric or
    /// datetime `key` (a point with several values sorts by its smallest ascending, its
    /// largest descending; points without a value are left out), from `start` on.
    #[allow(clippy::too_many_arguments)]
    pub fn scroll_ordered(
        &self,
        key: &str,
        direction: Direction,
        start: Option<f64>,
        filter: &Filter,
        limit: usize,
        sel: &PayloadSelector,
        with_vector: bool,
    ) -> Result<Vec<Record>> {
        self.ordered(key, direction, start, filter, limit)?
            .into_iter()
            .map(|(_, loc)| self.record(loc, sel, with_vector))
            .collect()
    }

    /// Up to `limit` points matching `filter` ordered by the indexed numeric or datetime field
    /// `key` (from `start` on), each with the value it is ordered by.
    pub fn ordered(
        &self,
        key: &str,
        direction: Direction,
        start: Option<f64>,
        filter: &Filter,
        limit: usize,
    ) -> Result<Vec<(f64, Loc)>> {
        let def = self
            .index_def(key)
            .filter(|d| d.kind.is_ordered())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "order_by {key:?} needs an integer, float or datetime payload index on it \
                     (create_payload_index)"
                ))
            })?;
        let datetime = def.kind == crate::filter::index::IndexKind::Datetime;
        let path = KeyPath::parse(key, "order_by")?;
        let asc = direction == Direction::Asc;
        let mut items: Vec<(f64, PointId, Loc)> = Vec::new();
        for (src, set) in self.matching_all(filter)? {
            let loc = |r: usize| Loc {
                source: src,
                row: r as u32,
            };
            if let Some(pairs) = self
                .source_index(src, key)?
                .as_deref()
                .and_then(|i| i.ordered().map(<[_]>::to_vec))
            {
                let mut seen = RowSet::empty(set.len());
                let it: Box<dyn Iterator<Item = &(f64, u32)>> = if asc {
                    Box::new(pairs.iter())
                } else {
                    Box::new(pairs.iter().rev())
                };
                for &(v, r) in it {
                    let r = r as usize;
                    if set.contains(r) && !seen.contains(r) {
                        seen.insert(r);
                        items.push((v, self.id(loc(r))?, loc(r)));
                    }
                }
                continue;
            }
            for r in set.iter() {
                let p = self.row_payload(src, r)?;
                let vals = path.values(&p).into_iter().filter_map(|v| {
                    if datetime {
                        v.as_str().and_then(parse_datetime)
                    } else {
                        v.as_f64()
                    }
                });
                let best = if asc {
                    vals.min_by(f64::total_cmp)
                } else {
                    vals.max_by(f64::total_cmp)
                };
                if let Some(v) = best {
                    items.push((v, self.id(loc(r))?, loc(r)));
                }
            }
        }
        if let Some(s) = start {
            items.retain(|(v, _, _)| if asc { *v >= s } else { *v <= s });
        }
        let cmp = |a: &(f64, PointId, Loc), b: &(f64, PointId, Loc)| -> Ordering {
            let by_value = if asc {
                a.0.total_cmp(&b.0)
            } else {
                b.0.total_cmp(&a.0)
            };
            by_value.then_with(|| a.1.cmp(&b.1))
        };
        if items.len() > limit && limit > 0 {
            items.select_nth_unstable_by(limit - 1, cmp);
            items.truncate(limit);
        }
        items.truncate(limit);
        items.sort_by(cmp);
        Ok(items.into_iter().map(|(v, _, loc)| (v, loc)).collect())
    }
}

/// One source of a filtered search: its matching rows, and the graph to walk them with (if
/// walking beats scoring them all).
pub(super) struct Planned<'a> {
    pub src: u32,
    /// Why the source is walked or scored (`explain`).
    pub why: Choice,
    /// Rows whose payload the filter checked one by one.
    pub checked: usize,
    pub set: RowSet,
    pub count: usize,
    vectors: &'a [f32],
    pub graph: Option<Arc<hnsw::Graph>>,
    pub coded: Option<(&'a Segment, Codes<'a>)>,
    /// Rows lacking this vector: graph nodes, never results.
    absent: Option<&'a Bitmap>,
}

/// The `n` best of the planned sources' matching rows for query `q`: through a graph where
/// planned (falling back to scoring when the walk finds fewer than it should), else scored
/// one by one, spread over the pool for one query over many rows (`single`).
#[allow(clippy::too_many_arguments)]
fn search_planned(
    st: &State,
    plans: &[Planned<'_>],
    sp: Space,
    q: &[f32],
    n: usize,
    ef: usize,
    min_key: f32,
    single: bool,
    tuning: &Tuning,
) -> Result<Vec<Cand>> {
    let mut top = TopK::new(n, min_key);
    for p in plans {
        if let Some(g) = &p.graph {
            let set = &p.set;
            let absent = p.absent;
            let accept =
                |r: u32| set.contains(r as usize) && !absent.is_some_and(|a| a.get(r as usize));
            let _s = span(Phase::Graph);
            let method = method_filtered(p.coded.map(|(_, c)| c.kind));
            let found = trace::step(
                || st.source_label(p.src),
                method,
                found_len,
                || search::graph_search(g, p.coded, tuning, p.vectors, sp, q, n, ef, &accept, true),
            )?;
            if found.len() >= n.min(p.count) {
                for item in found {
                    top.push(Cand {
                        key: -item.d,
                        source: p.src,
                        row: item.id,
                    });
                }
                continue;
            }
        }
        let _s = span(Phase::ExactScan);
        let method = method_scan(p.coded.map(|(_, c)| c.kind), p.graph.is_some());
        let found = trace::step(
            || st.source_label(p.src),
            method,
            |r: &Result<TopK>| r.as_ref().map_or(0, TopK::len),
            || match p.coded {
                Some((seg, codes)) => score_planned_on_codes(
                    p,
                    seg,
                    codes,
                    sp,
                    q,
                    n,
                    min_key,
                    single,
                    tuning.rescored(n),
                ),
                None => {
                    trace::add(Count::ExactDistances, p.count as u64);
                    Ok(score_planned(p, sp, q, n, min_key, single))
                }
            },
        )?;
        top = top.merge(found);
    }
    Ok(top.into_sorted())
}

/// The best `n` of the matching rows of `p` for `q`: every one scored on the segment's
/// `codes`, then (with `rescored`) that many of the best rescored on f32 read from disk.
#[allow(clippy::too_many_arguments)]
fn score_planned_on_codes(
    p: &Planned<'_>,
    seg: &Segment,
    codes: Codes<'_>,
    sp: Space,
    q: &[f32],
    n: usize,
    min_key: f32,
    single: bool,
    rescored: Option<usize>,
) -> Result<TopK> {
    let query = AnyQuery::new(&codes, q);
    let keep = rescored.map_or(n, |r| r.max(n));
    // Estimates are not scores: the threshold applies once they are rescored.
    let floor = if rescored.is_some() {
        f32::NEG_INFINITY
    } else {
        min_key
    };
    let estimated = scan_matching(p, keep, floor, single, |r| {
        (!p.absent.is_some_and(|a| a.get(r))).then(|| Cand {
            key: query.dot(codes.get(r as u32)),
            source: p.src,
            row: r as u32,
        })
    });
    trace::add(Count::GraphDistances, p.count as u64);
    if rescored.is_none() {
        return Ok(estimated);
    }
    let _s = span(Phase::Rescore);
    let candidates = estimated.into_sorted();
    trace::add(Count::Rescored, candidates.len() as u64);
    let mut exact = seg.rescorer(sp, q);
    let mut top = TopK::new(n, min_key);
    for c in candidates {
        top.push(Cand {
            key: -exact(c.row)?,
            ..c
        });
    }
    Ok(top)
}

/// The best `n` of the matching rows of `p` for `q`, every one of them scored.
fn score_planned(
    p: &Planned<'_>,
    sp: Space,
    q: &[f32],
    n: usize,
    min_key: f32,
    single: bool,
) -> TopK {
    scan_matching(p, n, min_key, single, |r| {
        let at = r * sp.stride + sp.offset;
        Some(Cand {
            key: -hnsw::dist(sp.distance, q, &p.vectors[at..at + sp.dim]),
            source: p.src,
            row: r as u32,
        })
    })
}

/// The best `keep` above `floor` of the matching rows of `p`, as `score` keys them (`None`:
/// left out). One query over many scattered rows is bound by memory latency: it is spread
/// over the pool (`single`), as the unfiltered exact scan does.
fn scan_matching(
    p: &Planned<'_>,
    keep: usize,
    floor: f32,
    single: bool,
    score: impl Fn(usize) -> Option<Cand> + Sync,
) -> TopK {
    let run = |words: std::ops::Range<usize>| {
        let mut top = TopK::new(keep, floor);
        for r in p.set.iter_words(words) {
            if let Some(c) = score(r) {
                top.push(c);
            }
        }
        top
    };
    let threads = crate::pool::num_threads();
    if single && threads > 1 && p.count >= search::PARALLEL_MIN_ROWS {
        let parts = p.set.split(2 * threads);
        return crate::pool::install(|| {
            parts
                .into_par_iter()
                .map(run)
                .reduce(|| TopK::new(keep, floor), TopK::merge)
        });
    }
    run(0..p.set.words())
}
