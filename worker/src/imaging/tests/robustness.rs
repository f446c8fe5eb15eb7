//! Hostile input: random bytes, every fixture truncated at many offsets, random byte flips,
//! and the decompression bomb's memory use. `decode` must return, never panic.

use std::panic::{AssertUnwindSafe, catch_unwind};

use labeljob_api::v1alpha1::ResizeMode;

use super::{fixture, fixture_names};
use crate::imaging::{DecodeError, DecodeLimits, Decoded, Resizer, decode};

/// Small deterministic PRNG (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Decodes, turning a panic into a test failure that names the input; a success must also
/// resize.
fn survive(
    what: &str,
    bytes: &[u8],
    target: Option<(u32, u32)>,
    r: &mut Resizer,
) -> Result<Decoded, DecodeError> {
    let result = catch_unwind(|| decode(bytes, target, &DecodeLimits::default()))
        .unwrap_or_else(|_| panic!("decode panicked on {what}"));
    match &result {
        Ok(d) => {
            assert!(d.rgb.width() > 0 && d.rgb.height() > 0 && d.width > 0 && d.height > 0, "{what}");
            let resized = catch_unwind(AssertUnwindSafe(|| r.resize(d, 64, 48, ResizeMode::Letterbox)))
                .unwrap_or_else(|_| panic!("resize panicked on {what}"));
            assert!(resized.is_ok(), "{what}: {resized:?}");
        }
        Err(e) => {
            let reasons = ["empty", "unknown-format", "too-large", "corrupt", "unsupported"];
            assert!(reasons.contains(&e.reason()), "{what}: {e}");
            assert!(!e.message().is_empty());
        }
    }
    result
}

fn all_fixtures() -> Vec<(String, Vec<u8>)> {
    ["photos", "corrupt"]
        .iter()
        .flat_map(|dir| fixture_names(dir).into_iter().map(move |n| format!("{dir}/{n}")))
        .map(|rel| {
            let bytes = fixture(&rel);
            (rel, bytes)
        })
        .collect()
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut r = Resizer::new();
    let prefixes: [&[u8]; 7] = [
        b"",
        &[0xFF, 0xD8, 0xFF],
        &[0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08],
        b"\x89PNG\r\n\x1a\n",
        b"RIFF\x20\x00\x00\x00WEBPVP8 ",
        b"BM",
        b"GIF89a",
    ];
    for i in 0..600 {
        let prefix = prefixes[i % prefixes.len()];
        let len = rng.below(if i % 10 == 0 { 20_000 } else { 600 });
        let mut bytes = prefix.to_vec();
        bytes.extend((0..len).map(|_| rng.next() as u8));
        let _ =
            survive(&format!("random input #{i} ({} bytes)", bytes.len()), &bytes, Some((64, 48)), &mut r);
    }
}

#[test]
fn truncated_fixtures_never_panic() {
    let mut r = Resizer::new();
    for (rel, bytes) in all_fixtures() {
        let n = bytes.len();
        // Every cut in the first 128 bytes (headers), 64 spread over the file, the last few.
        let mut cuts: Vec<usize> = (0..n.min(128)).collect();
        cuts.extend((1..64).map(|k| n * k / 64));
        cuts.extend(n.saturating_sub(3)..n);
        // A JPEG cut before its final EOI marker is truncated and must be refused.
        let eoi = bytes.windows(2).rposition(|w| w == [0xFF, 0xD9]);
        for (i, cut) in cuts.into_iter().enumerate() {
            let part = &bytes[..cut];
            let target = if i % 2 == 0 { None } else { Some((120, 90)) };
            let result = survive(&format!("{rel} cut at {cut}"), part, target, &mut r);
            if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) && eoi.is_some_and(|e| cut <= e) && cut > 0 {
                assert!(result.is_err(), "{rel} cut at {cut} of {n} decoded");
            }
        }
    }
}

#[test]
fn flipped_bytes_never_panic() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let mut r = Resizer::new();
    for (rel, bytes) in all_fixtures() {
        if bytes.len() < 16 {
            continue;
        }
        for round in 0..12 {
            let mut b = bytes.clone();
            // Flip up to 8 bytes, half the rounds inside the first 1 KiB (headers).
            let span = if round % 2 == 0 { b.len().min(1024) } else { b.len() };
            for _ in 0..1 + rng.below(8) {
                let at = 2 + rng.below(span - 2);
                b[at] ^= (1 + rng.below(255)) as u8;
            }
            let target = if round % 3 == 0 { None } else { Some((100, 80)) };
            let _ = survive(&format!("{rel} mutation {round}"), &b, target, &mut r);
        }
    }
}

/// A thread reuses the pixel buffer of the image it finished (`recycle`) for its next JPEG:
/// damaged JPEGs (libjpeg warnings, where not every pixel may be written) and intact ones decode
/// to exactly the pixels a fresh thread (no spare buffer) gives, after a large bright image
/// left its bytes in the buffer.
#[test]
fn a_recycled_buffer_never_shows_another_image() {
    let fresh = |bytes: Vec<u8>| {
        std::thread::spawn(move || {
            decode(&bytes, None, &DecodeLimits::default()).ok().map(|d| d.rgb.into_raw())
        })
        .join()
        .expect("decode thread")
    };
    let white = {
        let img = image::RgbImage::from_pixel(1600, 1200, image::Rgb([255, 255, 255]));
        let mut jpg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpg, 90).encode_image(&img).expect("encode");
        jpg
    };
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut checked, mut damaged) = (0, 0);
    for (rel, bytes) in all_fixtures().into_iter().filter(|(n, b)| n.ends_with(".jpg") && b.len() > 64) {
        for round in 0..6 {
            let mut b = bytes.clone();
            if round > 0 {
                for _ in 0..1 + rng.below(4) {
                    let at = bytes.len() / 2 + rng.below(bytes.len() / 2);
                    b[at] ^= (1 + rng.below(255)) as u8;
                }
            }
            let big = decode(&white, None, &DecodeLimits::default()).expect("white");
            crate::imaging::recycle(big);
            let reused = decode(&b, None, &DecodeLimits::default()).ok();
            let want = fresh(b);
            assert_eq!(reused.as_ref().map(|d| d.rgb.as_raw().clone()), want, "{rel} round {round}");
            checked += 1;
            damaged += usize::from(round > 0 && reused.is_some());
            if let Some(d) = reused {
                crate::imaging::recycle(d);
            }
        }
    }
    assert!(checked >= 30 && damaged >= 10, "{checked} decodes, {damaged} damaged ones decoded");
}

/// A model-input buffer handed back by the inference thread ([`crate::imaging::recycle_input`])
/// is overwritten whole by the next resize: white left in it never shows, in either mode.
#[test]
fn a_recycled_input_buffer_never_shows_another_image() {
    let fresh = |img: Decoded, size: (u32, u32), mode: ResizeMode| {
        std::thread::spawn(move || Resizer::new().resize(&img, size.0, size.1, mode).map(|r| r.0).ok())
            .join()
            .expect("resize thread")
    };
    let mut checked = 0;
    for (rel, bytes) in all_fixtures().into_iter().filter(|(n, _)| n.ends_with(".jpg") || n.ends_with(".png"))
    {
        let Ok(img) = decode(&bytes, Some((300, 300)), &DecodeLimits::default()) else { continue };
        for (size, mode) in [((300, 300), ResizeMode::Stretch), ((320, 192), ResizeMode::Letterbox)] {
            crate::imaging::recycle_input(vec![255; size.0 as usize * size.1 as usize * 3]);
            let reused = Resizer::new().resize(&img, size.0, size.1, mode).map(|r| r.0).ok();
            assert_eq!(reused, fresh(img.clone(), size, mode), "{rel} {size:?} {mode:?}");
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked} resizes");
}

/// Peak virtual and resident memory of this process, in KiB (Linux `/proc`).
fn peak_memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    (field("VmPeak:"), field("VmHWM:"))
}

/// bomb.png (545 bytes declaring 40000×40000 RGB, 4.8 GB decoded) must be refused from its
/// header in milliseconds. Memory is measured in a child process running only the helper
/// below, so other tests' allocations do not blur it; the *virtual* peak also catches a
/// lazily zeroed 4.8 GB frame buffer that was never touched.
#[cfg(target_os = "linux")]
#[test]
fn bomb_is_refused_with_almost_no_memory() {
    let exe = std::env::current_exe().expect("test binary");
    let out = std::process::Command::new(exe)
        .args(["--exact", "imaging::tests::robustness::bomb_child", "--ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .output()
        .expect("run child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let value = |key: &str| -> u64 {
        stdout
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{key} not in child output: {stdout}"))
    };
    let (before, after) = (value("vmpeak_before="), value("vmpeak_after="));
    let (hwm_before, hwm_after) = (value("hwm_before="), value("hwm_after="));
    assert!(after - before < 64 * 1024, "virtual peak grew {} KiB", after - before);
    assert!(hwm_after - hwm_before < 16 * 1024, "resident peak grew {} KiB", hwm_after - hwm_before);
}

#[cfg(target_os = "linux")]
#[test]
#[ignore = "helper: run in a child process by bomb_is_refused_with_almost_no_memory"]
fn bomb_child() {
    let bytes = fixture("corrupt/bomb.png");
    let (vm0, hwm0) = peak_memory_kib();
    let start = std::time::Instant::now();
    let e = decode(&bytes, Some((300, 300)), &DecodeLimits::default()).expect_err("bomb decoded");
    let elapsed = start.elapsed();
    let (vm1, hwm1) = peak_memory_kib();
    assert_eq!(e.reason(), "too-large");
    assert!(elapsed.as_millis() < 50, "took {elapsed:?}");
    println!("vmpeak_before={vm0} vmpeak_after={vm1} hwm_before={hwm0} hwm_after={hwm1}");
}
