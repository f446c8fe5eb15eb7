//! A `workqueue_depth`-like view of kube-runtime's scheduler, which keeps its queue to itself.
//!
//! The controller reports what it feeds the scheduler and what the scheduler hands out: a
//! LabelJob is *queued* when a watch event triggers it (its own change that passed the trigger
//! filter, or a change of a child it owns) and when a pass asks for a timed requeue (queued from
//! the moment it is due); it leaves the queue when its pass starts. Like client-go's workqueue,
//! a LabelJob counts once however many events arrive for it before its pass.
//!
//! Metrics (`name` = the controller): `workqueue_depth` (LabelJobs queued now, computed at each
//! scrape), `workqueue_adds_total` (times a LabelJob entered the queue) and
//! `workqueue_queue_duration_seconds` (how long it waited there before its pass).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// `name` label of the workqueue metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// The queue's (controller's) name.
    pub name: String,
}

/// When each queued LabelJob (`namespace/name`) became, or becomes, due.
#[derive(Debug, Default)]
struct Entries {
    due: HashMap<String, Instant>,
}

/// The queue view.
#[derive(Debug)]
pub struct WorkQueue {
    name: String,
    entries: Mutex<Entries>,
    adds: Family<QueueLabels, Counter>,
    waits: Family<QueueLabels, Histogram>,
}

/// The scrape-time depth gauge.
#[derive(Debug)]
struct Depth(Arc<WorkQueue>);

impl Collector for Depth {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let gauge = ConstGauge::new(self.0.depth(Instant::now()) as i64);
        let mut metric = encoder.encode_descriptor(
            "workqueue_depth",
            "Current depth of workqueue",
            None,
            gauge.metric_type(),
        )?;
        let labels = QueueLabels { name: self.0.name.clone() };
        gauge.encode(metric.encode_family(&labels)?)
    }
}

impl WorkQueue {
    /// An empty queue called `name`.
    pub fn new(name: &str) -> Self {
        WorkQueue {
            name: name.to_string(),
            entries: Mutex::default(),
            adds: Family::default(),
            waits: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 4.0, 10))),
        }
    }

    fn labels(&self) -> QueueLabels {
        QueueLabels { name: self.name.clone() }
    }

    /// Register the queue's metrics in `registry` (the root).
    pub fn register(self: &Arc<Self>, registry: &mut Registry) {
        registry.register_collector(Box::new(Depth(self.clone())));
        registry.register("workqueue_adds", "Total number of adds handled by workqueue", self.adds.clone());
        registry.register_with_unit(
            "workqueue_queue_duration",
            "How long an item stays in workqueue before being requested",
            Unit::Seconds,
            self.waits.clone(),
        );
        let _ = self.adds.get_or_create(&self.labels());
        let _ = self.waits.get_or_create(&self.labels());
    }

    /// `key` is due at `at` (now for a trigger); an earlier due time is kept.
    fn add(&self, key: &str, at: Instant) {
        let Ok(mut e) = self.entries.lock() else { return };
        let due = e.due.entry(key.to_string()).or_insert(at);
        if at < *due {
            *due = at;
        }
        self.adds.get_or_create(&self.labels()).inc();
    }

    /// A watch event triggered a pass of `key`.
    pub fn triggered(&self, key: &str) {
        let Ok(e) = self.entries.lock() else { return };
        let queued = e.due.get(key).is_some_and(|d| *d <= Instant::now());
        drop(e);
        if !queued {
            self.add(key, Instant::now());
        }
    }

    /// A pass of `key` asked to be requeued after `delay`.
    pub fn requeued(&self, key: &str, delay: Duration) {
        self.add(key, Instant::now() + delay);
    }

    /// The pass of `key` starts: it leaves the queue (its wait since it was due is observed).
    pub fn started(&self, key: &str) {
        let Ok(mut e) = self.entries.lock() else { return };
        if let Some(due) = e.due.remove(key) {
            let now = Instant::now();
            let waited = now.saturating_duration_since(due);
            if due <= now {
                self.waits.get_or_create(&self.labels()).observe(waited.as_secs_f64());
            }
        }
    }

    /// LabelJobs due at `now` and not yet started.
    pub fn depth(&self, now: Instant) -> usize {
        self.entries.lock().map_or(0, |e| e.due.values().filter(|d| **d <= now).count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_each_due_labeljob_once_until_its_pass() {
        let q = Arc::new(WorkQueue::new("labeljob"));
        let mut registry = Registry::default();
        q.register(&mut registry);
        q.triggered("ns/a");
        q.triggered("ns/a");
        q.triggered("ns/b");
        q.requeued("ns/c", Duration::from_secs(3600));
        assert_eq!(q.depth(Instant::now()), 2, "a twice is one; c is not due yet");
        assert_eq!(q.depth(Instant::now() + Duration::from_secs(3601)), 3, "c is due in an hour");
        q.started("ns/a");
        assert_eq!(q.depth(Instant::now()), 1);
        // A trigger while c waits for its requeue makes it due now.
        q.triggered("ns/c");
        assert_eq!(q.depth(Instant::now()), 2);
        let text = crate::metrics::encode(&registry).expect("encodes");
        assert!(text.contains("workqueue_depth{name=\"labeljob\"} 2"), "{text}");
        assert!(text.contains("workqueue_adds_total{name=\"labeljob\"} 4"), "{text}");
        assert!(text.contains("workqueue_queue_duration_seconds_count{name=\"labeljob\"} 1"), "{text}");
    }
}
