//! The tracker's mask decoder (HF `Sam3TrackerMaskDecoder`; official `sam/mask_decoder.py`
//! `MaskDecoder` with SAM 2's high-resolution features and object-score head), spec §11.
//!
//! Tokens `[obj_score, iou, mask_0..mask_3, prompt…]` [B, 6+n, D] and the image embedding plus
//! the dense prompt [B, D, g, g] run through the two-way transformer. The image tokens are then
//! upscaled with the high-resolution features, `u = GELU(LN2d(ConvT(img) + s1))`,
//! `u = GELU(ConvT(u) + s0)` → [B, D/8, 4g, 4g]; each mask token's hyper-MLP (→ D/8) dotted with
//! `u` gives 4 mask logits [B, 4, 4g, 4g]; the IoU head (sigmoid) gives [B, 4] and the
//! object-score head [B, 1]. Mask 0 is the single-mask output, masks 1–3 the candidates.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm};
use burn::tensor::activation::gelu;
use burn::tensor::{Device, Int, Tensor};

use super::config::TrackerMaskDecoderConfig;
use super::prompt_encoder::layer_norm_2d;
use super::two_way::{FeedForward, TwoWayTransformer};
use crate::model::layers::layer_norm;

/// HF `Sam3TrackerLayerNorm`'s default eps (the upscaling LayerNorm).
const LN2D_EPS: f64 = 1e-6;

/// HF `Sam3TrackerMaskDecoder`.
#[derive(Module, Debug)]
pub struct TrackerMaskDecoder {
    pub iou_token: Embedding,
    /// [1 + multimask outputs, D]
    pub mask_tokens: Embedding,
    pub obj_score_token: Embedding,
    pub transformer: TwoWayTransformer,
    /// ConvT D → D/4, kernel 2, stride 2.
    pub upscale_conv1: ConvTranspose2d,
    /// ConvT D/4 → D/8, kernel 2, stride 2.
    pub upscale_conv2: ConvTranspose2d,
    pub upscale_layer_norm: LayerNorm,
    pub output_hypernetworks_mlps: Vec<FeedForward>,
    pub iou_prediction_head: FeedForward,
    pub pred_obj_score_head: FeedForward,
    /// 1×1 D → D/8 on neck level 0 (precomputed per image, see `TrackerFeatures`).
    pub conv_s0: Conv2d,
    /// 1×1 D → D/4 on neck level 1.
    pub conv_s1: Conv2d,
    pub dynamic_multimask_via_stability: bool,
    pub stability_delta: f32,
    pub stability_thresh: f32,
}

/// Everything the decoder produces for B = images × prompts.
#[derive(Debug, Clone)]
pub struct DecoderOutput {
    /// [B, 1 + multimask outputs, 4g, 4g] mask logits of every mask token.
    pub masks: Tensor<4>,
    /// [B, 1 + multimask outputs] predicted IoU (sigmoid) of every mask token.
    pub iou: Tensor<2>,
    /// [B, 1] object-score logit.
    pub object_score_logits: Tensor<2>,
    /// [B, 6 + n, D] transformer output tokens.
    pub tokens: Tensor<3>,
    /// [B, g·g, D] transformer output image tokens.
    pub image_tokens: Tensor<3>,
}

impl TrackerMaskDecoderConfig {
    /// Builds the mask decoder with placeholder weights.
    pub fn init(&self, device: &Device) -> TrackerMaskDecoder {
        let d = self.hidden_size;
        let n_masks = self.num_multimask_outputs + 1;
        let convt = |c_in: usize, c_out: usize| {
            ConvTranspose2dConfig::new([c_in, c_out], [2, 2])
                .with_stride([2, 2])
                .init(device)
        };
        let head = |d_out: usize| FeedForward::new(d, d, d_out, 3, false, device);
        TrackerMaskDecoder {
            iou_token: EmbeddingConfig::new(1, d).init(device),
            mask_tokens: EmbeddingConfig::new(n_masks, d).init(device),
            obj_score_token: EmbeddingConfig::new(1, d).init(device),
            transformer: self.init_two_way(device),
            upscale_conv1: convt(d, d / 4),
            upscale_conv2: convt(d / 4, d / 8),
            upscale_layer_norm: layer_norm(d / 4, LN2D_EPS, device),
            output_hypernetworks_mlps: (0..n_masks).map(|_| head(d / 8)).collect(),
            iou_prediction_head: FeedForward::new(
                d,
                self.iou_head_hidden_dim,
                n_masks,
                self.iou_head_depth,
                true,
                device,
            ),
            pred_obj_score_head: head(1),
            conv_s0: Conv2dConfig::new([d, d / 8], [1, 1]).init(device),
            conv_s1: Conv2dConfig::new([d, d / 4], [1, 1]).init(device),
            dynamic_multimask_via_stability: self.dynamic_multimask_via_stability,
            stability_delta: self.dynamic_multimask_stability_delta,
            stability_thresh: self.dynamic_multimask_stability_thresh,
        }
    }
}

/// Repeats every batch entry `n` times in place (torch `repeat_interleave(n, dim=0)`).
fn repeat_each(x: Tensor<4>, n: usize) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    // [b, c, h, w] → [b, 1, c, h, w] → [b, n, c, h, w] → [b·n, c, h, w]
    x.unsqueeze_dim::<5>(1)
        .expand([b, n, c, h, w])
        .reshape([b * n, c, h, w])
}

impl TrackerMaskDecoder {
    /// `image` [b, D, g, g] (neck level 2), `image_pe` [1, D, g, g], `sparse` [b, nb, n, D],
    /// `dense` [b, D, g, g], `s0` [b, D/8, 4g, 4g], `s1` [b, D/4, 2g, 2g]. The result is per
    /// (image, prompt) pair, B = b·nb, image-major.
    pub fn forward(
        &self,
        image: Tensor<4>,
        image_pe: Tensor<4>,
        sparse: Tensor<4>,
        dense: Tensor<4>,
        s0: Tensor<4>,
        s1: Tensor<4>,
    ) -> DecoderOutput {
        let [b, d, g_h, g_w] = image.dims();
        let [_, nb, n, _] = sparse.dims();
        let big = b * nb;
        let output_tokens = Tensor::cat(
            vec![
                self.obj_score_token.weight.val(),
                self.iou_token.weight.val(),
                self.mask_tokens.weight.val(),
            ],
            0,
        );
        let n_out = output_tokens.dims()[0];
        let tokens = Tensor::cat(
            vec![
                output_tokens.unsqueeze::<3>().expand([big, n_out, d]),
                sparse.reshape([big, n, d]),
            ],
            1,
        );
        let src = repeat_each(image + dense, nb);
        // [B, D, g, g] → [B, g·g, D]
        let src = src.reshape([big, d, g_h * g_w]).swap_dims(1, 2);
        let pe = image_pe.reshape([1, d, g_h * g_w]).swap_dims(1, 2);
        let (tokens, image_tokens) = self.transformer.forward(tokens, src, pe);

        // [B, g·g, D] → [B, D, g, g]
        let upscaled = image_tokens
            .clone()
            .swap_dims(1, 2)
            .reshape([big, d, g_h, g_w]);
        let upscaled = self.upscale_conv1.forward(upscaled) + repeat_each(s1, nb);
        let upscaled = gelu(layer_norm_2d(&self.upscale_layer_norm, upscaled));
        let upscaled = gelu(self.upscale_conv2.forward(upscaled) + repeat_each(s0, nb));

        let n_masks = self.output_hypernetworks_mlps.len();
        let hyper: Vec<Tensor<2>> = self
            .output_hypernetworks_mlps
            .iter()
            .enumerate()
            .map(|(i, mlp)| {
                // token 2 + i: [B, 1, D] → [B, D]
                mlp.forward(tokens.clone().narrow(1, 2 + i, 1).reshape([big, d]))
            })
            .collect();
        let hyper = Tensor::stack::<3>(hyper, 1);
        let [_, c, h, w] = upscaled.dims();
        // [B, masks, D/8] @ [B, D/8, 4g·4g] → [B, masks, 4g, 4g]
        let masks = hyper
            .matmul(upscaled.reshape([big, c, h * w]))
            .reshape([big, n_masks, h, w]);
        let iou = self
            .iou_prediction_head
            .forward(tokens.clone().narrow(1, 1, 1).reshape([big, d]));
        let object_score_logits = self
            .pred_obj_score_head
            .forward(tokens.clone().narrow(1, 0, 1).reshape([big, d]));
        DecoderOutput {
            masks,
            iou,
            object_score_logits,
            tokens,
            image_tokens,
        }
    }

    /// HF single-mask output: mask 0 when its stability score (area of logits > δ over area of
    /// logits > −δ; 1 when the latter is empty) reaches the threshold, otherwise the candidate
    /// (masks 1…) with the highest predicted IoU. Without dynamic selection: mask 0.
    /// Returns ([B, 1, 4g, 4g], [B, 1]).
    pub fn select_single(&self, masks: Tensor<4>, iou: Tensor<2>) -> (Tensor<4>, Tensor<2>) {
        let [big, n_masks, h, w] = masks.dims();
        let single = masks.clone().narrow(1, 0, 1);
        let single_iou = iou.clone().narrow(1, 0, 1);
        if !self.dynamic_multimask_via_stability || n_masks < 2 {
            return (single, single_iou);
        }
        let flat = single.clone().reshape([big, h * w]);
        let area_i = flat
            .clone()
            .greater_elem(self.stability_delta)
            .float()
            .sum_dim(1);
        let area_u = flat.greater_elem(-self.stability_delta).float().sum_dim(1);
        let empty = area_u.clone().equal_elem(0.0);
        let stability = (area_i / area_u.clamp_min(1.0)).mask_fill(empty, 1.0);
        let stable = stability.greater_equal_elem(self.stability_thresh);

        let candidates = masks.narrow(1, 1, n_masks - 1);
        let candidate_iou = iou.narrow(1, 1, n_masks - 1);
        let best: Tensor<2, Int> = candidate_iou.clone().argmax(1);
        let best_masks = candidates.gather(
            1,
            best.clone().reshape([big, 1, 1, 1]).expand([big, 1, h, w]),
        );
        let best_iou = candidate_iou.gather(1, best);
        let masks = best_masks.mask_where(
            stable
                .clone()
                .reshape([big, 1, 1, 1])
                .expand([big, 1, h, w]),
            single,
        );
        let iou = best_iou.mask_where(stable, single_iou);
        (masks, iou)
    }
}
