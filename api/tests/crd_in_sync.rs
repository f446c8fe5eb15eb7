//! Fails when crds/labeljob.yaml (or its copy in the Helm chart) differs from the CRD the
//! Rust types generate: run `make generate` and commit the result.

fn generated() -> String {
    labeljob_api::crd_yaml().expect("CRD serialises")
}

fn committed(rel: &str) -> Option<String> {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)).ok()
}

#[test]
fn committed_crd_matches_types() {
    let want = generated();
    let got = committed("crds/labeljob.yaml").expect("crds/labeljob.yaml exists");
    assert!(got == want, "crds/labeljob.yaml is stale: run `make generate` and commit it");
}

#[test]
fn chart_crd_matches_types() {
    // Helm installs the CRD from the chart: it must be there, and equal to the types.
    let got = committed("charts/labeljob/crds/labeljob.yaml")
        .expect("charts/labeljob/crds/labeljob.yaml is missing: run `make generate`");
    assert!(got == generated(), "charts/labeljob/crds/labeljob.yaml is stale: run `make generate`");
}

#[test]
fn every_field_is_documented() {
    let crd = serde_json::to_value(labeljob_api::crd()).expect("json");
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    let mut missing = Vec::new();
    walk(schema, "spec", &mut missing);
    assert!(missing.is_empty(), "fields without a description: {missing:?}");
}

fn walk(node: &serde_json::Value, path: &str, missing: &mut Vec<String>) {
    if let Some(props) = node.get("properties").and_then(|p| p.as_object()) {
        for (name, child) in props {
            let p = format!("{path}.{name}");
            if child.get("description").and_then(|d| d.as_str()).is_none_or(str::is_empty) {
                missing.push(p.clone());
            }
            // k8s-openapi types (resources, tolerations) carry their own upstream docs.
            if !matches!(name.as_str(), "resources" | "tolerations") {
                walk(child, &p, missing);
            }
        }
    }
    if let Some(items) = node.get("items") {
        walk(items, &format!("{path}[]"), missing);
    }
}
