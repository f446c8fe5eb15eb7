//! Prometheus metrics of the operator, in one `prometheus-client` registry.
//!
//! Under the names controller-runtime and client-go use, so that the dashboards and alerts
//! written for Go operators work unchanged (no prefix: those names are the point):
//! - `controller_runtime_reconcile_total{controller, result}` — passes by result: `success`,
//!   `requeue_after` (a timed requeue was asked), `error`;
//! - `controller_runtime_reconcile_errors_total{controller}`;
//! - `controller_runtime_reconcile_time_seconds{controller}` — a histogram of pass durations;
//! - `controller_runtime_active_workers{controller}` — passes running now;
//! - `workqueue_depth{name}`, `workqueue_adds_total{name}`,
//!   `workqueue_queue_duration_seconds{name}` — LabelJobs waiting for a pass ([`queue`]);
//! - `rest_client_requests_total{code, method, verb}` — apiserver requests ([`rest`]).
//!
//! With the prefix `labeljob_operator`, what only LabelJob has: failed passes by error
//! category (`labeljob_operator_reconcile_failures_total{category}`) and LabelJobs by phase
//! (`labeljob_operator_jobs{phase}`). `controller` and `name` are `labeljob`.

pub mod queue;
pub mod rest;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use labeljob_api::Phase;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

pub use queue::WorkQueue;
pub use rest::{RestMetrics, RestMetricsLayer};

/// The `controller` label of the controller-runtime metrics (and `name` of the workqueue's).
pub const CONTROLLER: &str = "labeljob";

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

/// `controller` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    /// The controller's name.
    pub controller: String,
}

/// `controller` and `result` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// The controller's name.
    pub controller: String,
    /// `success`, `requeue_after` or `error`.
    pub result: String,
}

/// How a pass ended, as controller-runtime names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done; the next pass comes with a change.
    Success,
    /// Done; the next pass is due after a delay.
    RequeueAfter,
    /// Failed.
    Error,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::RequeueAfter => "requeue_after",
            Outcome::Error => "error",
        }
    }
}

/// The controller's metrics.
#[derive(Debug)]
pub struct Metrics {
    reconciles: Family<ResultLabels, Counter>,
    errors: Family<ControllerLabels, Counter>,
    duration: Family<ControllerLabels, Histogram>,
    active: Family<ControllerLabels, Gauge>,
    failures: Family<CategoryLabels, Counter>,
    jobs: Family<PhaseLabels, Gauge>,
    /// LabelJobs waiting for a pass.
    pub queue: Arc<WorkQueue>,
    /// Apiserver requests (counted by [`RestMetricsLayer`] on the client).
    pub rest: RestMetrics,
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

fn controller() -> ControllerLabels {
    ControllerLabels { controller: CONTROLLER.to_string() }
}

impl Metrics {
    /// Create the metrics and register them in `registry` (the root: the controller-runtime
    /// names at the top, the rest under `labeljob_operator`).
    pub fn register(registry: &mut Registry) -> Self {
        let m = Metrics {
            reconciles: Family::default(),
            errors: Family::default(),
            duration: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.005, 2.0, 14))),
            active: Family::default(),
            failures: Family::default(),
            jobs: Family::default(),
            queue: Arc::new(WorkQueue::new(CONTROLLER)),
            rest: RestMetrics::default(),
            phases: Mutex::new(HashMap::new()),
        };
        registry.register(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller",
            m.reconciles.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_errors",
            "Total number of reconciliation errors per controller",
            m.errors.clone(),
        );
        registry.register_with_unit(
            "controller_runtime_reconcile_time",
            "Length of time per reconciliation per controller",
            Unit::Seconds,
            m.duration.clone(),
        );
        registry.register(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            m.active.clone(),
        );
        m.queue.register(registry);
        m.rest.register(registry);
        let own = registry.sub_registry_with_prefix("labeljob_operator");
        own.register("reconcile_failures", "Reconcile passes that failed, by category", m.failures.clone());
        own.register("jobs", "LabelJobs by phase", m.jobs.clone());
        for p in PHASES {
            m.jobs.get_or_create(&PhaseLabels { phase: p.to_string() }).set(0);
        }
        for outcome in [Outcome::Success, Outcome::RequeueAfter, Outcome::Error] {
            let _ = m.reconciles.get_or_create(&ResultLabels {
                controller: CONTROLLER.to_string(),
                result: outcome.label().to_string(),
            });
        }
        let _ = m.errors.get_or_create(&controller());
        let _ = m.active.get_or_create(&controller());
        m
    }

    /// A new registry with these metrics in it.
    pub fn new_registry() -> (Registry, Self) {
        let mut registry = Registry::default();
        let m = Self::register(&mut registry);
        (registry, m)
    }

    /// A pass of `key` (`namespace/name`) starts: it leaves the queue and takes a worker.
    pub fn started(&self, key: &str) {
        self.queue.started(key);
        self.active.get_or_create(&controller()).inc();
    }

    /// Count a pass that took `elapsed` and ended with `outcome`.
    pub fn reconciled(&self, outcome: Outcome, elapsed: Duration) {
        self.active.get_or_create(&controller()).dec();
        let labels = ResultLabels { controller: CONTROLLER.to_string(), result: outcome.label().to_string() };
        self.reconciles.get_or_create(&labels).inc();
        self.duration.get_or_create(&controller()).observe(elapsed.as_secs_f64());
        if outcome == Outcome::Error {
            self.errors.get_or_create(&controller()).inc();
        }
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
    fn controller_runtime_names_and_the_labeljob_ones() {
        let (registry, m) = Metrics::new_registry();
        m.started("ns/a");
        m.reconciled(Outcome::RequeueAfter, Duration::from_millis(20));
        m.started("ns/a");
        m.reconciled(Outcome::Error, Duration::from_millis(20));
        m.failed("ApplyFailed");
        m.failed("ApplyFailed");
        m.set_phase("ns/a", Some(Phase::Running));
        m.set_phase("ns/b", Some(Phase::Running));
        m.set_phase("ns/b", Some(Phase::Succeeded));
        m.set_phase("ns/c", Some(Phase::Failed));
        m.set_phase("ns/c", None);
        let text = encode(&registry).expect("encodes");
        for line in [
            "controller_runtime_reconcile_total{controller=\"labeljob\",result=\"requeue_after\"} 1",
            "controller_runtime_reconcile_total{controller=\"labeljob\",result=\"error\"} 1",
            "controller_runtime_reconcile_total{controller=\"labeljob\",result=\"success\"} 0",
            "controller_runtime_reconcile_errors_total{controller=\"labeljob\"} 1",
            "controller_runtime_reconcile_time_seconds_count{controller=\"labeljob\"} 2",
            "controller_runtime_active_workers{controller=\"labeljob\"} 0",
            "workqueue_depth{name=\"labeljob\"} 0",
            "labeljob_operator_reconcile_failures_total{category=\"ApplyFailed\"} 2",
            "labeljob_operator_jobs{phase=\"Running\"} 1",
            "labeljob_operator_jobs{phase=\"Succeeded\"} 1",
            "labeljob_operator_jobs{phase=\"Failed\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert!(
            !text.contains("labeljob_operator_reconciles_total"),
            "no duplicate of the controller-runtime count"
        );
    }
}
