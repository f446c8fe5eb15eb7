//! Unit tests of the OIP v2 message parsing and encoding (pure, no server).

use super::*;
use crate::model::RawDetection;
use crate::oip::tensors::{DetectionTensors, build_request, encode_response, parse_response};
use serde_json::json;

fn det(x: f32, score: f32, class: u32) -> RawDetection {
    RawDetection { bbox: [x, x + 1.0, x + 2.0, x + 3.0], score, class }
}

#[test]
fn binary_request_round_trips_through_the_server_parser() {
    let (a, b) = (vec![1u8; 2 * 3 * 3], vec![2u8; 2 * 3 * 3]);
    let (body, header) = build_request(&[&a, &b], 2, 3);
    let (json, binary) = split_body(&body, Some(&header.to_string())).expect("split");
    let req = parse_request(json).expect("json");
    assert_eq!(req.inputs[0].shape, vec![2, 3, 2, 3]);
    let images = parse_images(&req, binary, 2, 3, 8).expect("images");
    assert_eq!(images, vec![a, b]);
    assert_eq!(
        requested_outputs(&req).expect("outputs"),
        OUTPUTS.iter().map(|n| (*n, true)).collect::<Vec<_>>()
    );
}

#[test]
fn json_data_may_be_nested_or_flat() {
    let mut req = InferRequest {
        inputs: vec![RequestInput {
            name: "images".into(),
            shape: vec![1, 1, 2, 3],
            datatype: "UINT8".into(),
            data: Some(serde_json::from_value(json!([[[[0, 1, 2], [3, 4, 255]]]])).expect("data")),
            ..Default::default()
        }],
        ..Default::default()
    };
    assert_eq!(parse_images(&req, &[], 2, 1, 8).expect("nested"), vec![vec![0, 1, 2, 3, 4, 255]]);
    req.inputs[0].data = Some(serde_json::from_value(json!([0, 1, 2, 3, 4, 256])).expect("data"));
    let err = parse_images(&req, &[], 2, 1, 8).expect_err("fails").to_string();
    assert!(err.contains("inputs[0].data") && err.contains("256"), "{err}");
    req.inputs[0].data = Some(serde_json::from_value(json!([0, 1, 2])).expect("data"));
    let err = parse_images(&req, &[], 2, 1, 8).expect_err("fails").to_string();
    assert!(err.contains("3 values for a shape of 6"), "{err}");
}

#[test]
fn wrong_shape_datatype_name_and_sizes_name_the_field() {
    let (body, header) = build_request(&[&[0u8; 12]], 2, 2);
    let (json, binary) = split_body(&body, Some(&header.to_string())).expect("split");
    let base = parse_request(json).expect("json");

    let mut r = base.clone();
    r.inputs[0].shape = vec![1, 3, 3, 3];
    assert!(parse_images(&r, binary, 2, 2, 8).expect_err("fails").to_string().contains("inputs[0].shape"));
    r = base.clone();
    r.inputs[0].datatype = "FP32".into();
    assert!(parse_images(&r, binary, 2, 2, 8).expect_err("fails").to_string().contains("inputs[0].datatype"));
    r = base.clone();
    r.inputs[0].name = "input".into();
    assert!(parse_images(&r, binary, 2, 2, 8).expect_err("fails").to_string().contains("inputs[0].name"));
    let err = parse_images(&base, &binary[..5], 2, 2, 8).expect_err("fails").to_string();
    assert!(err.contains("inputs[0] binary data"), "{err}");
    r = base.clone();
    r.inputs[0].parameters.insert("binary_data_size".into(), json!(11));
    assert!(parse_images(&r, binary, 2, 2, 8).expect_err("fails").to_string().contains("binary_data_size"));
    let mut extra = binary.to_vec();
    extra.push(0);
    assert!(matches!(parse_images(&base, &extra, 2, 2, 8), Err(ProtocolError::BinarySize { .. })));
    r = base.clone();
    r.inputs.clear();
    assert!(matches!(parse_images(&r, binary, 2, 2, 8), Err(ProtocolError::Missing { .. })));
    r = base;
    r.inputs[0].shape = vec![0, 2, 2, 3];
    assert!(matches!(parse_images(&r, &[], 2, 2, 8), Err(ProtocolError::Shape { .. })));
}

#[test]
fn header_length_must_fit_the_body() {
    assert!(split_body(b"{}", Some("3")).is_err());
    assert!(split_body(b"{}", Some("x")).is_err());
    assert_eq!(split_body(b"{}ab", Some("2")).expect("ok"), (&b"{}"[..], &b"ab"[..]));
    assert_eq!(split_body(b"{}", None).expect("ok"), (&b"{}"[..], &b""[..]));
    assert!(matches!(parse_request(b"{nope"), Err(ProtocolError::Json(_))));
}

#[test]
fn unknown_outputs_are_refused_and_binary_flags_honoured() {
    let mut req: InferRequest = serde_json::from_value(json!({
        "inputs": [], "parameters": {"binary_data_output": true},
        "outputs": [{"name": "scores"}, {"name": "counts", "parameters": {"binary_data": false}}]
    }))
    .expect("req");
    assert_eq!(requested_outputs(&req).expect("ok"), vec![("scores", true), ("counts", false)]);
    req.outputs = Some(vec![RequestOutput { name: "logits".into(), ..Default::default() }]);
    assert!(requested_outputs(&req).expect_err("fails").to_string().contains("outputs[0].name"));
}

#[test]
fn responses_round_trip_binary_and_json() {
    let dets = vec![vec![det(1.0, 0.9, 17), det(5.0, 0.25, 0)], vec![], vec![det(7.5, 0.123_456_79, 89)]];
    let t = DetectionTensors::pack(&dets);
    assert_eq!((t.n, t.k), (3, 2));
    assert_eq!(t.counts, vec![2, 0, 1]);
    assert_eq!(&t.boxes[8..16], &[0.0; 8], "padding rows are zero");
    for binary in [true, false] {
        let outputs: Vec<_> = OUTPUTS.iter().map(|n| (*n, binary)).collect();
        let (json, bin) = encode_response("m", Some("7".into()), &t, &outputs);
        let mut body = json.clone();
        body.extend_from_slice(&bin);
        let header = binary.then(|| json.len().to_string());
        assert_eq!(parse_response(&body, header.as_deref()).expect("parse"), dets, "binary={binary}");
        let v: serde_json::Value = serde_json::from_slice(&json).expect("json");
        assert_eq!(v["id"], "7");
        assert_eq!(v["outputs"][0]["shape"], json!([3, 2, 4]));
        assert_eq!(v["outputs"][1]["datatype"], "INT32");
    }
}

#[test]
fn responses_missing_outputs_are_errors() {
    let t = DetectionTensors::pack(&[vec![det(1.0, 0.5, 1)]]);
    let (json, _) = encode_response("m", None, &t, &[("boxes", false), ("scores", false)]);
    assert!(matches!(parse_response(&json, None), Err(ProtocolError::Missing { name: "classes", .. })));
}

#[test]
fn metadata_describes_the_served_tensors() {
    let m = model_metadata("ssd", 320, 300);
    assert_eq!(m.platform, "onnxruntime_onnx");
    assert_eq!(m.inputs[0].shape, vec![-1, 300, 320, 3]);
    assert_eq!(m.outputs.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(), OUTPUTS);
}

fn json_request(shape: serde_json::Value, data: serde_json::Value) -> InferRequest {
    serde_json::from_value(json!({
        "inputs": [{"name": "images", "shape": shape, "datatype": "UINT8", "data": data}]
    }))
    .expect("request")
}

#[test]
fn huge_request_shapes_are_refused_before_allocating() {
    // The request: a million 300x300 images declared, one element sent (270 GB).
    let req = json_request(json!([1_000_000, 300, 300, 3]), json!([0]));
    let err = parse_images(&req, &[], 300, 300, 256).expect_err("refused").to_string();
    assert!(err.contains("1000000 images") && err.contains("--queue-capacity"), "{err}");
    // Overflowing, negative and zero counts.
    for n in [i64::MAX, -1, 0] {
        let req = json_request(json!([n, 300, 300, 3]), json!([0]));
        assert!(parse_images(&req, &[], 300, 300, 256).is_err(), "N = {n}");
    }
    // Within the queue but with too little data: the count is checked, not allocated.
    let req = json_request(json!([256, 300, 300, 3]), json!([0]));
    let err = parse_images(&req, &[], 300, 300, 256).expect_err("refused").to_string();
    assert_eq!(err, "inputs[0].data: 1 values for a shape of 69120000");
    // Binary: the declared size must be the shape's, and present.
    let (body, header) = build_request(&[&[0u8; 12]], 2, 2);
    let (json, binary) = split_body(&body, Some(&header.to_string())).expect("split");
    let mut req = parse_request(json).expect("json");
    req.inputs[0].shape = vec![4, 2, 2, 3];
    req.inputs[0].parameters.insert("binary_data_size".into(), json!(48));
    let err = parse_images(&req, binary, 2, 2, 8).expect_err("short").to_string();
    assert!(err.contains("12 bytes of binary data, expected 48"), "{err}");
    req.inputs[0].parameters.insert("binary_data_size".into(), json!(u64::MAX));
    assert!(parse_images(&req, binary, 2, 2, 8).is_err());
    // A second `images` tensor is refused, not silently replacing the first.
    let mut req = json_request(json!([1, 1, 1, 3]), json!([1, 2, 3]));
    req.inputs.push(req.inputs[0].clone());
    let err = parse_images(&req, &[], 1, 1, 8).expect_err("twice").to_string();
    assert!(err.contains("inputs[1].name"), "{err}");
}

/// A response whose JSON outputs are given as (name, datatype, shape, data).
fn reply(outputs: &[(&str, &str, serde_json::Value, serde_json::Value)]) -> Vec<u8> {
    let outputs: Vec<_> = outputs
        .iter()
        .map(|(n, t, shape, data)| json!({"name": n, "datatype": t, "shape": shape, "data": data}))
        .collect();
    serde_json::to_vec(&json!({"model_name": "m", "outputs": outputs})).expect("json")
}

fn one_detection(class: serde_json::Value, count: serde_json::Value) -> Vec<u8> {
    reply(&[
        ("boxes", "FP32", json!([1, 1, 4]), json!([0.1, 0.2, 0.3, 0.4])),
        ("classes", "INT32", json!([1, 1]), json!([class])),
        ("scores", "FP32", json!([1, 1]), json!([0.9])),
        ("counts", "INT32", json!([1]), json!([count])),
    ])
}

#[test]
fn malformed_replies_are_errors_not_detections() {
    let ok = parse_response(&one_detection(json!(0), json!(1)), None).expect("valid");
    assert_eq!(ok[0][0].class, 0);
    for (class, count, want) in [
        (json!(-1), json!(1), "outputs.classes[0][0]: -1 is negative"),
        (json!(0), json!(2), "outputs.counts[0]: 2 is not a count within K = 1"),
        (json!(0), json!(-3), "outputs.counts[0]: -3 is not a count within K = 1"),
        (json!(1.5), json!(1), "outputs.classes: 1.5 is not an INT32"),
        (json!(0), json!(1e12), "outputs.counts: 1000000000000 is not an INT32"),
    ] {
        let err = parse_response(&one_detection(class, count), None).expect_err(want).to_string();
        assert_eq!(err, want);
    }
    let nan_score = reply(&[
        ("boxes", "FP32", json!([1, 1, 4]), json!([0.1, 0.2, 0.3, 1e39])),
        ("classes", "INT32", json!([1, 1]), json!([1])),
        ("scores", "FP32", json!([1, 1]), json!([0.9])),
        ("counts", "INT32", json!([1]), json!([1])),
    ]);
    let err = parse_response(&nan_score, None).expect_err("inf box").to_string();
    assert!(err.contains("not finite"), "{err}");
    let mismatched = reply(&[
        ("boxes", "FP32", json!([1, 1, 4]), json!([0.1, 0.2, 0.3, 0.4])),
        ("classes", "INT32", json!([1]), json!([1])),
        ("scores", "FP32", json!([1, 1]), json!([0.9])),
        ("counts", "INT32", json!([1]), json!([1])),
    ]);
    let err = parse_response(&mismatched, None).expect_err("shapes").to_string();
    assert!(err.contains("outputs.classes: shape [1]"), "{err}");
}

#[test]
fn huge_reply_shapes_are_refused_before_allocating() {
    // JSON: a shape of 2^80 elements (overflow) and one of 2^42 with one value.
    for shape in [json!([1_i64 << 40, 1_i64 << 40, 4]), json!([1_i64 << 40, 4, 1])] {
        let body = reply(&[("boxes", "FP32", shape.clone(), json!([0.0]))]);
        let err = parse_response(&body, None).expect_err("refused").to_string();
        assert!(err.starts_with("outputs[0]"), "{shape}: {err}");
    }
    let body = reply(&[("boxes", "FP32", json!([-1, 1, 4]), json!([0.0]))]);
    assert!(parse_response(&body, None).expect_err("negative").to_string().contains("non-negative"));
    // Binary: a huge shape with 16 bytes of data.
    let json = serde_json::to_vec(&json!({"model_name": "m", "outputs": [
        {"name": "boxes", "datatype": "FP32", "shape": [1_i64 << 40, 1_i64 << 20, 4],
         "parameters": {"binary_data_size": 16}}]}))
    .expect("json");
    let mut body = json.clone();
    body.extend_from_slice(&[0u8; 16]);
    let err = parse_response(&body, Some(&json.len().to_string())).expect_err("refused").to_string();
    assert!(err.contains("16 bytes of binary data"), "{err}");
}
