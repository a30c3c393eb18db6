//! Fusion ("DETR") encoder (HF `Sam3DetrEncoder`, `Sam3DetrEncoderLayer`; official `encoder.py`
//! `TransformerEncoderFusion`), spec §7.
//!
//! Image tokens [b, h·w, D] (level 2, flattened row-major) with their position encoding, and
//! prompt tokens [b, P, D] with validity [b, P] → fused image tokens [b, h·w, D] ("memory").
//! Pre-norm layers: self-attention (position on q and k), cross-attention to the prompt, ReLU FFN.
//! The prompt itself is not updated.

use burn::module::Module;
use burn::nn::LayerNorm;
use burn::tensor::{Bool, Device, Tensor};

use super::config::DetrConfig;
use super::layers::{Attention, Mlp, TORCH_LN_EPS, key_padding_mask, layer_norm};

/// HF `Sam3DetrEncoderLayer`.
#[derive(Module, Debug)]
pub struct FusionLayer {
    pub layer_norm1: LayerNorm,
    pub self_attn: Attention,
    pub cross_attn: Attention,
    pub layer_norm2: LayerNorm,
    pub mlp: Mlp,
    pub layer_norm3: LayerNorm,
}

impl FusionLayer {
    /// `x` [b, n, D], `pos` [b|1, n, D], `prompt` [b, P, D], `mask` [b, 1, 1, P] → [b, n, D].
    pub fn forward(
        &self,
        x: Tensor<3>,
        pos: Tensor<3>,
        prompt: Tensor<3>,
        mask: Tensor<4, Bool>,
    ) -> Tensor<3> {
        let kv = self.keys_values(x.clone(), pos.clone());
        self.forward_rows(x, pos, kv, prompt, mask)
    }

    /// The self-attention keys and values [b, heads, n, d] of every token of `x`.
    pub fn keys_values(&self, x: Tensor<3>, pos: Tensor<3>) -> (Tensor<4>, Tensor<4>) {
        let h = self.layer_norm1.forward(x);
        self.self_attn.project_kv(h.clone() + pos, h)
    }

    /// The layer's output for some rows (tokens) `x_rows` [b, r, D] with their `pos_rows`,
    /// given every token's keys and values ([`FusionLayer::keys_values`]). Everything but the
    /// self-attention's keys and values is token-wise, so rows can be computed (and
    /// differentiated) a block at a time: the attention scores then take heads × r × n floats
    /// instead of heads × n².
    pub fn forward_rows(
        &self,
        x_rows: Tensor<3>,
        pos_rows: Tensor<3>,
        (k, v): (Tensor<4>, Tensor<4>),
        prompt: Tensor<3>,
        mask: Tensor<4, Bool>,
    ) -> Tensor<3> {
        let h = self.layer_norm1.forward(x_rows.clone());
        let x = self
            .self_attn
            .attend_projected(h + pos_rows, k, v, None, None)
            + x_rows;
        let h = self.layer_norm2.forward(x.clone());
        let x = self
            .cross_attn
            .forward(h, prompt.clone(), prompt, Some(mask), None)
            + x;
        let h = self.layer_norm3.forward(x.clone());
        self.mlp.forward(h) + x
    }
}

/// HF `Sam3DetrEncoder` (single feature level).
#[derive(Module, Debug)]
pub struct FusionEncoder {
    pub layers: Vec<FusionLayer>,
}

impl DetrConfig {
    /// Builds the fusion encoder.
    pub fn init_fusion_encoder(&self, device: &Device) -> FusionEncoder {
        let d = self.hidden_size;
        let layers = (0..self.num_layers)
            .map(|_| FusionLayer {
                layer_norm1: layer_norm(d, TORCH_LN_EPS, device),
                self_attn: Attention::new(d, self.num_attention_heads, device),
                cross_attn: Attention::new(d, self.num_attention_heads, device),
                layer_norm2: layer_norm(d, TORCH_LN_EPS, device),
                mlp: Mlp::new(d, self.intermediate_size, self.hidden_act, device),
                layer_norm3: layer_norm(d, TORCH_LN_EPS, device),
            })
            .collect();
        FusionEncoder { layers }
    }
}

impl FusionEncoder {
    /// Returns every layer's output (the last one is the memory E).
    pub fn forward(
        &self,
        image: Tensor<3>,
        pos: Tensor<3>,
        prompt: Tensor<3>,
        prompt_valid: Tensor<2, Bool>,
    ) -> Vec<Tensor<3>> {
        let mask = key_padding_mask(prompt_valid);
        let mut x = image;
        let mut outputs = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            x = layer.forward(x, pos.clone(), prompt.clone(), mask.clone());
            outputs.push(x.clone());
        }
        outputs
    }
}
