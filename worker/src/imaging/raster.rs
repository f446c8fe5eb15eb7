//! PNG, WebP and BMP decoding (and the fallback for JPEGs libjpeg-turbo warns about in the
//! header) with the `image` crate: the header is read and checked against the limits before
//! the frame is allocated, then the pixels are reduced to 8-bit RGB the way Pillow's
//! `convert("RGB")` does, and the EXIF orientation (PNG `eXIf`, WebP `EXIF`) is applied.

use std::io::Cursor;

use image::{DynamicImage, ImageBuffer, ImageDecoder, ImageError, ImageFormat, ImageReader, Pixel, RgbImage};

use super::{CodecError, DecodeError, DecodeLimits, Decoded, orient};

/// Decodes `bytes` known to be `format` (named `name` in [`Decoded::format`]).
pub(super) fn decode(
    bytes: &[u8],
    format: ImageFormat,
    name: &'static str,
    limits: &DecodeLimits,
) -> Result<Decoded, DecodeError> {
    let fail = |e| classify(e, name);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    // Our own dimension checks come first (below); this only caps the decoder's allocations:
    // the largest frame the limits allow at 8 bytes per pixel (16-bit RGBA), plus slack.
    let mut image_limits = image::Limits::default();
    image_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8).saturating_add(64 << 20));
    reader.limits(image_limits);
    let mut decoder = reader.into_decoder().map_err(fail)?;
    let (width, height) = decoder.dimensions();
    limits.check(width, height)?;
    if width == 0 || height == 0 {
        return Err(DecodeError::Corrupt {
            format: name,
            source: CodecError::Header("zero width or height"),
        });
    }
    let orientation = decoder.exif_metadata().ok().flatten().map_or(1, orient::from_tiff);
    let img = DynamicImage::from_decoder(decoder).map_err(fail)?;
    let rgb = to_rgb8(img);
    let (width, height) = orient::upright_size(rgb.width(), rgb.height(), orientation);
    Ok(Decoded {
        rgb: orient::apply(rgb, orientation),
        width,
        height,
        format: name,
        orientation,
        scale_denom: 1,
    })
}

/// Maps an `image` crate error onto our categories.
fn classify(err: ImageError, format: &'static str) -> DecodeError {
    match err {
        ImageError::Unsupported(_) => DecodeError::Unsupported {
            what: match format {
                "png" => "PNG variant",
                "webp" => "WebP variant",
                "bmp" => "BMP variant",
                _ => "JPEG variant",
            },
            source: Some(CodecError::Image(err)),
        },
        ImageError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            DecodeError::Corrupt { format, source: CodecError::Truncated }
        }
        other => DecodeError::Corrupt { format, source: CodecError::Image(other) },
    }
}

/// 8-bit RGB as Pillow's `convert("RGB")` gives it: alpha dropped (the stored colour kept,
/// not composited), grey replicated into R = G = B, 16-bit samples reduced to their high byte
/// (Pillow's `RGB;16B` unpacking; for 16-bit grey Pillow clips to 255 instead, which we do not
/// copy). Already-RGB8 images are moved, not copied.
fn to_rgb8(img: DynamicImage) -> RgbImage {
    match img {
        DynamicImage::ImageRgb8(rgb) => rgb,
        DynamicImage::ImageRgba8(i) => map(&i, |p| [p[0], p[1], p[2]]),
        DynamicImage::ImageLuma8(i) => map(&i, |p| [p[0]; 3]),
        DynamicImage::ImageLumaA8(i) => map(&i, |p| [p[0]; 3]),
        DynamicImage::ImageRgb16(i) => map(&i, |p| [hi(p[0]), hi(p[1]), hi(p[2])]),
        DynamicImage::ImageRgba16(i) => map(&i, |p| [hi(p[0]), hi(p[1]), hi(p[2])]),
        DynamicImage::ImageLuma16(i) => map(&i, |p| [hi(p[0]); 3]),
        DynamicImage::ImageLumaA16(i) => map(&i, |p| [hi(p[0]); 3]),
        other => other.to_rgb8(),
    }
}

fn hi(v: u16) -> u8 {
    (v >> 8) as u8
}

/// Builds an RGB image by mapping each pixel's channels.
fn map<P: Pixel>(src: &ImageBuffer<P, Vec<P::Subpixel>>, f: impl Fn(&[P::Subpixel]) -> [u8; 3]) -> RgbImage {
    let mut out = Vec::with_capacity(src.width() as usize * src.height() as usize * 3);
    for p in src.pixels() {
        out.extend_from_slice(&f(p.channels()));
    }
    // `out` holds exactly width × height × 3 bytes.
    RgbImage::from_raw(src.width(), src.height(), out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayAlphaImage, ImageBuffer, Luma, Rgb, Rgba, RgbaImage};

    #[test]
    fn conversions_follow_pillow() {
        let rgba = RgbaImage::from_pixel(2, 1, Rgba([10, 20, 30, 0]));
        assert_eq!(to_rgb8(rgba.into()).as_raw(), &[10, 20, 30, 10, 20, 30]);
        let la = GrayAlphaImage::from_pixel(1, 1, image::LumaA([77, 128]));
        assert_eq!(to_rgb8(la.into()).as_raw(), &[77, 77, 77]);
        // 25855 = 0x64FF: high byte 100 (Pillow), where rounding would give 101.
        let rgb16: ImageBuffer<Rgb<u16>, _> = ImageBuffer::from_pixel(1, 1, Rgb([25855, 257, 65535]));
        assert_eq!(to_rgb8(rgb16.into()).as_raw(), &[100, 1, 255]);
        let l16: ImageBuffer<Luma<u16>, _> = ImageBuffer::from_pixel(1, 1, Luma([0x8040]));
        assert_eq!(to_rgb8(l16.into()).as_raw(), &[0x80, 0x80, 0x80]);
    }
}
