//! Batch resized RGB images into the model's input tensor: NHWC or NCHW, u8 or f32
//! (`p / 255`, or `(p / 255 − mean) / std` per channel), RGB or BGR.
//!
//! NHWC u8 RGB, the default model's input, is a plain copy of the pixel bytes.

use labeljob_api::v1alpha1::{ChannelOrder, InputDtype, Layout};
use ndarray::Array4;

/// A batch ready for the model.
#[derive(Clone, Debug, PartialEq)]
pub enum Tensor {
    /// Raw 0–255 pixels.
    U8(Array4<u8>),
    /// Scaled (and optionally normalised) pixels.
    F32(Array4<f32>),
}

impl Tensor {
    /// The tensor's shape: `[n, h, w, 3]` (NHWC) or `[n, 3, h, w]` (NCHW).
    pub fn shape(&self) -> &[usize] {
        match self {
            Tensor::U8(a) => a.shape(),
            Tensor::F32(a) => a.shape(),
        }
    }
}

/// Why a batch could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TensorError {
    /// An image does not hold `width × height × 3` bytes.
    #[error("image {index} has {got} bytes, expected {expected} ({width}×{height}×3)")]
    SizeMismatch {
        /// Position in the batch.
        index: usize,
        /// Bytes found.
        got: usize,
        /// `width × height × 3`.
        expected: usize,
        /// Input width.
        width: u32,
        /// Input height.
        height: u32,
    },
    /// `normalize` was given for a u8 input.
    #[error("normalisation applies to float32 inputs only")]
    NormalizeNeedsFloat,
    /// A standard deviation is zero or not finite.
    #[error("normalisation std must be finite and non-zero")]
    BadStd,
    /// ndarray refused the shape (cannot happen with the sizes checked above).
    #[error("tensor shape")]
    Shape(#[from] ndarray::ShapeError),
}

/// Builds the input tensor from H×W×3 RGB images (as [`super::Resizer`] writes them).
///
/// `normalize` is `(mean, std)` per channel in the *output* channel order (the model's), as
/// `model.normalize` in the LabelJob spec; f32 values are `(p / 255 − mean) / std`, or
/// `p / 255` without it.
pub fn to_tensor(
    images: &[&[u8]],
    width: u32,
    height: u32,
    layout: Layout,
    dtype: InputDtype,
    channel_order: ChannelOrder,
    normalize: Option<([f32; 3], [f32; 3])>,
) -> Result<Tensor, TensorError> {
    let (w, h) = (width as usize, height as usize);
    let expected = w * h * 3;
    if let Some((index, img)) = images.iter().enumerate().find(|(_, i)| i.len() != expected) {
        return Err(TensorError::SizeMismatch { index, got: img.len(), expected, width, height });
    }
    let n = images.len();
    let shape = match layout {
        Layout::Nhwc => (n, h, w, 3),
        Layout::Nchw => (n, 3, h, w),
    };
    // Output channel c reads source (RGB) channel src[c].
    let src = match channel_order {
        ChannelOrder::Rgb => [0, 1, 2],
        ChannelOrder::Bgr => [2, 1, 0],
    };
    match dtype {
        InputDtype::Uint8 => {
            if normalize.is_some() {
                return Err(TensorError::NormalizeNeedsFloat);
            }
            let data = if layout == Layout::Nhwc && channel_order == ChannelOrder::Rgb {
                images.concat()
            } else {
                arrange(images, w * h, layout, src, |_, p| p)
            };
            Ok(Tensor::U8(Array4::from_shape_vec(shape, data)?))
        }
        InputDtype::Float32 => {
            let (mean, std) = normalize.unwrap_or(([0.0; 3], [1.0; 3]));
            if std.iter().any(|s| *s == 0.0 || !s.is_finite()) {
                return Err(TensorError::BadStd);
            }
            // One 256-entry table per output channel.
            let lut: [[f32; 256]; 3] =
                std::array::from_fn(|c| std::array::from_fn(|p| (p as f32 / 255.0 - mean[c]) / std[c]));
            let data = arrange(images, w * h, layout, src, |c, p| lut[c][usize::from(p)]);
            Ok(Tensor::F32(Array4::from_shape_vec(shape, data)?))
        }
    }
}

/// Reorders interleaved RGB pixels into `layout` with output channel `c` taken from source
/// channel `src[c]` and mapped through `f(c, value)`.
fn arrange<T: Copy + Default>(
    images: &[&[u8]],
    hw: usize,
    layout: Layout,
    src: [usize; 3],
    f: impl Fn(usize, u8) -> T,
) -> Vec<T> {
    let mut data = vec![T::default(); images.len() * hw * 3];
    for (img, out) in images.iter().zip(data.chunks_exact_mut(hw * 3)) {
        match layout {
            Layout::Nhwc => {
                for (px, o) in img.chunks_exact(3).zip(out.chunks_exact_mut(3)) {
                    for c in 0..3 {
                        o[c] = f(c, px[src[c]]);
                    }
                }
            }
            Layout::Nchw => {
                let (r, rest) = out.split_at_mut(hw);
                let (g, b) = rest.split_at_mut(hw);
                for (i, px) in img.chunks_exact(3).enumerate() {
                    r[i] = f(0, px[src[0]]);
                    g[i] = f(1, px[src[1]]);
                    b[i] = f(2, px[src[2]]);
                }
            }
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    // Two 2×1 images: pixels (R, G, B).
    const A: [u8; 6] = [10, 20, 30, 40, 50, 60];
    const B: [u8; 6] = [255, 0, 128, 1, 2, 3];

    #[test]
    fn nhwc_u8_rgb_is_a_plain_copy() {
        let t = to_tensor(&[&A, &B], 2, 1, Layout::Nhwc, InputDtype::Uint8, ChannelOrder::Rgb, None)
            .expect("tensor");
        let Tensor::U8(a) = t else { panic!("u8 expected") };
        assert_eq!(a.shape(), &[2, 1, 2, 3]);
        assert_eq!(a.as_slice().expect("contiguous"), &[A, B].concat()[..]);
    }

    #[test]
    fn nchw_bgr_u8() {
        let t =
            to_tensor(&[&A], 2, 1, Layout::Nchw, InputDtype::Uint8, ChannelOrder::Bgr, None).expect("tensor");
        let Tensor::U8(a) = t else { panic!("u8 expected") };
        assert_eq!(a.shape(), &[1, 3, 1, 2]);
        // Planes B, G, R.
        assert_eq!(a.as_slice().expect("contiguous"), &[30, 60, 20, 50, 10, 40]);
    }

    #[test]
    fn f32_scaling_and_normalisation() {
        let t = to_tensor(&[&B], 2, 1, Layout::Nchw, InputDtype::Float32, ChannelOrder::Rgb, None)
            .expect("tensor");
        let Tensor::F32(a) = t else { panic!("f32 expected") };
        assert_eq!(a[[0, 0, 0, 0]], 1.0);
        assert_eq!(a[[0, 1, 0, 0]], 0.0);
        assert!((a[[0, 2, 0, 1]] - 3.0 / 255.0).abs() < 1e-7);
        // ImageNet normalisation, BGR output: channel 0 is blue with mean[0]/std[0].
        let (mean, std) = ([0.406, 0.456, 0.485], [0.225, 0.224, 0.229]);
        let t =
            to_tensor(&[&B], 2, 1, Layout::Nhwc, InputDtype::Float32, ChannelOrder::Bgr, Some((mean, std)))
                .expect("tensor");
        let Tensor::F32(a) = t else { panic!("f32 expected") };
        let want = (128.0 / 255.0 - 0.406) / 0.225;
        assert!((a[[0, 0, 0, 0]] - want).abs() < 1e-6);
        let want = (255.0 / 255.0 - 0.485) / 0.229;
        assert!((a[[0, 0, 0, 2]] - want).abs() < 1e-6);
    }

    #[test]
    fn refuses_bad_input() {
        let short = [0u8; 5];
        let e = to_tensor(&[&A, &short], 2, 1, Layout::Nhwc, InputDtype::Uint8, ChannelOrder::Rgb, None);
        assert!(matches!(e, Err(TensorError::SizeMismatch { index: 1, got: 5, expected: 6, .. })));
        let norm = Some(([0.0; 3], [1.0; 3]));
        let e = to_tensor(&[&A], 2, 1, Layout::Nhwc, InputDtype::Uint8, ChannelOrder::Rgb, norm);
        assert!(matches!(e, Err(TensorError::NormalizeNeedsFloat)));
        let norm = Some(([0.0; 3], [1.0, 0.0, 1.0]));
        let e = to_tensor(&[&A], 2, 1, Layout::Nhwc, InputDtype::Float32, ChannelOrder::Rgb, norm);
        assert!(matches!(e, Err(TensorError::BadStd)));
        let empty = to_tensor(&[], 2, 1, Layout::Nchw, InputDtype::Float32, ChannelOrder::Rgb, None);
        assert_eq!(empty.expect("empty batch").shape(), &[0, 3, 1, 2]);
    }
}
