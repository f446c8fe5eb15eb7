//! The LabelJob CustomResourceDefinition as served: the schema kube-derive generates from the
//! Rust types, with the `format`s Kubernetes does not know removed (schemars writes `uint32` /
//! `uint64` for unsigned fields; the apiserver warns `unrecognized format` for each on every
//! apply and Helm install, while `minimum: 0` already states the bound). crdgen, the operator's
//! `crd` subcommand and `labeljob run`'s schema check all use this one function.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde_json::Value;

use crate::v1alpha1::LabelJob;

/// The formats the apiserver validates (k8s.io/apiextensions-apiserver, `supportedFormats`).
const KNOWN_FORMATS: &[&str] = &[
    "bsonobjectid",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "byte",
    "password",
    "date",
    "duration",
    "datetime",
    "date-time",
    "int32",
    "int64",
    "float",
    "double",
];

/// The CRD, with only formats the apiserver knows.
pub fn crd() -> CustomResourceDefinition {
    let generated = LabelJob::crd();
    let Ok(mut value) = serde_json::to_value(&generated) else { return generated };
    strip_unknown_formats(&mut value);
    serde_json::from_value(value).unwrap_or(generated)
}

/// The CRD as YAML (what `crds/labeljob.yaml` holds).
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(&crd())
}

fn strip_unknown_formats(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.get("format").and_then(Value::as_str).is_some_and(|f| !KNOWN_FORMATS.contains(&f)) {
                map.remove("format");
            }
            map.values_mut().for_each(strip_unknown_formats);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_unknown_formats),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_formats_remain() {
        let yaml = crd_yaml().expect("yaml");
        for line in yaml.lines().filter_map(|l| l.trim().strip_prefix("format: ")) {
            assert!(KNOWN_FORMATS.contains(&line), "unknown format {line}");
        }
        assert!(yaml.contains("format: int64") && !yaml.contains("uint32") && !yaml.contains("uint64"));
    }

    #[test]
    fn conditions_doc_names_exactly_the_conditions_written() {
        let crd = serde_json::to_value(crd()).expect("json");
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let desc = schema["properties"]["status"]["properties"]["conditions"]["description"]
            .as_str()
            .expect("documented");
        let desc = desc.split_whitespace().collect::<Vec<_>>().join(" ");
        for t in crate::conditions::ALL {
            assert!(desc.contains(&format!("`{t}` (")), "{t} is written but not documented: {desc}");
        }
        // `Ready` may only be named to say it is not written.
        assert_eq!(desc.matches("`Ready`").count(), desc.matches("no `Ready` condition").count(), "{desc}");
    }

    #[test]
    fn printer_columns_show_eta_and_wide_details() {
        let crd = crd();
        let cols = crd.spec.versions[0].additional_printer_columns.clone().unwrap_or_default();
        let shown = |p: i32| -> Vec<String> {
            cols.iter().filter(|c| c.priority.unwrap_or(0) == p).map(|c| c.name.clone()).collect()
        };
        assert_eq!(shown(0), ["Phase", "Progress", "Img/s", "ETA", "Failed", "Review", "Age"]);
        assert_eq!(shown(1), ["Shards", "Model", "Output", "GPU-s", "Cost"], "kubectl get -o wide");
    }
}
