//! The photos decode at their upright size; EXIF copies match the originals; scaled decode
//! picks the right factor and stays close to a full decode; the resized output matches an
//! independent decode + resize path and is bit-exact with Pillow; header bombs are refused.

use image::RgbImage;
use labeljob_api::v1alpha1::ResizeMode;

use super::{diff, fixture, fixture_names, full, reference_resize};
use crate::imaging::{DecodeError, DecodeLimits, Resizer, decode, resize::PAD_VALUE};

/// The derived fixtures against their source photo, shrunk the way make_corrupt.py shrinks
/// it (Lanczos to ≤ 240 px, png16 once more to 160 px): colours must come out right (a wrong
/// CMYK inversion or channel order gives mean differences of 100 and more).
#[test]
fn derived_fixtures_keep_their_colours() {
    use image::imageops::FilterType::Lanczos3;
    for (rel, source, steps, max_mean) in [
        ("corrupt/cmyk.jpg", "photos/dog.jpg", &[(240, 180)][..], 3.0),
        ("corrupt/png16.png", "photos/giraffe.jpg", &[(240, 240), (160, 160)], 1.0),
        ("corrupt/webp.webp", "photos/eagle.jpg", &[(240, 159)], 5.0),
        ("corrupt/bmp.bmp", "photos/coffee.png", &[(240, 160)], 0.5),
    ] {
        let d = full(rel);
        let mut src = full(source).rgb;
        for &(w, h) in steps {
            src = image::imageops::resize(&src, w, h, Lanczos3);
        }
        let (mean, max) = diff(d.rgb.as_raw(), src.as_raw());
        assert!(mean <= max_mean, "{rel}: mean |Δ| {mean:.2} (max {max}) vs {source}");
    }
}

#[test]
fn photos_decode_with_their_upright_size() {
    let sizes = [
        ("astronaut.png", 512, 512),
        ("camera.png", 512, 512),
        ("chelsea.png", 451, 300),
        ("coffee.png", 600, 400),
        ("dog-exif6.jpg", 768, 576),
        ("dog.jpg", 768, 576),
        ("eagle-exif3.jpg", 773, 512),
        ("eagle.jpg", 773, 512),
        ("giraffe.jpg", 500, 500),
        ("grace_hopper.jpg", 512, 600),
        ("horses-exif8.jpg", 773, 512),
        ("horses.jpg", 773, 512),
        ("motorcycle_left.png", 741, 500),
    ];
    let names = fixture_names("photos");
    assert_eq!(names.len(), sizes.len(), "{names:?}");
    for (name, w, h) in sizes {
        let d = full(&format!("photos/{name}"));
        assert_eq!((d.width, d.height), (w, h), "{name}");
        assert_eq!(d.rgb.dimensions(), (w, h), "{name}");
        let fmt = if name.ends_with(".png") { "png" } else { "jpeg" };
        assert_eq!(d.format, fmt);
    }
}

#[test]
fn exif_copies_equal_the_upright_originals() {
    for (copy, original, orientation) in [
        ("photos/dog-exif6.jpg", "photos/dog.jpg", 6),
        ("photos/eagle-exif3.jpg", "photos/eagle.jpg", 3),
        ("photos/horses-exif8.jpg", "photos/horses.jpg", 8),
    ] {
        let (c, o) = (full(copy), full(original));
        assert_eq!((c.orientation, o.orientation), (orientation, 1));
        assert_eq!(c.rgb.dimensions(), o.rgb.dimensions(), "{copy}");
        let (mean, _) = diff(c.rgb.as_raw(), o.rgb.as_raw());
        assert!(mean <= 1.5, "{copy}: mean |Δ| {mean:.2}");
    }
}

/// A reduced decode of an EXIF-rotated JPEG, resized, matches the full decode of the same
/// file resized: orientation of reduced images and the position of their partial edge
/// (eagle-exif3 is 773 px wide, so at 1/2 the upright image starts half a pixel in).
#[test]
fn reduced_decodes_of_rotated_jpegs_match_full_decodes() {
    let limits = DecodeLimits::default();
    let mut r = Resizer::new();
    for (rel, orientation) in
        [("photos/dog-exif6.jpg", 6), ("photos/eagle-exif3.jpg", 3), ("photos/horses-exif8.jpg", 8)]
    {
        let whole = full(rel);
        let target = (whole.width / 2, whole.height / 2);
        let half = decode(&fixture(rel), Some(target), &limits).expect("reduced");
        assert_eq!((half.scale_denom, half.orientation), (2, orientation));
        let (a, _) = r.resize(&whole, target.0, target.1, ResizeMode::Stretch).expect("resize");
        let (b, _) = r.resize(&half, target.0, target.1, ResizeMode::Stretch).expect("resize");
        let (mean, _) = diff(&a, &b);
        assert!(mean <= 3.0, "{rel} at 1/2: mean |Δ| {mean:.2}");
        if orientation == 3 {
            assert_eq!(half.source_region(), [0.5, 0.0, 386.5, 256.0]);
            // Ignoring the partial edge (as if upright) shifts the picture and shows.
            let mut wrong = half.clone();
            wrong.orientation = 1;
            let (c, _) = r.resize(&wrong, target.0, target.1, ResizeMode::Stretch).expect("resize");
            let (worse, _) = diff(&a, &c);
            assert!(worse > mean + 1.0, "region offset has no effect: {worse:.2} vs {mean:.2}");
        }
    }
}

#[test]
fn scaled_decode_picks_the_smallest_covering_factor() {
    let limits = DecodeLimits::default();
    // dog.jpg is 768×576.
    for (target, denom, size) in [
        ((300, 300), 1, (768, 576)),
        ((192, 144), 4, (192, 144)),
        ((193, 144), 2, (384, 288)),
        ((96, 72), 8, (96, 72)),
        ((96, 73), 4, (192, 144)),
    ] {
        let d = decode(&fixture("photos/dog.jpg"), Some(target), &limits).expect("dog");
        assert_eq!((d.scale_denom, d.rgb.dimensions()), (denom, size), "target {target:?}");
        assert_eq!((d.width, d.height), (768, 576));
    }
    // Orientation 6: stored 576×768, upright 768×576; the target is upright.
    let d = decode(&fixture("photos/dog-exif6.jpg"), Some((192, 144)), &limits).expect("dog-exif6");
    assert_eq!((d.scale_denom, d.rgb.dimensions(), d.width, d.height), (4, (192, 144), 768, 576));
    // eagle.jpg 773×512 at 1/8: 97×64 decoded, 96.625 columns of it are the image.
    let d = decode(&fixture("photos/eagle.jpg"), Some((96, 64)), &limits).expect("eagle");
    assert_eq!((d.scale_denom, d.rgb.dimensions()), (8, (97, 64)));
    assert_eq!(d.source_region(), [0.0, 0.0, 96.625, 64.0]);
    // eagle-exif3 (180°): the partial column ends up on the left.
    let d = decode(&fixture("photos/eagle-exif3.jpg"), Some((96, 64)), &limits).expect("eagle-exif3");
    assert_eq!(d.source_region(), [0.375, 0.0, 96.625, 64.0]);
    // PNGs are never reduced.
    let d = decode(&fixture("photos/coffee.png"), Some((10, 10)), &limits).expect("coffee");
    assert_eq!((d.scale_denom, d.rgb.dimensions()), (1, (600, 400)));
}

/// A camera-sized JPEG (dog.jpg upscaled 3×, re-encoded 4:2:0): decoded at 1/4 for a
/// 300×300 input, it must resize to nearly what a full decode resizes to.
#[test]
fn scaled_decode_stays_close_to_full_decode() {
    let big = reference_resize(&full("photos/dog.jpg").rgb, 2304, 1728);
    let jpeg = encode_jpeg(&big, 90);
    let limits = DecodeLimits::default();
    let scaled = decode(&jpeg, Some((300, 300)), &limits).expect("scaled");
    let whole = decode(&jpeg, None, &limits).expect("full");
    assert_eq!((scaled.scale_denom, scaled.rgb.dimensions()), (4, (576, 432)));
    assert_eq!((scaled.width, scaled.height), (2304, 1728));
    let mut r = Resizer::new();
    for mode in [ResizeMode::Stretch, ResizeMode::Letterbox] {
        let (a, ta) = r.resize(&scaled, 300, 300, mode).expect("resize");
        let (b, tb) = r.resize(&whole, 300, 300, mode).expect("resize");
        assert_eq!(ta, tb, "box transform must not depend on the decode scale");
        let (mean, max) = diff(&a, &b);
        assert!(mean <= 1.5 && max <= 40, "{mode:?}: mean |Δ| {mean:.2}, max {max}");
    }
}

fn encode_jpeg(img: &RgbImage, quality: i32) -> Vec<u8> {
    let mut c = turbojpeg::Compressor::new().expect("compressor");
    c.set_quality(quality).expect("quality");
    c.set_subsamp(turbojpeg::Subsamp::Sub2x2).expect("subsamp");
    let (w, h) = (img.width() as usize, img.height() as usize);
    let src = turbojpeg::Image {
        pixels: img.as_raw().as_slice(),
        width: w,
        pitch: w * 3,
        height: h,
        format: turbojpeg::PixelFormat::RGB,
    };
    c.compress_to_vec(src).expect("encode")
}

/// Our path (libjpeg-turbo, reduced when possible, Pillow-exact resampling) against an independent
/// one (the `image` crate's decoders and its own triangle-filter resize).
#[test]
fn resized_output_matches_an_independent_path() {
    let limits = DecodeLimits::default();
    let mut r = Resizer::new();
    for name in fixture_names("photos") {
        let bytes = fixture(&format!("photos/{name}"));
        let ours = decode(&bytes, Some((300, 300)), &limits).expect("decode");
        let mut theirs = image::load_from_memory(&bytes).expect("image crate").to_rgb8();
        if ours.orientation != 1 {
            theirs = crate::imaging::orient::apply(theirs, ours.orientation);
        }
        let (a, t) = r.resize(&ours, 300, 300, ResizeMode::Stretch).expect("resize");
        let b = reference_resize(&theirs, 300, 300);
        let (mean, max) = diff(&a, b.as_raw());
        assert!(mean <= 1.5 && max <= 40, "{name} stretch: mean |Δ| {mean:.2}, max {max}");
        assert_eq!(t.original, (ours.width, ours.height));

        let (a, t) = r.resize(&ours, 320, 256, ResizeMode::Letterbox).expect("letterbox");
        let (cw, ch) = t.content;
        let b = reference_resize(&theirs, cw, ch);
        let (px, py) = (t.pad.0 as usize, t.pad.1 as usize);
        let mut content = Vec::with_capacity(b.as_raw().len());
        for y in py..py + ch as usize {
            let row = (y * 320 + px) * 3;
            content.extend_from_slice(&a[row..row + cw as usize * 3]);
        }
        let (mean, max) = diff(&content, b.as_raw());
        assert!(mean <= 1.5 && max <= 40, "{name} letterbox: mean |Δ| {mean:.2}, max {max}");
        // Everything outside the content box is padding.
        let outside: Vec<(usize, usize)> = (0..256usize)
            .flat_map(|y| (0..320usize).map(move |x| (x, y)))
            .filter(|&(x, y)| x < px || x >= px + cw as usize || y < py || y >= py + ch as usize)
            .collect();
        assert_eq!(outside.len() * 3, a.len() - content.len());
        assert!(outside.iter().all(|&(x, y)| a[(y * 320 + x) * 3..][..3] == [PAD_VALUE; 3]));
    }
}

#[test]
fn jpeg_header_bombs_are_refused_before_decoding() {
    // dog.jpg with its frame header rewritten to 65535×65535 (4.3 gigapixels).
    let mut jpg = fixture("photos/dog.jpg");
    let sof = jpg.windows(2).position(|w| w == [0xFF, 0xC0]).expect("SOF0");
    jpg[sof + 5..sof + 9].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
    let start = std::time::Instant::now();
    let e = decode(&jpg, None, &DecodeLimits::default()).expect_err("bomb");
    assert!(matches!(e, DecodeError::TooLarge { width: 65535, height: 65535, .. }), "{e:?}");
    assert!(start.elapsed().as_millis() < 500);
    // Tight limits apply to ordinary images too, and to the encoded size.
    let tight = DecodeLimits { max_width: 700, ..DecodeLimits::default() };
    let e = decode(&fixture("photos/dog.jpg"), None, &tight).expect_err("too wide");
    assert_eq!(e.reason(), "too-large");
    let tight = DecodeLimits { max_pixels: 200_000, ..DecodeLimits::default() };
    assert_eq!(
        decode(&fixture("photos/coffee.png"), None, &tight).map(|_| ()).expect_err("px").reason(),
        "too-large"
    );
    let tight = DecodeLimits { max_bytes: 1000, ..DecodeLimits::default() };
    let e = decode(&fixture("photos/dog.jpg"), None, &tight).expect_err("bytes");
    assert!(matches!(e, DecodeError::InputTooLarge { max_bytes: 1000, .. }), "{e:?}");
}

/// Full decode + resize equals Pillow byte for byte: the sha256 of every photo in every
/// geometry equals `tests/fixtures/pillow-resize.json`, which `tests/python/test_resize_pillow.py`
/// recomputes with the installed Pillow.
#[test]
fn resize_is_bit_exact_with_pillow() {
    use sha2::{Digest, Sha256};
    let want: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>> =
        serde_json::from_slice(&fixture("pillow-resize.json")).expect("pillow-resize.json");
    let names = fixture_names("photos");
    assert_eq!(want.keys().cloned().collect::<Vec<_>>(), names, "pillow-resize.json lists every photo");
    let mut r = Resizer::new();
    for name in names {
        let img = full(&format!("photos/{name}"));
        for (variant, (w, h, mode)) in [
            ("stretch-300x300", (300, 300, ResizeMode::Stretch)),
            ("stretch-640x640", (640, 640, ResizeMode::Stretch)),
            ("letterbox-320x256", (320, 256, ResizeMode::Letterbox)),
        ] {
            let (pixels, _) = r.resize(&img, w, h, mode).expect("resize");
            let got = hex::encode(Sha256::digest(&pixels));
            assert_eq!(got, want[&name][variant], "{name} {variant}");
        }
    }
}
