//! The default model with its uint8 weights re-signed to int8 gives the same outputs, bit for
//! bit, as the model file, on the fixture photos and on noise, with the real ONNX Runtime; and
//! `--int8-weights auto` loads it re-signed exactly where the CPU's int8 kernels are exact
//! (AVX512-VNNI). Needs libonnxruntime (ORT_DYLIB_PATH or .cache/ort/lib): fails, not skips,
//! without it.

mod common;

use common::{SIDE, model, photo};
use labeljob_api::v1alpha1::Device;
use labeljob_worker::model::decode::ImageDetections;
use labeljob_worker::model::session::ModelSession;
use labeljob_worker::model::signed_weights::{WeightSigning, cpu_is_exact, resign};
use labeljob_worker::model::{Filter, ModelConfig};

/// Inputs: every fixture photo the tests use, and deterministic noise (a xorshift stream).
fn inputs() -> Vec<Vec<u8>> {
    let mut all: Vec<Vec<u8>> =
        ["dog.jpg", "horses.jpg", "eagle.jpg", "giraffe.jpg", "grace_hopper.jpg", "coffee.png"]
            .iter()
            .map(|n| photo(n))
            .collect();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..12 {
        let noise = (0..SIDE as usize * SIDE as usize * 3)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 56) as u8
            })
            .collect();
        all.push(noise);
    }
    all
}

/// Every detection above a zero score: boxes, scores and classes as f32 bits.
fn outputs(session: &mut ModelSession, images: &[Vec<u8>]) -> Vec<Vec<(u32, [u32; 4], u32)>> {
    let filter = Filter::basic(0.0, 0.5, 1000);
    images
        .iter()
        .map(|img| {
            let dets: ImageDetections = session.detect(&[img.as_slice()], &filter).expect("detect").remove(0);
            let dets = dets.expect("decoded");
            dets.iter().map(|d| (d.class, d.bbox.map(f32::to_bits), d.score.to_bits())).collect()
        })
        .collect()
}

#[test]
fn the_re_signed_model_gives_the_same_outputs_bit_for_bit() {
    let file = model();
    let bytes = std::fs::read(&file.path).expect("model file");
    let resigned = resign(&bytes).expect("a protobuf").expect("the default model has uint8 weights");
    assert_eq!(resigned.nodes, 72, "every conv weight of the default model");
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("int8-weights.onnx");
    std::fs::write(&path, &resigned.bytes).expect("write");
    let rewritten = ModelConfig { path, ..file.clone() };

    let images = inputs();
    let mut as_is = ModelSession::load(&file, 1, Device::Cpu, WeightSigning::Off).expect("file as it is");
    let want = outputs(&mut as_is, &images);
    assert!(want.iter().map(Vec::len).sum::<usize>() > 100, "enough detections to compare");
    let mut auto = ModelSession::load(&file, 1, Device::Cpu, WeightSigning::Auto).expect("auto");
    assert_eq!(outputs(&mut auto, &images), want, "--int8-weights auto changes no output");
    if cpu_is_exact() {
        // auto above re-signed: the explicit rewrite is the same model
        let mut int8 = ModelSession::load(&rewritten, 1, Device::Cpu, WeightSigning::Off).expect("rewritten");
        assert_eq!(outputs(&mut int8, &images), want, "re-signed weights change no output");
    } else {
        eprintln!("this CPU has no AVX512-VNNI: auto loaded the file as it is (checked above)");
    }
}
