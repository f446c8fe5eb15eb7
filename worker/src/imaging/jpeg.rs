//! JPEG decoding with libjpeg-turbo: our own marker walk (frame size for the limits, EXIF
//! orientation) before any pixel buffer exists, then a DCT-domain reduced decode (1/2, 1/4,
//! 1/8) when the model input allows it, CMYK/YCCK converted to RGB like Pillow, and the
//! orientation applied.
//!
//! libjpeg reports recoverable damage as warnings (the image is still complete). Those are
//! accepted as Pillow accepts them, except "Premature end of JPEG file": the data ran out and
//! the rest of the image would be grey, which Pillow refuses as "image file is truncated".

use std::cell::RefCell;

use image::RgbImage;
use turbojpeg::{Colorspace, Decompressor, Image, PixelFormat, ScalingFactor};

use super::{CodecError, DecodeError, DecodeLimits, Decoded, orient, raster};

/// Progressive scans allowed per image (libjpeg-turbo's advice against scan-count bombs).
const SCAN_LIMIT: u32 = 500;

/// Largest pixel buffer a thread keeps for its next decode (16 MiB: a 2300×2300 RGB image).
pub(super) const MAX_SPARE_BYTES: usize = 16 << 20;

thread_local! {
    /// One libjpeg-turbo handle per thread, reused across images.
    static DECOMPRESSOR: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
    /// A finished image's pixel buffer ([`recycle`]), decoded into next instead of a fresh,
    /// zeroed one.
    static SPARE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Keep `buf` (the pixels of an image this thread is done with) for its next JPEG decode,
/// unless it is larger than [`MAX_SPARE_BYTES`] or smaller than the one kept.
pub(super) fn recycle(buf: Vec<u8>) {
    if buf.capacity() <= MAX_SPARE_BYTES {
        SPARE.with(|s| {
            if let Ok(mut s) = s.try_borrow_mut()
                && buf.capacity() >= s.capacity()
            {
                *s = buf;
            }
        });
    }
}

/// A buffer of `len` bytes: this thread's spare one (its old bytes left in place, to be
/// overwritten), else a zeroed one.
fn buffer(len: usize) -> Vec<u8> {
    let mut buf = SPARE.with(|s| s.try_borrow_mut().map(|mut s| std::mem::take(&mut *s)).unwrap_or_default());
    // Only bytes past the spare's length are zeroed.
    buf.resize(len, 0);
    buf
}

/// What the marker walk found before the first scan.
#[derive(Debug, Default)]
struct Markers<'a> {
    /// TIFF block of the first `APP1 Exif` segment.
    exif: Option<&'a [u8]>,
    /// Frame header: width, height, sample precision, lossless (SOF3/SOF7/SOF11/SOF15).
    frame: Option<Frame>,
    /// The data ended inside the header segments.
    truncated: bool,
}

#[derive(Clone, Copy, Debug)]
struct Frame {
    width: u32,
    height: u32,
    precision: u8,
    lossless: bool,
}

/// Walks the marker segments up to the first scan (SOS), reading no pixel data.
fn scan_markers(bytes: &[u8]) -> Markers<'_> {
    let mut m = Markers::default();
    let mut i = 2; // after SOI
    loop {
        // Skip to the next 0xFF, then over fill bytes.
        while i < bytes.len() && bytes[i] != 0xFF {
            i += 1;
        }
        while i < bytes.len() && bytes[i] == 0xFF {
            i += 1;
        }
        let Some(&marker) = bytes.get(i) else {
            m.truncated = true;
            return m;
        };
        i += 1;
        match marker {
            0xD8 | 0x01 | 0xD0..=0xD7 => continue, // no length field
            0xD9 | 0xDA => return m,               // EOI, SOS: header over
            _ => {}
        }
        let Some(len) = bytes.get(i..i + 2).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))) else {
            m.truncated = true;
            return m;
        };
        let Some(seg) = bytes.get(i + 2..i + len.max(2)) else {
            m.truncated = true;
            return m;
        };
        match marker {
            0xE1 if m.exif.is_none() && seg.starts_with(b"Exif\0\0") => m.exif = Some(&seg[6..]),
            // SOFn (not DHT C4, JPG C8, DAC CC): precision, height, width, components.
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) && m.frame.is_none() && seg.len() >= 6 => {
                m.frame = Some(Frame {
                    precision: seg[0],
                    height: u32::from(u16::from_be_bytes([seg[1], seg[2]])),
                    width: u32::from(u16::from_be_bytes([seg[3], seg[4]])),
                    lossless: matches!(marker, 0xC3 | 0xC7 | 0xCB | 0xCF),
                });
            }
            _ => {}
        }
        i += len.max(2);
    }
}

/// The largest DCT reduction (8, 4, 2, else 1) that keeps the upright image at least
/// `target` in both dimensions.
pub(super) fn choose_denom(width: u32, height: u32, orientation: u16, target: Option<(u32, u32)>) -> u32 {
    let Some((tw, th)) = target else { return 1 };
    let (uw, uh) = orient::upright_size(width, height, orientation);
    [8u32, 4, 2]
        .into_iter()
        .find(|&d| {
            u64::from(uw) >= u64::from(tw) * u64::from(d) && u64::from(uh) >= u64::from(th) * u64::from(d)
        })
        .unwrap_or(1)
}

/// How a libjpeg-turbo failure is handled.
enum Failure {
    /// A recoverable libjpeg warning: the output is complete.
    Warning,
    /// Any other failure.
    Fatal(CodecError),
}

fn classify(err: turbojpeg::Error) -> Failure {
    // libjpeg's warning texts (jerror.h JWRN_*), as TurboJPEG reports them.
    const WARNINGS: [&str; 6] = [
        "Corrupt JPEG data:",
        "Unknown Adobe color transform code",
        "Inconsistent progression sequence",
        "Warning: unknown JFIF revision",
        "Invalid SOS parameters for sequential JPEG",
        "Application transferred too many scanlines",
    ];
    match &err {
        turbojpeg::Error::TurboJpegError(msg) if msg.starts_with("Premature end of JPEG file") => {
            Failure::Fatal(CodecError::Truncated)
        }
        turbojpeg::Error::TurboJpegError(msg) if WARNINGS.iter().any(|w| msg.starts_with(w)) => {
            Failure::Warning
        }
        _ => Failure::Fatal(CodecError::Jpeg(err)),
    }
}

fn corrupt(source: CodecError) -> DecodeError {
    DecodeError::Corrupt { format: "jpeg", source }
}

/// Decodes a JPEG (see the module docs).
pub(super) fn decode(
    bytes: &[u8],
    target: Option<(u32, u32)>,
    limits: &DecodeLimits,
) -> Result<Decoded, DecodeError> {
    let markers = scan_markers(bytes);
    let Some(frame) = markers.frame else {
        return Err(corrupt(if markers.truncated {
            CodecError::Truncated
        } else {
            CodecError::Header("no frame header before the image data")
        }));
    };
    if frame.width == 0 || frame.height == 0 {
        return Err(corrupt(CodecError::Header("zero width or height")));
    }
    limits.check(frame.width, frame.height)?;
    if frame.precision > 8 {
        return Err(DecodeError::Unsupported { what: "JPEG with more than 8 bits per sample", source: None });
    }
    let orientation = markers.exif.map_or(1, |t| orient::from_tiff(t.to_vec()));
    let denom = if frame.lossless { 1 } else { choose_denom(frame.width, frame.height, orientation, target) };
    let pixels = DECOMPRESSOR.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => {
            if slot.is_none() {
                *slot = Some(new_decompressor().map_err(|e| corrupt(CodecError::Jpeg(e)))?);
            }
            match slot.as_mut() {
                Some(d) => decompress(d, bytes, denom, limits),
                None => Err(corrupt(CodecError::Header("decoder unavailable"))),
            }
        }
        // Only reachable through re-entrance; use a private handle then.
        Err(_) => {
            let mut d = new_decompressor().map_err(|e| corrupt(CodecError::Jpeg(e)))?;
            decompress(&mut d, bytes, denom, limits)
        }
    })?;
    let Some((rgb, width, height)) = pixels else {
        // libjpeg-turbo warned while reading the header, which makes the turbojpeg crate
        // refuse to decode; the image crate's decoder (full size) reads such files.
        return raster::decode(bytes, image::ImageFormat::Jpeg, "jpeg", limits);
    };
    let (width, height) = orient::upright_size(width, height, orientation);
    Ok(Decoded {
        rgb: orient::apply(rgb, orientation),
        width,
        height,
        format: "jpeg",
        orientation,
        scale_denom: denom,
    })
}

fn new_decompressor() -> turbojpeg::Result<Decompressor> {
    let mut d = Decompressor::new()?;
    d.set_scan_limit(SCAN_LIMIT)?;
    Ok(d)
}

/// Stored-orientation RGB pixels at 1/`denom` scale plus the full stored size, or `None`
/// when the header carries a libjpeg warning (see the caller).
fn decompress(
    d: &mut Decompressor,
    bytes: &[u8],
    denom: u32,
    limits: &DecodeLimits,
) -> Result<Option<(RgbImage, u32, u32)>, DecodeError> {
    let header = match d.read_header(bytes) {
        Ok(h) => h,
        Err(e) => {
            return match classify(e) {
                Failure::Warning => Ok(None),
                Failure::Fatal(source) => Err(corrupt(source)),
            };
        }
    };
    // The library's frame size is authoritative; re-check it against the limits.
    let too_big = |_| corrupt(CodecError::Header("dimensions out of range"));
    let (width, height) =
        (u32::try_from(header.width).map_err(too_big)?, u32::try_from(header.height).map_err(too_big)?);
    limits.check(width, height)?;
    let factor = if header.is_lossless { ScalingFactor::ONE } else { ScalingFactor::new(1, denom as usize) };
    d.set_scaling_factor(factor).map_err(|e| corrupt(CodecError::Jpeg(e)))?;
    let scaled = header.scaled(factor);
    let cmyk = matches!(header.colorspace, Colorspace::CMYK | Colorspace::YCCK);
    let (format, channels) = if cmyk { (PixelFormat::CMYK, 4) } else { (PixelFormat::RGB, 3) };
    let len = scaled.width.checked_mul(scaled.height).and_then(|n| n.checked_mul(channels));
    // A recycled buffer keeps its old bytes: libjpeg-turbo writes every output row, after a
    // warning too (a fatal error discards the buffer), so none of them shows through
    // (`a_recycled_buffer_never_shows_another_image` checks damaged files).
    let mut buf = buffer(len.ok_or_else(|| corrupt(CodecError::Header("dimensions out of range")))?);
    let out = Image {
        pixels: &mut buf[..],
        width: scaled.width,
        pitch: scaled.width * channels,
        height: scaled.height,
        format,
    };
    if let Err(e) = d.decompress(bytes, out)
        && let Failure::Fatal(source) = classify(e)
    {
        return Err(corrupt(source));
    }
    if cmyk {
        buf = cmyk_to_rgb(&buf);
    }
    let (sw, sh) = (scaled.width as u32, scaled.height as u32);
    let rgb = RgbImage::from_raw(sw, sh, buf)
        .ok_or_else(|| corrupt(CodecError::Header("decoded size mismatch")))?;
    Ok(Some((rgb, width, height)))
}

/// Pillow's CMYK → RGB for JPEG: samples are taken as stored inverted (Adobe/Photoshop
/// convention, Pillow's raw mode `CMYK;I` for every CMYK JPEG), then
/// `R = (255 − K) − (C · (255 − K) / 255)` with Pillow's rounding, likewise G and B.
fn cmyk_to_rgb(cmyk: &[u8]) -> Vec<u8> {
    fn muldiv255(a: u32, b: u32) -> u32 {
        let t = a * b + 128;
        ((t >> 8) + t) >> 8
    }
    let mut rgb = Vec::with_capacity(cmyk.len() / 4 * 3);
    for px in cmyk.chunks_exact(4) {
        let nk = u32::from(px[3]); // 255 − K, as stored inverted
        for &s in &px[..3] {
            let c = 255 - u32::from(s);
            rgb.push(nk.saturating_sub(muldiv255(c, nk)) as u8);
        }
    }
    rgb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denominator_keeps_the_target_covered() {
        // 4000×3000 photo, 300×300 model: 1/8 gives 500×375.
        assert_eq!(choose_denom(4000, 3000, 1, Some((300, 300))), 8);
        // 1352×900: 1/2 gives 676×450, 1/4 would give 338×225 (< 300 high).
        assert_eq!(choose_denom(1352, 900, 1, Some((300, 300))), 2);
        // 768×576: 1/2 would be 288 high, so full size.
        assert_eq!(choose_denom(768, 576, 1, Some((300, 300))), 1);
        // Rotated 90°: a stored 900×2400 is upright 2400×900; target 640×224 → 1/2 (1200×450).
        assert_eq!(choose_denom(900, 2400, 6, Some((640, 224))), 2);
        assert_eq!(choose_denom(900, 2400, 1, Some((640, 224))), 1);
        assert_eq!(choose_denom(2400, 900, 1, Some((600, 224))), 4);
        assert_eq!(choose_denom(4000, 3000, 1, None), 1);
    }

    #[test]
    fn markers_find_frame_and_exif() {
        let jpg =
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/photos/dog-exif6.jpg"))
                .expect("fixture");
        let m = scan_markers(&jpg);
        let f = m.frame.expect("frame");
        assert_eq!((f.width, f.height, f.precision, f.lossless), (576, 768, 8, false));
        assert_eq!(orient::from_tiff(m.exif.expect("exif").to_vec()), 6);
        assert!(!m.truncated);
        let cut = scan_markers(&jpg[..40]);
        assert!(cut.truncated && cut.frame.is_none());
    }

    #[test]
    fn cmyk_matches_pillow_formula() {
        // Stored (inverted) white paper: C=M=Y=0 ink → stored 255, K stored 255 → white.
        assert_eq!(cmyk_to_rgb(&[255, 255, 255, 255]), vec![255, 255, 255]);
        // Full black ink: K stored 0 → black whatever C/M/Y.
        assert_eq!(cmyk_to_rgb(&[10, 200, 255, 0]), vec![0, 0, 0]);
        // Pure cyan ink (stored C = 0): R = 0, G = B = 255.
        assert_eq!(cmyk_to_rgb(&[0, 255, 255, 255]), vec![0, 255, 255]);
        // Mid values: nk=128, c=155 → 128 − round(155·128/255) = 128 − 78 = 50.
        assert_eq!(cmyk_to_rgb(&[100, 100, 100, 128]), vec![50, 50, 50]);
    }
}
