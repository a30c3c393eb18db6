//! 2-D axial rotary position embedding of the SAM3 ViT (HF `Sam3ViTRotaryEmbedding`,
//! `rotate_pairwise`, `apply_rotary_pos_emb_2d`; official `vitdet.py` `compute_axial_cis`).
//!
//! The head dimension is read as adjacent channel pairs `(x[2i], x[2i+1])`. For a grid of width
//! `end_x`, token `n` sits at column `n mod end_x` and row `⌊n / end_x⌋`, both multiplied by
//! `scale` (1 for windowed blocks, `window / grid` for global ones). Pairs `i < d/4` rotate by
//! `column·f_i`, pairs `d/4 + i` by `row·f_i`, with `f_i = θ^(−4i/d)`.
//! Tables: cos/sin [end_x·end_y, head_dim], each value repeated for both channels of a pair.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};

/// Precomputed cos/sin tables for one grid (constants: moved with the module, never loaded).
#[derive(Module, Debug)]
pub struct RopeTables {
    /// [tokens, head_dim]
    pub cos: Tensor<2>,
    /// [tokens, head_dim]
    pub sin: Tensor<2>,
}

/// Builds the tables in f32 following torch's order of operations.
pub fn axial_tables(
    head_dim: usize,
    end_x: usize,
    end_y: usize,
    scale: f32,
    theta: f32,
    device: &Device,
) -> RopeTables {
    let quarter = head_dim / 4;
    let freqs: Vec<f32> = (0..quarter)
        .map(|i| 1.0 / theta.powf((4 * i) as f32 / head_dim as f32))
        .collect();
    let tokens = end_x * end_y;
    let mut cos = Vec::with_capacity(tokens * head_dim);
    let mut sin = Vec::with_capacity(tokens * head_dim);
    for n in 0..tokens {
        let x = (n % end_x) as f32 * scale;
        let y = (n / end_x) as f32 * scale;
        let angles = freqs
            .iter()
            .map(|f| x * f)
            .chain(freqs.iter().map(|f| y * f));
        for angle in angles {
            for _ in 0..2 {
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
    }
    RopeTables {
        cos: Tensor::from_data(TensorData::new(cos, [tokens, head_dim]), device),
        sin: Tensor::from_data(TensorData::new(sin, [tokens, head_dim]), device),
    }
}

/// `(a, b) → (−b, a)` on adjacent channel pairs of the last dimension.
fn rotate_pairwise(x: Tensor<4>) -> Tensor<4> {
    let [b, h, n, d] = x.dims();
    // [b, h, n, d] → [b, h, n, d/2, 2]
    let pairs = x.reshape([b, h, n, d / 2, 2]);
    let first = pairs.clone().narrow(4, 0, 1);
    let second = pairs.narrow(4, 1, 1);
    // [b, h, n, d/2, 2] → [b, h, n, d]
    Tensor::cat(vec![second.neg(), first], 4).reshape([b, h, n, d])
}

/// Rotates `x` [b, heads, tokens, head_dim] by the tables.
pub fn apply(x: Tensor<4>, tables: &RopeTables) -> Tensor<4> {
    let [n, d] = tables.cos.dims();
    // [n, d] → [1, 1, n, d]
    // The tables are built in f32; follow the activations' dtype (f16 weights).
    let dtype = x.dtype();
    let cos = tables.cos.clone().cast(dtype).reshape([1, 1, n, d]);
    let sin = tables.sin.clone().cast(dtype).reshape([1, 1, n, d]);
    x.clone() * cos + rotate_pairwise(x) * sin
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotate_pairwise_swaps_pairs() {
        let device = Device::default();
        let x = Tensor::<4>::from_data(
            TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [1, 1, 1, 4]),
            &device,
        );
        let got: Vec<f32> = rotate_pairwise(x)
            .into_data()
            .try_to_vec()
            .unwrap_or_default();
        assert_eq!(got, vec![-2.0, 1.0, -4.0, 3.0]);
    }
}
