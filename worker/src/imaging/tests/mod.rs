//! Tests of the decode → resize path against the committed fixtures
//! (`tests/fixtures/photos`, `tests/fixtures/corrupt`, see their README/SOURCES files), with
//! the shared helpers; here: every `corrupt/` fixture decodes or fails as its README says.

mod fixtures;
mod robustness;

use std::path::PathBuf;

use image::RgbImage;

use super::{CodecError, DecodeError, DecodeLimits, Decoded, decode};

/// Reads a fixture, e.g. `fixture("photos/dog.jpg")`.
pub(super) fn fixture(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// Fixture names in a directory (`photos` or `corrupt`), image files only.
pub(super) fn fixture_names(dir: &str) -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(dir);
    let mut names: Vec<String> = std::fs::read_dir(&path)
        .expect("fixture dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| !n.ends_with(".md"))
        .collect();
    names.sort();
    names
}

/// Decodes at full size with the default limits.
pub(super) fn full(rel: &str) -> Decoded {
    decode(&fixture(rel), None, &DecodeLimits::default()).unwrap_or_else(|e| panic!("{rel}: {}", e.message()))
}

/// Mean and max absolute difference of two equally sized byte buffers.
pub(super) fn diff(a: &[u8], b: &[u8]) -> (f64, u8) {
    assert_eq!(a.len(), b.len(), "buffers differ in size");
    let (mut sum, mut max) = (0u64, 0u8);
    for (x, y) in a.iter().zip(b) {
        let d = x.abs_diff(*y);
        sum += u64::from(d);
        max = max.max(d);
    }
    (sum as f64 / a.len().max(1) as f64, max)
}

/// Independent reference resize: the `image` crate's own separable triangle (bilinear)
/// convolution, antialiased like Pillow's BILINEAR; shares no code with ours.
pub(super) fn reference_resize(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    image::imageops::resize(img, w, h, image::imageops::FilterType::Triangle)
}

fn decode_err(rel: &str) -> DecodeError {
    match decode(&fixture(rel), Some((300, 300)), &DecodeLimits::default()) {
        Ok(d) => panic!("{rel} decoded ({}×{}) but must fail", d.width, d.height),
        Err(e) => e,
    }
}

#[test]
fn bad_fixtures_fail_with_their_reason() {
    let e = decode_err("corrupt/truncated.jpg");
    assert_eq!(e.reason(), "corrupt");
    assert!(matches!(e, DecodeError::Corrupt { source: CodecError::Truncated, .. }), "{e:?}");
    assert!(e.message().contains("truncated"), "{}", e.message());
    assert_eq!(decode_err("corrupt/empty.jpg").reason(), "empty");
    assert_eq!(decode_err("corrupt/text.jpg").reason(), "unknown-format");
    let e = decode_err("corrupt/bomb.png");
    assert_eq!(e.reason(), "too-large");
    assert!(matches!(e, DecodeError::TooLarge { width: 40000, height: 40000, .. }), "{e:?}");
    assert!(e.to_string().contains("40000×40000"), "{e}");
}

#[test]
fn readable_oddities_decode() {
    for (rel, w, h) in [
        ("corrupt/cmyk.jpg", 240, 180),
        ("corrupt/png16.png", 160, 160),
        ("corrupt/grey.png", 240, 159),
        ("corrupt/rgba.png", 240, 160),
        ("corrupt/webp.webp", 240, 159),
        ("corrupt/bmp.bmp", 240, 160),
    ] {
        let d = full(rel);
        assert_eq!((d.width, d.height, d.rgb.dimensions()), (w, h, (w, h)), "{rel}");
    }
    // Grey replicated into R = G = B.
    assert!(full("corrupt/grey.png").rgb.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
    // 16-bit samples are v·257: the high byte is exact, equal to the image crate's rounding.
    let png16 = fixture("corrupt/png16.png");
    let reference = image::load_from_memory(&png16).expect("png16").to_rgb8();
    assert_eq!(full("corrupt/png16.png").rgb, reference);
    // Alpha dropped, colour under it kept (the transparent border is not black).
    let rgba = image::load_from_memory(&fixture("corrupt/rgba.png")).expect("rgba").to_rgba8();
    let ours = full("corrupt/rgba.png").rgb;
    assert_eq!(rgba.get_pixel(0, 0)[3], 0, "fixture border is transparent");
    assert!(ours.pixels().zip(rgba.pixels()).all(|(a, b)| a.0 == [b[0], b[1], b[2]]));
    assert_ne!(ours.get_pixel(2, 2).0, [0, 0, 0]);
}

/// libjpeg warnings are not failures, as in Pillow: stray bytes before a header marker make
/// TurboJPEG's header reader warn (the `image` crate's decoder then takes over), stray bytes
/// before EOI make the decompressor warn after a complete image.
#[test]
fn jpeg_warnings_are_tolerated() {
    let dog = fixture("photos/dog.jpg");
    let reference = full("photos/dog.jpg");
    let dqt = dog.windows(2).position(|w| w == [0xFF, 0xDB]).expect("DQT");
    let mut header_junk = dog.clone();
    header_junk.splice(dqt..dqt, [0x00, 0x42, 0x00]);
    let d = decode(&header_junk, Some((96, 72)), &DecodeLimits::default()).expect("header junk");
    assert_eq!((d.format, d.scale_denom, d.width, d.height), ("jpeg", 1, 768, 576));
    let (mean, _) = diff(d.rgb.as_raw(), reference.rgb.as_raw());
    assert!(mean < 1.0, "fallback decode differs: {mean:.2}");

    let mut tail_junk = dog.clone();
    let eoi = dog.len() - 2;
    tail_junk.splice(eoi..eoi, [0x13, 0x37]);
    let d = decode(&tail_junk, None, &DecodeLimits::default()).expect("tail junk");
    assert_eq!(d.rgb, reference.rgb);
}

/// PNG `eXIf` orientation is applied too: coffee.png (600×400, no EXIF) with an `eXIf` chunk saying
/// 6 (display rotated 90° clockwise) decodes as 400×600, equal to the rotated original.
#[test]
fn png_exif_orientation_is_applied() {
    fn crc32(data: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    }
    // Big-endian TIFF, one IFD with one entry: Orientation (0x0112), SHORT, 1 value: 6.
    let tiff: &[u8] = b"MM\0*\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0";
    let mut chunk = (tiff.len() as u32).to_be_bytes().to_vec();
    chunk.extend_from_slice(b"eXIf");
    chunk.extend_from_slice(tiff);
    chunk.extend_from_slice(&crc32(&chunk[4..]).to_be_bytes());
    let mut png = fixture("photos/coffee.png");
    let original = full("photos/coffee.png");
    assert_eq!(original.orientation, 1);
    // The eXIf chunk goes right after IHDR (8-byte signature + 25-byte IHDR chunk).
    png.splice(33..33, chunk);
    let d = decode(&png, None, &DecodeLimits::default()).expect("png with eXIf");
    assert_eq!((d.orientation, d.width, d.height), (6, 400, 600));
    assert_eq!(d.rgb, image::imageops::rotate90(&original.rgb));
}

#[test]
fn unknown_format_never_quotes_the_content() {
    // what an internal service might answer instead of an image
    let body = b"ami-id\nsecret=hunter2\n";
    let e = decode(body, None, &DecodeLimits::default()).expect_err("not an image");
    assert_eq!(e.reason(), "unknown-format");
    let message = e.message();
    assert!(!message.contains("hunter2") && !message.contains("ami"), "{message}");
    assert!(!message.contains("61, 6d") && !message.contains("[61"), "no bytes in hex: {message}");
    assert!(!format!("{e:?}").contains("97, 109"), "no bytes in Debug either: {e:?}");
}
