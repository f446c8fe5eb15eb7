//! The exit codes of the `labeljob` worker: what each means, said once. The worker exits with
//! them (`labeljob` `main`), the operator's Jobs match them in their `podFailurePolicy`
//! (`onExitCodes`), and the operator reads them back from the Job's `Failed` condition (the
//! pod failure policy names the code in its message). They live here, beside the other files
//! the worker writes and the operator reads, because both binaries depend on this crate and
//! neither depends on the other; `labeljob-api` stays the resource's types and pure checks.
//!
//! | code | meaning | in the cluster |
//! |------|---------|----------------|
//! | 0    | success | |
//! | 1    | failure (a store, the inference service, …): may pass on a retry | retried |
//! | 2    | the job file or the arguments cannot work (or `run`: no input images) | never retried |
//! | 3    | the error budget (`maxFailedImages`, `maxFailedFraction`) is exceeded | merge fails at once |
//! | 143  | interrupted by SIGTERM (eviction, preemption): partial results committed | retried, resumes |

/// Success.
pub const SUCCESS: u8 = 0;
/// A failure that a retry may not repeat (store or inference unavailable, …).
pub const FAILURE: u8 = 1;
/// The job file or the arguments cannot work: an invalid document, an unknown builtin model,
/// an impossible URI (for `labeljob run`, also an input without images). Retrying cannot help.
pub const INVALID_JOB: u8 = 2;
/// The merge found more failed images than `maxFailedImages` / `maxFailedFraction` allow.
pub const ERROR_BUDGET: u8 = 3;
/// A shard stopped on SIGTERM (eviction, spot preemption, node drain) after committing what it
/// had finished to its partial results; the retry resumes from there. 128 + SIGTERM, as a shell
/// reports a process killed by the signal.
pub const INTERRUPTED: u8 = 143;

/// The codes with their meaning, for documentation and `--help` texts.
pub const ALL: &[(u8, &str)] = &[
    (SUCCESS, "success"),
    (FAILURE, "failure (may pass on a retry)"),
    (INVALID_JOB, "invalid job file or arguments: retrying cannot help"),
    (ERROR_BUDGET, "error budget exceeded"),
    (INTERRUPTED, "interrupted by SIGTERM after committing partial results"),
];

/// The code as a Kubernetes `podFailurePolicy` `onExitCodes` value (an `int32`).
pub fn k8s(code: u8) -> i32 {
    i32::from(code)
}

/// The exit code a Kubernetes pod failure policy names in a Job's `Failed` condition message,
/// e.g. `Container merge for pod ns/x failed with exit code 3 matching FailJob rule at index 0`
/// (kube-controller-manager's wording since the policy's introduction). None when the message
/// names none (another failure reason).
pub fn from_pod_failure_message(message: &str) -> Option<u8> {
    const MARK: &str = "with exit code ";
    let start = message.find(MARK)? + MARK.len();
    let digits: String = message[start..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_code_from_the_condition_message() {
        let msg =
            "Container merge for pod ns/a-merge-x failed with exit code 3 matching FailJob rule at index 0";
        assert_eq!(from_pod_failure_message(msg), Some(ERROR_BUDGET));
        let msg = "Container plan for pod ns/p failed with exit code 2 matching FailJob rule at index 0";
        assert_eq!(from_pod_failure_message(msg), Some(INVALID_JOB));
        assert_eq!(from_pod_failure_message("Job has reached the specified backoff limit"), None);
        assert_eq!(from_pod_failure_message("failed with exit code "), None);
        assert_eq!(from_pod_failure_message("failed with exit code 300 matching"), None, "not a u8");
        // 13 is not 3: the number is read whole.
        assert_eq!(from_pod_failure_message("failed with exit code 13 matching"), Some(13));
    }

    #[test]
    fn the_table_above_documents_every_code() {
        let doc: Vec<&str> = include_str!("exit.rs").lines().filter(|l| l.starts_with("//! | ")).collect();
        for (code, _) in ALL {
            assert!(
                doc.iter().any(|l| l.starts_with(&format!("//! | {code} "))),
                "code {code} is not in the table"
            );
        }
        assert_eq!(doc.len(), ALL.len() + 1, "one row per code, plus the header: {doc:?}");
    }

    #[test]
    fn codes_are_distinct_and_fit_kubernetes() {
        let mut codes: Vec<u8> = ALL.iter().map(|(c, _)| *c).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ALL.len());
        assert_eq!(k8s(INTERRUPTED), 143);
    }
}
