//! Prometheus metrics of the controller, in one `prometheus-client` registry with the prefix
//! `labeljob_operator`: reconciles, failures by error category, reconcile duration, and the
//! number of LabelJobs in each phase.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use labeljob_api::Phase;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Label of the failure counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CategoryLabels {
    /// The error category (`Error::category`).
    pub category: String,
}

/// Label of the phase gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    /// The LabelJob phase.
    pub phase: String,
}

/// The controller's metrics.
#[derive(Debug)]
pub struct Metrics {
    reconciles: Counter,
    failures: Family<CategoryLabels, Counter>,
    duration: Histogram,
    jobs: Family<PhaseLabels, Gauge>,
    /// Phase of every LabelJob seen, keyed by `namespace/name`, to recompute the gauge.
    phases: Mutex<HashMap<String, Phase>>,
}

const PHASES: [Phase; 7] = [
    Phase::Pending,
    Phase::Provisioning,
    Phase::Running,
    Phase::Merging,
    Phase::Succeeded,
    Phase::Failed,
    Phase::Suspended,
];

impl Metrics {
    /// Create the metrics and register them in `registry` (already prefixed by the caller).
    pub fn register(registry: &mut Registry) -> Self {
        let m = Metrics {
            reconciles: Counter::default(),
            failures: Family::default(),
            duration: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            jobs: Family::default(),
            phases: Mutex::new(HashMap::new()),
        };
        registry.register("reconciles", "Reconcile passes started", m.reconciles.clone());
        registry.register(
            "reconcile_failures",
            "Reconcile passes that failed, by category",
            m.failures.clone(),
        );
        registry.register_with_unit(
            "reconcile_duration",
            "Duration of reconcile passes",
            prometheus_client::registry::Unit::Seconds,
            m.duration.clone(),
        );
        registry.register("jobs", "LabelJobs by phase", m.jobs.clone());
        for p in PHASES {
            m.jobs.get_or_create(&PhaseLabels { phase: p.to_string() }).set(0);
        }
        m
    }

    /// A new registry with the `labeljob_operator` prefix and these metrics in it.
    pub fn new_registry() -> (Registry, Self) {
        let mut registry = Registry::with_prefix("labeljob_operator");
        let m = Self::register(&mut registry);
        (registry, m)
    }

    /// Count a reconcile pass that took `elapsed`.
    pub fn reconciled(&self, elapsed: Duration) {
        self.reconciles.inc();
        self.duration.observe(elapsed.as_secs_f64());
    }

    /// Count a failed pass under its error category.
    pub fn failed(&self, category: &str) {
        self.failures.get_or_create(&CategoryLabels { category: category.to_string() }).inc();
    }

    /// Record the phase of `key` (`namespace/name`); `None` forgets it (deleted).
    pub fn set_phase(&self, key: &str, phase: Option<Phase>) {
        let Ok(mut phases) = self.phases.lock() else { return };
        match phase {
            Some(p) => phases.insert(key.to_string(), p),
            None => phases.remove(key),
        };
        for p in PHASES {
            let n = phases.values().filter(|v| **v == p).count();
            self.jobs.get_or_create(&PhaseLabels { phase: p.to_string() }).set(n as i64);
        }
    }
}

/// The registry rendered in the Prometheus text format.
pub fn encode(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_encoded_with_the_prefix() {
        let (registry, m) = Metrics::new_registry();
        m.reconciled(Duration::from_millis(20));
        m.failed("ApplyFailed");
        m.failed("ApplyFailed");
        m.set_phase("ns/a", Some(Phase::Running));
        m.set_phase("ns/b", Some(Phase::Running));
        m.set_phase("ns/b", Some(Phase::Succeeded));
        m.set_phase("ns/c", Some(Phase::Failed));
        m.set_phase("ns/c", None);
        let text = encode(&registry).expect("encodes");
        assert!(text.contains("labeljob_operator_reconciles_total 1"), "{text}");
        assert!(
            text.contains("labeljob_operator_reconcile_failures_total{category=\"ApplyFailed\"} 2"),
            "{text}"
        );
        assert!(text.contains("labeljob_operator_reconcile_duration_seconds_count 1"), "{text}");
        assert!(text.contains("labeljob_operator_jobs{phase=\"Running\"} 1"), "{text}");
        assert!(text.contains("labeljob_operator_jobs{phase=\"Succeeded\"} 1"), "{text}");
        assert!(text.contains("labeljob_operator_jobs{phase=\"Failed\"} 0"), "{text}");
    }
}
