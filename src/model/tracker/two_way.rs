//! The tracker's two-way transformer (HF `Sam3TrackerTwoWayTransformer`,
//! `Sam3TrackerTwoWayAttentionBlock`; official `sam/transformer.py` `TwoWayTransformer`), spec §11.
//!
//! Prompt tokens [B, n, D] and image tokens [B, g·g, D] update each other. Per block: token
//! self-attention (the first block's output *replaces* the tokens: no PE, no residual) → LN;
//! token→image attention (+residual) → LN; MLP (+residual) → LN; image→token attention
//! (+residual on the image side) → LN. Then one final token→image attention (+residual) → LN.
//! The token PE is the initial token tensor; PEs are added to queries and keys, never values.
//! Cross-attentions work at width D / `attention_downsample_rate`. LayerNorm eps 1e-5.

use burn::module::Module;
use burn::nn::{LayerNorm, Linear};
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Tensor};

use super::config::TrackerMaskDecoderConfig;
use crate::model::layers::{Attention, TORCH_LN_EPS, layer_norm, linear};

/// HF `Sam3TrackerFeedForward`: `proj_in`, `num_layers − 2` hidden Linears, `proj_out`, ReLU
/// between them, optional sigmoid on the output.
#[derive(Module, Debug)]
pub struct FeedForward {
    pub proj_in: Linear,
    pub layers: Vec<Linear>,
    pub proj_out: Linear,
    pub sigmoid_output: bool,
}

impl FeedForward {
    /// `num_layers` ≥ 2 Linears in all.
    pub fn new(
        d_in: usize,
        hidden: usize,
        d_out: usize,
        num_layers: usize,
        sigmoid_output: bool,
        device: &Device,
    ) -> Self {
        Self {
            proj_in: linear(d_in, hidden, device),
            layers: (2..num_layers)
                .map(|_| linear(hidden, hidden, device))
                .collect(),
            proj_out: linear(hidden, d_out, device),
            sigmoid_output,
        }
    }

    /// [..., d_in] → [..., d_out].
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let mut x = relu(self.proj_in.forward(x));
        for layer in &self.layers {
            x = relu(layer.forward(x));
        }
        let x = self.proj_out.forward(x);
        if self.sigmoid_output { sigmoid(x) } else { x }
    }
}

/// HF `Sam3TrackerTwoWayAttentionBlock`.
#[derive(Module, Debug)]
pub struct TwoWayBlock {
    pub self_attn: Attention,
    pub layer_norm1: LayerNorm,
    pub cross_attn_token_to_image: Attention,
    pub layer_norm2: LayerNorm,
    pub mlp: FeedForward,
    pub layer_norm3: LayerNorm,
    pub layer_norm4: LayerNorm,
    pub cross_attn_image_to_token: Attention,
    /// First block: self-attention without PE and without residual.
    pub skip_first_layer_pe: bool,
}

impl TwoWayBlock {
    /// `queries` [B, n, D], `keys` [B, g·g, D], `query_pe` [B, n, D], `key_pe` [B|1, g·g, D] →
    /// updated (queries, keys).
    pub fn forward(
        &self,
        queries: Tensor<3>,
        keys: Tensor<3>,
        query_pe: Tensor<3>,
        key_pe: Tensor<3>,
    ) -> (Tensor<3>, Tensor<3>) {
        let queries = if self.skip_first_layer_pe {
            self.self_attn
                .forward(queries.clone(), queries.clone(), queries, None, None)
        } else {
            let q = queries.clone() + query_pe.clone();
            queries.clone() + self.self_attn.forward(q.clone(), q, queries, None, None)
        };
        let queries = self.layer_norm1.forward(queries);

        let q = queries.clone() + query_pe.clone();
        let k = keys.clone() + key_pe.clone();
        let attn = self
            .cross_attn_token_to_image
            .forward(q, k, keys.clone(), None, None);
        let queries = self.layer_norm2.forward(queries + attn);

        let queries = self
            .layer_norm3
            .forward(queries.clone() + self.mlp.forward(queries));

        let q = queries.clone() + query_pe;
        let k = keys.clone() + key_pe;
        let attn = self
            .cross_attn_image_to_token
            .forward(k, q, queries.clone(), None, None);
        let keys = self.layer_norm4.forward(keys + attn);
        (queries, keys)
    }
}

/// HF `Sam3TrackerTwoWayTransformer`.
#[derive(Module, Debug)]
pub struct TwoWayTransformer {
    pub layers: Vec<TwoWayBlock>,
    pub final_attn_token_to_image: Attention,
    pub layer_norm_final_attn: LayerNorm,
}

impl TrackerMaskDecoderConfig {
    /// Builds the two-way transformer.
    pub fn init_two_way(&self, device: &Device) -> TwoWayTransformer {
        let d = self.hidden_size;
        let heads = self.num_attention_heads;
        let inner = d / self.attention_downsample_rate.max(1);
        let cross = || Attention::with_internal(d, inner, heads, device);
        let norm = || layer_norm(d, TORCH_LN_EPS, device);
        TwoWayTransformer {
            layers: (0..self.num_hidden_layers)
                .map(|i| TwoWayBlock {
                    self_attn: Attention::with_internal(d, d, heads, device),
                    layer_norm1: norm(),
                    cross_attn_token_to_image: cross(),
                    layer_norm2: norm(),
                    // HF sizes this MLP's depth with `num_hidden_layers` (2: no hidden Linear)
                    mlp: FeedForward::new(
                        d,
                        self.mlp_dim,
                        d,
                        self.num_hidden_layers,
                        false,
                        device,
                    ),
                    layer_norm3: norm(),
                    layer_norm4: norm(),
                    cross_attn_image_to_token: cross(),
                    skip_first_layer_pe: i == 0,
                })
                .collect(),
            final_attn_token_to_image: cross(),
            layer_norm_final_attn: norm(),
        }
    }
}

impl TwoWayTransformer {
    /// `tokens` [B, n, D] (also their PE), `image` [B, g·g, D], `image_pe` [B|1, g·g, D] →
    /// (tokens [B, n, D], image tokens [B, g·g, D]).
    pub fn forward(
        &self,
        tokens: Tensor<3>,
        image: Tensor<3>,
        image_pe: Tensor<3>,
    ) -> (Tensor<3>, Tensor<3>) {
        let mut queries = tokens.clone();
        let mut keys = image;
        for layer in &self.layers {
            (queries, keys) = layer.forward(queries, keys, tokens.clone(), image_pe.clone());
        }
        let q = queries.clone() + tokens;
        let k = keys.clone() + image_pe;
        let attn = self
            .final_attn_token_to_image
            .forward(q, k, keys.clone(), None, None);
        let queries = self.layer_norm_final_attn.forward(queries + attn);
        (queries, keys)
    }
}
