//! One `labeljob run` per output: the run takes `run.lock` under the output with a
//! create-only write (`put_if_absent`, race-free between concurrent runs), naming its host and
//! process, and removes it when it ends. A second run on the same output is refused with an
//! error naming the holder. A lock left by a killed run on this host (its process is gone) is
//! taken over; one from another host is reported with how to remove it.

use labeljob_store::{Location, StoreError, layout};
use serde::{Deserialize, Serialize};

/// Who holds an output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Host name.
    pub host: String,
    /// Process id on that host.
    pub pid: u32,
    /// When the run started (RFC 3339).
    pub started: String,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run holds the output.
    #[error(
        "{uri} is in use by another `labeljob run` (pid {} on {}, started {}); wait for it, or delete {uri} if that run is gone",
        holder.pid, holder.host, holder.started
    )]
    Held {
        /// The lock object.
        uri: String,
        /// Its holder.
        holder: Holder,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A held lock; call [`RunLock::release`] when the run ends.
#[derive(Debug)]
pub struct RunLock {
    output: Location,
}

fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

impl RunLock {
    /// Take the lock of `output`.
    pub async fn acquire(output: &Location) -> Result<RunLock, LockError> {
        let me =
            Holder { host: this_host(), pid: std::process::id(), started: chrono::Utc::now().to_rfc3339() };
        let body = serde_json::to_vec(&me).unwrap_or_default();
        for _ in 0..2 {
            if output.put_if_absent(layout::RUN_LOCK, body.clone().into()).await? {
                return Ok(RunLock { output: output.clone() });
            }
            let uri = output.child_uri(layout::RUN_LOCK);
            // A lock is ~150 bytes; a much larger object is not ours and is not read.
            let small = match output.head(layout::RUN_LOCK).await {
                Ok(info) => info.size <= 4096,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e.into()),
            };
            let bytes = if small { output.get_opt(layout::RUN_LOCK).await? } else { None };
            let parsed = bytes.and_then(|b| serde_json::from_slice::<Holder>(&b).ok());
            let holder: Holder =
                parsed.unwrap_or(Holder { host: "?".into(), pid: 0, started: "? (unreadable lock)".into() });
            if holder.host == me.host && holder.pid != me.pid && !alive(holder.pid) {
                tracing::warn!(lock = %uri, pid = holder.pid, "taking over the lock of a run that is gone");
                output.delete(layout::RUN_LOCK).await?;
                continue;
            }
            return Err(LockError::Held { uri, holder });
        }
        Err(LockError::Held {
            uri: output.child_uri(layout::RUN_LOCK),
            holder: Holder { host: "?".into(), pid: 0, started: "? (taken concurrently)".into() },
        })
    }

    /// Remove the lock.
    pub async fn release(self) {
        if let Err(e) = self.output.delete(layout::RUN_LOCK).await {
            tracing::warn!(error = %e, "cannot remove the run lock");
        }
    }
}
