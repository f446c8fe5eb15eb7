//! Leader election on a `coordination.k8s.io/v1` Lease, so that two replicas never both act.
//! A replica creates the Lease or takes it over once it expired, and renews it every third of
//! its duration with `replace` (optimistic concurrency on `resourceVersion`: a conflict means
//! another replica won). A leader that cannot renew within two thirds of the duration steps down.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::PostParams;
use tokio::sync::watch;

/// Why a Lease round failed (conflicts are not errors: they mean "not leader").
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The apiserver refused or failed a Lease call.
    #[error("lease {name}: {source}")]
    Api {
        /// Lease name.
        name: String,
        /// The apiserver error.
        #[source]
        source: kube::Error,
    },
}

/// What to do with the Lease as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No Lease yet: create it holding it.
    Create,
    /// We hold it: renew.
    Renew,
    /// Expired or released: take it over.
    TakeOver,
    /// Someone else holds a valid Lease.
    Wait {
        /// The current holder.
        holder: String,
    },
}

/// Decide from the observed Lease spec (pure).
pub fn decide(lease: Option<&LeaseSpec>, identity: &str, now: Timestamp, default_secs: i32) -> Decision {
    let Some(spec) = lease else { return Decision::Create };
    match spec.holder_identity.as_deref() {
        Some(h) if h == identity => Decision::Renew,
        None | Some("") => Decision::TakeOver,
        Some(holder) => {
            let secs = spec.lease_duration_seconds.unwrap_or(default_secs);
            let renewed = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()).map(|t| t.0);
            match renewed {
                Some(t) if t + SignedDuration::from_secs(i64::from(secs)) > now => {
                    Decision::Wait { holder: holder.to_string() }
                }
                _ => Decision::TakeOver,
            }
        }
    }
}

/// One replica's side of the election.
#[derive(Clone)]
pub struct LeaderElection {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

impl LeaderElection {
    /// Elect through Lease `name` in the namespace of `api`, as `identity`.
    pub fn new(
        api: Api<Lease>,
        name: impl Into<String>,
        identity: impl Into<String>,
        duration: Duration,
    ) -> Self {
        LeaderElection { api, name: name.into(), identity: identity.into(), duration }
    }

    /// The identity written into the Lease.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    fn secs(&self) -> i32 {
        i32::try_from(self.duration.as_secs()).unwrap_or(i32::MAX)
    }

    fn err(&self, source: kube::Error) -> LeaderError {
        LeaderError::Api { name: self.name.clone(), source }
    }

    /// One round at time `now`: `Ok(true)` when this replica holds the Lease afterwards.
    pub async fn try_acquire_at(&self, now: Timestamp) -> Result<bool, LeaderError> {
        let current = self.api.get_opt(&self.name).await.map_err(|e| self.err(e))?;
        let decision =
            decide(current.as_ref().and_then(|l| l.spec.as_ref()), &self.identity, now, self.secs());
        let stamp = Some(MicroTime(now));
        let result = match (decision, current) {
            (Decision::Wait { .. }, _) => return Ok(false),
            (Decision::Create, _) => {
                let lease = Lease {
                    metadata: ObjectMeta { name: Some(self.name.clone()), ..ObjectMeta::default() },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(self.identity.clone()),
                        lease_duration_seconds: Some(self.secs()),
                        acquire_time: stamp.clone(),
                        renew_time: stamp,
                        lease_transitions: Some(0),
                        ..LeaseSpec::default()
                    }),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            (decision, Some(mut lease)) => {
                let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
                if decision == Decision::TakeOver {
                    spec.holder_identity = Some(self.identity.clone());
                    spec.acquire_time = stamp.clone();
                    spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
                }
                spec.lease_duration_seconds = Some(self.secs());
                spec.renew_time = stamp;
                self.api.replace(&self.name, &PostParams::default(), &lease).await
            }
            (_, None) => return Ok(false),
        };
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_conflict(&e) => Ok(false),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Give the Lease up (on shutdown) so that another replica need not wait for expiry.
    pub async fn release(&self) -> Result<(), LeaderError> {
        let Some(mut lease) = self.api.get_opt(&self.name).await.map_err(|e| self.err(e))? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else { return Ok(()) };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(()),
            Err(e) if is_conflict(&e) => Ok(()),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Keep trying and renewing forever, publishing leadership on `tx`. A leader that fails
    /// to renew for two thirds of the duration publishes `false`.
    pub async fn run(self, tx: watch::Sender<bool>) {
        let retry = self.duration / 3;
        let renew_deadline = self.duration * 2 / 3;
        let mut last_renewed: Option<tokio::time::Instant> = None;
        loop {
            match self.try_acquire_at(Timestamp::now()).await {
                Ok(true) => {
                    if last_renewed.is_none() {
                        tracing::info!(lease = %self.name, identity = %self.identity, "became leader");
                    }
                    last_renewed = Some(tokio::time::Instant::now());
                }
                Ok(false) => {
                    if last_renewed.take().is_some() {
                        tracing::warn!(lease = %self.name, "lost the lease to another replica");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "lease round failed");
                    if last_renewed.is_some_and(|t| t.elapsed() >= renew_deadline) {
                        tracing::warn!(lease = %self.name, "could not renew in time: stepping down");
                        last_renewed = None;
                    }
                }
            }
            tx.send_replace(last_renewed.is_some());
            tokio::time::sleep(retry).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::FakeApiServer;

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).expect("valid")
    }

    fn spec(holder: Option<&str>, renewed: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(String::from),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(ts(renewed))),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn decisions() {
        assert_eq!(decide(None, "a", ts(0), 15), Decision::Create);
        assert_eq!(decide(Some(&spec(Some("a"), 0)), "a", ts(100), 15), Decision::Renew);
        assert_eq!(decide(Some(&spec(Some("b"), 0)), "a", ts(14), 15), Decision::Wait { holder: "b".into() });
        assert_eq!(decide(Some(&spec(Some("b"), 0)), "a", ts(15), 15), Decision::TakeOver);
        assert_eq!(decide(Some(&spec(None, 0)), "a", ts(1), 15), Decision::TakeOver);
    }

    #[tokio::test]
    async fn two_replicas_never_both_lead() {
        let (fake, client) = FakeApiServer::start();
        let api: Api<Lease> = Api::namespaced(client, "ops");
        let d = Duration::from_secs(15);
        let a = LeaderElection::new(api.clone(), "labeljob-operator", "a", d);
        let b = LeaderElection::new(api, "labeljob-operator", "b", d);

        assert!(a.try_acquire_at(ts(0)).await.expect("round"));
        assert!(!b.try_acquire_at(ts(1)).await.expect("round"));
        assert!(a.try_acquire_at(ts(5)).await.expect("renews"));
        assert!(!b.try_acquire_at(ts(19)).await.expect("still valid"), "renewed at 5, valid to 20");
        assert!(b.try_acquire_at(ts(21)).await.expect("takes over"));
        // `a` comes back: it sees b's valid Lease and does not act.
        assert!(!a.try_acquire_at(ts(22)).await.expect("round"));

        let lease = fake.object("/apis/coordination.k8s.io/v1/namespaces/ops/leases/labeljob-operator");
        assert_eq!(lease["spec"]["holderIdentity"], "b");
        assert_eq!(lease["spec"]["leaseTransitions"], 1);

        b.release().await.expect("releases");
        assert!(a.try_acquire_at(ts(23)).await.expect("free again"));
        fake.assert_requests_allowed_by_rbac();
    }
}
