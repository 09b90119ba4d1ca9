//! `explain`: how a search or universal query would run, from the same planning code the
//! search itself uses (`graph_choice`, `filtered_plans`), and, with `analyze`, how it ran: the
//! call made under a trace, its time per phase and step and what it counted (PostgreSQL's
//! `EXPLAIN ANALYZE`).

use std::time::Instant;

use serde_json::{json, Value};

use super::observed::{filter_json, search_json};
use super::read::check_search_params;
use super::search::Tuning;
use super::state::{graph_choice, method, method_scan, walks_in_parallel, Choice, State, MEM};
use super::Collection;
use crate::config::{Space, Target};
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::observe::slow::{ms, trace_json};
use crate::observe::trace::Tracing;
use crate::query::universal::{Query, QueryRequest, Stage};
use crate::query::{QuantizationParams, SearchParams};

impl Collection {
    /// The plan of `search(query, params)`, run and measured too with `analyze`. Invalid
    /// input is refused exactly as `search` refuses it.
    pub fn explain_search(
        &self,
        query: &[f32],
        params: &SearchParams,
        analyze: bool,
    ) -> Result<Value> {
        self.enter()?;
        let sp = self.query_space(query.len(), params)?;
        check_search_params(params)?;
        self.prepare_queries(query, sp, params.allow_zero)?;
        let mut plan = {
            let st = self.state.read();
            let n = params.offset.saturating_add(params.k);
            let ef = params.ef.unwrap_or(self.config.hnsw.ef_construct).max(n);
            json!({
                "collection": self.name,
                "kind": "search",
                "params": search_json(params, 1),
                "ef": ef,
                "points": st.live,
                "sources": self.source_plans(&st, sp, params.filter.as_ref(), params.exact, ef, n, params.quantization.as_ref())?,
                "parallel": params.filter.as_ref().is_none_or(|f| f.is_empty())
                    && walks_in_parallel(1, self.walked_graph_sizes(&st, sp, params.exact)?),
            })
        };
        if analyze {
            plan["analyze"] = analyzed(|| self.search(query, params).map(|r| r.len()))?;
        }
        Ok(plan)
    }

    /// The plan of `query(req)`: its stage tree, each vector stage with the plan of its
    /// search; run and measured too with `analyze`.
    pub fn explain_query(
        &self,
        req: &QueryRequest,
        lookups: &super::Lookups,
        analyze: bool,
    ) -> Result<Value> {
        self.enter()?;
        let mut plan = {
            let st = self.state.read();
            json!({
                "collection": self.name,
                "kind": "query",
                "offset": req.offset,
                "points": st.live,
                "stage": self.stage_plan(&st, &req.stage)?,
            })
        };
        if analyze {
            plan["analyze"] = analyzed(|| self.query(req, lookups).map(|r| r.len()))?;
        }
        Ok(plan)
    }

    fn stage_plan(&self, st: &State, s: &Stage) -> Result<Value> {
        let prefetch = s
            .prefetch
            .iter()
            .map(|p| self.stage_plan(st, p))
            .collect::<Result<Vec<_>>>()?;
        let mut out = json!({
            "query": s.query.as_ref().map(Query::kind),
            "using": s.using,
            "limit": s.limit,
            "filter": filter_json(s.filter.as_ref()),
            "prefetch": prefetch,
        });
        let ranks_by_vector = s.query.as_ref().is_some_and(Query::is_vector);
        if ranks_by_vector {
            match self.config.lookup(s.using.as_deref())? {
                Target::Dense(sp) => {
                    let ef = s.ef.unwrap_or(self.config.hnsw.ef_construct).max(s.limit);
                    out["ef"] = json!(ef);
                    out["sources"] = self.source_plans(
                        st,
                        sp,
                        s.filter.as_ref(),
                        s.exact,
                        ef,
                        s.limit,
                        s.quantization.as_ref(),
                    )?;
                }
                Target::Sparse(_) => {
                    out["sources"] = json!([{
                        "source": "every segment's inverted index",
                        "method": "sparse",
                        "why": "sparse vectors are searched exactly through their inverted index (pruned by score bounds when weights are non-negative)",
                    }]);
                }
            }
        }
        if !s.prefetch.is_empty() && !ranks_by_vector {
            out["why"] = json!("ranks the candidates its prefetches found");
        }
        Ok(out)
    }

    /// The node counts of the graphs an unfiltered search of `sp` walks.
    fn walked_graph_sizes(
        &self,
        st: &State,
        sp: Space,
        exact: bool,
    ) -> Result<impl Iterator<Item = usize>> {
        let fst = self.config.hnsw.full_scan_threshold;
        let mut sizes = Vec::new();
        for s in &st.sources {
            if let Some(seg) = s.segment().filter(|_| graph_choice(s, exact, fst).walks()) {
                if let Some(g) = seg.graph(sp.index)? {
                    sizes.push(g.n);
                }
            }
        }
        Ok(sizes.into_iter())
    }

    /// Per source: how a search of `sp` for `n` results would treat it, and why.
    #[allow(clippy::too_many_arguments)]
    fn source_plans(
        &self,
        st: &State,
        sp: Space,
        filter: Option<&Filter>,
        exact: bool,
        ef: usize,
        n: usize,
        quantization: Option<&QuantizationParams>,
    ) -> Result<Value> {
        let tuning = Tuning::of(&self.config, sp, quantization)?;
        let fst = tuning.full_scan_threshold;
        let rescore = tuning.rescored(n);
        let mut out = Vec::new();
        if let Some(f) = filter.filter(|f| !f.is_empty()) {
            for p in st.filtered_plans(sp, f, exact, ef, &tuning)? {
                let live = if p.src == MEM {
                    st.mem.len()
                } else {
                    st.sources[p.src as usize].live()
                };
                let walked = p.graph.is_some();
                let mut indexed: Vec<&str> = st.filter_indexes(p.src, f)?.into_keys().collect();
                indexed.sort_unstable();
                let strategy = match (indexed.is_empty(), p.checked) {
                    (false, 0) => format!("payload index on {indexed:?} answered it"),
                    (false, c) => {
                        format!("payload index on {indexed:?}, then {c} payloads checked")
                    }
                    (true, c) => format!("no payload index for these keys: {c} payloads checked"),
                };
                out.push(json!({
                    "source": st.source_label(p.src),
                    "live": live,
                    "method": if walked {
                        method(true, p.coded.map(|(_, c)| c.kind))
                    } else {
                        method_scan(p.coded.map(|(_, c)| c.kind), false)
                    },
                    "why": p.why.to_string(),
                    "rescore": if p.coded.is_some() { rescore } else { None },
                    "filter": {
                        "matching": p.count,
                        "selectivity": p.count as f64 / live.max(1) as f64,
                        "strategy": strategy,
                        "applied": if walked {
                            "during the walk: non-matching nodes route but are never returned"
                        } else {
                            "before scoring: only matching rows are scored"
                        },
                    },
                }));
            }
            return Ok(Value::Array(out));
        }
        for (i, s) in st.sources.iter().enumerate() {
            let choice = graph_choice(s, exact, fst);
            let walked = choice.walks();
            let coded = match s.segment().filter(|_| walked && tuning.use_codes) {
                Some(seg) => seg.codes(sp.index)?.map(|c| c.kind),
                None => None,
            };
            out.push(json!({
                "source": st.source_label(i as u32),
                "rows": s.rows(),
                "live": s.live(),
                "method": method(walked, coded),
                "why": choice.to_string(),
                "rescore": if coded.is_some() { rescore } else { None },
            }));
        }
        if !st.mem.is_empty() {
            out.push(json!({
                "source": st.source_label(MEM),
                "rows": st.mem.len(),
                "live": st.mem.len(),
                "method": "exact",
                "why": Choice::Appendable.to_string(),
                "rescore": Value::Null,
            }));
        }
        Ok(Value::Array(out))
    }
}

/// Run `f` under a trace of its own: its time, phases, counts and steps as JSON.
fn analyzed(f: impl FnOnce() -> Result<usize>) -> Result<Value> {
    let tracing = Tracing::start()
        .ok_or_else(|| Error::invalid("explain(analyze=True) cannot run inside a traced call"))?;
    let started = Instant::now();
    let results = f();
    let took = started.elapsed();
    let trace = tracing.finish();
    let results = results?;
    let (phases, counts, steps) = trace_json(&trace, took);
    Ok(json!({
        "ms": ms(took),
        "results": results,
        "time_ms": phases,
        "counts": counts,
        "steps": steps,
    }))
}
