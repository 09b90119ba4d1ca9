//! Writes: upserts, deletes, payload and vector updates. Each is validated whole (`validate`),
//! planned against the state under the writer lock, logged as one record, applied, and then
//! made as durable as the durability mode promises.

use serde_json::json;

use super::observed::{filter_json, selector_json};
use super::optimize;
use super::state::{self, State};
use super::validate::{check_payload_sizes, copies, given_layout, validate_ids, Layout};
use super::{Collection, WriteGuard};
use crate::batch::{Matrix, Vectors};
use crate::cancel::{Cancel, NEVER};
use crate::config::Space;
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::observe::trace::{span, Phase};
use crate::observe::Op;
use crate::payload::PayloadOp;
use crate::point::{Payload, PointId, SparseVector};
use crate::query::Selector;
use crate::wal::record::OpRef;

/// With the background optimizer, a write that finds the log this many times
/// `checkpoint_log_bytes` seals it itself, waiting for a build under way: what is held in
/// memory before a checkpoint is bounded by about this many times `checkpoint_log_bytes`.
const STALL_FACTOR: u64 = 4;

impl Collection {
    /// Insert or replace points. `vectors` holds `ids.len()` rows, row-major, each with all of
    /// a point's vectors concatenated in the collection's order (`CollectionConfig::width`
    /// values). The batch is applied whole or, if any row is invalid, not at all.
    pub fn upsert(
        &self,
        ids: &[PointId],
        vectors: &[f32],
        payloads: Option<&[Option<Payload>]>,
    ) -> Result<()> {
        let width = self.config.width();
        if vectors.len() != ids.len() * width {
            return Err(Error::invalid(format!(
                "got {n} ids but {} vector values; expected {n} vectors of dimension {width} ({} values)",
                vectors.len(),
                ids.len() * width,
                n = ids.len(),
            )));
        }
        let rows = Vectors::Rows(Matrix::new(vectors, ids.len(), width)?);
        self.upsert_batch(ids, &rows, payloads, false, &NEVER)
    }

    /// Insert or replace points, as the caller gives their vectors (see [`Vectors`]). With
    /// `allow_zero`, zero vectors under cosine are stored as zero (scoring 0 against every
    /// query), as Qdrant does, instead of rejected. The batch is applied whole or, if anything
    /// in it is invalid, not at all; `cancel` stops it until the moment it is logged.
    pub fn upsert_batch(
        &self,
        ids: &[PointId],
        vectors: &Vectors<'_>,
        payloads: Option<&[Option<Payload>]>,
        allow_zero: bool,
        cancel: &Cancel,
    ) -> Result<()> {
        self.observed(
            Op::Upsert,
            || json!({"points": ids.len(), "allow_zero": allow_zero}),
            || {
                self.check_open()?;
                let n = ids.len();
                if let Some(p) = payloads {
                    if p.len() != n {
                        return Err(Error::invalid(format!(
                            "got {n} ids but {} payloads",
                            p.len()
                        )));
                    }
                }
                validate_ids(ids, true, cancel)?;
                let laid = self.lay_out(n, vectors, Layout::Stored, allow_zero, cancel)?;
                let payload_bytes: Vec<Option<Box<[u8]>>> = match payloads {
                    None => vec![None; n],
                    Some(p) => p
                        .iter()
                        .map(|p| {
                            p.as_ref()
                                .map(|p| serde_json::to_vec(p).map(Vec::into_boxed_slice))
                                .transpose()
                        })
                        .collect::<std::result::Result<_, _>>()
                        .map_err(|e| {
                            Error::invalid(format!("payload is not serialisable as JSON: {e}"))
                        })?,
                };
                check_payload_sizes(ids, &payload_bytes)?;
                if n == 0 {
                    return Ok(());
                }
                cancel.check("the upsert")?;

                let sparse: Vec<Vec<Option<SparseVector>>> =
                    laid.sparse.into_iter().map(|(_, column)| column).collect();
                let guard = self.begin_write()?;
                let found = self.state.read().locate_all(ids)?;
                self.check_budget(ids, &found)?;
                let seq = self.log_upsert(&guard, ids, &laid.rows, &sparse, &payload_bytes)?;
                {
                    let _s = span(Phase::Apply);
                    self.state
                        .write()
                        .apply_upsert(ids, &laid.rows, sparse, payload_bytes, &found);
                }
                drop(guard);
                self.after_write(seq)
            },
        )
    }

    /// Append an upsert record (rows already validated and prepared); its sequence number, or
    /// `None` for an in-memory collection. The caller holds the writer lock.
    fn log_upsert(
        &self,
        guard: &WriteGuard<'_>,
        ids: &[PointId],
        vectors: &[f32],
        sparse: &[Vec<Option<SparseVector>>],
        payloads: &[Option<Box<[u8]>>],
    ) -> Result<Option<u64>> {
        let Some(wal) = &self.wal else {
            return Ok(None);
        };
        let refs: Vec<Option<&serde_bytes::Bytes>> = payloads
            .iter()
            .map(|p| p.as_deref().map(serde_bytes::Bytes::new))
            .collect();
        let vectors = bytemuck::cast_slice(vectors);
        // Collections without sparse vectors log the record format 5 wrote.
        let op = if self.config.sparse.is_empty() {
            OpRef::Upsert {
                ids,
                vectors,
                payloads: &refs,
            }
        } else {
            OpRef::UpsertSparse {
                ids,
                vectors,
                sparse,
                payloads: &refs,
            }
        };
        Ok(Some(self.append(guard, wal, &op)?))
    }

    /// Delete points by id; returns how many of them existed.
    pub fn delete(&self, ids: &[PointId]) -> Result<usize> {
        self.observed(
            Op::Delete,
            || json!({"ids": ids.len()}),
            || {
                self.check_open()?;
                validate_ids(ids, false, &NEVER)?;
                let guard = self.begin_write()?;
                self.delete_locked(guard, ids)
            },
        )
    }

    /// Delete every point matching `filter` (resolved to ids, which are what is logged).
    pub fn delete_filter(&self, filter: &Filter) -> Result<usize> {
        self.observed(
            Op::Delete,
            || json!({"filter": filter_json(Some(filter))}),
            || {
                self.check_open()?;
                let guard = self.begin_write()?;
                let ids = self.state.read().ids_matching(filter)?;
                self.delete_locked(guard, &ids)
            },
        )
    }

    fn delete_locked(&self, guard: WriteGuard<'_>, ids: &[PointId]) -> Result<usize> {
        let (existing, found) = {
            let st = self.state.read();
            let mut seen = std::collections::HashSet::new();
            let mut existing = Vec::new();
            let mut found = Vec::new();
            for id in ids {
                if !seen.insert(id) {
                    continue;
                }
                if let Some(loc) = st.locate(id)? {
                    existing.push(id.clone());
                    found.push(Some(loc));
                }
            }
            (existing, found)
        };
        if existing.is_empty() {
            return Ok(0);
        }
        let seq = match &self.wal {
            Some(wal) => Some(self.append(&guard, wal, &OpRef::Delete { ids: &existing })?),
            None => None,
        };
        let removed = self.state.write().apply_delete(&existing, &found);
        drop(guard);
        self.after_write(seq)?;
        Ok(removed)
    }

    /// Apply a payload operation to the points `sel` picks. Returns how many points changed.
    ///
    /// The operation is resolved (filter to ids, then each point's new payload) under the writer
    /// lock and logged as an upsert of the resulting points. A log record that only said "set
    /// key k on ids" would not be replayable: a checkpoint running meanwhile may already have
    /// persisted the old copies' deletion, so replay could no longer find them.
    pub fn update_payload(&self, sel: Selector<'_>, op: &PayloadOp) -> Result<usize> {
        self.observed(
            Op::Payload,
            || json!({"selector": selector_json(&sel)}),
            || {
                let written = self.write_selected(sel, |st, ids| st.plan_payload_op(ids, op))?;
                Ok(written.len())
            },
        )
    }

    /// Replace vectors of the points of `ids` that exist, keeping their payloads (and their
    /// other vectors), as one logged write (Qdrant's `update_vectors`); returns the ids that
    /// were found. `vectors` as for upserts: `Rows` replaces all of a point's vectors, `Named`
    /// those named. Ids must be distinct. `allow_zero` as in `upsert_batch`.
    pub fn update_vectors(
        &self,
        ids: &[PointId],
        vectors: &Vectors<'_>,
        allow_zero: bool,
    ) -> Result<Vec<PointId>> {
        self.observed(
            Op::UpdateVectors,
            || json!({"points": ids.len()}),
            || {
                self.check_open()?;
                validate_ids(ids, true, &NEVER)?;
                let laid = self.lay_out(ids.len(), vectors, Layout::Given, allow_zero, &NEVER)?;
                let guard = self.begin_write()?;
                let copies = copies(&self.config, &laid.spaces);
                let plan = self.state.read().plan_vector_update(
                    ids,
                    &laid.rows,
                    &copies,
                    laid.width,
                    &laid.sparse,
                )?;
                self.write_plan(guard, plan)
            },
        )
    }

    /// Remove the vectors `names` (`""`: the unnamed one) from the points `sel` picks (Qdrant's
    /// `delete_vectors`), keeping their payloads and other vectors, as one logged write; a
    /// search of one of those vectors no longer finds them. Returns how many points exist among
    /// those picked.
    pub fn delete_vectors(&self, sel: Selector<'_>, names: &[String]) -> Result<usize> {
        self.observed(
            Op::DeleteVectors,
            || json!({"selector": selector_json(&sel), "vectors": names}),
            || {
                self.check_open()?;
                let mut unique: Vec<String> = Vec::with_capacity(names.len());
                for name in names {
                    if !unique.contains(name) {
                        unique.push(name.clone());
                    }
                }
                let (sparse_names, dense_names): (Vec<String>, Vec<String>) = unique
                    .into_iter()
                    .partition(|n| self.config.sparse_field(n).is_some());
                let spaces = if dense_names.is_empty() && !sparse_names.is_empty() {
                    Vec::new()
                } else {
                    self.named_spaces(&dense_names)?
                };
                let sparse_fields: Vec<usize> = sparse_names
                    .iter()
                    .filter_map(|n| self.config.sparse_field(n).map(|(k, _)| k))
                    .collect();
                let (given, layout) = given_layout(&spaces);
                let copies = copies(&self.config, &layout);
                let written = self.write_selected(sel, |st, ids| {
                    // The new values of those vectors: all NaN, absent; sparse ones: none.
                    let nan = vec![f32::NAN; ids.len() * given];
                    let none: Vec<(usize, Vec<Option<SparseVector>>)> = sparse_fields
                        .iter()
                        .map(|&k| (k, vec![None; ids.len()]))
                        .collect();
                    st.plan_vector_update(ids, &nan, &copies, given, &none)
                })?;
                Ok(written.len())
            },
        )
    }

    /// Rewrite the points `sel` picks (each once) as `plan` makes them, under the writer lock
    /// (see `update_payload` for why the plan, not the selector, is logged).
    fn write_selected(
        &self,
        sel: Selector<'_>,
        plan: impl FnOnce(&State, &[PointId]) -> Result<state::PayloadPlan>,
    ) -> Result<Vec<PointId>> {
        self.check_open()?;
        if let Selector::Ids(ids) = sel {
            validate_ids(ids, false, &NEVER)?;
        }
        let guard = self.begin_write()?;
        let plan = {
            let st = self.state.read();
            let mut ids = match sel {
                Selector::Ids(ids) => ids.to_vec(),
                Selector::Filter(f) => st.ids_matching(f)?,
            };
            let mut seen = std::collections::HashSet::new();
            ids.retain(|id| seen.insert(id.clone()));
            plan(&st, &ids)?
        };
        self.write_plan(guard, plan)
    }

    /// The vectors `names` name, in that order; a name given twice is an error.
    fn named_spaces(&self, names: &[String]) -> Result<Vec<Space>> {
        if names.is_empty() {
            return Err(Error::invalid("no vector named"));
        }
        let mut spaces: Vec<Space> = Vec::with_capacity(names.len());
        for name in names {
            let sp = self.config.space(Some(name))?;
            if spaces.iter().any(|p| p.index == sp.index) {
                return Err(Error::invalid(format!("vector {name:?} is given twice")));
            }
            spaces.push(sp);
        }
        Ok(spaces)
    }

    /// Log and apply a plan made under the writer lock (`guard`), then keep the log's
    /// durability promise; returns the ids of the points written.
    fn write_plan(&self, guard: WriteGuard<'_>, plan: state::PayloadPlan) -> Result<Vec<PointId>> {
        if plan.ids.is_empty() {
            return Ok(Vec::new());
        }
        check_payload_sizes(&plan.ids, &plan.payloads)?;
        let written = plan.ids.clone();
        let seq = self.log_upsert(
            &guard,
            &plan.ids,
            &plan.vectors,
            &plan.sparse,
            &plan.payloads,
        )?;
        self.state.write().apply_payload_plan(plan);
        drop(guard);
        self.after_write(seq)?;
        Ok(written)
    }

    fn after_write(&self, seq: Option<u64>) -> Result<()> {
        self.note_write();
        let (Some(wal), Some(seq)) = (&self.wal, seq) else {
            return Ok(());
        };
        {
            let _s = span(Phase::Fsync);
            wal.commit(seq)?;
        }
        let checkpoint = self.options.checkpoint_log_bytes;
        let log = self.log_bytes();
        if log > checkpoint {
            if self.options.background_optimizer && log <= checkpoint.saturating_mul(STALL_FACTOR) {
                self.optimizer.wake();
            } else {
                // No background optimizer, or it is busy in a long build (it holds `structure`
                // for minutes at 10M points) while the log outgrows it: seal here, after that
                // build, so the rows held in memory stay bounded (a write stall, as in LSM
                // stores). Past the bound, wait for another process's build too.
                let stalled = self.options.background_optimizer;
                let waited = std::time::Instant::now();
                let _s = self.structure.lock();
                if self.log_bytes() > checkpoint {
                    if let Some(_lease) = self.lease(stalled)? {
                        optimize::seal(self)?;
                    }
                }
                if stalled {
                    self.metrics.note_write_stall(waited.elapsed());
                }
            }
        }
        Ok(())
    }
}
