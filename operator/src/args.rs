//! Command-line arguments: every flag is `--long` and also read from an environment variable.
//! No subcommand runs the controller; `crd` and `rbac` print generated manifests.

use std::net::SocketAddr;

use clap::{Parser, Subcommand, ValueEnum};

/// LabelJob operator: reconciles `labeljob.dev/v1alpha1` LabelJobs into an inference
/// Deployment, sharded worker Jobs and a merge Job. With no subcommand it runs the controller
/// against the current kubeconfig context, or the in-cluster config.
#[derive(Parser, Debug, Clone)]
#[command(name = "labeljob-operator", version)]
pub struct Args {
    /// What to do (default: run the controller).
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Image of the `labeljob` worker binary used by plan, shard, merge and inference pods.
    #[arg(long, env = "LABELJOB_WORKER_IMAGE", default_value = "ghcr.io/labeljob/labeljob-worker:latest")]
    pub worker_image: String,

    /// Pull policy of the worker image (Always, IfNotPresent, Never; unset: the cluster default).
    #[arg(long, env = "LABELJOB_WORKER_IMAGE_PULL_POLICY")]
    pub worker_image_pull_policy: Option<String>,

    /// ServiceAccount of worker and inference pods (its token is not mounted).
    #[arg(long, env = "LABELJOB_WORKER_SERVICE_ACCOUNT", default_value = "labeljob-worker")]
    pub worker_service_account: String,

    /// Address of the admin server (/healthz, /readyz, /metrics).
    #[arg(long, env = "LABELJOB_ADMIN_ADDR", default_value = "0.0.0.0:8080")]
    pub admin_addr: SocketAddr,

    /// Log format; the filter comes from RUST_LOG (default `info`).
    #[arg(long, env = "LABELJOB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Plain)]
    pub log_format: LogFormat,

    /// Watch LabelJobs in this namespace only (unset: all namespaces).
    #[arg(long, env = "LABELJOB_NAMESPACE")]
    pub namespace: Option<String>,

    /// Elect a leader through a coordination.k8s.io Lease so that only one replica acts.
    #[arg(long, env = "LABELJOB_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,

    /// Name of the leader-election Lease.
    #[arg(long, env = "LABELJOB_LEASE_NAME", default_value = "labeljob-operator")]
    pub lease_name: String,

    /// Namespace of the leader-election Lease (unset: POD_NAMESPACE, else the kubeconfig's).
    #[arg(long, env = "LABELJOB_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,

    /// Seconds a Lease stays valid without renewal; it is renewed every third of that.
    #[arg(long, env = "LABELJOB_LEASE_DURATION_SECONDS", default_value_t = 15,
          value_parser = clap::value_parser!(u32).range(3..=3600))]
    pub lease_duration_seconds: u32,

    /// Identity of this replica in the Lease (unset: the host name plus the process id).
    #[arg(long, env = "POD_NAME")]
    pub lease_identity: Option<String>,
}

/// Subcommands.
#[derive(Subcommand, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Print the LabelJob CustomResourceDefinition as YAML.
    Crd,
    /// Print the operator's RBAC rules as JSON ([{apiGroups, resources, verbs}]).
    Rbac,
    /// Print the chart's rules template (charts/labeljob/templates/_operator-rules.tpl; `make
    /// generate` writes it).
    RbacChart,
}

/// Log output format.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Plain,
    /// One JSON object per line.
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_flag_is_long_with_env_and_help() {
        Args::command().debug_assert();
        for arg in Args::command().get_arguments() {
            if arg.get_id() == "help" || arg.get_id() == "version" {
                continue;
            }
            assert!(arg.get_long().is_some(), "{} has no --long", arg.get_id());
            assert!(arg.get_env().is_some(), "{} has no env", arg.get_id());
            assert!(arg.get_help().is_some(), "{} has no doc comment", arg.get_id());
        }
    }

    #[test]
    fn defaults_and_subcommands() {
        let a = Args::try_parse_from(["labeljob-operator"]).expect("parses");
        assert_eq!(a.command, None);
        assert_eq!(a.admin_addr.to_string(), "0.0.0.0:8080");
        assert!(a.leader_election);
        let a = Args::try_parse_from(["x", "--leader-election", "false", "--log-format", "json", "rbac"])
            .expect("parses");
        assert_eq!(a.command, Some(Command::Rbac));
        assert!(!a.leader_election);
        assert_eq!(a.log_format, LogFormat::Json);
        assert!(Args::try_parse_from(["x", "--lease-duration-seconds", "1"]).is_err());
    }
}
