//! One tile of the contact sheet: the photo scaled to the tile width, every box drawn as a
//! 2-px rectangle in its category's colour with a filled "name 0.97" label, and a caption
//! strip (file name, box count) underneath. An image that could not be fetched or decoded
//! becomes a grey tile that says why.

use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};

use super::font::{self, GLYPH_H, draw_text, ellipsize, text_width};

/// Thickness of box outlines in pixels.
pub const BOX_WIDTH: u32 = 2;
/// A tile's picture is at most this many times as tall as it is wide (tall panoramas are
/// scaled down further and centred).
const MAX_ASPECT: f64 = 3.0;
/// Background of the caption strip.
pub const CAPTION_BG: Rgb<u8> = Rgb([236, 236, 236]);
/// Text colour of the caption strip.
const CAPTION_FG: Rgb<u8> = Rgb([20, 20, 20]);
/// Background of a tile whose image failed.
pub const FAILED_BG: Rgb<u8> = Rgb([150, 150, 150]);
/// Background around a picture narrower than the tile.
const WHITE: Rgb<u8> = Rgb([255, 255, 255]);

/// One box to draw: `bbox` is COCO `[x, y, w, h]` in original (upright) pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct Mark {
    /// `[x, y, w, h]` in original pixels.
    pub bbox: [f64; 4],
    /// COCO category id; picks the colour.
    pub category_id: u64,
    /// Label text, e.g. `dog 0.97`.
    pub label: String,
}

/// Integer text scale for a tile width: 1 below 640 px, 2 below 1280 px, and so on.
pub fn text_scale(tile: u32) -> u32 {
    1 + tile / 640
}

/// Height of the caption strip under each tile.
pub fn caption_height(tile: u32) -> u32 {
    (GLYPH_H + 6) * text_scale(tile)
}

/// Size of the picture of a `width × height` image in a `tile`-wide tile.
pub fn fit(width: u32, height: u32, tile: u32) -> (u32, u32) {
    let (w, h, t) = (f64::from(width.max(1)), f64::from(height.max(1)), f64::from(tile));
    let s = (t / w).min(MAX_ASPECT * t / h);
    (((w * s).round() as u32).clamp(1, tile), ((h * s).round() as u32).max(1))
}

/// Sixteen well-separated box colours (strong hues first; no greys or near-whites).
const PALETTE: [[u8; 3]; 16] = [
    [0xe6, 0x19, 0x4b],
    [0x3c, 0xb4, 0x4b],
    [0xff, 0xe1, 0x19],
    [0x43, 0x63, 0xd8],
    [0xf5, 0x82, 0x31],
    [0x91, 0x1e, 0xb4],
    [0x42, 0xd4, 0xf4],
    [0xf0, 0x32, 0xe6],
    [0xbf, 0xef, 0x45],
    [0x46, 0x99, 0x90],
    [0x9a, 0x63, 0x24],
    [0x00, 0x99, 0xff],
    [0x80, 0x80, 0x00],
    [0x8c, 0x6b, 0xff],
    [0xfa, 0xbe, 0xd4],
    [0xaa, 0xff, 0xc3],
];

/// The colour of a category: ids are spread over the palette by the golden ratio, so
/// consecutive ids (and the common COCO neighbours person/bicycle/car/dog) differ.
pub fn category_colour(category_id: u64) -> Rgb<u8> {
    let slot = ((category_id as f64) * 0.618_033_988_749_895).fract() * PALETTE.len() as f64;
    Rgb(PALETTE[(slot as usize).min(PALETTE.len() - 1)])
}

/// Black or white, whichever reads better on `bg`.
fn contrast(bg: Rgb<u8>) -> Rgb<u8> {
    let [r, g, b] = bg.0;
    let luma = 0.299 * f64::from(r) + 0.587 * f64::from(g) + 0.114 * f64::from(b);
    if luma > 140.0 { Rgb([0, 0, 0]) } else { Rgb([255, 255, 255]) }
}

/// Fills the rectangle `[x0, x1) × [y0, y1)`, clipped to the image.
fn fill(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, colour: Rgb<u8>) {
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    for y in y0.max(0)..y1.min(h) {
        for x in x0.max(0)..x1.min(w) {
            img.put_pixel(x as u32, y as u32, colour);
        }
    }
}

/// The pixel rectangle `[x0, x1] × [y0, y1]` (inclusive) of a box in a picture scaled by
/// (`sx`, `sy`); `None` for non-finite boxes and boxes wholly outside the picture.
fn pixel_rect(bbox: [f64; 4], sx: f64, sy: f64, pic: (u32, u32)) -> Option<[i64; 4]> {
    let [x, y, w, h] = bbox;
    if !bbox.iter().all(|v| v.is_finite()) {
        return None;
    }
    let (pw, ph) = (i64::from(pic.0), i64::from(pic.1));
    let x0 = ((x * sx).floor() as i64).max(0);
    let y0 = ((y * sy).floor() as i64).max(0);
    let x1 = (((x + w.max(0.0)) * sx).ceil() as i64 - 1).min(pw - 1);
    let y1 = (((y + h.max(0.0)) * sy).ceil() as i64 - 1).min(ph - 1);
    (x0 <= x1 && y0 <= y1).then_some([x0, y0, x1.max(x0), y1.max(y0)])
}

/// The caption strip: `name` on the left, `note` on the right.
fn caption(tile: u32, name: &str, note: &str) -> RgbImage {
    let scale = text_scale(tile);
    let mut strip = RgbImage::from_pixel(tile, caption_height(tile), CAPTION_BG);
    let pad = 3 * scale;
    let room = font::chars_fitting(tile.saturating_sub(2 * pad), scale);
    let note_chars = note.chars().count();
    let name = ellipsize(name, room.saturating_sub(note_chars + 1));
    let y = i64::from(pad);
    draw_text(&mut strip, i64::from(pad), y, &name, scale, CAPTION_FG);
    let note_x = i64::from(tile) - i64::from(pad) - i64::from(text_width(note, scale));
    draw_text(&mut strip, note_x, y, note, scale, CAPTION_FG);
    strip
}

/// Stacks `pic` (centred) over the caption strip into one `tile`-wide image.
fn with_caption(pic: &RgbImage, tile: u32, name: &str, note: &str) -> RgbImage {
    let strip = caption(tile, name, note);
    let mut out = RgbImage::from_pixel(tile, pic.height() + strip.height(), WHITE);
    imageops::replace(&mut out, pic, i64::from((tile - pic.width().min(tile)) / 2), 0);
    imageops::replace(&mut out, &strip, 0, i64::from(pic.height()));
    out
}

/// Renders a decoded image: `rgb` shows the whole upright original of `orig` = (width,
/// height) pixels, `marks` are drawn in order (later ones on top).
pub fn render_image(rgb: &RgbImage, orig: (u32, u32), marks: &[Mark], tile: u32, name: &str) -> RgbImage {
    let (tw, th) = fit(orig.0, orig.1, tile);
    let mut pic = imageops::resize(rgb, tw, th, FilterType::Triangle);
    let (sx, sy) = (f64::from(tw) / f64::from(orig.0.max(1)), f64::from(th) / f64::from(orig.1.max(1)));
    let rects: Vec<_> = marks.iter().map(|m| pixel_rect(m.bbox, sx, sy, (tw, th))).collect();
    let bw = i64::from(BOX_WIDTH);
    // Outlines first, then labels, so no outline crosses a label.
    for (mark, rect) in marks.iter().zip(&rects) {
        let Some([x0, y0, x1, y1]) = *rect else { continue };
        let c = category_colour(mark.category_id);
        fill(&mut pic, x0, y0, x1 + 1, (y0 + bw).min(y1 + 1), c);
        fill(&mut pic, x0, (y1 + 1 - bw).max(y0), x1 + 1, y1 + 1, c);
        fill(&mut pic, x0, y0, (x0 + bw).min(x1 + 1), y1 + 1, c);
        fill(&mut pic, (x1 + 1 - bw).max(x0), y0, x1 + 1, y1 + 1, c);
    }
    let scale = text_scale(tile);
    let (lh, pad) = (i64::from((GLYPH_H + 3) * scale), i64::from(2 * scale));
    for (mark, rect) in marks.iter().zip(&rects) {
        let Some([x0, y0, _, _]) = *rect else { continue };
        let c = category_colour(mark.category_id);
        let lw = i64::from(text_width(&mark.label, scale)) + 2 * pad;
        let lx = x0.min(i64::from(tw) - lw).max(0);
        let ly = if y0 >= lh { y0 - lh } else { y0 };
        fill(&mut pic, lx, ly, lx + lw, ly + lh, c);
        draw_text(&mut pic, lx + pad, ly + pad, &mark.label, scale, contrast(c));
    }
    let note = match marks.len() {
        1 => "1 box".to_string(),
        n => format!("{n} boxes"),
    };
    with_caption(&pic, tile, name, &note)
}

/// Splits `text` into lines of at most `width` characters, at spaces where possible.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let chars: Vec<char> = word.chars().collect();
        for piece in chars.chunks(width) {
            let piece: String = piece.iter().collect();
            let len = line.chars().count();
            if len > 0 && len + 1 + piece.chars().count() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&piece);
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// A grey 4:3 tile for an image that could not be shown, with `reason` wrapped inside.
pub fn render_failure(tile: u32, name: &str, reason: &str) -> RgbImage {
    let scale = text_scale(tile);
    let mut pic = RgbImage::from_pixel(tile, (tile * 3 / 4).max(1), FAILED_BG);
    let pad = 4 * scale;
    let line_h = (GLYPH_H + 3) * scale;
    let room = font::chars_fitting(tile.saturating_sub(2 * pad), scale);
    let max_lines = (pic.height().saturating_sub(2 * pad) / line_h) as usize;
    let mut lines = vec!["cannot show image:".to_string()];
    lines.extend(wrap(reason, room));
    if lines.len() > max_lines {
        lines.truncate(max_lines);
        if let Some(last) = lines.last_mut() {
            *last = ellipsize(&format!("{last}..."), room);
        }
    }
    let fg = contrast(FAILED_BG);
    for (i, line) in lines.iter().enumerate() {
        let y = i64::from(pad + i as u32 * line_h);
        draw_text(&mut pic, i64::from(pad), y, line, scale, fg);
    }
    with_caption(&pic, tile, name, "failed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_by_width_and_caps_tall_images() {
        assert_eq!(fit(768, 576, 320), (320, 240));
        assert_eq!(fit(500, 500, 320), (320, 320));
        assert_eq!(fit(100, 1000, 320), (96, 960));
    }

    #[test]
    fn boxes_map_to_pixels_and_clip() {
        assert_eq!(pixel_rect([10.0, 20.0, 30.0, 40.0], 0.5, 0.5, (100, 100)), Some([5, 10, 19, 29]));
        assert_eq!(pixel_rect([-10.0, -10.0, 500.0, 500.0], 1.0, 1.0, (100, 50)), Some([0, 0, 99, 49]));
        assert_eq!(pixel_rect([200.0, 0.0, 10.0, 10.0], 1.0, 1.0, (100, 100)), None);
        assert_eq!(pixel_rect([f64::NAN, 0.0, 10.0, 10.0], 1.0, 1.0, (100, 100)), None);
    }

    #[test]
    fn colours_differ_between_neighbouring_categories() {
        let colours: Vec<_> = (1..=12).map(category_colour).collect();
        for (i, a) in colours.iter().enumerate() {
            for b in &colours[i + 1..] {
                let d: i32 = a.0.iter().zip(b.0).map(|(x, y)| (i32::from(*x) - i32::from(y)).abs()).sum();
                assert!(d > 40, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn wraps_words_and_splits_long_ones() {
        assert_eq!(wrap("not found: file:///tmp/x.jpg", 12), ["not found:", "file:///tmp/", "x.jpg"]);
        assert_eq!(wrap("a b c", 3), ["a b", "c"]);
    }

    #[test]
    fn failure_tile_is_grey_with_caption() {
        let t = render_failure(320, "x.jpg", "boom");
        assert_eq!(t.dimensions(), (320, 240 + caption_height(320)));
        assert_eq!(*t.get_pixel(319, 200), FAILED_BG);
        assert_eq!(*t.get_pixel(319, 240), CAPTION_BG);
    }
}
