//! Reads: counts, facets, point lookups, scrolling and search.

use serde_json::json;

use super::observed::{filter_json, search_json};
use super::search;
use super::validate::{validate_ids, vector_what};
use super::Collection;
use crate::batch::Matrix;
use crate::config::{Distance, Modifier, Space, Target};
use crate::error::{Error, Result};
use crate::filter::{parse_datetime, Filter};
use crate::observe::Op;
use crate::point::{PointId, SparseVector};
use crate::query::{Direction, FacetValue, PayloadSelector, Record, ScoredPoint, SearchParams};

impl Collection {
    pub fn count(&self) -> Result<usize> {
        self.observed(Op::Count, || json!({}), || self.live_points())
    }

    /// Live points, as `count`, but not counted as a call in the metrics: for sizing work
    /// (how many queries a batch step takes), not a caller's question.
    pub fn live_points(&self) -> Result<usize> {
        self.enter()?;
        Ok(self.state.read().live)
    }

    /// Points matching `filter`.
    pub fn count_filtered(&self, filter: &Filter) -> Result<usize> {
        self.observed(
            Op::Count,
            || json!({"filter": filter_json(Some(filter))}),
            || {
                self.enter()?;
                self.state.read().count_matching(filter)
            },
        )
    }

    /// Points per value (string, integer or boolean) of the field `key` among those matching
    /// `filter`, most frequent first (ties by value), at most `limit` values.
    pub fn facet(
        &self,
        key: &str,
        filter: &Filter,
        limit: usize,
    ) -> Result<Vec<(FacetValue, usize)>> {
        self.observed(
            Op::Facet,
            || json!({"key": key, "limit": limit, "filter": filter_json(Some(filter))}),
            || {
                self.enter()?;
                self.state.read().facet(key, filter, limit)
            },
        )
    }

    /// Up to `limit` points matching `filter` ordered by the indexed numeric or datetime field
    /// `key`, from `start` (a number, or an RFC 3339 string for datetimes) on.
    #[allow(clippy::too_many_arguments)]
    pub fn scroll_ordered(
        &self,
        key: &str,
        direction: Direction,
        start: Option<&serde_json::Value>,
        filter: &Filter,
        limit: usize,
        with_payload: &PayloadSelector,
        with_vector: bool,
    ) -> Result<Vec<Record>> {
        self.observed(
            Op::Scroll,
            || json!({"order_by": key, "limit": limit, "filter": filter_json(Some(filter))}),
            || {
                self.enter()?;
                let start = match start {
                    None | Some(serde_json::Value::Null) => None,
                    Some(serde_json::Value::String(s)) => {
                        Some(parse_datetime(s).ok_or_else(|| {
                            Error::invalid(format!(
                                "order_by start_from {s:?} is not an RFC 3339 datetime"
                            ))
                        })?)
                    }
                    Some(v) => Some(v.as_f64().ok_or_else(|| {
                        Error::invalid(format!(
                            "order_by start_from must be a number or a datetime, got {v}"
                        ))
                    })?),
                };
                self.state.read().scroll_ordered(
                    key,
                    direction,
                    start,
                    filter,
                    limit,
                    with_payload,
                    with_vector,
                )
            },
        )
    }

    /// Points by id, in the order asked; missing ids are left out.
    pub fn get(
        &self,
        ids: &[PointId],
        with_payload: &PayloadSelector,
        with_vector: bool,
    ) -> Result<Vec<Record>> {
        self.observed(
            Op::Get,
            || json!({"ids": ids.len(), "with_vector": with_vector}),
            || {
                self.enter()?;
                validate_ids(ids, false, &crate::cancel::NEVER)?;
                let st = self.state.read();
                let mut out = Vec::new();
                for id in ids {
                    if let Some(loc) = st.locate(id)? {
                        out.push(st.record(loc, with_payload, with_vector)?);
                    }
                }
                Ok(out)
            },
        )
    }

    /// Up to `limit` points in id order, starting at `offset` (inclusive). Returns them and the
    /// id to pass as `offset` for the next page, if there is one.
    pub fn scroll(
        &self,
        limit: usize,
        offset: Option<&PointId>,
        with_payload: &PayloadSelector,
        with_vector: bool,
        filter: Option<&Filter>,
    ) -> Result<(Vec<Record>, Option<PointId>)> {
        self.observed(
            Op::Scroll,
            || json!({"limit": limit, "filter": filter_json(filter)}),
            || {
                self.enter()?;
                self.state
                    .read()
                    .scroll(limit, offset, with_payload, with_vector, filter)
            },
        )
    }

    /// Top-k search for one query of the dimension of the vector `params.using`: through the
    /// segments' graphs, exactly where a segment has none (or `params.exact`).
    pub fn search(&self, query: &[f32], params: &SearchParams) -> Result<Vec<ScoredPoint>> {
        self.observed(
            Op::Search,
            || search_json(params, 1),
            || {
                self.enter()?;
                self.query_space(query.len(), params)?;
                let mut all = self.search_many(query, params)?;
                Ok(all.pop().unwrap_or_default())
            },
        )
    }

    /// Top-k search for each row of `queries`.
    pub fn search_batch(
        &self,
        queries: Matrix<'_>,
        params: &SearchParams,
    ) -> Result<Vec<Vec<ScoredPoint>>> {
        self.observed(
            Op::SearchBatch,
            || search_json(params, queries.rows()),
            || {
                self.enter()?;
                let dim = self.config.space(params.using.as_deref())?.dim;
                if queries.cols() != dim && queries.rows() > 0 {
                    return Err(Error::invalid(format!(
                        "queries have dimension {}, the {} has dimension {dim}",
                        queries.cols(),
                        vector_what(params.using.as_deref()),
                    )));
                }
                self.search_many(queries.data(), params)
            },
        )
    }

    /// Top-k search over the sparse vector `params.using` (exact dot products; points sharing
    /// no dimension with `query` are no results), with the collection's IDF when its modifier
    /// is `idf`.
    pub fn search_sparse(
        &self,
        query: &SparseVector,
        params: &SearchParams,
    ) -> Result<Vec<ScoredPoint>> {
        self.observed(
            Op::Search,
            || search_json(params, 1),
            || {
                self.enter()?;
                if params.k == 0 {
                    return Err(Error::invalid("k must be at least 1"));
                }
                let k = match self.config.lookup(params.using.as_deref())? {
                    Target::Sparse(k) => k,
                    Target::Dense(_) => {
                        return Err(Error::invalid(format!(
                            "a sparse query was given for the dense {}",
                            vector_what(params.using.as_deref())
                        )))
                    }
                };
                let q =
                    SparseVector::new(query.indices.clone(), query.values.clone(), "sparse query")?;
                let st = self.state.read();
                let q = match self.config.sparse[k].modifier {
                    Modifier::Idf => st.sparse_stats[k].weigh(&q),
                    Modifier::None => q,
                };
                let n = params.offset.saturating_add(params.k);
                let min_key = params.score_threshold.unwrap_or(f32::NEG_INFINITY);
                let cands = st.search_sparse(k, &q, n, min_key, params.filter.as_ref())?;
                st.scored(Distance::Dot, &cands, params)
            },
        )
    }

    /// The vector `params.using` names, for one query of `len` values (refused if that is
    /// not its dimension).
    pub(super) fn query_space(&self, len: usize, params: &SearchParams) -> Result<Space> {
        let sp = self.config.space(params.using.as_deref())?;
        if len != sp.dim {
            return Err(Error::invalid(format!(
                "query has dimension {len}, the {} has dimension {}",
                vector_what(params.using.as_deref()),
                sp.dim
            )));
        }
        Ok(sp)
    }

    fn search_many(&self, queries: &[f32], params: &SearchParams) -> Result<Vec<Vec<ScoredPoint>>> {
        check_search_params(params)?;
        let sp = self.config.space(params.using.as_deref())?;
        let metric = sp.distance;
        let q = self.prepare_queries(queries, sp, params.allow_zero)?;
        let st = self.waited(|| self.state.read());
        let n = params.offset.saturating_add(params.k);
        let tuning = search::Tuning::of(&self.config, sp, params.quantization.as_ref())?;
        let cands = st.search(
            sp,
            &q,
            n,
            search::min_key_for(metric, params.score_threshold),
            params,
            &tuning,
        )?;
        cands.iter().map(|c| st.scored(metric, c, params)).collect()
    }
}

/// What every dense search refuses of its parameters.
pub(super) fn check_search_params(params: &SearchParams) -> Result<()> {
    if params.k == 0 {
        return Err(Error::invalid("k must be at least 1"));
    }
    if params.ef == Some(0) {
        return Err(Error::invalid("ef must be at least 1"));
    }
    Ok(())
}
