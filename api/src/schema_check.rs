//! A LabelJob document checked against the CRD's own OpenAPI schema, as the apiserver checks
//! it: unknown fields (with the field path and a "did you mean" hint), types, enums, numeric
//! bounds, lengths and item counts. The schema is generated from the Rust types (crdgen), so
//! `labeljob run` and `kubectl apply` refuse the same documents with the same limits; the
//! rules the schema states in CEL live in [`crate::validate`].

use std::sync::OnceLock;

use serde_json::Value;

/// One way a document breaks the schema, at a field path like `spec.postprocess.scoreTreshold`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SchemaIssue {
    /// Dotted path from the document root (`[i]` for list items).
    pub path: String,
    /// What is wrong, for a person.
    pub message: String,
}

/// The openAPIV3Schema of the served version, generated once.
fn crd_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let crd = crate::crd();
        crd.spec
            .versions
            .first()
            .and_then(|v| v.schema.as_ref())
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .and_then(|s| serde_json::to_value(s).ok())
            .unwrap_or(Value::Null)
    })
}

/// Every schema problem of `doc` (empty when it conforms).
pub fn check_document(doc: &Value) -> Vec<SchemaIssue> {
    let mut issues = Vec::new();
    // apiVersion, kind and metadata are every object's, checked by the apiserver itself; the
    // CRD schema describes the rest.
    let rest: serde_json::Map<String, Value> = doc
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !matches!(k.as_str(), "apiVersion" | "kind" | "metadata"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    walk(crd_schema(), &Value::Object(rest), &mut String::new(), &mut issues);
    issues
}

fn walk(schema: &Value, value: &Value, path: &mut String, issues: &mut Vec<SchemaIssue>) {
    let Some(schema) = schema.as_object() else { return };
    let mut bad = |path: &str, message: String| issues.push(SchemaIssue { path: path.to_owned(), message });
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    if value.is_null() {
        return; // an explicit null for an optional field means "unset", as serde reads it
    }
    if schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        if !(value.is_i64() || value.is_u64() || value.is_string()) {
            bad(path, format!("must be an integer or a string, not {}", kind_of(value)));
        }
        return;
    }
    if let Some(ty) = schema.get("type").and_then(Value::as_str)
        && !type_matches(ty, value)
    {
        bad(path, format!("must be {}, not {}", article(ty), kind_of(value)));
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let names: Vec<String> = allowed.iter().map(|v| v.to_string()).collect();
        bad(path, format!("{value} is not one of {}", names.join(", ")));
    }
    if let Some(x) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && x < min
        {
            bad(path, format!("{value} is below the minimum {}", trim(min)));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && x > max
        {
            bad(path, format!("{value} is above the maximum {}", trim(max)));
        }
    }
    if let Some(s) = value.as_str() {
        let chars = s.chars().count() as u64;
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
            && chars > max
        {
            bad(path, format!("is {chars} characters long, at most {max} allowed"));
        }
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
            && chars < min
        {
            bad(path, format!("is {chars} characters long, at least {min} needed"));
        }
    }
    match value {
        Value::Array(items) => {
            let n = items.len() as u64;
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && n > max
            {
                bad(path, format!("has {n} items, at most {max} allowed"));
                return; // do not walk a huge list item by item
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(item_schema, item, path, issues);
                    path.truncate(len);
                }
            }
        }
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let extra = schema.get("additionalProperties");
            for (key, child) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                match (props.and_then(|p| p.get(key)), extra, props) {
                    (Some(s), _, _) => walk(s, child, path, issues),
                    (None, Some(extra @ Value::Object(_)), _) => walk(extra, child, path, issues),
                    (None, Some(Value::Bool(true)), _) | (None, _, None) => {}
                    (None, _, Some(p)) => {
                        let hint = closest(key, p.keys().map(String::as_str))
                            .map(|k| format!(" (did you mean {k:?}?)"))
                            .unwrap_or_default();
                        let known: Vec<&str> = p.keys().map(String::as_str).collect();
                        issues.push(SchemaIssue {
                            path: path.clone(),
                            message: format!("unknown field{hint}; known here: {}", known.join(", ")),
                        });
                    }
                }
                path.truncate(len);
            }
            if let Some(required) = schema.get("required").and_then(Value::as_array) {
                for r in required.iter().filter_map(Value::as_str) {
                    if !map.contains_key(r) {
                        let p = if path.is_empty() { r.to_owned() } else { format!("{path}.{r}") };
                        issues.push(SchemaIssue { path: p, message: "required field is missing".into() });
                    }
                }
            }
        }
        _ => {}
    }
}

fn type_matches(ty: &str, v: &Value) -> bool {
    match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        _ => true,
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a fractional number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn article(ty: &str) -> String {
    match ty {
        "object" => "a mapping".into(),
        "array" => "a list".into(),
        "integer" => "an integer".into(),
        other => format!("a {other}"),
    }
}

fn trim(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 { format!("{}", x as i64) } else { x.to_string() }
}

/// The known name closest to `key` by edit distance, when it is close enough to be a typo.
fn closest<'a>(key: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let lower = key.to_ascii_lowercase();
    known
        .map(|k| (edit_distance(&lower, &k.to_ascii_lowercase()), k))
        .filter(|(d, k)| *d <= (k.len().max(key.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance (insert, delete, substitute; adjacent swaps count 1).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev2: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(prev2[j - 2] + 1);
            }
        }
        prev2 = std::mem::replace(&mut prev, cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(spec_extra: &str) -> Value {
        doc_with_model("{builtin: ssd-mobilenet-v2-coco}", spec_extra)
    }

    fn doc_with_model(model: &str, spec_extra: &str) -> Value {
        let yaml = format!(
            "apiVersion: labeljob.dev/v1alpha1\nkind: LabelJob\nmetadata: {{name: a, labels: {{x: y}}}}\nspec:\n  input: {{uri: 'file:///in'}}\n  model: {model}\n  output: {{uri: 'file:///out'}}\n{spec_extra}"
        );
        let v: serde_yaml::Value = serde_yaml::from_str(&yaml).expect("yaml");
        serde_json::to_value(v).expect("json")
    }

    #[test]
    fn a_valid_document_has_no_issue() {
        assert_eq!(check_document(&doc("  postprocess: {scoreThreshold: 0.5}\n")), vec![]);
    }

    #[test]
    fn misspelt_fields_are_named_with_a_hint() {
        let issues = check_document(&doc("  postprocess: {scoreTreshold: 0.99}\n  maxFailedFractoin: 0\n"));
        let text: Vec<String> = issues.iter().map(ToString::to_string).collect();
        assert_eq!(issues.len(), 2, "{text:?}");
        assert!(
            text[0]
                .starts_with("spec.maxFailedFractoin: unknown field (did you mean \"maxFailedFraction\"?)"),
            "{text:?}"
        );
        assert!(
            text[1].starts_with(
                "spec.postprocess.scoreTreshold: unknown field (did you mean \"scoreThreshold\"?)"
            ),
            "{text:?}"
        );
    }

    #[test]
    fn far_off_names_get_no_hint() {
        let issues = check_document(&doc("  bananas: 1\n"));
        assert_eq!(issues.len(), 1);
        assert!(!issues[0].message.contains("did you mean"), "{}", issues[0]);
    }

    #[test]
    fn bounds_types_and_enums_come_from_the_schema() {
        let issues = check_document(&doc_with_model(
            "{builtin: x, resize: squash}",
            "  workers: {concurrency: 100000, shards: -1}\n  postprocess: {scoreThreshold: 2}\n",
        ));
        let text = issues.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
        assert!(text.contains("spec.workers.concurrency: 100000 is above the maximum"), "{text}");
        assert!(text.contains("spec.workers.shards: -1 is below the minimum 1"), "{text}");
        assert!(text.contains("spec.postprocess.scoreThreshold: 2 is above the maximum 1"), "{text}");
        assert!(text.contains("spec.model.resize: \"squash\" is not one of"), "{text}");
        let issues = check_document(&doc("  workers: {shards: many}\n"));
        assert_eq!(issues[0].to_string(), "spec.workers.shards: must be an integer, not a string");
    }

    #[test]
    fn long_lists_are_refused_without_walking_them() {
        let mut d = doc("");
        d["spec"]["input"]["include"] = (0..300).map(|i| Value::String(format!("{i}/*.jpg"))).collect();
        let issues = check_document(&d);
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].to_string(), "spec.input.include: has 300 items, at most 256 allowed");
    }

    #[test]
    fn free_form_maps_accept_any_key() {
        let extra = "  inference:\n    nodeSelector: {gpu: a100}\n    resources: {limits: {nvidia.com/gpu: 1, memory: 1Gi}}\n";
        assert_eq!(check_document(&doc(extra)), vec![]);
    }

    #[test]
    fn edit_distance_counts_swaps_once() {
        assert_eq!(edit_distance("treshold", "threshold"), 1);
        assert_eq!(edit_distance("fractoin", "fraction"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
