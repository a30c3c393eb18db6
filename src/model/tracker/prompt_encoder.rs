//! Tracker prompt encoder (HF `Sam3TrackerPromptEncoder`, `Sam3TrackerPositionalEmbedding`,
//! `Sam3TrackerMaskEmbedding`; official `sam/prompt_encoder.py` `PromptEncoder`), spec §11.
//!
//! - Random-Fourier positional encoding φ: coordinates u in [0, 1]² → `[sin(2π·(2u−1)·G),
//!   cos(2π·(2u−1)·G)]` with the stored Gaussian matrix G [2, D/2] → D features.
//! - Box [x0, y0, x1, y1] (input pixels) → 3 sparse tokens: `φ(corner 0) + point_embed[2]`,
//!   `φ(corner 1) + point_embed[3]`, and `not_a_point_embed` (the padding point the original
//!   code appends; HF keeps it).
//! - Points with labels (1 positive, 0 negative, −1 padding → `not_a_point_embed`, −10 ignored →
//!   zeros); a padding point is appended when no box is given.
//! - Dense prompt: `no_mask_embed` broadcast to [b, D, g, g], or a mask logit map [b, 1, 4g, 4g]
//!   through conv 2×2/2 → LN2d → act → conv 2×2/2 → LN2d → act → conv 1×1.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};

use super::config::TrackerPromptEncoderConfig;
use crate::model::config::Activation;
use crate::model::layers::{activate, layer_norm};

/// HF `Sam3TrackerPositionalEmbedding`: the random Fourier features of SAM.
#[derive(Module, Debug)]
pub struct PositionalEmbedding {
    /// Gaussian matrix G [2, D/2] (a persistent buffer in PyTorch; loaded, never trained).
    pub positional_embedding: Param<Tensor<2>>,
}

impl PositionalEmbedding {
    /// Random G with std `scale`, as HF initialises it (the checkpoint replaces it).
    pub fn new(width: usize, scale: f64, device: &Device) -> Self {
        let g = Tensor::random([2, width / 2], Distribution::Normal(0.0, scale), device);
        Self {
            positional_embedding: Param::from_tensor(g),
        }
    }

    /// `coords` [n, 2] as (x, y) in [0, 1] → [n, D].
    pub fn forward(&self, coords: Tensor<2>) -> Tensor<2> {
        let centred = coords * 2.0 - 1.0;
        let projected = centred.matmul(self.positional_embedding.val()) * std::f32::consts::TAU;
        Tensor::cat(vec![projected.clone().sin(), projected.cos()], 1)
    }

    /// Encoding of the centres of a g_h × g_w grid: [1, D, g_h, g_w] (HF
    /// `get_image_wide_positional_embeddings`).
    pub fn grid(&self, g_h: usize, g_w: usize, device: &Device) -> Tensor<4> {
        let mut coords = Vec::with_capacity(g_h * g_w * 2);
        for i in 0..g_h {
            for j in 0..g_w {
                coords.push((j as f32 + 0.5) / g_w as f32);
                coords.push((i as f32 + 0.5) / g_h as f32);
            }
        }
        let coords = Tensor::<2>::from_data(TensorData::new(coords, [g_h * g_w, 2]), device);
        let encoded = self.forward(coords);
        let [_, d] = encoded.dims();
        // [g_h·g_w, D] → [D, g_h·g_w] → [1, D, g_h, g_w]
        encoded.swap_dims(0, 1).reshape([1, d, g_h, g_w])
    }
}

/// A LayerNorm over the channels of an NCHW map (HF `Sam3TrackerLayerNorm`, channels first).
pub fn layer_norm_2d(norm: &LayerNorm, x: Tensor<4>) -> Tensor<4> {
    // [b, c, h, w] → [b, h, w, c] → norm → [b, c, h, w]
    norm.forward(x.permute([0, 2, 3, 1])).permute([0, 3, 1, 2])
}

/// HF `Sam3TrackerMaskEmbedding`: the dense encoder of a mask prompt.
#[derive(Module, Debug)]
pub struct MaskEmbedding {
    pub conv1: Conv2d,
    pub conv2: Conv2d,
    pub conv3: Conv2d,
    pub layer_norm1: LayerNorm,
    pub layer_norm2: LayerNorm,
    #[module(skip)]
    pub act: Activation,
}

impl MaskEmbedding {
    /// Mask logits [b, 1, 4g, 4g] → dense embedding [b, D, g, g].
    pub fn forward(&self, masks: Tensor<4>) -> Tensor<4> {
        let x = self.conv1.forward(masks);
        let x = activate(layer_norm_2d(&self.layer_norm1, x), self.act);
        let x = self.conv2.forward(x);
        let x = activate(layer_norm_2d(&self.layer_norm2, x), self.act);
        self.conv3.forward(x)
    }
}

/// HF `Sam3TrackerPromptEncoder`.
#[derive(Module, Debug)]
pub struct PromptEncoder {
    pub shared_embedding: PositionalEmbedding,
    pub mask_embed: MaskEmbedding,
    pub no_mask_embed: Embedding,
    /// [4, D]: negative point, positive point, box corner 0, box corner 1.
    pub point_embed: Embedding,
    pub not_a_point_embed: Embedding,
    /// Input side S: pixel coordinates are divided by it.
    pub input_image_size: usize,
    /// Image-embedding grid side g.
    pub grid: usize,
}

/// Point prompts: coordinates in input pixels and one label per point.
#[derive(Debug, Clone)]
pub struct PointPrompt {
    /// [b, nb, np, 2] as (x, y) in pixels of the S×S model input.
    pub coords: Tensor<4>,
    /// [b, nb, np]: 1 positive, 0 negative, −1 padding point, −10 ignored.
    pub labels: Tensor<3, Int>,
}

impl TrackerPromptEncoderConfig {
    /// Builds the prompt encoder with placeholder weights.
    pub fn init(&self, device: &Device) -> PromptEncoder {
        let d = self.hidden_size;
        let c = self.mask_input_channels;
        let conv = |c_in: usize, c_out: usize, k: usize| {
            Conv2dConfig::new([c_in, c_out], [k, k])
                .with_stride([k, k])
                .init(device)
        };
        PromptEncoder {
            shared_embedding: PositionalEmbedding::new(d, self.scale, device),
            mask_embed: MaskEmbedding {
                conv1: conv(1, c / 4, 2),
                conv2: conv(c / 4, c, 2),
                conv3: conv(c, d, 1),
                layer_norm1: layer_norm(c / 4, self.layer_norm_eps, device),
                layer_norm2: layer_norm(c, self.layer_norm_eps, device),
                act: self.hidden_act,
            },
            no_mask_embed: EmbeddingConfig::new(1, d).init(device),
            point_embed: EmbeddingConfig::new(self.num_point_embeddings, d).init(device),
            not_a_point_embed: EmbeddingConfig::new(1, d).init(device),
            input_image_size: self.image_size,
            grid: self.grid(),
        }
    }
}

impl PromptEncoder {
    /// Pixel coordinates [n, 2] → φ of the pixel centres, [n, D].
    fn encode_pixels(&self, coords: Tensor<2>) -> Tensor<2> {
        let size = self.input_image_size as f32;
        self.shared_embedding.forward((coords + 0.5) / size)
    }

    /// Row `i` of `point_embed`: [1, D].
    fn point_row(&self, i: usize) -> Tensor<2> {
        self.point_embed.weight.val().narrow(0, i, 1)
    }

    /// Boxes [b, nb, 4] as (x0, y0, x1, y1) in input pixels → sparse tokens [b, nb, 3, D].
    pub fn embed_boxes(&self, boxes: Tensor<3>) -> Tensor<4> {
        let [b, nb, _] = boxes.dims();
        // [b, nb, 4] → [b·nb·2, 2]: the two corners of every box
        let corners = self.encode_pixels(boxes.reshape([b * nb * 2, 2]));
        let d = corners.dims()[1];
        // [b·nb·2, D] → [b·nb, 2, D]
        let corners = corners.reshape([b * nb, 2, d]);
        let offsets = Tensor::cat(vec![self.point_row(2), self.point_row(3)], 0).unsqueeze::<3>();
        let pad = self
            .not_a_point_embed
            .weight
            .val()
            .unsqueeze::<3>()
            .expand([b * nb, 1, d]);
        Tensor::cat(vec![corners + offsets, pad], 1).reshape([b, nb, 3, d])
    }

    /// Points → sparse tokens [b, nb, np (+1 padding point when `pad`), D].
    pub fn embed_points(&self, points: &PointPrompt, pad: bool) -> Tensor<4> {
        let [b, nb, np, _] = points.coords.dims();
        let device = points.coords.device();
        let (coords, labels, n) = if pad {
            (
                Tensor::cat(
                    vec![points.coords.clone(), Tensor::zeros([b, nb, 1, 2], &device)],
                    2,
                ),
                Tensor::cat(
                    vec![
                        points.labels.clone(),
                        Tensor::<3, Int>::ones([b, nb, 1], &device).neg(),
                    ],
                    2,
                ),
                np + 1,
            )
        } else {
            (points.coords.clone(), points.labels.clone(), np)
        };
        let encoded = self.encode_pixels(coords.reshape([b * nb * n, 2]));
        let d = encoded.dims()[1];
        let labels = labels.reshape([b * nb * n, 1]);
        // padding points (−1) become `not_a_point_embed`, ignored points (−10) zeros
        let not_a_point = self.not_a_point_embed.weight.val().expand([b * nb * n, d]);
        let encoded = encoded.mask_where(
            labels.clone().equal_elem(-1).expand([b * nb * n, d]),
            not_a_point,
        );
        let encoded =
            encoded.mask_fill(labels.clone().equal_elem(-10).expand([b * nb * n, d]), 0.0);
        // labels ≥ 0 add their row of `point_embed`
        let rows = labels.clone().clamp_min(0).reshape([b * nb * n]);
        let offsets = self.point_embed.weight.val().select(0, rows);
        let keep = labels.greater_equal_elem(0).float();
        (encoded + offsets * keep).reshape([b, nb, n, d])
    }

    /// Sparse tokens [b, nb, n, D] (points first, then the box tokens) and the dense embedding
    /// [b, D, g, g]; `masks` [b, 1, 4g, 4g] replaces `no_mask_embed`. With neither points nor
    /// boxes, one padding point per image is used (as HF does).
    pub fn forward(
        &self,
        points: Option<&PointPrompt>,
        boxes: Option<Tensor<3>>,
        masks: Option<Tensor<4>>,
        batch: usize,
        device: &Device,
    ) -> (Tensor<4>, Tensor<4>) {
        let mut sparse = Vec::new();
        if let Some(points) = points {
            sparse.push(self.embed_points(points, boxes.is_none()));
        }
        if let Some(boxes) = boxes {
            sparse.push(self.embed_boxes(boxes));
        }
        if sparse.is_empty() {
            let empty = PointPrompt {
                coords: Tensor::zeros([batch, 1, 1, 2], device),
                labels: Tensor::<3, Int>::ones([batch, 1, 1], device).neg(),
            };
            // HF pads this padding point once more, as for any point prompt without a box
            sparse.push(self.embed_points(&empty, true));
        }
        let sparse = Tensor::cat(sparse, 2);
        let dense = match masks {
            Some(masks) => self.mask_embed.forward(masks),
            None => {
                let d = self.no_mask_embed.weight.dims()[1];
                let g = self.grid;
                self.no_mask_embed
                    .weight
                    .val()
                    .reshape([1, d, 1, 1])
                    .expand([batch, d, g, g])
            }
        };
        (sparse, dense)
    }
}
