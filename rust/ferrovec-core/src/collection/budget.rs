//! The memory budget of a store (`StorageOptions::memory_limit_bytes`, Python's
//! `memory_limit_mb`): what serving its open collections keeps resident, and the checks that
//! keep it under the limit. docs/SCALE.md, "Memory budget", says what is counted.
//!
//! A collection's *resident need* is what a search over it touches on every query: the codes and
//! graphs of indexed segments, their id maps, the f32 rows of segments that read them through
//! their mapping (unindexed segments, indexed ones of a collection with `vectors_on_disk=False`,
//! and, where the collection leaves it to the store, indexed ones below
//! `rows_from_disk_bytes`), and the rows still held in memory before a checkpoint seals them.
//! Payloads are read for the results only and are not counted, nor are payload indexes and
//! sparse vectors.

use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use serde_json::{json, Value};

use super::state::{Loc, SourceKind};
use super::Collection;
use crate::error::{Error, Result};
use crate::index::quant;
use crate::point::PointId;

const MIB: f64 = (1 << 20) as f64;

/// A store's limit and the collections loaded under it.
#[derive(Debug, Default)]
pub struct MemoryBudget {
    limit: Option<u64>,
    members: Mutex<Vec<Weak<Collection>>>,
}

/// A collection's resident need, by part.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Need {
    /// Codes, graphs and id maps of sealed segments.
    pub indexes: u64,
    /// f32 rows read through a mapping: sealed segments that do not read them from disk.
    pub mapped_rows: u64,
    /// Rows in memory: written since the last checkpoint, or frozen by one in progress.
    pub memory_rows: u64,
}

impl Need {
    pub fn total(&self) -> u64 {
        self.indexes + self.mapped_rows + self.memory_rows
    }

    fn describe(&self) -> String {
        format!(
            "{:.0} MiB of codes, graphs and ids, {:.0} MiB of f32 rows read through their mapping, \
             {:.0} MiB of rows not yet checkpointed",
            self.indexes as f64 / MIB,
            self.mapped_rows as f64 / MIB,
            self.memory_rows as f64 / MIB
        )
    }
}

impl MemoryBudget {
    pub fn new(limit: Option<u64>) -> Arc<Self> {
        Arc::new(MemoryBudget {
            limit,
            members: Mutex::new(Vec::new()),
        })
    }

    /// The resident need of every collection loaded under this budget except `but`.
    fn others(&self, but: &Collection) -> u64 {
        let mut members = self.members.lock();
        members.retain(|w| w.strong_count() > 0);
        members
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|c| !std::ptr::eq(c.as_ref(), but) && !c.is_retired())
            .map(|c| c.resident_need().total())
            .sum()
    }

    /// Take a collection just loaded (or created) under the budget: refused with
    /// `MemoryLimit` if serving it beside the others would pass the limit.
    pub fn admit(self: &Arc<Self>, col: &Arc<Collection>) -> Result<()> {
        // Without a limit nothing is counted: writes and stats skip the budget altogether.
        let Some(limit) = self.limit else {
            return Ok(());
        };
        let need = col.resident_need();
        let others = self.others(col);
        if others + need.total() > limit {
            return Err(Error::MemoryLimit(format!(
                "opening collection {:?} would pass the store's memory_limit_mb of {:.0}: \
                 serving it keeps {:.0} MiB resident ({}), and the collections already \
                 open keep {:.0} MiB; raise the limit, or use smaller codes (int4, binary; \
                 docs/SCALE.md)",
                col.name,
                limit as f64 / MIB,
                need.total() as f64 / MIB,
                need.describe(),
                others as f64 / MIB
            )));
        }
        let _ = col.budget.set(self.clone());
        self.members.lock().push(Arc::downgrade(col));
        Ok(())
    }

    /// Refuse a write adding `new_points` to `col` if the store's need would then pass the
    /// limit (the points counted at what they will take once indexed).
    fn check_write(&self, col: &Collection, new_points: usize) -> Result<()> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        if new_points == 0 {
            return Ok(());
        }
        let need = col.resident_need();
        let others = self.others(col);
        let growth = new_points as u64 * col.bytes_per_new_point();
        if others + need.total() + growth > limit {
            let transient = if need.memory_rows + need.mapped_rows > 0 {
                " (rows not yet indexed count at their f32 size until the optimizer indexes \
                 them: optimize() may make room)"
            } else {
                ""
            };
            return Err(Error::MemoryLimit(format!(
                "the write of {new_points} new points to collection {:?} was refused: the store \
                 keeps {:.0} MiB resident ({:.0} MiB for this collection: {}) and the points \
                 would add about {:.0} MiB, past its memory_limit_mb of {:.0}{transient}; \
                 nothing was written",
                col.name,
                (others + need.total()) as f64 / MIB,
                need.total() as f64 / MIB,
                need.describe(),
                growth as f64 / MIB,
                limit as f64 / MIB
            )));
        }
        Ok(())
    }

    /// The budget's figures for `stats`: `None` without a limit.
    pub fn stats(&self, col: &Collection) -> Option<Value> {
        let limit = self.limit?;
        let need = col.resident_need().total();
        Some(json!({
            "limit_bytes": limit,
            "store_need_bytes": self.others(col) + need,
        }))
    }
}

impl Collection {
    /// What serving this collection keeps resident now (see the module's comment).
    pub fn resident_need(&self) -> Need {
        let st = self.state.read();
        let row_bytes = st.width as u64 * 4;
        let mut need = Need {
            memory_rows: st.mem.len() as u64 * row_bytes,
            ..Need::default()
        };
        for s in &st.sources {
            match &s.kind {
                SourceKind::Sealed(seg) => {
                    need.indexes += seg.resident_index_bytes();
                    need.mapped_rows += seg.resident_row_bytes();
                }
                SourceKind::Frozen(rows) => need.memory_rows += rows.len() as u64 * row_bytes,
            }
        }
        need
    }

    /// About what a new point adds to the resident need once indexed: per vector its codes
    /// and its share of the graph (its f32 values instead of codes when walked on them, and
    /// beside them when the collection keeps its rows resident, `vectors_on_disk=False`), plus
    /// its id. In memory nothing is indexed: its f32 row.
    fn bytes_per_new_point(&self) -> u64 {
        let id = crate::segment::ID_ENTRY as u64 + 4;
        if self.dir.is_none() {
            return self.config.width() as u64 * 4 + id;
        }
        let m = self.config.hnsw.m as u64;
        // Level 0 holds 2M links and a count; upper levels ~1/M of the points with M links.
        let graph = (2 * m + 1) * 4 + (m + 1) * 4 / m.max(1) + 4;
        let rows_resident = self.config.vectors_on_disk == Some(false);
        let vectors: u64 = self
            .config
            .spaces()
            .into_iter()
            .map(|sp| match self.config.codes_for(sp) {
                Some(kind) if rows_resident => {
                    quant::row_bytes(kind, sp.dim) as u64 + sp.dim as u64 * 4 + graph
                }
                Some(kind) => quant::row_bytes(kind, sp.dim) as u64 + graph,
                None => sp.dim as u64 * 4 + graph,
            })
            .sum();
        vectors + id
    }

    /// The store's memory budget, if it has a limit, for `stats`.
    pub(super) fn budget_stats(&self) -> Option<Value> {
        self.budget.get().and_then(|b| b.stats(self))
    }

    /// Refuse an upsert of `ids` (`found`: where each is now) whose new points would pass the
    /// store's memory budget. Without a budget nothing is counted.
    pub(super) fn check_budget(&self, ids: &[PointId], found: &[Option<Loc>]) -> Result<()> {
        let Some(budget) = self.budget.get() else {
            return Ok(());
        };
        let new_points = {
            let st = self.state.read();
            // Rows in memory are replaced in place (`locate_all` leaves them out).
            ids.iter()
                .zip(found)
                .filter(|(id, f)| f.is_none() && !st.mem.index.contains_key(*id))
                .count()
        };
        budget.check_write(self, new_points)
    }
}
