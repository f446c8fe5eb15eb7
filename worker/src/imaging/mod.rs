//! Image decoding and resizing: bytes → oriented RGB pixels → model-sized input.
//!
//! The hot path of a shard: [`decode`] sniffs the format from the content (never the file
//! name), refuses oversized images from the header before any pixel buffer exists, decodes
//! JPEGs with libjpeg-turbo at the smallest DCT scale (1/8, 1/4, 1/2) that still covers the
//! model input, PNG/WebP/BMP with the `image` crate, drops alpha and reduces 16-bit samples
//! like Pillow's `convert("RGB")`, and applies the EXIF orientation. [`Resizer`] then
//! resamples (antialiased bilinear, bit-exact with Pillow's `BILINEAR`) to the model input by stretch or
//! letterbox and returns the [`BoxTransform`] that maps detections back to original pixels;
//! [`to_tensor`] batches the results in the layout, dtype and channel order the model wants.

mod jpeg;
mod orient;
mod png_chunks;
mod raster;
mod resample;
mod resize;
mod tensor;
#[cfg(test)]
mod tests;

use image::RgbImage;

pub use resize::{BoxTransform, PAD_VALUE, ResizeError, Resizer, recycle_input};
pub use tensor::{Tensor, TensorError, to_tensor};

/// Size limits checked against the image header before any pixel buffer is allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest accepted width in pixels (as stored, before orientation).
    pub max_width: u32,
    /// Largest accepted height in pixels (as stored, before orientation).
    pub max_height: u32,
    /// Largest accepted `width × height`.
    pub max_pixels: u64,
    /// Largest accepted encoded input, in bytes.
    pub max_bytes: usize,
}

impl Default for DecodeLimits {
    /// 20,000 × 20,000 pixels, 150 megapixels, 256 MiB of encoded input.
    fn default() -> Self {
        Self { max_width: 20_000, max_height: 20_000, max_pixels: 150_000_000, max_bytes: 256 << 20 }
    }
}

impl DecodeLimits {
    /// Refuses `width × height` (as the header declares it) when over any limit.
    fn check(&self, width: u32, height: u32) -> Result<(), DecodeError> {
        let limit = if width > self.max_width {
            Limit::Width(self.max_width)
        } else if height > self.max_height {
            Limit::Height(self.max_height)
        } else if u64::from(width) * u64::from(height) > self.max_pixels {
            Limit::Pixels(self.max_pixels)
        } else {
            return Ok(());
        };
        Err(DecodeError::TooLarge { width, height, limit })
    }
}

/// Which [`DecodeLimits`] field an image exceeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// `max_width`.
    Width(u32),
    /// `max_height`.
    Height(u32),
    /// `max_pixels`.
    Pixels(u64),
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Limit::Width(max) => write!(f, "width limit of {max} px"),
            Limit::Height(max) => write!(f, "height limit of {max} px"),
            Limit::Pixels(max) => write!(f, "limit of {max} pixels"),
        }
    }
}

/// A decoded image: upright RGB pixels, possibly reduced by a DCT scale factor.
#[derive(Clone, Debug)]
pub struct Decoded {
    /// Upright (EXIF orientation applied) RGB pixels; `width / scale_denom` wide, rounded up.
    pub rgb: RgbImage,
    /// Upright width of the full-resolution image, in original pixels.
    pub width: u32,
    /// Upright height of the full-resolution image, in original pixels.
    pub height: u32,
    /// Detected format: `"jpeg"`, `"png"`, `"webp"` or `"bmp"`.
    pub format: &'static str,
    /// EXIF orientation found in the file (1–8) and applied; 1 when absent or invalid.
    pub orientation: u16,
    /// DCT reduction used by the JPEG decoder: 1 (full size), 2, 4 or 8.
    pub scale_denom: u32,
}

impl Decoded {
    /// The rectangle of `rgb` (left, top, width, height; fractional pixels) that shows the
    /// whole original image. A reduced decode rounds its size up, so the last row/column holds
    /// only part of a DCT block; after orientation that partial edge may be at the left or top.
    pub fn source_region(&self) -> [f64; 4] {
        let d = f64::from(self.scale_denom.max(1));
        let (w, h) = (f64::from(self.width) / d, f64::from(self.height) / d);
        let (rw, rh) = (f64::from(self.rgb.width()), f64::from(self.rgb.height()));
        let (w, h) = (w.min(rw), h.min(rh));
        let (flip_x, flip_y) = orient::partial_edge_first(self.orientation);
        let left = if flip_x { rw - w } else { 0.0 };
        let top = if flip_y { rh - h } else { 0.0 };
        [left, top, w, h]
    }
}

/// Why an input could not be decoded. [`DecodeError::reason`] gives a short category.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Zero bytes.
    #[error("empty input (0 bytes)")]
    Empty,
    /// The content matches no known image signature. The message never quotes the content:
    /// a non-image may be anything (an internal page, a secret), and the message goes to
    /// `errors.jsonl`.
    #[error("unrecognised image format: {bytes} bytes that are not JPEG, PNG, WebP or BMP")]
    UnknownFormat {
        /// Size of the input.
        bytes: usize,
    },
    /// The header declares more pixels than the limits allow (decompression-bomb guard).
    #[error("image of {width}×{height} px exceeds the {limit}")]
    TooLarge {
        /// Declared width (as stored).
        width: u32,
        /// Declared height (as stored).
        height: u32,
        /// The limit it broke.
        limit: Limit,
    },
    /// The encoded input is bigger than `max_bytes`.
    #[error("input of {bytes} bytes exceeds the limit of {max_bytes} bytes")]
    InputTooLarge {
        /// Input size.
        bytes: usize,
        /// `DecodeLimits::max_bytes`.
        max_bytes: usize,
    },
    /// The data of a recognised format is damaged or truncated.
    #[error("corrupt {format} image")]
    Corrupt {
        /// The detected format.
        format: &'static str,
        /// What the codec found.
        #[source]
        source: CodecError,
    },
    /// A recognised format, or a variant of one, that this build does not decode.
    #[error("unsupported image type: {what}")]
    Unsupported {
        /// The format or variant (e.g. `GIF`, `JPEG with more than 8 bits per sample`).
        what: &'static str,
        /// The decoder's own complaint, when it had one.
        #[source]
        source: Option<CodecError>,
    },
}

/// The codec-level cause of [`DecodeError::Corrupt`].
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The data ends before the image is complete.
    #[error("premature end of data: the file is truncated")]
    Truncated,
    /// A header field is impossible (e.g. zero width).
    #[error("invalid header: {0}")]
    Header(&'static str),
    /// libjpeg-turbo refused the data.
    #[error(transparent)]
    Jpeg(#[from] turbojpeg::Error),
    /// The `image` crate's decoder refused the data.
    #[error(transparent)]
    Image(#[from] image::ImageError),
}

impl DecodeError {
    /// Short, stable category for error lists and metrics: `empty`, `unknown-format`,
    /// `too-large`, `corrupt` or `unsupported`.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Empty => "empty",
            DecodeError::UnknownFormat { .. } => "unknown-format",
            DecodeError::TooLarge { .. } | DecodeError::InputTooLarge { .. } => "too-large",
            DecodeError::Corrupt { .. } => "corrupt",
            DecodeError::Unsupported { .. } => "unsupported",
        }
    }

    /// This error and its sources on one line, joined by `": "`.
    pub fn message(&self) -> String {
        labeljob_api::error_chain(self)
    }
}

/// Formats the decoder handles, detected from the content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Jpeg,
    Png,
    WebP,
    Bmp,
}

/// Detects the format from the first bytes; names known but unsupported formats.
fn sniff(bytes: &[u8]) -> Result<Format, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(Format::Jpeg);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(Format::Png);
    }
    if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        return Ok(Format::WebP);
    }
    if bytes.starts_with(b"BM") {
        return Ok(Format::Bmp);
    }
    let named = [
        (&b"GIF8"[..], "GIF"),
        (b"II*\0", "TIFF"),
        (b"MM\0*", "TIFF"),
        (b"\0\0\x01\0", "ICO"),
        (b"qoif", "QOI"),
        (b"\x76\x2f\x31\x01", "OpenEXR"),
        (b"#?RADIANCE", "HDR"),
        (b"DDS ", "DDS"),
        (b"\xFF\x0A", "JPEG XL"),
        (b"\0\0\0\x0CJXL ", "JPEG XL"),
    ];
    if let Some(&(_, what)) = named.iter().find(|(magic, _)| bytes.starts_with(magic)) {
        return Err(DecodeError::Unsupported { what, source: None });
    }
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        let what = match &bytes[8..12] {
            b"avif" | b"avis" => "AVIF",
            b"heic" | b"heix" | b"mif1" | b"msf1" | b"hevc" => "HEIF",
            _ => "ISO media file (not an image)",
        };
        return Err(DecodeError::Unsupported { what, source: None });
    }
    Err(DecodeError::UnknownFormat { bytes: bytes.len() })
}

/// Hand back a decoded image this thread is done with: its pixel buffer is reused by the
/// thread's next JPEG decode (no fresh allocation to zero and fault in per image). A thread
/// keeps one buffer of at most 16 MiB; call it only on long-lived threads of a fixed number
/// (the inference threads), so the spares stay bounded.
pub fn recycle(img: Decoded) {
    jpeg::recycle(img.rgb.into_raw());
}

/// Decodes `bytes` into upright RGB pixels.
///
/// With `target = Some((w, h))` (the model input size, upright), a JPEG is decoded at the
/// smallest DCT scale whose upright result is still at least `w × h`; `Decoded::width/height`
/// always report the full-resolution upright size. Alpha is dropped (the stored colour is
/// kept, as Pillow's `convert("RGB")` does); 16-bit samples keep their high byte. Never
/// panics; every failure is a [`DecodeError`].
pub fn decode(
    bytes: &[u8],
    target: Option<(u32, u32)>,
    limits: &DecodeLimits,
) -> Result<Decoded, DecodeError> {
    let format = sniff(bytes)?;
    if bytes.len() > limits.max_bytes {
        return Err(DecodeError::InputTooLarge { bytes: bytes.len(), max_bytes: limits.max_bytes });
    }
    match format {
        Format::Jpeg => jpeg::decode(bytes, target, limits),
        Format::Png => raster::decode(
            &png_chunks::without_bulky_ancillary(bytes),
            image::ImageFormat::Png,
            "png",
            limits,
        ),
        Format::WebP => raster::decode(bytes, image::ImageFormat::WebP, "webp", limits),
        Format::Bmp => raster::decode(bytes, image::ImageFormat::Bmp, "bmp", limits),
    }
}
