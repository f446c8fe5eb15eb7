//! Resize to the model input and the box transform back.
//!
//! Resampling is Pillow's antialiased bilinear convolution, reproduced bit for bit
//! ([`super::resample`]): the filter widens with the reduction factor, so downscaling is
//! antialiased like `resize(..., BILINEAR)` (not OpenCV's `INTER_LINEAR`, which samples 2×2
//! pixels). `stretch` maps the whole image onto the input;
//! `letterbox` keeps the aspect ratio, centres the image and pads with grey 114 (Ultralytics'
//! `LetterBox`: `round(size · r)` content, left/top padding = floor of half the slack).
//! [`BoxTransform`] is computed from the original upright size only, so it is the same
//! whether or not the JPEG was decoded at a reduced DCT scale.

use labeljob_api::v1alpha1::ResizeMode;

use super::Decoded;
use super::resample::{Resampler, Source, Target};

/// Letterbox padding value (Ultralytics convention).
pub const PAD_VALUE: u8 = 114;

/// Maps boxes between model-input pixels and original (upright, full-resolution) pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BoxTransform {
    /// How the image was fitted.
    pub mode: ResizeMode,
    /// Original upright size (width, height) in pixels.
    pub original: (u32, u32),
    /// Model input size (width, height).
    pub input: (u32, u32),
    /// Size of the resized image inside the input: `input` for stretch, smaller for letterbox.
    pub content: (u32, u32),
    /// Input pixels per original pixel along x and y (`content / original`).
    pub scale: (f64, f64),
    /// Left and top padding in input pixels (0 for stretch).
    pub pad: (u32, u32),
}

impl BoxTransform {
    /// The geometry for fitting an `original` upright image into `input` by `mode`.
    pub fn new(original: (u32, u32), input: (u32, u32), mode: ResizeMode) -> Self {
        let (w0, h0) = (f64::from(original.0.max(1)), f64::from(original.1.max(1)));
        let (content, pad) = match mode {
            ResizeMode::Stretch => (input, (0, 0)),
            ResizeMode::Letterbox => {
                let r = (f64::from(input.0) / w0).min(f64::from(input.1) / h0);
                // Python's round() (ties to even), clamped to the input and at least 1 px.
                let fit = |v: f64, max: u32| ((v * r).round_ties_even() as u32).clamp(1, max.max(1));
                let content = (fit(w0, input.0), fit(h0, input.1));
                let pad = (input.0.saturating_sub(content.0) / 2, input.1.saturating_sub(content.1) / 2);
                (content, pad)
            }
        };
        Self {
            mode,
            original,
            input,
            content,
            scale: (f64::from(content.0) / w0, f64::from(content.1) / h0),
            pad,
        }
    }

    /// `[x1, y1, x2, y2]` in model-input pixels → original pixels, clipped to the image.
    pub fn to_original(&self, [x1, y1, x2, y2]: [f32; 4]) -> [f32; 4] {
        let (w, h) = (f64::from(self.original.0), f64::from(self.original.1));
        let x = |v: f32| ((f64::from(v) - f64::from(self.pad.0)) / self.scale.0).max(0.0).min(w) as f32;
        let y = |v: f32| ((f64::from(v) - f64::from(self.pad.1)) / self.scale.1).max(0.0).min(h) as f32;
        [x(x1), y(y1), x(x2), y(y2)]
    }

    /// `[x1, y1, x2, y2]` in original pixels → model-input pixels (no clipping).
    pub fn to_input(&self, [x1, y1, x2, y2]: [f32; 4]) -> [f32; 4] {
        let x = |v: f32| (f64::from(v) * self.scale.0 + f64::from(self.pad.0)) as f32;
        let y = |v: f32| (f64::from(v) * self.scale.1 + f64::from(self.pad.1)) as f32;
        [x(x1), y(y1), x(x2), y(y2)]
    }
}

/// Why a resize failed.
#[derive(Debug, thiserror::Error)]
pub enum ResizeError {
    /// The requested input size has a zero side.
    #[error("model input size {width}×{height} has a zero side")]
    EmptyTarget {
        /// Requested width.
        width: u32,
        /// Requested height.
        height: u32,
    },
    /// The decoded image has a zero side.
    #[error("decoded image is empty")]
    EmptySource,
    /// The pixel buffer does not hold `width × height` RGB pixels.
    #[error("pixel buffer of {got} bytes does not hold {width}×{height} RGB pixels")]
    Buffer {
        /// Bytes present.
        got: usize,
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
    },
}

thread_local! {
    /// A model-input buffer the thread is done with ([`recycle_input`]).
    static SPARE_INPUT: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Keep `buf` (model-input pixels this thread has run) for its next [`Resizer::resize`]: no
/// fresh allocation to zero per image. One buffer per thread, of at most 16 MiB; call it only
/// on long-lived threads of a fixed number (the inference threads).
pub fn recycle_input(buf: Vec<u8>) {
    if buf.capacity() <= super::jpeg::MAX_SPARE_BYTES {
        SPARE_INPUT.with(|s| {
            if let Ok(mut s) = s.try_borrow_mut() {
                *s = buf;
            }
        });
    }
}

/// Reusable per-thread resizer (holds the cached weights and scratch rows).
#[derive(Debug)]
pub struct Resizer {
    inner: Resampler,
}

impl Default for Resizer {
    fn default() -> Self {
        Self::new()
    }
}

impl Resizer {
    /// A resizer with empty caches.
    pub fn new() -> Self {
        Self { inner: Resampler::default() }
    }

    /// Resizes `img` to `width × height` by `mode`: returns H×W×3 RGB bytes (in this thread's
    /// [`recycle_input`] buffer when it has one) and the box transform back to original pixels.
    pub fn resize(
        &mut self,
        img: &Decoded,
        width: u32,
        height: u32,
        mode: ResizeMode,
    ) -> Result<(Vec<u8>, BoxTransform), ResizeError> {
        let mut out =
            SPARE_INPUT.with(|s| s.try_borrow_mut().map(|mut s| std::mem::take(&mut *s)).unwrap_or_default());
        let t = self.resize_into(img, width, height, mode, &mut out)?;
        Ok((out, t))
    }

    /// As [`Resizer::resize`], writing into `out` (resized to H×W×3; reuse it across images
    /// to avoid an allocation per image).
    pub fn resize_into(
        &mut self,
        img: &Decoded,
        width: u32,
        height: u32,
        mode: ResizeMode,
        out: &mut Vec<u8>,
    ) -> Result<BoxTransform, ResizeError> {
        if width == 0 || height == 0 {
            return Err(ResizeError::EmptyTarget { width, height });
        }
        if img.rgb.width() == 0 || img.rgb.height() == 0 {
            return Err(ResizeError::EmptySource);
        }
        let t = BoxTransform::new((img.width, img.height), (width, height), mode);
        let len = width as usize * height as usize * 3;
        match mode {
            // Every byte is overwritten; only the length matters.
            ResizeMode::Stretch => out.resize(len, 0),
            ResizeMode::Letterbox => {
                out.clear();
                out.resize(len, PAD_VALUE);
            }
        }
        let (sw, sh) = (img.rgb.width(), img.rgb.height());
        let pixels = img.rgb.as_raw().as_slice();
        if pixels.len() != sw as usize * sh as usize * 3 {
            return Err(ResizeError::Buffer { got: pixels.len(), width: sw, height: sh });
        }
        let src = Source { pixels, width: sw as usize, height: sh as usize };
        let mut dst = Target {
            pixels: out,
            stride: width as usize * 3,
            left: t.pad.0 as usize,
            top: t.pad.1 as usize,
            width: t.content.0 as usize,
            height: t.content.1 as usize,
        };
        self.inner.resample(&src, img.source_region(), &mut dst);
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: [f32; 4], b: [f32; 4]) -> bool {
        a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-3)
    }

    #[test]
    fn letterbox_geometry_is_exact() {
        // 640×480 into 300×300: r = 0.46875 → 300×225, slack 75 → top pad 37 (bottom 38).
        let t = BoxTransform::new((640, 480), (300, 300), ResizeMode::Letterbox);
        assert_eq!((t.content, t.pad), ((300, 225), (0, 37)));
        assert_eq!(t.scale, (0.46875, 0.46875));
        // Portrait 600×800 into 640×640: r = 0.8 → 480×640, pad left 80.
        let t = BoxTransform::new((600, 800), (640, 640), ResizeMode::Letterbox);
        assert_eq!((t.content, t.pad), ((480, 640), (80, 0)));
        // 773×512 into 640×640: r = 640/773, h = round(423.89) = 424, slack 216 → 108.
        let t = BoxTransform::new((773, 512), (640, 640), ResizeMode::Letterbox);
        assert_eq!((t.content, t.pad), ((640, 424), (0, 108)));
        // Odd slack: 100×61 into 100×100 → content 100×61, slack 39 → top 19.
        let t = BoxTransform::new((100, 61), (100, 100), ResizeMode::Letterbox);
        assert_eq!((t.content, t.pad), ((100, 61), (0, 19)));
        // The content's corners land on the original's corners.
        let t = BoxTransform::new((773, 512), (640, 640), ResizeMode::Letterbox);
        assert!(close(t.to_original([0.0, 108.0, 640.0, 532.0]), [0.0, 0.0, 773.0, 512.0]));
    }

    #[test]
    fn stretch_geometry() {
        let t = BoxTransform::new((768, 576), (300, 300), ResizeMode::Stretch);
        assert_eq!((t.content, t.pad), ((300, 300), (0, 0)));
        assert!(close(t.to_original([150.0, 150.0, 300.0, 300.0]), [384.0, 288.0, 768.0, 576.0]));
    }

    #[test]
    fn round_trips_both_modes() {
        let boxes = [[10.5, 20.25, 300.0, 200.0], [0.0, 0.0, 773.0, 512.0], [700.0, 1.0, 772.0, 511.0]];
        for mode in [ResizeMode::Stretch, ResizeMode::Letterbox] {
            for input in [(300, 300), (640, 640), (320, 192)] {
                let t = BoxTransform::new((773, 512), input, mode);
                for b in boxes {
                    let back = t.to_original(t.to_input(b));
                    assert!(close(back, b), "{mode:?} {input:?}: {b:?} → {back:?}");
                }
            }
        }
    }

    #[test]
    fn to_original_clips_to_the_image() {
        let t = BoxTransform::new((640, 480), (300, 300), ResizeMode::Letterbox);
        // Boxes in the padding map outside the image and are clipped.
        assert_eq!(t.to_original([-5.0, 0.0, 310.0, 300.0]), [0.0, 0.0, 640.0, 480.0]);
        assert_eq!(t.to_original([f32::NAN, 0.0, 1.0, 1.0])[0], 0.0);
    }
}
