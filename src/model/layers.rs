//! Small layers shared by the SAM3 components: HF `Sam3Attention` (multi-head attention with
//! separate q/k/v/o projections), `Sam3MLP`, `Sam3DecoderMLP`, activations, padding masks and the
//! sine encodings of `Sam3SinePositionEmbedding` (`encode_1d_positions` / `encode_boxes`).
//!
//! Masks follow burn's convention inside this module: `true` = masked out. Public APIs take
//! validity masks (`true` = valid token), as HF does.

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, relu, sigmoid};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Device, Tensor, TensorData};

use super::config::Activation;

/// PyTorch's `nn.LayerNorm` default eps, used by every detector LayerNorm.
pub const TORCH_LN_EPS: f64 = 1e-5;

/// A LayerNorm over the last dimension.
pub fn layer_norm(width: usize, eps: f64, device: &Device) -> LayerNorm {
    LayerNormConfig::new(width).with_epsilon(eps).init(device)
}

/// A Linear with bias.
pub fn linear(d_in: usize, d_out: usize, device: &Device) -> Linear {
    LinearConfig::new(d_in, d_out).init(device)
}

/// Applies a config activation.
pub fn activate<const D: usize>(x: Tensor<D>, act: Activation) -> Tensor<D> {
    match act {
        Activation::Gelu => gelu(x),
        Activation::Relu => relu(x),
        Activation::QuickGelu => x.clone() * sigmoid(x * 1.702),
    }
}

/// HF `Sam3Attention` (and CLIP's attention, whose output projection is named `out_proj`: see
/// `text_encoder.rs`): `softmax(q·kᵀ/√head_dim + bias)·v` with biased q/k/v/o projections.
#[derive(Module, Debug)]
pub struct Attention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
    pub num_heads: usize,
}

impl Attention {
    pub fn new(width: usize, num_heads: usize, device: &Device) -> Self {
        Self {
            q_proj: linear(width, width, device),
            k_proj: linear(width, width, device),
            v_proj: linear(width, width, device),
            o_proj: linear(width, width, device),
            num_heads,
        }
    }

    /// SAM-style attention whose q/k/v project `width` → `internal` (HF `Sam3TrackerAttention`
    /// with `internal = width / downsample_rate`); the output projects back to `width`.
    pub fn with_internal(width: usize, internal: usize, num_heads: usize, device: &Device) -> Self {
        Self {
            q_proj: linear(width, internal, device),
            k_proj: linear(width, internal, device),
            v_proj: linear(width, internal, device),
            o_proj: linear(internal, width, device),
            num_heads,
        }
    }

    /// `query` [b, lq, c], `key`/`value` [b, lk, c]; `mask` [b, heads|1, lq|1, lk] with
    /// `true` = masked; `bias` [b, heads, lq, lk] added to the scaled logits. Returns [b, lq, c].
    pub fn forward(
        &self,
        query: Tensor<3>,
        key: Tensor<3>,
        value: Tensor<3>,
        mask: Option<Tensor<4, Bool>>,
        bias: Option<Tensor<4>>,
    ) -> Tensor<3> {
        let (k, v) = self.project_kv(key, value);
        self.attend_projected(query, k, v, mask, bias)
    }

    /// The projected keys and values [b, heads, lk, d] of [`Attention::forward`].
    pub fn project_kv(&self, key: Tensor<3>, value: Tensor<3>) -> (Tensor<4>, Tensor<4>) {
        (
            split_heads(self.k_proj.forward(key), self.num_heads),
            split_heads(self.v_proj.forward(value), self.num_heads),
        )
    }

    /// [`Attention::forward`] with keys and values already projected ([`Attention::project_kv`]):
    /// lets a caller attend a few query rows at a time to the same keys.
    pub fn attend_projected(
        &self,
        query: Tensor<3>,
        k: Tensor<4>,
        v: Tensor<4>,
        mask: Option<Tensor<4, Bool>>,
        bias: Option<Tensor<4>>,
    ) -> Tensor<3> {
        let q = split_heads(self.q_proj.forward(query), self.num_heads);
        let out = attend(q, k, v, mask, bias, false);
        self.o_proj.forward(merge_heads(out))
    }
}

/// [b, l, heads*d] → [b, heads, l, d].
pub fn split_heads(x: Tensor<3>, num_heads: usize) -> Tensor<4> {
    let [b, l, c] = x.dims();
    // [b, l, heads, d] → [b, heads, l, d]
    x.reshape([b, l, num_heads, c / num_heads]).swap_dims(1, 2)
}

/// [b, heads, l, d] → [b, l, heads*d].
pub fn merge_heads(x: Tensor<4>) -> Tensor<3> {
    let [b, h, l, d] = x.dims();
    // [b, l, heads, d] → [b, l, heads*d]
    x.swap_dims(1, 2).reshape([b, l, h * d])
}

/// Scaled dot-product attention on [b, heads, l, d] tensors; the mask is expanded to full
/// shape here because backends expect [b, heads, lq, lk].
pub fn attend(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    mask: Option<Tensor<4, Bool>>,
    bias: Option<Tensor<4>>,
    is_causal: bool,
) -> Tensor<4> {
    let [b, h, lq, _] = q.dims();
    let [_, _, lk, _] = k.dims();
    let mask = mask.map(|m| m.expand([b, h, lq, lk]));
    let options = AttentionModuleOptions {
        scale: None,
        softcap: None,
        is_causal,
    };
    attention(q, k, v, mask, bias, options)
}

/// Key-padding mask [b, 1, 1, lk] (`true` = masked) from a validity mask [b, lk].
pub fn key_padding_mask(valid: Tensor<2, Bool>) -> Tensor<4, Bool> {
    let [b, lk] = valid.dims();
    // [b, lk] → [b, 1, 1, lk]
    valid.bool_not().reshape([b, 1, 1, lk])
}

/// HF `Sam3MLP`: `fc2(act(fc1(x)))`.
#[derive(Module, Debug)]
pub struct Mlp {
    pub fc1: Linear,
    pub fc2: Linear,
    #[module(skip)]
    pub act: Activation,
}

impl Mlp {
    pub fn new(width: usize, hidden: usize, act: Activation, device: &Device) -> Self {
        Self {
            fc1: linear(width, hidden, device),
            fc2: linear(hidden, width, device),
            act,
        }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.fc2.forward(activate(self.fc1.forward(x), self.act))
    }
}

/// HF `Sam3DecoderMLP`: 2 or 3 Linears with ReLU between them.
#[derive(Module, Debug)]
pub struct DecoderMlp {
    pub layer1: Linear,
    pub layer2: Linear,
    pub layer3: Option<Linear>,
}

impl DecoderMlp {
    /// `num_layers` is 2 or 3 (anything else builds 3).
    pub fn new(
        d_in: usize,
        hidden: usize,
        d_out: usize,
        num_layers: usize,
        device: &Device,
    ) -> Self {
        if num_layers == 2 {
            Self {
                layer1: linear(d_in, hidden, device),
                layer2: linear(hidden, d_out, device),
                layer3: None,
            }
        } else {
            Self {
                layer1: linear(d_in, hidden, device),
                layer2: linear(hidden, hidden, device),
                layer3: Some(linear(hidden, d_out, device)),
            }
        }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let x = relu(self.layer1.forward(x));
        match &self.layer3 {
            Some(layer3) => layer3.forward(relu(self.layer2.forward(x))),
            None => self.layer2.forward(x),
        }
    }
}

/// Sine-encoding divisors `temperature^(2·⌊k/2⌋/n)` for k < n, computed in f32 as torch does.
pub fn sine_divisors(num_feats: usize) -> Vec<f32> {
    (0..num_feats)
        .map(|k| {
            let exponent = (2.0 * (k / 2) as f32) / num_feats as f32;
            10_000f32.powf(exponent)
        })
        .collect()
}

/// Sine encoding of coordinates (HF `encode_1d_positions` / `encode_boxes` per coordinate):
/// `coords` [b, n] in [0, 1] → [b, n, num_feats], feature k = sin (k even) or cos (k odd) of
/// `coord·2π / divisor_k`.
pub fn sine_encode(coords: Tensor<2>, num_feats: usize) -> Tensor<3> {
    let device = coords.device();
    let [b, n] = coords.dims();
    let dtype = coords.dtype();
    let divisors = Tensor::<1>::from_data(
        TensorData::new(sine_divisors(num_feats), [num_feats]),
        (&device, dtype),
    );
    let parity: Vec<f32> = (0..num_feats).map(|k| (k % 2) as f32).collect();
    let odd = Tensor::<1>::from_data(TensorData::new(parity, [num_feats]), (&device, dtype))
        .reshape([1, 1, num_feats]);
    let scaled = coords * (2.0 * std::f32::consts::PI);
    // [b, n] → [b, n, 1] / [1, 1, k]
    let angles = scaled.reshape([b, n, 1]) / divisors.reshape([1, 1, num_feats]);
    let even = odd.clone().neg() + 1.0;
    angles.clone().sin() * even + angles.cos() * odd
}

/// `inverse_sigmoid` of HF SAM3: `log(max(x, eps) / max(1 − x, eps))` after clamping to [0, 1].
pub fn inverse_sigmoid<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    const EPS: f32 = 1e-3;
    let x = x.clamp(0.0, 1.0);
    let x1 = x.clone().clamp_min(EPS);
    let x2 = (x.neg() + 1.0).clamp_min(EPS);
    (x1 / x2).log()
}

/// (cx, cy, w, h) → (x0, y0, x1, y1) on the last dimension.
pub fn box_cxcywh_to_xyxy<const D: usize>(boxes: Tensor<D>) -> Tensor<D> {
    let parts = boxes.chunk(4, D - 1);
    let [cx, cy, w, h] = [0, 1, 2, 3].map(|i| parts[i].clone());
    let x0 = cx.clone() - w.clone() * 0.5;
    let y0 = cy.clone() - h.clone() * 0.5;
    let x1 = cx + w * 0.5;
    let y1 = cy + h * 0.5;
    Tensor::cat(vec![x0, y0, x1, y1], D - 1)
}
