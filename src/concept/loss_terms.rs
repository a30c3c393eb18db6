//! Element-wise pieces of the concept loss, as SAM3's `loss_fns.py` defines them: stable BCE
//! with logits, sigmoid focal loss, dice, diagonal GIoU and the bilinear upsampling of mask
//! logits to the target size.

use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Int, Tensor, TensorData};

/// Bilinear (align_corners = false) resize of [n, c, h, w] to [n, c, size, size], as PyTorch's
/// `F.interpolate(mode="bilinear")`: one linear pass per axis, each a gather of the two source
/// rows (columns) and a blend. Written with `select` rather than burn's `interpolate`, whose
/// backward pass the GPU (cubecl) backends do not implement for bilinear mode.
pub(crate) fn upsample(x: Tensor<4>, size: usize) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let device = x.device();
    let rows = lerp_axis(x, 2, h, size, &device);
    lerp_axis(rows, 3, w, size, &device)
}

/// Resamples axis `dim` (of length `n`) to `size` with torch's half-pixel linear taps.
fn lerp_axis(x: Tensor<4>, dim: usize, n: usize, size: usize, device: &Device) -> Tensor<4> {
    let scale = n as f64 / size as f64;
    let last = n.saturating_sub(1);
    let mut lo = Vec::with_capacity(size);
    let mut hi = Vec::with_capacity(size);
    let mut frac = Vec::with_capacity(size);
    for d in 0..size {
        // torch `area_pixel_compute_source_index`, clamped at 0 for linear modes
        let src = ((d as f64 + 0.5) * scale - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(last);
        lo.push(i0 as i64);
        hi.push((i0 + 1).min(last) as i64);
        frac.push((src - i0 as f64) as f32);
    }
    let index = |v: Vec<i64>| Tensor::<1, Int>::from_data(TensorData::new(v, [size]), device);
    let mut shape = [1; 4];
    shape[dim] = size;
    let t = Tensor::<1>::from_data(TensorData::new(frac, [size]), device).reshape(shape);
    let a = x.clone().select(dim, index(lo));
    let b = x.select(dim, index(hi));
    a.clone() + (b - a) * t
}

/// Element-wise `BCE(sigmoid(x), y)`, stable: `max(x, 0) − x·y + ln(1 + e^{−|x|})`.
pub(crate) fn bce_with_logits<const D: usize>(x: Tensor<D>, y: Tensor<D>) -> Tensor<D> {
    relu(x.clone()) - x.clone() * y + x.abs().neg().exp().log1p()
}

/// Element-wise sigmoid focal loss (RetinaNet): `α_t · (1 − p_t)^γ · BCE`.
pub(crate) fn focal<const D: usize>(
    x: Tensor<D>,
    t: Tensor<D>,
    alpha: f32,
    gamma: f32,
) -> Tensor<D> {
    let p = sigmoid(x.clone());
    let ce = bce_with_logits(x, t.clone());
    let not_t = t.clone().neg().add_scalar(1.0);
    let p_t = p.clone() * t.clone() + p.neg().add_scalar(1.0) * not_t.clone();
    let alpha_t = t.mul_scalar(alpha) + not_t.mul_scalar(1.0 - alpha);
    ce * p_t.neg().add_scalar(1.0).powf_scalar(gamma) * alpha_t
}

/// Dice loss per row of [n, pixels] logits against 0/1 targets → [n].
pub(crate) fn dice(x: Tensor<2>, t: Tensor<2>) -> Tensor<1> {
    let p = sigmoid(x);
    let num = row_sums(p.clone() * t.clone())
        .mul_scalar(2.0)
        .add_scalar(1.0);
    let den = row_sums(p) + row_sums(t).add_scalar(1.0);
    (num / den).neg().add_scalar(1.0)
}

/// Sum of each row of [n, m] → [n], in two passes over a near-square factorisation of m
/// (1008 × 1008 for a full-size mask), each summing at most ~√m terms.
///
/// Not `sum_dim(1)`: on the wgpu backend (burn 0.22.1 / cubecl 0.11, measured on lavapipe) a
/// one-pass row reduction over some lengths above 2^17 is wrong. Of two rows of 1008² random
/// values, the first summed to 157 314 instead of 609 695 and the second to 0; rows of 131 073
/// or 262 143 ones sum to 65 532. (150 000 and 200 000 happened to be right, as were all the
/// lengths tried up to 131 072.) On flex one pass is right but drifts (7e-6 to 1.5e-5 relative
/// at 1008²). Two passes of ≤ 1008 terms are right on both, to float rounding. A prime m has
/// no factorisation and keeps one pass; the loss only sums S × S masks.
pub(crate) fn row_sums(x: Tensor<2>) -> Tensor<1> {
    let [n, m] = x.dims();
    let a = (1..=m.isqrt().max(1))
        .rev()
        .find(|a| m % a == 0)
        .unwrap_or(1);
    x.reshape([n, m / a, a]).sum_dim(2).sum_dim(1).reshape([n])
}

/// GIoU of corresponding rows of two [M, 4] corner-form box lists → [M].
pub(crate) fn giou_diag(a: Tensor<2>, b: Tensor<2>) -> Tensor<1> {
    let [m, _] = a.dims();
    let col = |t: &Tensor<2>, i: usize| t.clone().narrow(1, i, 1);
    let (ax0, ay0, ax1, ay1) = (col(&a, 0), col(&a, 1), col(&a, 2), col(&a, 3));
    let (bx0, by0, bx1, by1) = (col(&b, 0), col(&b, 1), col(&b, 2), col(&b, 3));
    let iw = (ax1.clone().min_pair(bx1.clone()) - ax0.clone().max_pair(bx0.clone())).clamp_min(0.0);
    let ih = (ay1.clone().min_pair(by1.clone()) - ay0.clone().max_pair(by0.clone())).clamp_min(0.0);
    let inter = iw * ih;
    let area_a = (ax1.clone() - ax0.clone()) * (ay1.clone() - ay0.clone());
    let area_b = (bx1.clone() - bx0.clone()) * (by1.clone() - by0.clone());
    let union = area_a + area_b - inter.clone();
    let hull = (ax1.max_pair(bx1) - ax0.min_pair(bx0)) * (ay1.max_pair(by1) - ay0.min_pair(by0));
    let iou = inter / union.clone();
    (iou - (hull.clone() - union) / hull).reshape([m])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::concept::embedding::host_values;

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-5
    }

    fn device() -> Device {
        Device::default()
    }

    #[test]
    fn upsample_matches_burns_bilinear_interpolate() {
        use burn::tensor::module::interpolate;
        use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
        let d = device();
        let values: Vec<f32> = (0..2 * 5 * 7)
            .map(|i| ((i * 37) % 11) as f32 - 5.0)
            .collect();
        let x = Tensor::<4>::from_data(TensorData::new(values, [2, 1, 5, 7]), &d);
        for size in [5, 12, 21] {
            let options = InterpolateOptions {
                mode: InterpolateMode::Bilinear,
                align_corners: false,
                output_size: Some([size, size]),
                ..InterpolateOptions::new(InterpolateMode::Bilinear)
            };
            let want = host_values(interpolate(x.clone(), options), "t").unwrap();
            let got = host_values(upsample(x.clone(), size), "t").unwrap();
            assert_eq!(got.len(), want.len());
            let err = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            // values are O(5); both are f32 blends of the same two taps
            assert!(err < 1e-5, "size {size}: max abs err {err}");
        }
    }

    /// Two full-size mask rows (1008² values of a focal loss's range) on the default device
    /// (wgpu in CI): the two-pass sum agrees with an f64 sum to 1e-6 relative (measured 5e-9
    /// and 2.8e-7 on lavapipe, where one `sum_dim` pass is off by 74 % and 100 %).
    #[test]
    fn row_sums_of_a_full_size_mask_are_exact_to_rounding() {
        let d = device();
        let m = 1008 * 1008;
        let mut s = 12345u64;
        let values: Vec<f32> = (0..2 * m)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                0.1 + (s >> 40) as f32 / (1u64 << 24) as f32
            })
            .collect();
        let want: Vec<f64> = values
            .chunks(m)
            .map(|row| row.iter().map(|&v| f64::from(v)).sum())
            .collect();
        let x = Tensor::<2>::from_data(TensorData::new(values, [2, m]), &d);
        let one_pass = host_values(x.clone().sum_dim(1).reshape([2]), "t").unwrap();
        let got = host_values(row_sums(x), "t").unwrap();
        for i in 0..2 {
            let rel = (f64::from(got[i]) - want[i]).abs() / want[i];
            let rel_one = (f64::from(one_pass[i]) - want[i]).abs() / want[i];
            eprintln!("row {i}: two passes {rel:.1e}, one pass {rel_one:.1e} relative");
            assert!(rel < 1e-6, "row {i}: relative error {rel:e}");
        }
        // Rows whose length is prime fall back to one pass and still sum correctly.
        let y = Tensor::<2>::from_floats([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]], &d);
        assert_eq!(host_values(row_sums(y), "t").unwrap(), vec![28.0]);
    }

    #[test]
    fn elementwise_terms_match_hand_values() {
        let d = device();
        let x = Tensor::<1>::from_floats([0.0, 2.0, -1.0], &d);
        let y = Tensor::<1>::from_floats([1.0, 0.0, 0.0], &d);
        let bce = host_values(bce_with_logits(x.clone(), y.clone()), "t").unwrap();
        assert!(close(bce[0], 2f32.ln()));
        assert!(close(bce[1], (1.0 + 2f32.exp()).ln()));
        let f = host_values(focal(x, y, 0.25, 2.0), "t").unwrap();
        // x = 0, t = 1: p_t = 0.5 → 0.25 · 0.25 · ln 2.
        assert!(close(f[0], 0.25 * 0.25 * 2f32.ln()));
        let g = giou_diag(
            Tensor::<2>::from_floats([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 2.0]], &d),
            Tensor::<2>::from_floats([[1.0, 0.0, 3.0, 2.0], [4.0, 0.0, 6.0, 2.0]], &d),
        );
        let g = host_values(g, "t").unwrap();
        assert!(close(g[0], 1.0 / 3.0) && close(g[1], -1.0 / 3.0));
        // Dice of a saturated perfect prediction ≈ 0; of its complement ≈ 1 − 1/(n+1).
        let x = Tensor::<2>::from_floats([[30.0, -30.0, 30.0], [-30.0, 30.0, -30.0]], &d);
        let t = Tensor::<2>::from_floats([[1.0, 0.0, 1.0], [1.0, 0.0, 1.0]], &d);
        let dl = host_values(dice(x, t), "t").unwrap();
        assert!(close(dl[0], 0.0) && close(dl[1], 1.0 - 1.0 / 4.0));
    }
}
