//! The `labeljob-operator` binary: `--help` documents every flag with its env var, `crd`
//! prints the CRD from labeljob-api, `rbac` prints `rbac::RULES` as JSON.

use std::process::Command;

fn run(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_labeljob-operator")).args(args).output().expect("runs");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn help_documents_every_flag_with_its_env() {
    let help = run(&["--help"]);
    let flags = [
        ("--worker-image", "LABELJOB_WORKER_IMAGE"),
        ("--worker-image-pull-policy", "LABELJOB_WORKER_IMAGE_PULL_POLICY"),
        ("--worker-service-account", "LABELJOB_WORKER_SERVICE_ACCOUNT"),
        ("--admin-addr", "LABELJOB_ADMIN_ADDR"),
        ("--log-format", "LABELJOB_LOG_FORMAT"),
        ("--namespace", "LABELJOB_NAMESPACE"),
        ("--leader-election", "LABELJOB_LEADER_ELECTION"),
        ("--lease-name", "LABELJOB_LEASE_NAME"),
        ("--lease-namespace", "LABELJOB_LEASE_NAMESPACE"),
        ("--lease-duration-seconds", "LABELJOB_LEASE_DURATION_SECONDS"),
        ("--lease-identity", "POD_NAME"),
    ];
    for (flag, env) in flags {
        assert!(help.contains(&format!("{flag} <")), "{flag} missing from:\n{help}");
        assert!(help.contains(&format!("[env: {env}")), "{env} missing from:\n{help}");
    }
    let documented = help.lines().filter(|l| l.trim_start().starts_with("--")).count();
    assert_eq!(documented, flags.len(), "every flag is listed above:\n{help}");
    assert!(help.contains("crd") && help.contains("rbac"));
    assert!(help.contains("[default: 0.0.0.0:8080]"));
}

#[test]
fn crd_subcommand_prints_the_api_crd() {
    let yaml = run(&["crd"]);
    let expected = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/labeljob.yaml"))
        .expect("crds/labeljob.yaml");
    assert_eq!(yaml, expected, "same as the generated crds/labeljob.yaml");
}

#[test]
fn rbac_subcommand_prints_the_rules() {
    let out = run(&["rbac"]);
    let printed: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(printed, serde_json::to_value(labeljob_operator::rbac::RULES).expect("json"));
    let rules = printed.as_array().expect("array");
    assert!(rules.iter().any(|r| r["resources"] == serde_json::json!(["labeljobs/finalizers"])));
}
