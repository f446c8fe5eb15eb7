//! EXIF orientation: read the Orientation tag (kamadak-exif) and turn stored pixels upright,
//! as Pillow's `ImageOps.exif_transpose` does.
//!
//! Orientation values (TIFF 6.0 / EXIF 2.3): 1 upright, 2 mirrored left–right, 3 rotated
//! 180°, 4 mirrored top–bottom, 5 transposed (mirror across the main diagonal), 6 displayed
//! by rotating the stored pixels 90° clockwise, 7 transversed, 8 displayed by rotating 90°
//! counter-clockwise. 5–8 swap width and height.

use exif::{In, Tag};
use image::RgbImage;

/// The Orientation tag of a raw TIFF/EXIF block (no `Exif\0\0` prefix); 1 when the block is
/// unreadable, has no tag or holds a value outside 1–8.
pub(super) fn from_tiff(tiff: Vec<u8>) -> u16 {
    let Ok(exif) = exif::Reader::new().read_raw(tiff) else {
        return 1;
    };
    exif.get_field(Tag::Orientation, In::PRIMARY)
        .and_then(|f| f.value.get_uint(0))
        .and_then(|v| u16::try_from(v).ok())
        .filter(|v| (1..=8).contains(v))
        .unwrap_or(1)
}

/// Whether orientation `o` swaps width and height (a 90° turn is involved).
pub(super) fn swaps_axes(o: u16) -> bool {
    (5..=8).contains(&o)
}

/// For a stored image whose last column and row are partial (reduced JPEG decode), whether
/// after orientation `o` the partial upright column is on the left (`.0`) and the partial
/// upright row on top (`.1`), rather than right and bottom.
pub(super) fn partial_edge_first(o: u16) -> (bool, bool) {
    (matches!(o, 2 | 3 | 6 | 7), matches!(o, 3 | 4 | 7 | 8))
}

/// Upright size of a stored `width × height` image with orientation `o`.
pub(super) fn upright_size(width: u32, height: u32, o: u16) -> (u32, u32) {
    if swaps_axes(o) { (height, width) } else { (width, height) }
}

/// Applies orientation `o` to stored pixels; values outside 2–8 return `img` unchanged.
pub(super) fn apply(mut img: RgbImage, o: u16) -> RgbImage {
    use image::imageops::{flip_horizontal_in_place, flip_vertical_in_place, rotate180_in_place};
    match o {
        2 => flip_horizontal_in_place(&mut img),
        3 => rotate180_in_place(&mut img),
        4 => flip_vertical_in_place(&mut img),
        5..=8 => return turn(&img, o),
        _ => {}
    }
    img
}

/// Orientations 5–8: one pass into a new `height × width` buffer, reading the source pixel
/// that lands on each output pixel.
fn turn(src: &RgbImage, o: u16) -> RgbImage {
    let (w, h) = (src.width() as usize, src.height() as usize);
    let mut out = vec![0u8; w * h * 3];
    let s = src.as_raw();
    // Output is h wide and w tall; output (x, y) takes source (sx, sy).
    for (y, row) in out.chunks_exact_mut(h * 3).enumerate() {
        for (x, px) in row.chunks_exact_mut(3).enumerate() {
            let (sx, sy) = match o {
                5 => (y, x),
                6 => (y, h - 1 - x),
                7 => (w - 1 - y, h - 1 - x),
                _ => (w - 1 - y, x),
            };
            let i = (sy * w + sx) * 3;
            px.copy_from_slice(&s[i..i + 3]);
        }
    }
    // The buffer holds exactly h × w × 3 bytes, so construction cannot fail.
    RgbImage::from_raw(src.height(), src.width(), out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::imageops;

    fn sample(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, (x * 7 + y * 3) as u8]))
    }

    #[test]
    fn orientations_match_the_reference_compositions() {
        let img = sample(5, 3);
        // Pillow's exif_transpose: 2 FLIP_LEFT_RIGHT, 3 ROTATE_180, 4 FLIP_TOP_BOTTOM,
        // 5 TRANSPOSE, 6 ROTATE_270 (= 90° clockwise), 7 TRANSVERSE, 8 ROTATE_90 (= 90° ccw).
        let cw = imageops::rotate90(&img);
        let ccw = imageops::rotate270(&img);
        let expect = [
            (1, img.clone()),
            (2, imageops::flip_horizontal(&img)),
            (3, imageops::rotate180(&img)),
            (4, imageops::flip_vertical(&img)),
            (5, imageops::flip_horizontal(&cw)),
            (6, cw.clone()),
            (7, imageops::flip_horizontal(&ccw)),
            (8, ccw),
        ];
        for (o, want) in expect {
            let got = apply(img.clone(), o);
            assert_eq!(got.dimensions(), upright_size(5, 3, o), "size for {o}");
            assert_eq!(got, want, "orientation {o}");
        }
        // Transpose really is the diagonal mirror: output (x, y) = input (y, x).
        let t = apply(img.clone(), 5);
        assert_eq!(t.get_pixel(2, 4), img.get_pixel(4, 2));
    }

    #[test]
    fn partial_edge_follows_the_stored_last_column() {
        // Mark the stored last column and row, orient, and see where they went.
        for o in 1..=8u16 {
            let img = RgbImage::from_fn(4, 3, |x, y| {
                image::Rgb([u8::from(x == 3) * 200, u8::from(y == 2) * 200, 0])
            });
            let up = apply(img, o);
            let (w, h) = up.dimensions();
            let (left, top) = partial_edge_first(o);
            // The upright partial column is the stored last column (o 1–4) or row (o 5–8).
            let (col_ch, row_ch) = if swaps_axes(o) { (1, 0) } else { (0, 1) };
            let x = if left { 0 } else { w - 1 };
            let y = if top { 0 } else { h - 1 };
            assert!((0..h).all(|yy| up.get_pixel(x, yy)[col_ch] == 200), "o={o} x");
            assert!((0..w).all(|xx| up.get_pixel(xx, y)[row_ch] == 200), "o={o} y");
        }
    }

    #[test]
    fn bad_exif_means_upright() {
        assert_eq!(from_tiff(Vec::new()), 1);
        assert_eq!(from_tiff(b"MM\0*garbage".to_vec()), 1);
    }
}
