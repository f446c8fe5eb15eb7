//! The exact RBAC rules the controller needs, owned by the code that makes the calls: the one
//! source. `labeljob-operator rbac` prints them as JSON; `labeljob-operator rbac-chart` prints
//! the chart's `_operator-rules.tpl` (written by `make generate`, checked by a drift test), which
//! the chart's ClusterRole or Role includes; the reconcile tests check every request the
//! controller makes against them.

use serde::Serialize;

/// One PolicyRule: these verbs on these resources of these API groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// API groups (`""` is the core group).
    pub api_groups: &'static [&'static str],
    /// Resources, with `/subresource` where the rule is for a subresource.
    pub resources: &'static [&'static str],
    /// Verbs.
    pub verbs: &'static [&'static str],
}

const CHILD_VERBS: &[&str] = &["get", "list", "watch", "create", "patch", "delete"];

/// Every permission the operator uses, and nothing more.
pub const RULES: &[Rule] = &[
    // Watch LabelJobs, add/remove the finalizer (JSON patch), delete after ttlSecondsAfterFinished.
    Rule {
        api_groups: &["labeljob.dev"],
        resources: &["labeljobs"],
        verbs: &["get", "list", "watch", "patch", "update", "delete"],
    },
    // Status by server-side apply.
    Rule {
        api_groups: &["labeljob.dev"],
        resources: &["labeljobs/status"],
        verbs: &["get", "patch", "update"],
    },
    // Children carry blockOwnerDeletion, which needs update on the owner's finalizers.
    Rule { api_groups: &["labeljob.dev"], resources: &["labeljobs/finalizers"], verbs: &["update"] },
    // Children: applied (SSA create-or-patch), watched (.owns), read, deleted on teardown.
    Rule { api_groups: &["apps"], resources: &["deployments"], verbs: CHILD_VERBS },
    Rule { api_groups: &["batch"], resources: &["jobs"], verbs: CHILD_VERBS },
    Rule { api_groups: &[""], resources: &["configmaps", "services"], verbs: CHILD_VERBS },
    // Progress objects are read with the job's own credentials Secret.
    Rule { api_groups: &[""], resources: &["secrets"], verbs: &["get"] },
    // Events for transitions and failures (kube-runtime's Recorder uses events.k8s.io/v1).
    Rule { api_groups: &["events.k8s.io"], resources: &["events"], verbs: &["create", "patch"] },
    // Leader election.
    Rule {
        api_groups: &["coordination.k8s.io"],
        resources: &["leases"],
        verbs: &["get", "create", "update"],
    },
];

/// Whether `RULES` allow `verb` on `resource` (with `/subresource`) in `group`.
pub fn allows(group: &str, resource: &str, verb: &str) -> bool {
    RULES
        .iter()
        .any(|r| r.api_groups.contains(&group) && r.resources.contains(&resource) && r.verbs.contains(&verb))
}

/// `RULES` as pretty JSON: `[{"apiGroups": [...], "resources": [...], "verbs": [...]}]`.
pub fn rules_json() -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(RULES)
}

/// Where the chart keeps the generated rules, relative to the repository root.
pub const CHART_TEMPLATE: &str = "charts/labeljob/templates/_operator-rules.tpl";

/// The chart template defining `labeljob.operatorRules`: `RULES` as YAML list items.
pub fn chart_template() -> String {
    let list = |items: &[&str]| {
        let quoted: Vec<String> = items.iter().map(|s| format!("\"{s}\"")).collect();
        format!("[{}]", quoted.join(", "))
    };
    let mut out = String::from(
        "{{- /* Generated from operator/src/rbac.rs by `make generate` (labeljob-operator rbac-chart):\n\
         do not edit. The operator's permissions, included by rbac-operator.yaml. */ -}}\n\
         {{- define \"labeljob.operatorRules\" -}}\n",
    );
    for r in RULES {
        out += &format!(
            "- apiGroups: {}\n  resources: {}\n  verbs: {}\n",
            list(r.api_groups),
            list(r.resources),
            list(r.verbs)
        );
    }
    out + "{{- end -}}\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_template_is_generated_from_the_rules() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(CHART_TEMPLATE);
        let on_disk = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run `make generate`)", path.display()));
        assert_eq!(
            on_disk,
            chart_template(),
            "{CHART_TEMPLATE} differs from rbac::RULES: run `make generate`"
        );
        let helpers = std::fs::read_to_string(path.with_file_name("_helpers.tpl")).expect("_helpers.tpl");
        assert!(!helpers.contains("operatorRules"), "no hand-written copy of the rules in _helpers.tpl");
    }

    #[test]
    fn json_has_the_rbac_field_names() {
        let v: serde_json::Value = serde_json::from_str(&rules_json().expect("serialises")).expect("json");
        let first = &v[0];
        assert_eq!(first["apiGroups"], serde_json::json!(["labeljob.dev"]));
        assert_eq!(first["resources"], serde_json::json!(["labeljobs"]));
        assert!(first["verbs"].as_array().is_some_and(|a| a.iter().any(|v| v == "watch")));
        assert_eq!(v.as_array().map(Vec::len), Some(RULES.len()));
    }

    #[test]
    fn allows_what_is_listed_only() {
        assert!(allows("batch", "jobs", "patch"));
        assert!(allows("", "services", "delete"));
        assert!(allows("labeljob.dev", "labeljobs/status", "patch"));
        assert!(!allows("", "secrets", "list"));
        assert!(!allows("", "pods", "create"));
        assert!(!allows("apps", "jobs", "get"));
    }
}
