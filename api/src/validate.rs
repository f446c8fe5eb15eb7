//! Pure spec checks, the same rules the CRD schema states in CEL plus those CEL cannot see.
//! `labeljob run` refuses a file that fails them before creating anything; the operator sets
//! `SpecValid=False` with the joined messages and creates no child. The worker bounds
//! (`workers.shards`, `parallelism`, `concurrency`, `backoffLimitPerIndex`) are checked here
//! from the same constants the schema's ranges are generated from, so a spec built in code
//! (not parsed from YAML) or stored under an older CRD is held to the same limits.

use crate::v1alpha1::{InputDtype, LabelJobSpec, MAX_BACKOFF_LIMIT_PER_INDEX, MAX_CONCURRENCY, MAX_SHARDS};

/// One problem with a spec, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("spec.{field}: {message}")]
pub struct FieldError {
    /// Dotted path below `spec`, e.g. `workers.parallelism`.
    pub field: &'static str,
    /// What is wrong, for a person.
    pub message: String,
}

/// Every problem found in a spec (never empty when returned as an error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid LabelJob: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct SpecErrors(pub Vec<FieldError>);

const INPUT_SCHEMES: &[&str] = &["s3://", "gs://", "az://", "file://", "https://", "http://"];
const OUTPUT_SCHEMES: &[&str] = &["s3://", "gs://", "az://", "file://"];

/// Whether one store URI is the other or lies inside it (`s3://b/in` and `s3://b/in/out`);
/// trailing slashes and `.`/`..`-free spellings compare equal.
fn overlaps(a: &str, b: &str) -> bool {
    let norm = |u: &str| u.trim_end_matches('/').to_owned() + "/";
    let (a, b) = (norm(a), norm(b));
    a.starts_with(&b) || b.starts_with(&a)
}

/// The class names a spec's model can emit: `model.classes.names` when given, else the COCO
/// names (every preset and every builtin model uses the COCO vocabulary).
pub fn model_class_names(spec: &LabelJobSpec) -> Vec<String> {
    match &spec.model.classes {
        Some(c) if !c.names.is_empty() => c.names.clone(),
        _ => crate::coco::COCO_CATEGORIES.iter().map(|(_, n, _)| (*n).to_string()).collect(),
    }
}

/// Check a spec; `Ok` means every rule holds.
pub fn validate_spec(spec: &LabelJobSpec) -> Result<(), SpecErrors> {
    let mut errs = Vec::new();
    let mut bad = |field: &'static str, message: String| errs.push(FieldError { field, message });

    if !INPUT_SCHEMES.iter().any(|s| spec.input.uri.starts_with(s)) {
        bad("input.uri", format!("{:?} must start with one of {}", spec.input.uri, INPUT_SCHEMES.join(", ")));
    }
    if !OUTPUT_SCHEMES.iter().any(|s| spec.output.uri.starts_with(s)) {
        bad(
            "output.uri",
            format!("{:?} must start with one of {}", spec.output.uri, OUTPUT_SCHEMES.join(", ")),
        );
    }
    if overlaps(&spec.input.uri, &spec.output.uri) {
        bad(
            "output.uri",
            format!(
                "{:?} overlaps input.uri {:?}: the outputs would be listed as inputs or overwrite them; \
                 choose an output outside the input",
                spec.output.uri, spec.input.uri
            ),
        );
    }
    if spec.input.max_images == Some(0) {
        bad("input.maxImages", "must be at least 1".into());
    }
    for (field, message) in spec.input.timeouts.problems() {
        bad(field, message);
    }

    let m = &spec.model;
    match (&m.builtin, &m.uri) {
        (Some(_), Some(_)) => bad("model", "set exactly one of model.builtin and model.uri, not both".into()),
        (None, None) => bad("model", "set one of model.builtin and model.uri".into()),
        (None, Some(_)) => {
            if m.format.is_none() {
                bad("model.format", "required with model.uri (ssd-tflite, yolov8 or detections-xyxy)".into());
            }
            if m.input_size.is_none() {
                bad("model.inputSize", "required with model.uri".into());
            }
        }
        (Some(name), None) => {
            if !crate::BUILTIN_MODELS.contains(&name.as_str()) {
                bad(
                    "model.builtin",
                    format!("{name:?} is not a builtin model (known: {})", crate::BUILTIN_MODELS.join(", ")),
                );
            }
        }
    }
    if let Some(sha) = &m.sha256
        && (sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    {
        bad("model.sha256", format!("{sha:?} is not 64 lowercase hex digits"));
    }
    if let Some(Err(why)) = m.input_size.map(|size| size.check()) {
        bad("model.inputSize", why);
    }
    if let Some(n) = &m.normalize {
        if n.mean.len() != 3 || n.std.len() != 3 {
            bad("model.normalize", "mean and std need 3 values each".into());
        } else if n.std.iter().any(|s| *s == 0.0 || !s.is_finite()) {
            bad("model.normalize.std", "values must be finite and non-zero".into());
        }
        if m.dtype == Some(InputDtype::Uint8) {
            bad("model.normalize", "applies to float32 inputs only (model.dtype is uint8)".into());
        }
    }
    if let Some(c) = &m.classes
        && c.preset.is_some() != c.names.is_empty()
    {
        bad("model.classes", "set exactly one of classes.preset and classes.names".into());
    }

    let p = &spec.postprocess;
    if !(0.0..=1.0).contains(&p.score_threshold) {
        bad("postprocess.scoreThreshold", format!("{} is outside 0–1", p.score_threshold));
    }
    if !(0.0..=1.0).contains(&p.iou_threshold) {
        bad("postprocess.iouThreshold", format!("{} is outside 0–1", p.iou_threshold));
    }
    if p.max_detections == 0 {
        bad("postprocess.maxDetections", "must be at least 1".into());
    }
    let vocabulary = model_class_names(spec);
    let unknown = |names: &mut dyn Iterator<Item = &String>| -> Vec<String> {
        names.filter(|n| !vocabulary.iter().any(|v| v == *n)).map(|n| format!("{n:?}")).collect()
    };
    let known_hint = || {
        if m.classes.as_ref().is_some_and(|c| !c.names.is_empty()) {
            "model.classes.names".to_string()
        } else {
            "the 80 COCO class names, e.g. \"person\", \"traffic light\"".to_string()
        }
    };
    for (field, names) in [
        ("postprocess.classFilter", unknown(&mut p.class_filter.iter())),
        ("postprocess.classThresholds", unknown(&mut p.class_thresholds.keys())),
        ("postprocess.classMap", unknown(&mut p.class_map.keys())),
    ] {
        if !names.is_empty() {
            bad(
                field,
                format!(
                    "{} not a class of this model (known: {})",
                    names.join(", ") + if names.len() == 1 { " is" } else { " are" },
                    known_hint()
                ),
            );
        }
    }
    if let Some((name, t)) = p.class_thresholds.iter().find(|(_, t)| !(0.0..=1.0).contains(*t)) {
        bad("postprocess.classThresholds", format!("{name:?}: {t} is outside 0–1"));
    }
    if let Some(name) = p.class_map.values().find(|v| v.trim().is_empty()) {
        bad("postprocess.classMap", format!("{name:?} is not a class name"));
    }
    if let Some(r) = &spec.review {
        if !(0.0..=1.0).contains(&r.above) || !(0.0..=1.0).contains(&r.below) {
            bad("review", format!("above ({}) and below ({}) must be within 0–1", r.above, r.below));
        } else if r.above >= r.below {
            bad("review", format!("above ({}) must be less than below ({})", r.above, r.below));
        }
    }
    let formats = &spec.output.formats;
    if formats.is_empty() {
        bad("output.formats", "list at least one format (coco, yolo, voc, cvat, labelstudio)".into());
    }
    if let Some(f) = formats.iter().enumerate().find(|(i, f)| formats[..*i].contains(f)).map(|(_, f)| f) {
        bad("output.formats", format!("{f:?} is listed twice"));
    }
    if spec.input.dedup.max_distance > 32 {
        bad("input.dedup.maxDistance", format!("{} is outside 0–32", spec.input.dedup.max_distance));
    }

    let inf = &spec.inference;
    if let Some(ep) = &inf.endpoint {
        if !(ep.starts_with("http://") || ep.starts_with("https://")) {
            bad("inference.endpoint", format!("{ep:?} must be an http:// or https:// URL"));
        }
        if inf.replicas.is_some() || inf.resources.is_some() {
            bad(
                "inference.endpoint",
                "uses an existing server: do not set inference.replicas or inference.resources with it"
                    .into(),
            );
        }
    }
    if inf.replicas.is_some_and(|r| r < 0) {
        bad("inference.replicas", "must not be negative".into());
    }
    if inf.max_batch_size == Some(0) {
        bad("inference.maxBatchSize", "must be at least 1".into());
    }
    if let Some(cost) = &inf.cost_per_gpu_hour
        && inf.cost_per_gpu_hour().is_none()
    {
        let shown = match cost {
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n) => n.to_string(),
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => format!("{s:?}"),
        };
        bad(
            "inference.costPerGpuHour",
            format!(
                "{shown} must be a price of at least 0: a whole number or a decimal string such as \"2.48\""
            ),
        );
    }

    let w = &spec.workers;
    if !(1..=MAX_SHARDS).contains(&w.shards) {
        bad("workers.shards", format!("{} is outside 1–{MAX_SHARDS}", w.shards));
    }
    if let Some(par) = w.parallelism {
        if !(1..=MAX_SHARDS).contains(&par) {
            bad("workers.parallelism", format!("{par} is outside 1–{MAX_SHARDS}"));
        } else if par > w.shards {
            bad("workers.parallelism", format!("{par} exceeds workers.shards ({})", w.shards));
        }
    }
    if !(1..=MAX_CONCURRENCY).contains(&w.concurrency) {
        bad("workers.concurrency", format!("{} is outside 1–{MAX_CONCURRENCY}", w.concurrency));
    }
    if w.backoff_limit_per_index > MAX_BACKOFF_LIMIT_PER_INDEX {
        bad(
            "workers.backoffLimitPerIndex",
            format!("{} is outside 0–{MAX_BACKOFF_LIMIT_PER_INDEX}", w.backoff_limit_per_index),
        );
    }
    if let Some(f) = spec.max_failed_fraction
        && !(0.0..=1.0).contains(&f)
    {
        bad("maxFailedFraction", format!("{f} is outside 0–1"));
    }
    if spec.active_deadline_seconds.is_some_and(|s| s < 1) {
        bad("activeDeadlineSeconds", "must be at least 1".into());
    }
    if spec.ttl_seconds_after_finished.is_some_and(|s| s < 0) {
        bad("ttlSecondsAfterFinished", "must not be negative".into());
    }

    if errs.is_empty() { Ok(()) } else { Err(SpecErrors(errs)) }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::parse_labeljob;
    use crate::v1alpha1::OutputFormat;

    /// A minimal valid spec (builtin model, file input and output) with `extra` YAML under it.
    pub(crate) fn spec(extra: &str) -> LabelJobSpec {
        let yaml = format!(
            "apiVersion: labeljob.dev/v1alpha1\nkind: LabelJob\nmetadata: {{name: a}}\nspec:\n  input: {{uri: 'file:///in'}}\n  model: {{builtin: ssd-mobilenet-v2-coco}}\n  output: {{uri: 'file:///out'}}\n{extra}"
        );
        parse_labeljob(&yaml).expect("parses").spec
    }

    fn spec_io(input: &str, output: &str) -> LabelJobSpec {
        let yaml = format!(
            "apiVersion: labeljob.dev/v1alpha1\nkind: LabelJob\nmetadata: {{name: a}}\nspec:\n  input: {{uri: '{input}'}}\n  model: {{builtin: ssd-mobilenet-v2-coco}}\n  output: {{uri: '{output}'}}\n"
        );
        parse_labeljob(&yaml).expect("parses").spec
    }

    #[test]
    fn minimal_spec_is_valid() {
        validate_spec(&spec("")).expect("valid");
    }

    #[test]
    fn names_each_bad_field() {
        let err = validate_spec(&spec(
            "  workers: {shards: 2, parallelism: 3}\n  maxFailedFraction: 1.5\n  inference: {endpoint: 'grpc://x', replicas: 2}\n",
        ))
        .expect_err("invalid spec");
        let fields: Vec<_> = err.0.iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            ["inference.endpoint", "inference.endpoint", "workers.parallelism", "maxFailedFraction"]
        );
        assert!(err.to_string().contains("3 exceeds workers.shards (2)"), "{err}");
    }

    #[test]
    fn cost_per_gpu_hour_is_a_price_of_at_least_zero() {
        for (yaml, want) in [("3", Some(3.0)), ("'2.48'", Some(2.48)), ("'0'", Some(0.0)), ("0", Some(0.0))] {
            let s = spec(&format!("  inference: {{costPerGpuHour: {yaml}}}\n"));
            assert_eq!(validate_spec(&s), Ok(()), "{yaml}");
            assert_eq!(s.inference.cost_per_gpu_hour(), want, "{yaml}");
        }
        for yaml in ["-1", "'-1'", "'2,48'", "'1e3'", "'.5'", "'5.'", "'abc'"] {
            let s = spec(&format!("  inference: {{costPerGpuHour: {yaml}}}\n"));
            let err = validate_spec(&s).expect_err(yaml);
            assert_eq!(err.0.iter().map(|e| e.field).collect::<Vec<_>>(), ["inference.costPerGpuHour"]);
            assert!(err.to_string().contains("a price of at least 0"), "{err}");
        }
    }

    #[test]
    fn input_sizes_out_of_range_are_refused_and_the_schema_says_the_same_range() {
        use crate::v1alpha1::InputSize;
        for (w, h, ok) in [(1, 1, true), (8192, 8192, true), (0, 300, false), (300, 8193, false)] {
            let mut s = spec("");
            s.model.input_size = Some(InputSize { width: w, height: h });
            let got = validate_spec(&s);
            assert_eq!(got.is_ok(), ok, "{w}x{h}: {got:?}");
            if let Err(e) = got {
                assert!(e.to_string().contains(&format!("{w}x{h} is outside 1–8192")), "{e}");
            }
        }
        let schema = serde_json::to_value(schemars::schema_for!(InputSize)).expect("schema");
        for side in ["width", "height"] {
            assert_eq!(schema["properties"][side]["maximum"], InputSize::MAX_SIDE, "{schema}");
            assert_eq!(schema["properties"][side]["minimum"], 1, "{schema}");
        }
    }

    #[test]
    fn model_uri_needs_format_and_size() {
        let mut s = spec("");
        s.model.builtin = None;
        s.model.uri = Some("s3://b/m.onnx".into());
        let err = validate_spec(&s).expect_err("model.uri without format/size");
        let fields: Vec<_> = err.0.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["model.format", "model.inputSize"]);
    }

    #[test]
    fn class_rules_name_only_model_classes() {
        let ok = spec(
            "  postprocess:\n    classThresholds: {person: 0.5, traffic light: 0.2}\n    classMap: {truck: car}\n    agnosticNms: true\n",
        );
        assert_eq!(validate_spec(&ok), Ok(()));
        let bad =
            spec("  postprocess:\n    classThresholds: {persn: 0.5}\n    classMap: {lorry: car, van: car}\n");
        let msg = validate_spec(&bad).expect_err("unknown classes").to_string();
        assert!(
            msg.contains("spec.postprocess.classThresholds: \"persn\" is not a class of this model"),
            "{msg}"
        );
        assert!(msg.contains("spec.postprocess.classMap: \"lorry\", \"van\" are not a class"), "{msg}");
        let mut custom = spec("  postprocess: {classThresholds: {person: 0.5}}\n");
        custom.model.classes =
            Some(crate::v1alpha1::ClassesSpec { preset: None, names: vec!["apple".into(), "pear".into()] });
        let msg = validate_spec(&custom).expect_err("custom names").to_string();
        assert!(msg.contains("(known: model.classes.names)"), "{msg}");
    }

    #[test]
    fn review_band_and_formats_are_checked() {
        let msg = validate_spec(&spec("  review: {above: 0.6, below: 0.5}\n")).expect_err("band").to_string();
        assert!(msg.contains("spec.review: above (0.6) must be less than below (0.5)"), "{msg}");
        let mut twice = spec_io("file:///in", "file:///out");
        twice.output.formats = vec![OutputFormat::Yolo, OutputFormat::Yolo];
        let msg = validate_spec(&twice).expect_err("twice").to_string();
        assert!(msg.contains("spec.output.formats: Yolo is listed twice"), "{msg}");
        assert_eq!(spec_io("file:///in", "file:///out").output.formats, vec![OutputFormat::Coco], "default");
    }

    #[test]
    fn unknown_builtins_are_refused() {
        let s = spec_io("s3://b/in", "s3://b/out");
        let mut s2 = s.clone();
        s2.model.builtin = Some("yolo-v99".into());
        let err = validate_spec(&s2).expect_err("unknown builtin");
        assert_eq!(
            err.to_string(),
            "invalid LabelJob: spec.model.builtin: \"yolo-v99\" is not a builtin model (known: ssd-mobilenet-v2-coco)"
        );
        assert_eq!(validate_spec(&s), Ok(()));
    }

    #[test]
    fn output_must_not_overlap_the_input() {
        for (input, output) in [
            ("s3://b/in", "s3://b/in"),
            ("s3://b/in/", "s3://b/in/labels"),
            ("file:///data", "file:///data/out"),
            ("file:///data/in", "file:///data"),
        ] {
            let err = validate_spec(&spec_io(input, output)).expect_err(output);
            assert!(
                err.to_string().contains("spec.output.uri: ") && err.to_string().contains("overlaps"),
                "{err}"
            );
        }
        let s = spec_io("s3://b/in", "s3://b/input-labels");
        assert_eq!(validate_spec(&s), Ok(()), "a shared name prefix is not nesting");
    }

    #[test]
    fn output_must_be_a_store() {
        let mut s = spec("");
        s.output.uri = "https://example.com/out".into();
        assert_eq!(validate_spec(&s).expect_err("https output").0[0].field, "output.uri");
    }

    #[test]
    fn worker_bounds_are_the_schema_bounds() {
        let mut s = spec("");
        s.workers.shards = u32::MAX;
        s.workers.concurrency = MAX_CONCURRENCY + 1;
        s.workers.backoff_limit_per_index = MAX_BACKOFF_LIMIT_PER_INDEX + 1;
        let err = validate_spec(&s).expect_err("out of range");
        let fields: Vec<_> = err.0.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["workers.shards", "workers.concurrency", "workers.backoffLimitPerIndex"]);
        assert!(err.to_string().contains("spec.workers.shards: 4294967295 is outside 1–10000"), "{err}");
        let mut s = spec("");
        s.workers.shards = MAX_SHARDS;
        s.workers.parallelism = Some(MAX_SHARDS + 1);
        assert_eq!(validate_spec(&s).expect_err("parallelism").0[0].field, "workers.parallelism");
        s.workers.parallelism = Some(MAX_SHARDS);
        s.workers.concurrency = MAX_CONCURRENCY;
        assert_eq!(validate_spec(&s), Ok(()), "the maxima themselves are valid");

        // the CRD's ranges come from the same constants
        let crd = serde_json::to_value(crate::crd()).expect("crd json");
        let workers = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
            ["workers"]["properties"];
        assert_eq!(workers["shards"]["maximum"], serde_json::json!(f64::from(MAX_SHARDS)), "{workers}");
        assert_eq!(workers["parallelism"]["maximum"], serde_json::json!(f64::from(MAX_SHARDS)));
        assert_eq!(workers["concurrency"]["maximum"], serde_json::json!(f64::from(MAX_CONCURRENCY)));
        assert_eq!(
            workers["backoffLimitPerIndex"]["maximum"],
            serde_json::json!(f64::from(MAX_BACKOFF_LIMIT_PER_INDEX))
        );
    }
}
