//! Retention: points whose datetime field is older than a maximum age are deleted, like
//! MongoDB's TTL indexes. The optimizer checks every `CHECK_INTERVAL_MS` (and `optimize()`
//! always does); the deletion is an ordinary logged delete of the expired ids.

use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;

use super::Collection;
use crate::config::Retention;
use crate::error::{Error, Result};
use crate::filter::index::IndexKind;
use crate::filter::Filter;
use crate::payload::Path as KeyPath;

/// How often the background optimizer looks for expired points.
pub const CHECK_INTERVAL_MS: u64 = 10_000;

impl Collection {
    /// Expire points whose RFC 3339 datetime at `retention.key` is more than
    /// `retention.max_age_secs` old (`None`: keep every point). A datetime payload index on
    /// the key is created if there is none; another kind of index on it is an error.
    pub fn set_retention(&self, retention: Option<Retention>) -> Result<()> {
        self.check_open()?;
        if let Some(r) = &retention {
            KeyPath::parse(&r.key, "retention key")?;
            if r.max_age_secs == 0 {
                return Err(Error::invalid(
                    "retention max_age must be at least 1 second",
                ));
            }
            match self.state.read().index_def(&r.key).map(|d| d.kind) {
                Some(IndexKind::Datetime) | None => {}
                Some(other) => {
                    return Err(Error::invalid(format!(
                        "retention key {:?} has a {} payload index; retention needs a datetime one",
                        r.key,
                        other.name()
                    )))
                }
            }
            self.create_payload_index(&r.key, IndexKind::Datetime)?;
        }
        let _s = self.structure.lock();
        self.check_open()?;
        let _lease = self.lease(true)?;
        let mut m = self.writer.lock();
        let mut next = self.next_manifest(&m);
        next.retention = retention;
        self.publish(&next)?;
        *m = next;
        drop(m);
        self.next_expiry_ms.store(0, Ordering::Relaxed);
        self.optimizer.wake();
        Ok(())
    }

    pub fn retention(&self) -> Option<Retention> {
        self.writer.lock().retention.clone()
    }

    /// Pretend the wall clock reads `now` (seconds since the Unix epoch) when judging
    /// retention; `None` restores the system clock. For tests.
    pub fn set_clock(&self, now: Option<f64>) {
        *self.clock.lock() = now;
        self.next_expiry_ms.store(0, Ordering::Relaxed);
        self.optimizer.wake();
    }

    fn now_micros(&self) -> i64 {
        match *self.clock.lock() {
            Some(s) => (s * 1e6) as i64,
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as i64),
        }
    }

    /// Delete the points retention says are expired now; returns how many.
    pub fn expire(&self) -> Result<usize> {
        self.check_open()?;
        let Some(r) = self.retention() else {
            return Ok(0);
        };
        let age = i64::try_from(r.max_age_secs.saturating_mul(1_000_000)).unwrap_or(i64::MAX);
        let cutoff = DateTime::<Utc>::from_timestamp_micros(self.now_micros().saturating_sub(age))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
            .to_rfc3339_opts(SecondsFormat::Micros, true);
        let filter = Filter::parse(&json!({"must": [{"key": r.key, "range": {"lt": cutoff}}]}))?;
        let n = self.delete_filter(&filter)?;
        if n > 0 {
            log::info!(
                "collection {}: retention deleted {n} expired points",
                self.name
            );
        }
        Ok(n)
    }

    /// Whether the background optimizer should check retention now (and if so, not again for
    /// `CHECK_INTERVAL_MS`).
    pub(super) fn expiry_due(&self) -> bool {
        if self.writer.lock().retention.is_none() {
            return false;
        }
        let now = self.opened.elapsed().as_millis() as u64;
        if now < self.next_expiry_ms.load(Ordering::Relaxed) {
            return false;
        }
        self.next_expiry_ms
            .store(now + CHECK_INTERVAL_MS, Ordering::Relaxed);
        true
    }
}
