//! The metrics in Prometheus' text format (0.0.4), encoded by the `prometheus-client` crate
//! from a sample of every collection's counters and state taken at the scrape.

use std::collections::BTreeMap;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::metrics::{HistogramValues, Op};
use crate::error::{Error, Result};

/// One collection's figures at a scrape.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    pub collection: String,
    /// Per kind of call.
    pub ops: Vec<OpSample>,
    pub log_appends: u64,
    pub log_appended_bytes: u64,
    pub log_fsyncs: u64,
    pub log_fsync_latency: HistogramValues,
    pub log_bytes: u64,
    pub log_files: usize,
    /// Seconds since the oldest record still in the log was written (0: empty log).
    pub log_age_seconds: f64,
    pub checkpoints: u64,
    pub merges: u64,
    pub optimizer_seconds: f64,
    pub optimizer_queue_points: usize,
    pub optimizer_failed: bool,
    pub lock_wait_seconds: f64,
    pub points: usize,
    pub indexed_points: usize,
    pub unindexed_points: usize,
    pub segments: usize,
    pub deleted_ratio: f64,
    pub disk_bytes: u64,
    pub mapped_bytes: BTreeMap<&'static str, u64>,
    pub resident_bytes: BTreeMap<&'static str, u64>,
    pub processes: usize,
}

/// One kind of call's figures at a scrape.
#[derive(Clone, Debug)]
pub struct OpSample {
    pub op: Op,
    pub count: u64,
    pub errors: u64,
    pub slow: u64,
    pub latency: HistogramValues,
}

/// Every metric family: name (without `_total`), type, help.
pub const FAMILIES: &[(&str, MetricType, &str)] = &[
    (
        "ferrovec_operations",
        MetricType::Counter,
        "Calls, per collection and kind of call.",
    ),
    (
        "ferrovec_operation_errors",
        MetricType::Counter,
        "Calls that raised an error.",
    ),
    (
        "ferrovec_slow_operations",
        MetricType::Counter,
        "Calls recorded by the slow-operation profiler.",
    ),
    (
        "ferrovec_operation_duration_seconds",
        MetricType::Histogram,
        "Duration of calls.",
    ),
    (
        "ferrovec_log_appends",
        MetricType::Counter,
        "Records appended to the write-ahead log by this process.",
    ),
    (
        "ferrovec_log_appended_bytes",
        MetricType::Counter,
        "Bytes appended to the write-ahead log by this process.",
    ),
    (
        "ferrovec_log_fsyncs",
        MetricType::Counter,
        "fsyncs of the write-ahead log by this process.",
    ),
    (
        "ferrovec_log_fsync_duration_seconds",
        MetricType::Histogram,
        "Duration of the write-ahead log's fsyncs.",
    ),
    (
        "ferrovec_log_bytes",
        MetricType::Gauge,
        "Bytes of write-ahead log not yet checkpointed.",
    ),
    (
        "ferrovec_log_files",
        MetricType::Gauge,
        "Write-ahead log files.",
    ),
    (
        "ferrovec_log_age_seconds",
        MetricType::Gauge,
        "Age of the oldest record not yet checkpointed (0: none).",
    ),
    (
        "ferrovec_checkpoints",
        MetricType::Counter,
        "Checkpoints (seals of the appendable rows) written by this process.",
    ),
    (
        "ferrovec_optimizer_merges",
        MetricType::Counter,
        "Index builds, merges and vacuums finished by this process.",
    ),
    (
        "ferrovec_optimizer_seconds",
        MetricType::Counter,
        "Time this process spent in checkpoints, merges and index builds.",
    ),
    (
        "ferrovec_optimizer_queue_points",
        MetricType::Gauge,
        "Points waiting to be indexed.",
    ),
    (
        "ferrovec_optimizer_failed",
        MetricType::Gauge,
        "1 if the background optimizer's last run failed.",
    ),
    (
        "ferrovec_lock_wait_seconds",
        MetricType::Counter,
        "Time calls spent waiting for the collection's locks.",
    ),
    ("ferrovec_points", MetricType::Gauge, "Live points."),
    (
        "ferrovec_points_indexed",
        MetricType::Gauge,
        "Live points in segments searched through a graph (or small enough to scan).",
    ),
    (
        "ferrovec_points_unindexed",
        MetricType::Gauge,
        "Live points searched exactly, waiting for an index.",
    ),
    (
        "ferrovec_segments",
        MetricType::Gauge,
        "Segments, the appendable rows included.",
    ),
    (
        "ferrovec_deleted_ratio",
        MetricType::Gauge,
        "Deleted rows over all rows of the sealed segments.",
    ),
    (
        "ferrovec_disk_bytes",
        MetricType::Gauge,
        "Bytes of segment files and the manifest.",
    ),
    (
        "ferrovec_mapped_bytes",
        MetricType::Gauge,
        "Bytes of the collection's files mapped into this process, per part.",
    ),
    (
        "ferrovec_resident_bytes",
        MetricType::Gauge,
        "Bytes of those mappings resident in memory, per part.",
    ),
    (
        "ferrovec_processes_attached",
        MetricType::Gauge,
        "Processes that have the collection open.",
    ),
];

/// Check that every name in `names` is a metric family (with or without `_total`).
pub fn check_names(names: &[String]) -> Result<()> {
    for n in names {
        let base = n.strip_suffix("_total").unwrap_or(n);
        if !FAMILIES.iter().any(|f| f.0 == base || f.0 == n) {
            return Err(Error::invalid(format!(
                "unknown metric {n:?}; the metrics are {}",
                FAMILIES.iter().map(|f| f.0).collect::<Vec<_>>().join(", ")
            )));
        }
    }
    Ok(())
}

#[derive(Debug)]
struct Samples {
    samples: Vec<Sample>,
    only: Option<Vec<String>>,
}

/// The text for `samples`, only the families in `only` if given (names checked).
pub fn encode(samples: Vec<Sample>, only: Option<&[String]>) -> Result<String> {
    if let Some(names) = only {
        check_names(names)?;
    }
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Samples {
        samples,
        only: only.map(|o| {
            o.iter()
                .map(|n| n.strip_suffix("_total").unwrap_or(n).to_string())
                .collect()
        }),
    }));
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
        .map_err(|_| Error::internal("encoding the metrics failed"))?;
    Ok(out)
}

type Labels<'a> = Vec<(&'static str, &'a str)>;

impl Samples {
    fn counter(
        &self,
        enc: &mut DescriptorEncoder<'_>,
        name: &str,
        series: Vec<(Labels<'_>, f64)>,
    ) -> std::fmt::Result {
        let (_, kind, help) = family(name);
        let mut m = enc.encode_descriptor(name, help, None, kind)?;
        for (labels, v) in series {
            let mut fam = m.encode_family(&labels)?;
            match kind {
                MetricType::Counter => fam.encode_counter::<NoLabelSet, f64, f64>(&v, None)?,
                _ => fam.encode_gauge(&v)?,
            }
        }
        Ok(())
    }

    fn histogram(
        &self,
        enc: &mut DescriptorEncoder<'_>,
        name: &str,
        series: Vec<(Labels<'_>, &HistogramValues)>,
    ) -> std::fmt::Result {
        let (_, kind, help) = family(name);
        let mut m = enc.encode_descriptor(name, help, None, kind)?;
        for (labels, h) in series {
            // The encoder sums the buckets itself: hand it each bucket's own count.
            let mut buckets = Vec::with_capacity(h.buckets.len() + 1);
            let mut below = 0;
            for &(le, cumulative) in &h.buckets {
                buckets.push((le, cumulative - below));
                below = cumulative;
            }
            buckets.push((f64::INFINITY, h.count - below));
            m.encode_family(&labels)?.encode_histogram::<NoLabelSet>(
                h.sum_seconds,
                h.count,
                &buckets,
                None,
            )?;
        }
        Ok(())
    }

    fn wanted(&self, name: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|n| n == name))
    }

    /// A family with one series per collection.
    fn per_collection(
        &self,
        enc: &mut DescriptorEncoder<'_>,
        name: &str,
        value: impl Fn(&Sample) -> f64,
    ) -> std::fmt::Result {
        if !self.wanted(name) {
            return Ok(());
        }
        let series = self
            .samples
            .iter()
            .map(|s| (vec![("collection", s.collection.as_str())], value(s)))
            .collect();
        self.counter(enc, name, series)
    }

    /// A family with one series per collection and kind of call.
    fn per_op(
        &self,
        enc: &mut DescriptorEncoder<'_>,
        name: &str,
        value: impl Fn(&OpSample) -> u64,
    ) -> std::fmt::Result {
        if !self.wanted(name) {
            return Ok(());
        }
        let mut series = Vec::new();
        for s in &self.samples {
            for o in &s.ops {
                let labels = vec![("collection", s.collection.as_str()), ("op", o.op.name())];
                series.push((labels, value(o) as f64));
            }
        }
        self.counter(enc, name, series)
    }

    /// A family with one series per collection and part of its files.
    fn per_part(
        &self,
        enc: &mut DescriptorEncoder<'_>,
        name: &str,
        value: impl Fn(&Sample) -> &BTreeMap<&'static str, u64>,
    ) -> std::fmt::Result {
        if !self.wanted(name) {
            return Ok(());
        }
        let mut series = Vec::new();
        for s in &self.samples {
            for (part, v) in value(s) {
                let labels = vec![("collection", s.collection.as_str()), ("part", *part)];
                series.push((labels, *v as f64));
            }
        }
        self.counter(enc, name, series)
    }
}

fn family(name: &str) -> (&'static str, MetricType, &'static str) {
    FAMILIES
        .iter()
        .find(|f| f.0 == name)
        .map_or(("", MetricType::Unknown, ""), |f| (f.0, f.1, f.2))
}

impl Collector for Samples {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        let e = &mut enc;
        self.per_op(e, "ferrovec_operations", |o| o.count)?;
        self.per_op(e, "ferrovec_operation_errors", |o| o.errors)?;
        self.per_op(e, "ferrovec_slow_operations", |o| o.slow)?;
        if self.wanted("ferrovec_operation_duration_seconds") {
            let mut series = Vec::new();
            for s in &self.samples {
                for o in &s.ops {
                    let labels = vec![("collection", s.collection.as_str()), ("op", o.op.name())];
                    series.push((labels, &o.latency));
                }
            }
            self.histogram(e, "ferrovec_operation_duration_seconds", series)?;
        }
        self.per_collection(e, "ferrovec_log_appends", |s| s.log_appends as f64)?;
        self.per_collection(e, "ferrovec_log_appended_bytes", |s| {
            s.log_appended_bytes as f64
        })?;
        self.per_collection(e, "ferrovec_log_fsyncs", |s| s.log_fsyncs as f64)?;
        if self.wanted("ferrovec_log_fsync_duration_seconds") {
            let series = self
                .samples
                .iter()
                .map(|s| {
                    (
                        vec![("collection", s.collection.as_str())],
                        &s.log_fsync_latency,
                    )
                })
                .collect();
            self.histogram(e, "ferrovec_log_fsync_duration_seconds", series)?;
        }
        self.per_collection(e, "ferrovec_log_bytes", |s| s.log_bytes as f64)?;
        self.per_collection(e, "ferrovec_log_files", |s| s.log_files as f64)?;
        self.per_collection(e, "ferrovec_log_age_seconds", |s| s.log_age_seconds)?;
        self.per_collection(e, "ferrovec_checkpoints", |s| s.checkpoints as f64)?;
        self.per_collection(e, "ferrovec_optimizer_merges", |s| s.merges as f64)?;
        self.per_collection(e, "ferrovec_optimizer_seconds", |s| s.optimizer_seconds)?;
        self.per_collection(e, "ferrovec_optimizer_queue_points", |s| {
            s.optimizer_queue_points as f64
        })?;
        self.per_collection(e, "ferrovec_optimizer_failed", |s| {
            f64::from(u8::from(s.optimizer_failed))
        })?;
        self.per_collection(e, "ferrovec_lock_wait_seconds", |s| s.lock_wait_seconds)?;
        self.per_collection(e, "ferrovec_points", |s| s.points as f64)?;
        self.per_collection(e, "ferrovec_points_indexed", |s| s.indexed_points as f64)?;
        self.per_collection(e, "ferrovec_points_unindexed", |s| {
            s.unindexed_points as f64
        })?;
        self.per_collection(e, "ferrovec_segments", |s| s.segments as f64)?;
        self.per_collection(e, "ferrovec_deleted_ratio", |s| s.deleted_ratio)?;
        self.per_collection(e, "ferrovec_disk_bytes", |s| s.disk_bytes as f64)?;
        self.per_part(e, "ferrovec_mapped_bytes", |s| &s.mapped_bytes)?;
        self.per_part(e, "ferrovec_resident_bytes", |s| &s.resident_bytes)?;
        self.per_collection(e, "ferrovec_processes_attached", |s| s.processes as f64)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::metrics::Histogram;

    #[test]
    fn text_has_every_family_and_unknown_names_are_refused() {
        let h = Histogram::default();
        h.observe(std::time::Duration::from_millis(2));
        let mut s = Sample {
            collection: "docs".into(),
            points: 42,
            ..Sample::default()
        };
        s.ops.push(OpSample {
            op: Op::Search,
            count: 3,
            errors: 1,
            slow: 0,
            latency: h.values(),
        });
        s.mapped_bytes.insert("vectors", 4096);
        let text = encode(vec![s.clone()], None).expect("encode");
        for (name, _, _) in FAMILIES {
            assert!(text.contains(&format!("# TYPE {name}")), "{name} missing");
        }
        assert!(text.contains("ferrovec_operations_total{collection=\"docs\",op=\"search\"} 3"));
        assert!(text.contains("ferrovec_points{collection=\"docs\"} 42"));
        assert!(text.contains(
            "ferrovec_operation_duration_seconds_bucket{collection=\"docs\",op=\"search\",le=\"0.0025\"} 1"
        ));
        assert!(text.contains(
            "ferrovec_operation_duration_seconds_bucket{collection=\"docs\",op=\"search\",le=\"+Inf\"} 1"
        ));
        assert!(text.contains(
            "ferrovec_operation_duration_seconds_bucket{collection=\"docs\",op=\"search\",le=\"0.001\"} 0"
        ));
        assert!(text.contains("ferrovec_mapped_bytes{collection=\"docs\",part=\"vectors\"} 4096"));
        let only = encode(vec![s.clone()], Some(&["ferrovec_points".into()])).expect("encode");
        assert!(only.contains("ferrovec_points{") && !only.contains("ferrovec_operations"));
        let ok = encode(vec![s.clone()], Some(&["ferrovec_operations_total".into()]));
        assert!(ok.is_ok());
        let bad = encode(vec![s], Some(&["ferrovec_nope".into()]));
        assert!(matches!(bad, Err(Error::InvalidInput(_))));
    }
}
