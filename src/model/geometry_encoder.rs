//! Box-exemplar prompt encoder (HF `Sam3GeometryEncoder`, `Sam3GeometryEncoderLayer`; official
//! `geometry_encoders.py` `SequenceGeometryEncoder`), spec §6.
//!
//! Image level-2 features [b, D, h, w] + position encoding [1, D, h, w] + boxes (normalised
//! cx, cy, w, h; label 1 positive / 0 negative; right-padded to nb per image) → prompt tokens
//! [b, nb + 1, D] and their validity [b, nb + 1]: the valid boxes, then the CLS token, then padding.
//! ROI-align (torchvision semantics, `aligned=False`, adaptive sampling) is computed as a host-built
//! sampling matrix applied by one batched matmul, so it runs on any device.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, Linear};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

use super::config::DetrConfig;
use super::layers::{
    Attention, Mlp, TORCH_LN_EPS, key_padding_mask, layer_norm, linear, sine_encode,
};

/// One box exemplar, normalised to the image: centre, width, height in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExemplarBox {
    pub cxcywh: [f32; 4],
    /// Positive (the concept) or negative (not the concept) exemplar.
    pub positive: bool,
}

/// Boxes of a batch right-padded to a common count; padding slots hold a zero box, label 0.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxBatch {
    pub batch: usize,
    pub num_boxes: usize,
    /// [batch · num_boxes · 4] cx, cy, w, h.
    pub boxes: Vec<f32>,
    /// [batch · num_boxes] 1 positive, 0 negative or padding.
    pub labels: Vec<i64>,
    /// [batch · num_boxes] false for padding.
    pub valid: Vec<bool>,
}

impl BoxBatch {
    /// Pads per-image box lists to the longest one.
    pub fn from_lists(lists: &[Vec<ExemplarBox>]) -> Self {
        let num_boxes = lists.iter().map(Vec::len).max().unwrap_or(0);
        let mut out = Self {
            batch: lists.len(),
            num_boxes,
            boxes: Vec::new(),
            labels: Vec::new(),
            valid: Vec::new(),
        };
        for list in lists {
            for slot in 0..num_boxes {
                match list.get(slot) {
                    Some(b) => {
                        out.boxes.extend_from_slice(&b.cxcywh);
                        out.labels.push(i64::from(b.positive));
                        out.valid.push(true);
                    }
                    None => {
                        out.boxes.extend_from_slice(&[0.0; 4]);
                        out.labels.push(0);
                        out.valid.push(false);
                    }
                }
            }
        }
        out
    }

    /// Valid boxes in image `b` (they come first).
    fn count(&self, b: usize) -> usize {
        self.valid
            .iter()
            .skip(b * self.num_boxes)
            .take(self.num_boxes)
            .filter(|v| **v)
            .count()
    }
}

/// HF `Sam3GeometryEncoderLayer`: pre-norm self-attention (prompt mask), cross-attention to the
/// image (position on keys only), ReLU FFN.
#[derive(Module, Debug)]
pub struct GeometryLayer {
    pub layer_norm1: LayerNorm,
    pub self_attn: Attention,
    pub cross_attn: Attention,
    pub layer_norm2: LayerNorm,
    pub mlp: Mlp,
    pub layer_norm3: LayerNorm,
}

impl GeometryLayer {
    fn forward(
        &self,
        x: Tensor<3>,
        image: Tensor<3>,
        image_keys: Tensor<3>,
        mask: Tensor<4, Bool>,
    ) -> Tensor<3> {
        let h = self.layer_norm1.forward(x.clone());
        let x = self
            .self_attn
            .forward(h.clone(), h.clone(), h, Some(mask), None)
            + x;
        let h = self.layer_norm2.forward(x.clone());
        let x = self.cross_attn.forward(h, image_keys, image, None, None) + x;
        let h = self.layer_norm3.forward(x.clone());
        self.mlp.forward(h) + x
    }
}

/// HF `Sam3GeometryEncoder`.
#[derive(Module, Debug)]
pub struct GeometryEncoder {
    pub label_embed: Embedding,
    pub cls_embed: Embedding,
    pub boxes_direct_project: Linear,
    pub boxes_pool_project: Conv2d,
    pub boxes_pos_enc_project: Linear,
    pub vision_layer_norm: LayerNorm,
    pub final_proj: Linear,
    pub prompt_layer_norm: LayerNorm,
    pub layers: Vec<GeometryLayer>,
    pub output_layer_norm: LayerNorm,
    pub roi_size: usize,
}

impl DetrConfig {
    /// Builds the geometry encoder (uses `hidden_size`, `num_layers`, heads, FFN width, `roi_size`).
    pub fn init_geometry_encoder(&self, device: &Device) -> GeometryEncoder {
        let d = self.hidden_size;
        let ln = || layer_norm(d, TORCH_LN_EPS, device);
        let layers = (0..self.num_layers)
            .map(|_| GeometryLayer {
                layer_norm1: ln(),
                self_attn: Attention::new(d, self.num_attention_heads, device),
                cross_attn: Attention::new(d, self.num_attention_heads, device),
                layer_norm2: ln(),
                mlp: Mlp::new(d, self.intermediate_size, self.hidden_act, device),
                layer_norm3: ln(),
            })
            .collect();
        GeometryEncoder {
            label_embed: EmbeddingConfig::new(2, d).init(device),
            cls_embed: EmbeddingConfig::new(1, d).init(device),
            boxes_direct_project: linear(4, d, device),
            boxes_pool_project: Conv2dConfig::new([d, d], [self.roi_size, self.roi_size])
                .init(device),
            boxes_pos_enc_project: linear(d + 2, d, device),
            vision_layer_norm: ln(),
            final_proj: linear(d, d, device),
            prompt_layer_norm: ln(),
            layers,
            output_layer_norm: ln(),
            roi_size: self.roi_size,
        }
    }
}

impl GeometryEncoder {
    /// `features` [b, D, h, w], `pos` [1, D, h, w] → (tokens [b, nb+1, D], valid [b, nb+1]).
    /// Requires `boxes.batch == b` and at least one box slot (checked by the caller).
    pub fn forward(
        &self,
        features: Tensor<4>,
        pos: Tensor<4>,
        boxes: &BoxBatch,
    ) -> (Tensor<3>, Tensor<2, Bool>) {
        let [b, d, h, w] = features.dims();
        assert_eq!(boxes.batch, b, "box batch does not match the image batch");
        let device = features.device();
        // [b, D, h, w] → [b, D, h·w] → [b, h·w, D]
        let image = features.reshape([b, d, h * w]).swap_dims(1, 2);
        // [1, D, h, w] → [1, h·w, D] → [b, h·w, D]
        let pos = pos
            .reshape([1, d, h * w])
            .swap_dims(1, 2)
            .expand([b, h * w, d]);
        let embeds = self.encode_boxes(image.clone(), h, w, boxes);
        let (tokens, valid) = self.append_cls(embeds, boxes, &device);
        let mut x = self
            .prompt_layer_norm
            .forward(self.final_proj.forward(tokens));
        let mask = key_padding_mask(valid.clone());
        let keys = image.clone() + pos;
        for layer in &self.layers {
            x = layer.forward(x, image.clone(), keys.clone(), mask.clone());
        }
        (self.output_layer_norm.forward(x), valid)
    }

    /// Sum of direct, ROI-pooled, position and label embeddings: [b, nb, D].
    fn encode_boxes(&self, image: Tensor<3>, h: usize, w: usize, boxes: &BoxBatch) -> Tensor<3> {
        let [b, _, d] = image.dims();
        let nb = boxes.num_boxes;
        let r = self.roi_size;
        let device = image.device();
        let dtype = image.dtype();
        let coords = Tensor::<3>::from_data(
            TensorData::new(boxes.boxes.clone(), [b, nb, 4]),
            (&device, dtype),
        );
        let direct = self.boxes_direct_project.forward(coords.clone());
        // ROI align on the LayerNorm-ed image: [b, nb·r·r, h·w] @ [b, h·w, D]
        let normed = self.vision_layer_norm.forward(image);
        let sampling = Tensor::<3>::from_data(roi_align_matrix(boxes, h, w, r), (&device, dtype));
        let sampled = sampling.matmul(normed);
        // [b, nb·r·r, D] → [b·nb, r, r, D] → [b·nb, D, r, r]
        let rois = sampled.reshape([b * nb, r, r, d]).permute([0, 3, 1, 2]);
        // [b·nb, D, 1, 1] → [b, nb, D]
        let pooled = self.boxes_pool_project.forward(rois).reshape([b, nb, d]);
        let parts = coords.chunk(4, 2);
        let [cx, cy, bw, bh] = [0, 1, 2, 3].map(|i| parts[i].clone());
        let pos_x = sine_encode(cx.reshape([b, nb]), d / 2);
        let pos_y = sine_encode(cy.reshape([b, nb]), d / 2);
        let pos = Tensor::cat(vec![pos_y, pos_x, bh, bw], 2);
        let pos_proj = self.boxes_pos_enc_project.forward(pos);
        let labels =
            Tensor::<2, Int>::from_data(TensorData::new(boxes.labels.clone(), [b, nb]), &device);
        let label = self.label_embed.forward(labels);
        label + (direct + pooled + pos_proj)
    }

    /// HF `concat_padded_sequences` with the CLS token: per image, the CLS token goes right after
    /// the valid boxes; → ([b, nb+1, D], valid [b, nb+1]).
    fn append_cls(
        &self,
        embeds: Tensor<3>,
        boxes: &BoxBatch,
        device: &Device,
    ) -> (Tensor<3>, Tensor<2, Bool>) {
        let [b, nb, d] = embeds.dims();
        let cls = self.cls_embed.weight.val().reshape([1, 1, d]);
        let mut rows = Vec::with_capacity(b);
        let mut valid = Vec::with_capacity(b * (nb + 1));
        for i in 0..b {
            let n = boxes.count(i);
            let row = embeds.clone().slice([i..i + 1, 0..nb, 0..d]);
            let mut parts = Vec::with_capacity(4);
            if n > 0 {
                parts.push(row.clone().slice([0..1, 0..n, 0..d]));
            }
            parts.push(cls.clone());
            if n + 1 < nb {
                parts.push(row.slice([0..1, n + 1..nb, 0..d]));
            }
            if n < nb {
                parts.push(Tensor::zeros([1, 1, d], (device, embeds.dtype())));
            }
            rows.push(Tensor::cat(parts, 1));
            valid.extend((0..=nb).map(|j| j <= n));
        }
        let valid = Tensor::<2, Bool>::from_data(TensorData::new(valid, [b, nb + 1]), device);
        (Tensor::cat(rows, 0), valid)
    }
}

/// torchvision `roi_align(aligned=False, spatial_scale=1, sampling_ratio=-1)` as a linear map:
/// [b, nb·r·r, h·w]; row (box, bin) holds the averaged bilinear weights of its sample points.
fn roi_align_matrix(boxes: &BoxBatch, h: usize, w: usize, r: usize) -> TensorData {
    let (b, nb) = (boxes.batch, boxes.num_boxes);
    let mut m = vec![0f32; b * nb * r * r * h * w];
    for (index, coords) in boxes.boxes.chunks_exact(4).enumerate() {
        let [cx, cy, bw, bh] = [coords[0], coords[1], coords[2], coords[3]];
        // cxcywh → xyxy, scaled to feature pixels
        let x0 = (cx - 0.5 * bw) * w as f32;
        let y0 = (cy - 0.5 * bh) * h as f32;
        let x1 = (cx + 0.5 * bw) * w as f32;
        let y1 = (cy + 0.5 * bh) * h as f32;
        let roi_w = (x1 - x0).max(1.0);
        let roi_h = (y1 - y0).max(1.0);
        let bin_w = roi_w / r as f32;
        let bin_h = roi_h / r as f32;
        let grid_h = (roi_h / r as f32).ceil().max(1.0) as usize;
        let grid_w = (roi_w / r as f32).ceil().max(1.0) as usize;
        let count = (grid_h * grid_w).max(1) as f32;
        for ph in 0..r {
            for pw in 0..r {
                let row = ((index * r + ph) * r + pw) * h * w;
                for iy in 0..grid_h {
                    let y = y0 + ph as f32 * bin_h + (iy as f32 + 0.5) * bin_h / grid_h as f32;
                    for ix in 0..grid_w {
                        let x = x0 + pw as f32 * bin_w + (ix as f32 + 0.5) * bin_w / grid_w as f32;
                        for (pixel, weight) in bilinear_taps(y, x, h, w) {
                            if let Some(cell) = m.get_mut(row + pixel) {
                                *cell += weight / count;
                            }
                        }
                    }
                }
            }
        }
    }
    TensorData::new(m, [b, nb * r * r, h * w])
}

/// torchvision's `bilinear_interpolate` taps: (flat pixel index, weight), empty outside.
fn bilinear_taps(y: f32, x: f32, h: usize, w: usize) -> Vec<(usize, f32)> {
    if y < -1.0 || y > h as f32 || x < -1.0 || x > w as f32 {
        return Vec::new();
    }
    let (y, x) = (y.max(0.0), x.max(0.0));
    let (mut y_low, mut x_low) = (y as usize, x as usize);
    let (mut y, mut x) = (y, x);
    let y_high = if y_low >= h - 1 {
        y_low = h - 1;
        y = y_low as f32;
        y_low
    } else {
        y_low + 1
    };
    let x_high = if x_low >= w - 1 {
        x_low = w - 1;
        x = x_low as f32;
        x_low
    } else {
        x_low + 1
    };
    let (ly, lx) = (y - y_low as f32, x - x_low as f32);
    let (hy, hx) = (1.0 - ly, 1.0 - lx);
    vec![
        (y_low * w + x_low, hy * hx),
        (y_low * w + x_high, hy * lx),
        (y_high * w + x_low, ly * hx),
        (y_high * w + x_high, ly * lx),
    ]
}
