//! Wiring of the controller process: logging (tracing, RUST_LOG, plain or JSON), Kubernetes
//! client, CRD check, admin server, leader election, and the kube-runtime `Controller` on
//! LabelJob owning Jobs, Deployments, Services and ConfigMaps ([`controller`]). The owned
//! watches are reflected into stores that the reconciler reads the children from; LabelJob
//! changes trigger a pass only when they matter (generation, finalizers, deletion, uid), not
//! when the operator's own status write comes back. Every trigger is reported to the metrics'
//! queue view (`workqueue_depth`), and the client's requests are counted by verb and code
//! (`rest_client_requests_total`). Runs until SIGTERM/Ctrl-C, or until the leader Lease is lost.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::hash::{DefaultHasher, Hash, Hasher};

use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::ListParams;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Client};
use labeljob_api::LabelJob;
use tokio::sync::watch;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::admin::{self, Health};
use crate::args::{Args, LogFormat};
use crate::controller::{ChildStores, Context, OperatorConfig, error_policy, reconcile};
use crate::events::EventRecorder;
use crate::leader::LeaderElection;
use crate::metrics::{Metrics, RestMetrics, RestMetricsLayer, WorkQueue};
use crate::{FIELD_MANAGER, JOB_LABEL};

/// Why the operator stopped.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// No kubeconfig or in-cluster config.
    #[error("cannot find a Kubernetes configuration (kubeconfig or in-cluster config): {0}")]
    Config(#[source] kube::config::InferConfigError),
    /// The client could not be built from the configuration.
    #[error("cannot create a Kubernetes client (kubeconfig or in-cluster config): {0}")]
    Client(#[source] kube::Error),
    /// The LabelJob CRD is not installed.
    #[error(
        "the LabelJob CRD (labeljobs.labeljob.dev) is not installed: install it with `kubectl apply -f crds/labeljob.yaml` or `helm install labeljob charts/labeljob`"
    )]
    CrdMissing(#[source] kube::Error),
    /// Listing LabelJobs failed for another reason (e.g. RBAC).
    #[error("cannot list LabelJobs: {0}")]
    List(#[source] kube::Error),
    /// The admin address could not be bound.
    #[error("cannot bind the admin server to {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Another replica took the leader Lease: stop acting (the pod restarts and waits).
    #[error("lost the leader lease; stopping so that only one replica acts")]
    LostLease,
}

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot install the log subscriber: {0}")]
pub struct TelemetryError(#[source] tracing_subscriber::util::TryInitError);

/// Install the global log subscriber: filter from RUST_LOG (default `info`), plain or JSON.
pub fn init_logging(format: LogFormat) -> Result<(), TelemetryError> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Plain => registry.with(fmt::layer()).try_init(),
        LogFormat::Json => registry.with(fmt::layer().json().flatten_event(true)).try_init(),
    }
    .map_err(TelemetryError)
}

/// The LabelJob CRD as YAML (what `labeljob-operator crd` prints).
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    labeljob_api::crd_yaml()
}

/// Fail with an install hint when the CRD is missing.
pub async fn check_crd(api: &Api<LabelJob>) -> Result<(), RuntimeError> {
    match api.list(&ListParams::default().limit(1)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.is_not_found() => Err(RuntimeError::CrdMissing(kube::Error::Api(s))),
        Err(e) => Err(RuntimeError::List(e)),
    }
}

/// An Api over one namespace, or all of them.
fn owned<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    namespace.map_or_else(|| Api::all(client.clone()), |ns| Api::namespaced(client.clone(), ns))
}

/// One result of the controller's stream.
pub type ReconcileResult =
    Result<(ObjectRef<LabelJob>, Action), kube::runtime::controller::Error<crate::Error, watcher::Error>>;

/// What a LabelJob change must differ in to trigger a pass: its spec (generation), its
/// finalizers, its deletion, or its identity — not its status (the operator's own writes).
pub fn trigger_hash(lj: &LabelJob) -> Option<u64> {
    let m = &lj.metadata;
    let mut h = DefaultHasher::new();
    (&m.uid, m.generation, &m.finalizers, m.deletion_timestamp.as_ref().map(|t| t.0.as_nanosecond()))
        .hash(&mut h);
    Some(h.finish())
}

/// The reconcile results stream of a controller over the LabelJobs of `namespace` (all when
/// None), with `ctx` built around the children's watch caches.
pub fn controller<F: FnOnce(ChildStores) -> Context>(
    client: &Client,
    namespace: Option<&str>,
    ctx: F,
    on_signal: bool,
) -> (Arc<Context>, impl Stream<Item = ReconcileResult> + use<F>) {
    let children = watcher::Config::default().labels(JOB_LABEL).any_semantic();
    let (jobs, jobs_w) = reflector::store();
    let (deployments, deployments_w) = reflector::store();
    let (services, services_w) = reflector::store();
    let (config_maps, config_maps_w) = reflector::store();
    let ctx = Arc::new(ctx(ChildStores { jobs, deployments, services, config_maps }));
    let (labeljobs, labeljobs_w) = reflector::store();
    let queue = ctx.metrics.queue.clone();
    let trigger = watcher(owned::<LabelJob>(client, namespace), watcher::Config::default().any_semantic())
        .default_backoff()
        .reflect(labeljobs_w)
        .applied_objects()
        .predicate_filter(trigger_hash, Default::default())
        .inspect_ok(move |lj| queue.triggered(&crate::controller::key(lj)));
    let child_trigger = |q: Arc<WorkQueue>| {
        move |child: &dyn ChildMeta| {
            if let Some(key) = child.owner_key() {
                q.triggered(&key);
            }
        }
    };
    let watch = |cfg: &watcher::Config| cfg.clone();
    let mut c = Controller::for_stream(trigger, labeljobs)
        .owns_stream(
            watcher(owned::<Job>(client, namespace), watch(&children))
                .default_backoff()
                .reflect(jobs_w)
                .touched_objects()
                .inspect_ok({
                    let t = child_trigger(ctx.metrics.queue.clone());
                    move |o: &Job| t(o)
                }),
        )
        .owns_stream(
            watcher(owned::<Deployment>(client, namespace), watch(&children))
                .default_backoff()
                .reflect(deployments_w)
                .touched_objects()
                .inspect_ok({
                    let t = child_trigger(ctx.metrics.queue.clone());
                    move |o: &Deployment| t(o)
                }),
        )
        .owns_stream(
            watcher(owned::<Service>(client, namespace), watch(&children))
                .default_backoff()
                .reflect(services_w)
                .touched_objects()
                .inspect_ok({
                    let t = child_trigger(ctx.metrics.queue.clone());
                    move |o: &Service| t(o)
                }),
        )
        .owns_stream(
            watcher(owned::<ConfigMap>(client, namespace), children)
                .default_backoff()
                .reflect(config_maps_w)
                .touched_objects()
                .inspect_ok({
                    let t = child_trigger(ctx.metrics.queue.clone());
                    move |o: &ConfigMap| t(o)
                }),
        );
    if on_signal {
        c = c.shutdown_on_signal();
    }
    (ctx.clone(), c.run(reconcile, error_policy, ctx))
}

/// A child's view for the queue: the `namespace/name` of the LabelJob controlling it.
trait ChildMeta {
    fn owner_key(&self) -> Option<String>;
}

impl<K: kube::Resource> ChildMeta for K {
    fn owner_key(&self) -> Option<String> {
        let m = self.meta();
        let owner = m
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true) && o.kind == "LabelJob")?;
        Some(format!("{}/{}", m.namespace.as_deref().unwrap_or_default(), owner.name))
    }
}

/// A client for `config` whose requests are counted in `rest`.
pub fn client(config: kube::Config, rest: RestMetrics) -> Result<Client, RuntimeError> {
    let builder = kube::client::ClientBuilder::try_from(config).map_err(RuntimeError::Client)?;
    Ok(builder.with_layer(&RestMetricsLayer::new(rest)).build())
}

fn default_identity() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "labeljob-operator".into());
    format!("{host}-{}", std::process::id())
}

async fn wait_for(rx: &mut watch::Receiver<bool>, want: bool) {
    while *rx.borrow_and_update() != want {
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Run the operator until a signal (or the loss of the Lease).
pub async fn run(args: Args) -> Result<(), RuntimeError> {
    let Args {
        command: _,
        worker_image,
        worker_image_pull_policy,
        worker_service_account,
        admin_addr,
        log_format: _,
        namespace,
        leader_election,
        lease_name,
        lease_namespace,
        lease_duration_seconds,
        lease_identity,
    } = args;
    let (registry, metrics) = Metrics::new_registry();
    let config = kube::Config::infer().await.map_err(RuntimeError::Config)?;
    let client = client(config, metrics.rest.clone())?;
    check_crd(&owned(&client, namespace.as_deref())).await?;

    let health = Arc::new(Health::new(leader_election));
    let listener = tokio::net::TcpListener::bind(admin_addr)
        .await
        .map_err(|source| RuntimeError::Bind { addr: admin_addr, source })?;
    let (stop_admin, admin_stopped) = tokio::sync::oneshot::channel::<()>();
    let admin = tokio::spawn(admin::serve(listener, health.clone(), Arc::new(registry), async {
        let _ = admin_stopped.await;
    }));
    tracing::info!(%admin_addr, namespace = namespace.as_deref().unwrap_or("*"), "admin server up");

    let identity = lease_identity.unwrap_or_else(default_identity);
    let mut leadership = None;
    if leader_election {
        let lease_ns = lease_namespace
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| client.default_namespace().to_string());
        let elector = LeaderElection::new(
            Api::namespaced(client.clone(), &lease_ns),
            lease_name,
            identity.clone(),
            Duration::from_secs(u64::from(lease_duration_seconds)),
        );
        let (tx, mut rx) = watch::channel(false);
        let task = tokio::spawn(elector.clone().run(tx));
        tracing::info!(%identity, lease_namespace = %lease_ns, "waiting for the leader lease");
        tokio::select! {
            _ = wait_for(&mut rx, true) => health.set_leader(true),
            _ = tokio::signal::ctrl_c() => {
                task.abort();
                let _ = stop_admin.send(());
                return Ok(());
            }
        }
        leadership = Some((elector, rx, task));
    }

    let recorder = EventRecorder::new(client.clone(), FIELD_MANAGER, Some(identity));
    let config = OperatorConfig {
        worker_image,
        image_pull_policy: worker_image_pull_policy,
        service_account: worker_service_account,
    };
    let progress = crate::progress::store_source(client.clone());
    let make = |stores| {
        Context::new(client.clone(), recorder, Arc::new(metrics), config, progress).with_stores(stores)
    };
    let (_ctx, results) = controller(&client, namespace.as_deref(), make, true);
    let controller = results.for_each(|r| async move {
        match r {
            Ok((obj, _)) => tracing::debug!(object = %obj, "reconciled"),
            Err(e) => tracing::debug!(error = %e, "reconcile error"),
        }
    });
    health.set_controller_running(true);
    tracing::info!("controller running");

    let result = match &mut leadership {
        Some((_, rx, _)) => tokio::select! {
            _ = controller => Ok(()),
            _ = wait_for(rx, false) => Err(RuntimeError::LostLease),
        },
        None => {
            controller.await;
            Ok(())
        }
    };
    health.set_controller_running(false);
    if let Some((elector, _, task)) = leadership {
        task.abort();
        if result.is_ok()
            && let Err(e) = elector.release().await
        {
            tracing::warn!(error = %e, "cannot release the lease");
        }
    }
    let _ = stop_admin.send(());
    let _ = admin.await;
    tracing::info!("stopped");
    result
}
