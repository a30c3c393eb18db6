//! Segmentation head (HF `Sam3MaskDecoder`, `Sam3PixelDecoder`, `Sam3MaskEmbedder`; official
//! `maskformer_segmentation.py` `UniversalSegmentationHead`, `PixelDecoder`), spec §9.
//!
//! Memory [b, h·w, D] cross-attends the prompt; a nearest-upsampling FPN over (memory, level 1,
//! level 0) gives pixel embeddings [b, D, 4h, 4w]; instance masks are the dot product of
//! `mask_embedder(queries)` [b, Q, D] with `instance_projection(pixels)` → [b, Q, 4h, 4w];
//! `semantic_projection(pixels)` → [b, 1, 4h, 4w].

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, LayerNorm, Linear, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Bool, Device, Tensor};

use super::config::MaskDecoderConfig;
use super::layers::{Attention, TORCH_LN_EPS, key_padding_mask, layer_norm, linear};

/// HF `Sam3PixelDecoder`: 3×3 conv + GroupNorm(8) + ReLU per upsampling step.
#[derive(Module, Debug)]
pub struct PixelDecoder {
    pub conv_layers: Vec<Conv2d>,
    pub norms: Vec<GroupNorm>,
}

impl PixelDecoder {
    /// `coarse` [b, D, h, w] and finer maps (finest first) → [b, D, H0, W0] of the finest.
    pub fn forward(&self, coarse: Tensor<4>, finer: &[Tensor<4>]) -> Tensor<4> {
        let mut x = coarse;
        for ((skip, conv), norm) in finer.iter().rev().zip(&self.conv_layers).zip(&self.norms) {
            let [_, _, h, w] = skip.dims();
            x = upsample_nearest(x, h, w) + skip.clone();
            x = relu(group_norm(norm, conv.forward(x)));
        }
        x
    }
}

/// `norm` applied to `x` [b, C, H, W] (torch `GroupNorm`), with the group statistics reduced one
/// axis at a time. burn's `GroupNorm::forward` reduces each group (C/G·H·W elements: 2.65 M at
/// full size) in one f32 `mean_dim`, which on the CPU backend accumulates sequentially and
/// drifts by ~1e-3 relative at that size; reducing W, then H, then the group's channels keeps
/// every f32 sum short (≤ 288 terms) and matches torch to float rounding. Same parameters, so
/// the weights load into burn's module unchanged.
pub fn group_norm(norm: &GroupNorm, x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let groups = norm.num_groups;
    let grouped = x.reshape([b, groups, c / groups, h, w]);
    let mean_of = |t: Tensor<5>| t.mean_dim(4).mean_dim(3).mean_dim(2);
    let centered = grouped.clone() - mean_of(grouped);
    let var = mean_of(centered.clone().square());
    let normalized = (centered / (var + norm.epsilon).sqrt()).reshape([b, c, h, w]);
    match (&norm.gamma, &norm.beta) {
        (Some(gamma), Some(beta)) => {
            normalized * gamma.val().reshape([1, c, 1, 1]) + beta.val().reshape([1, c, 1, 1])
        }
        _ => normalized,
    }
}

/// Nearest upsampling to [h, w] for integer factors (the only case SAM3 produces).
fn upsample_nearest(x: Tensor<4>, h: usize, w: usize) -> Tensor<4> {
    let [b, c, h0, w0] = x.dims();
    assert!(
        h.is_multiple_of(h0) && w.is_multiple_of(w0),
        "pixel decoder levels must be integer multiples"
    );
    let (fy, fx) = (h / h0, w / w0);
    // [b, c, h0, 1, w0, 1] → [b, c, h0, fy, w0, fx] → [b, c, h, w]
    x.reshape([b, c, h0, 1, w0, 1])
        .expand([b, c, h0, fy, w0, fx])
        .reshape([b, c, h, w])
}

/// HF `Sam3MaskEmbedder`: 3 Linears, ReLU between.
#[derive(Module, Debug)]
pub struct MaskEmbedder {
    pub layers: Vec<Linear>,
}

impl MaskEmbedder {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let last = self.layers.len().saturating_sub(1);
        let mut x = x;
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x);
            if i < last {
                x = relu(x);
            }
        }
        x
    }
}

/// HF `Sam3MaskDecoder`.
#[derive(Module, Debug)]
pub struct MaskDecoder {
    pub pixel_decoder: PixelDecoder,
    pub mask_embedder: MaskEmbedder,
    pub instance_projection: Conv2d,
    pub semantic_projection: Conv2d,
    pub prompt_cross_attn: Attention,
    pub prompt_cross_attn_norm: LayerNorm,
}

/// Mask-head outputs and the intermediates the parity tests check.
#[derive(Debug, Clone)]
pub struct MaskOutput {
    /// [b, Q, 4h, 4w] instance mask logits.
    pub pred_masks: Tensor<4>,
    /// [b, 1, 4h, 4w] semantic logits.
    pub semantic_seg: Tensor<4>,
    /// [b, h·w, D] prompt cross-attention output (before the residual).
    pub prompt_cross_attn_out: Tensor<3>,
    /// [b, D, 4h, 4w]
    pub pixel_embed: Tensor<4>,
    /// [b, D, 4h, 4w]
    pub instance_embeds: Tensor<4>,
    /// [b, Q, D]
    pub mask_embeddings: Tensor<3>,
}

impl MaskDecoderConfig {
    /// Builds the segmentation head.
    pub fn init(&self, device: &Device) -> MaskDecoder {
        let d = self.hidden_size;
        let conv3 = || {
            Conv2dConfig::new([d, d], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        let stages = self.num_upsampling_stages;
        MaskDecoder {
            pixel_decoder: PixelDecoder {
                conv_layers: (0..stages).map(|_| conv3()).collect(),
                norms: (0..stages)
                    .map(|_| GroupNormConfig::new(8, d).with_epsilon(1e-5).init(device))
                    .collect(),
            },
            mask_embedder: MaskEmbedder {
                layers: (0..3).map(|_| linear(d, d, device)).collect(),
            },
            instance_projection: Conv2dConfig::new([d, d], [1, 1]).init(device),
            semantic_projection: Conv2dConfig::new([d, 1], [1, 1]).init(device),
            prompt_cross_attn: Attention::new(d, self.num_attention_heads, device),
            prompt_cross_attn_norm: layer_norm(d, TORCH_LN_EPS, device),
        }
    }
}

impl MaskDecoder {
    /// `queries` [b, Q, D] (last decoder layer, normed), `memory` [b, h·w, D], `fpn` = [level 0,
    /// level 1, level 2] (only the shape of level 2 is used), prompt [b, P, D] + validity.
    pub fn forward(
        &self,
        queries: Tensor<3>,
        memory: Tensor<3>,
        fpn: &[Tensor<4>; 3],
        prompt: Tensor<3>,
        prompt_valid: Tensor<2, Bool>,
    ) -> MaskOutput {
        let normed = self.prompt_cross_attn_norm.forward(memory.clone());
        let mask = key_padding_mask(prompt_valid);
        let attn = self
            .prompt_cross_attn
            .forward(normed, prompt.clone(), prompt, Some(mask), None);
        let memory = memory + attn.clone();
        let [b, _, d] = memory.dims();
        let [_, _, h, w] = fpn[2].dims();
        // [b, h·w, D] → [b, D, h·w] → [b, D, h, w]
        let coarse = memory.swap_dims(1, 2).reshape([b, d, h, w]);
        let pixel_embed = self.pixel_decoder.forward(coarse, &fpn[..2]);
        let instance_embeds = self.instance_projection.forward(pixel_embed.clone());
        let mask_embeddings = self.mask_embedder.forward(queries);
        let [_, _, hh, ww] = instance_embeds.dims();
        let [_, q, _] = mask_embeddings.dims();
        // einsum bqc,bchw→bqhw: [b, Q, D] @ [b, D, H·W] → [b, Q, H, W]
        let flat = instance_embeds.clone().reshape([b, d, hh * ww]);
        let pred_masks = mask_embeddings.clone().matmul(flat).reshape([b, q, hh, ww]);
        let semantic_seg = self.semantic_projection.forward(pixel_embed.clone());
        MaskOutput {
            pred_masks,
            semantic_seg,
            prompt_cross_attn_out: attn,
            pixel_embed,
            instance_embeds,
            mask_embeddings,
        }
    }
}
