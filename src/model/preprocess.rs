//! Image preprocessing of the SAM3 processor (HF `Sam3ImageProcessor`; official
//! `sam3_image_processor.py`), spec §2: stretch an RGB uint8 image to S×S with antialiased
//! bilinear resampling *on uint8* (torch's separable fixed-point kernel: horizontal pass, rounded
//! to uint8, then vertical pass), then `(x − 127.5) / 127.5` (= `(x/255 − 0.5)/0.5`).
//!
//! Input: interleaved RGB bytes [h, w, 3]. Output: CHW floats [3, S, S] in [−1, 1].

use burn::tensor::{Device, Tensor, TensorData};

use super::error::ModelError;

/// One RGB image, row-major, 3 bytes per pixel.
#[derive(Debug, Clone, Copy)]
pub struct RgbImage<'a> {
    pub height: usize,
    pub width: usize,
    pub data: &'a [u8],
}

/// Resizes and normalises a batch to a [b, 3, size, size] tensor on `device`.
pub fn pixels_tensor(
    images: &[RgbImage<'_>],
    size: usize,
    device: &Device,
) -> Result<Tensor<4>, ModelError> {
    let mut values = Vec::with_capacity(images.len() * 3 * size * size);
    for image in images {
        values.extend(normalized_chw(image, size)?);
    }
    Ok(Tensor::from_data(
        TensorData::new(values, [images.len(), 3, size, size]),
        device,
    ))
}

/// Where a resized image sits in the square model input: a `side × side` square at column
/// `x0`, row `y0`; the rest is padding (0 after normalisation, i.e. mid-grey).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub side: usize,
    pub x0: usize,
    pub y0: usize,
}

/// One image squashed to `placement.side` and padded into a [3, size, size] CHW canvas (the
/// M2C authors' training transform: square resize, then pad at an offset).
pub fn placed_chw(
    image: &RgbImage<'_>,
    size: usize,
    placement: Placement,
) -> Result<Vec<f32>, ModelError> {
    let Placement { side, x0, y0 } = placement;
    if side == 0 || x0 + side > size || y0 + side > size {
        return Err(ModelError::InvalidInput {
            reason: format!("placement {placement:?} does not fit a {size}×{size} input"),
        });
    }
    let inner = normalized_chw(image, side)?;
    let mut out = vec![0f32; 3 * size * size];
    for c in 0..3 {
        for y in 0..side {
            let src = c * side * side + y * side;
            let dst = c * size * size + (y0 + y) * size + x0;
            if let (Some(to), Some(from)) =
                (out.get_mut(dst..dst + side), inner.get(src..src + side))
            {
                to.copy_from_slice(from);
            }
        }
    }
    Ok(out)
}

/// One image → CHW floats [3, size, size].
pub fn normalized_chw(image: &RgbImage<'_>, size: usize) -> Result<Vec<f32>, ModelError> {
    let resized = resize_rgb8(image, size, size)?;
    let mut out = vec![0f32; 3 * size * size];
    for (pixel, rgb) in resized.chunks_exact(3).enumerate() {
        for (channel, &value) in rgb.iter().enumerate() {
            if let Some(slot) = out.get_mut(channel * size * size + pixel) {
                *slot = (f32::from(value) - 127.5) / 127.5;
            }
        }
    }
    Ok(out)
}

/// Antialiased bilinear resize of interleaved RGB bytes, bit-exact with torch's uint8 kernel.
pub fn resize_rgb8(
    image: &RgbImage<'_>,
    out_h: usize,
    out_w: usize,
) -> Result<Vec<u8>, ModelError> {
    let (h, w) = (image.height, image.width);
    if h == 0 || w == 0 || out_h == 0 || out_w == 0 || image.data.len() != h * w * 3 {
        return Err(ModelError::InvalidInput {
            reason: format!(
                "image {h}×{w} with {} bytes cannot be resized to {out_h}×{out_w}",
                image.data.len()
            ),
        });
    }
    let mut current = image.data.to_vec();
    if out_w != w {
        let taps = Taps::new(w, out_w);
        current = resample(&current, h, w, 3, 1, &taps);
    }
    if out_h != h {
        let taps = Taps::new(h, out_h);
        current = resample(&current, h, out_w, 3 * out_w, 0, &taps);
    }
    Ok(current)
}

/// Fixed-point filter taps for one axis.
struct Taps {
    /// Per output index: first input index and the int16 weights.
    rows: Vec<(usize, Vec<i32>)>,
    precision: u32,
}

impl Taps {
    /// torch `_compute_index_ranges_int16_weights` for the bilinear ("triangle") filter.
    fn new(input: usize, output: usize) -> Self {
        let scale = input as f64 / output as f64;
        let support = if scale >= 1.0 { scale } else { 1.0 };
        let invscale = if scale >= 1.0 { 1.0 / scale } else { 1.0 };
        let max_taps = (support.ceil() as usize) * 2 + 1;
        let mut float_rows = Vec::with_capacity(output);
        let mut max_weight = 0f64;
        for i in 0..output {
            let center = scale * (i as f64 + 0.5);
            let xmin = (center - support + 0.5).max(0.0) as usize;
            let xmax = ((center + support + 0.5) as usize).min(input);
            let count = xmax.saturating_sub(xmin).min(max_taps);
            let mut weights: Vec<f64> = (0..count)
                .map(|j| {
                    let x = ((j + xmin) as f64 - center + 0.5) * invscale;
                    (1.0 - x.abs()).max(0.0)
                })
                .collect();
            let total: f64 = weights.iter().sum();
            if total != 0.0 {
                for weight in &mut weights {
                    *weight /= total;
                    max_weight = max_weight.max(*weight);
                }
            }
            float_rows.push((xmin, weights));
        }
        let mut precision = 0u32;
        while precision < 22 {
            let next = (0.5 + max_weight * f64::from(1u32 << (precision + 1))) as i64;
            if next >= 1 << 15 {
                break;
            }
            precision += 1;
        }
        let factor = f64::from(1u32 << precision);
        let rows = float_rows
            .into_iter()
            .map(|(xmin, weights)| {
                let fixed = weights
                    .iter()
                    .map(|w| {
                        let v = w * factor;
                        (if v < 0.0 { v - 0.5 } else { v + 0.5 }) as i32
                    })
                    .collect();
                (xmin, fixed)
            })
            .collect();
        Self { rows, precision }
    }
}

/// One separable pass. `axis` 1 = horizontal (along width, `stride` = 3 bytes), 0 = vertical
/// (along height, `stride` = one row). `h`, `w` are the input sizes in pixels.
fn resample(src: &[u8], h: usize, w: usize, stride: usize, axis: usize, taps: &Taps) -> Vec<u8> {
    let (out_h, out_w) = if axis == 1 {
        (h, taps.rows.len())
    } else {
        (taps.rows.len(), w)
    };
    let mut out = vec![0u8; out_h * out_w * 3];
    let round = 1i64 << taps.precision.saturating_sub(1);
    for y in 0..out_h {
        for x in 0..out_w {
            let (index, base) = if axis == 1 {
                (x, y * w * 3)
            } else {
                (y, x * 3)
            };
            let Some((start, weights)) = taps.rows.get(index) else {
                continue;
            };
            for c in 0..3 {
                let mut acc = round;
                for (j, &weight) in weights.iter().enumerate() {
                    let offset = base + (start + j) * stride + c;
                    acc += i64::from(src.get(offset).copied().unwrap_or(0)) * i64::from(weight);
                }
                let value = (acc >> taps.precision).clamp(0, 255);
                if let (Some(slot), Ok(byte)) =
                    (out.get_mut((y * out_w + x) * 3 + c), u8::try_from(value))
                {
                    *slot = byte;
                }
            }
        }
    }
    out
}
