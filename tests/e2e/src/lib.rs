//! End-to-end test harness for LabelJob on a kind cluster: make (or reuse) the cluster, build
//! and load the images, install the chart, run an in-cluster S3 server seeded with the fixture
//! photos, and give each test its own temporary namespace. The tests themselves are in
//! `tests/lifecycle.rs` and are all `#[ignore]`d: run them with `make e2e` where Docker, kind,
//! kubectl, helm and curl exist. What runs everywhere (the COCO checker, the samples) is tested
//! here without a cluster.

pub mod cluster;
pub mod coco;
pub mod namespace;
pub mod s3;
pub mod wait;

use std::path::{Path, PathBuf};
use std::process::Stdio;

pub use cluster::Cluster;
pub use namespace::with_temp_ns;
pub use s3::S3Server;

/// Why an end-to-end step failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An external tool could not be started (not installed?).
    #[error("cannot run {cmd}: {source}")]
    Spawn {
        /// The command line.
        cmd: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An external tool exited unsuccessfully.
    #[error("{cmd} failed ({status}): {stderr}")]
    Command {
        /// The command line.
        cmd: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The tail of its standard error.
        stderr: String,
    },
    /// The kubeconfig has no usable context for the cluster.
    #[error("kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    /// A Kubernetes API call failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Watching for a condition failed.
    #[error("waiting: {0}")]
    Wait(#[from] kube::runtime::wait::Error),
    /// A condition did not hold in time.
    #[error("timed out after {secs} s waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        secs: u64,
    },
    /// A LabelJob finished in a phase other than the one awaited.
    #[error("while waiting for {what}, the job finished with status {status}")]
    Finished {
        /// What was awaited.
        what: String,
        /// Its status, as JSON.
        status: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A document did not parse.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A YAML document did not parse.
    #[error("YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
    /// A LabelJob document is invalid.
    #[error("LabelJob document: {0}")]
    Document(#[from] labeljob_api::DocumentError),
    /// `kubectl port-forward` did not report its local port.
    #[error("port-forward to {target} printed no local port")]
    PortForward {
        /// The forwarded resource.
        target: String,
    },
    /// The merged COCO file is wrong.
    #[error("COCO output: {0}")]
    Coco(#[from] coco::CocoError),
}

/// Result of the harness.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Run a command to completion and return its standard output; a non-zero exit is an error
/// carrying the end of its standard error.
pub async fn run(program: &str, args: &[&str]) -> Result<String> {
    run_with_stdin(program, args, None).await
}

/// [`run`] with `stdin` fed to the process.
pub async fn run_with_stdin(program: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<String> {
    let out = run_raw(program, args, stdin).await?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Run a command, feeding it `stdin`, and return its standard output as bytes.
pub async fn run_raw(program: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>> {
    use tokio::io::AsyncWriteExt;

    let cmd = format!("{program} {}", args.join(" "));
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .current_dir(repo_root())
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| Error::Spawn { cmd: cmd.clone(), source })?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // Write while the output is collected, so a large input cannot deadlock on full pipes.
        let feed = async move {
            let r = pipe.write_all(data).await;
            drop(pipe);
            r
        };
        let (fed, out) = tokio::join!(feed, child.wait_with_output());
        fed.map_err(|source| Error::Spawn { cmd: cmd.clone(), source })?;
        return finish(cmd, out);
    }
    let out = child.wait_with_output().await;
    finish(cmd, out)
}

fn finish(cmd: String, out: std::io::Result<std::process::Output>) -> Result<Vec<u8>> {
    let out = out.map_err(|source| Error::Spawn { cmd: cmd.clone(), source })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let skip = stderr.chars().count().saturating_sub(2000);
        return Err(Error::Command { cmd, status: out.status, stderr: stderr.chars().skip(skip).collect() });
    }
    Ok(out.stdout)
}

/// A name unlikely to collide: `prefix-` plus 8 hex digits from the clock and the process id.
pub fn unique_name(prefix: &str) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mixed = (nanos as u64) ^ (u64::from(std::process::id()) << 32);
    format!("{prefix}-{:08x}", mixed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_are_dns_labels() {
        let n = unique_name("labeljob-e2e");
        assert!(n.len() <= 63 && n.starts_with("labeljob-e2e-"), "{n}");
        assert!(n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'), "{n}");
    }

    #[tokio::test]
    async fn run_reports_failures_with_stderr() {
        let out = run("sh", &["-c", "echo hello"]).await.expect("sh runs");
        assert_eq!(out, "hello\n");
        let err = run("sh", &["-c", "echo oops >&2; exit 3"]).await.expect_err("exit 3");
        assert!(matches!(&err, Error::Command { stderr, .. } if stderr.contains("oops")), "{err}");
        let fed = run_with_stdin("cat", &[], Some(b"abc")).await.expect("cat runs");
        assert_eq!(fed, "abc");
    }
}
