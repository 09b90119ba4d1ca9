//! Payload indexes: built for every sealed segment now and for every segment sealed later.

use std::sync::Arc;

use super::optimize;
use super::state::Source;
use super::{Collection, PayloadIndexDef, SEGMENTS_DIR};
use crate::error::{Error, Result};
use crate::filter::index::IndexKind;
use crate::payload::Path as KeyPath;
use crate::segment::Segment;

impl Collection {
    /// Index the payload values at `key` (a path) as `kind`, in every sealed segment now and
    /// in every segment sealed from now on. Re-creating an index of the same kind does nothing;
    /// another kind replaces it.
    pub fn create_payload_index(&self, key: &str, kind: IndexKind) -> Result<()> {
        self.check_open()?;
        KeyPath::parse(key, "key")?;
        let _s = self.structure.lock();
        self.check_open()?;
        let _lease = self.lease(true)?;
        let existing = self.state.read().index_def(key).cloned();
        match existing {
            Some(d) if d.kind == kind => return Ok(()),
            Some(_) => self.drop_index_locked(key)?,
            None => {}
        }
        let number = {
            let mut m = self.writer.lock();
            let n = m.next_index_number;
            m.next_index_number += 1;
            n
        };
        let def = PayloadIndexDef {
            key: key.to_string(),
            kind,
            number,
        };
        // No segment comes or goes while we hold `structure`; writes meanwhile land in the
        // appendable rows, which filters check one by one.
        let segs: Vec<Arc<Segment>> = self
            .state
            .read()
            .sources
            .iter()
            .filter_map(|s| s.segment().cloned())
            .collect();
        let mut built = Vec::new();
        for seg in segs {
            let idx = optimize::build_index(&def, &seg)?;
            if let Some(dir) = &self.dir {
                optimize::write_index_file(self, &dir.join(SEGMENTS_DIR), seg.id, number, &idx)?;
            }
            built.push((seg, Arc::new(idx)));
        }
        let mut m = self.writer.lock();
        let mut next = self.next_manifest(&m);
        next.payload_indexes.push(def.clone());
        for meta in &mut next.segments {
            if built.iter().any(|(s, _)| s.id == meta.id) {
                meta.indexes.push(number);
            }
        }
        if let Some(dir) = &self.dir {
            self.fs.sync_dir(&dir.join(SEGMENTS_DIR))?;
        }
        self.publish(&next)?;
        for (seg, idx) in built {
            seg.add_index(number, idx);
        }
        self.state.write().index_defs.push(def);
        *m = next;
        Ok(())
    }

    /// Remove the payload index on `key` (its files go once the manifest no longer names them).
    pub fn drop_payload_index(&self, key: &str) -> Result<()> {
        self.check_open()?;
        let _s = self.structure.lock();
        self.check_open()?;
        let _lease = self.lease(true)?;
        self.drop_index_locked(key)
    }

    fn drop_index_locked(&self, key: &str) -> Result<()> {
        let mut m = self.writer.lock();
        let Some(def) = m.payload_indexes.iter().find(|d| d.key == key).cloned() else {
            return Err(Error::invalid(format!(
                "there is no payload index on {key:?}"
            )));
        };
        let mut next = self.next_manifest(&m);
        next.payload_indexes.retain(|d| d.number != def.number);
        for meta in &mut next.segments {
            meta.indexes.retain(|&n| n != def.number);
        }
        self.publish(&next)?;
        {
            let mut st = self.state.write();
            st.index_defs.retain(|d| d.number != def.number);
            for seg in st.sources.iter().filter_map(Source::segment) {
                seg.remove_index(def.number);
            }
        }
        *m = next;
        drop(m);
        self.collect_garbage()
    }
}
