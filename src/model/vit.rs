//! SAM3 vision backbone (HF `Sam3ViTModel`, `Sam3ViTEmbeddings`, `Sam3ViTLayer`,
//! `Sam3ViTRoPEAttention`; official `vitdet.py` `ViT`): a Perception-Encoder ViT with windowed
//! attention, a few global blocks and 2-D axial RoPE (paper §3, spec §3).
//!
//! Input pixels [b, 3, S, S] → tokens [b, g, g, C] with g = S / patch. The position table of the
//! pre-training grid p×p is tiled (not interpolated) over g×g. No final norm.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, LayerNorm};
use burn::tensor::{Device, Tensor};

use super::config::VitConfig;
use super::layers::{Mlp, attend, layer_norm, linear, merge_heads, split_heads};
use super::rope::{self, RopeTables};

/// HF `Sam3ViTPatchEmbeddings`: Conv2d, kernel = stride = patch, no bias.
#[derive(Module, Debug)]
pub struct PatchEmbeddings {
    pub projection: Conv2d,
}

/// HF `Sam3ViTEmbeddings`: patch embedding plus the tiled position table.
#[derive(Module, Debug)]
pub struct VitEmbeddings {
    pub patch_embeddings: PatchEmbeddings,
    /// [1, p·p, C] (cls row already dropped by the HF converter).
    pub position_embeddings: Param<Tensor<3>>,
    /// Side p of the pre-training grid.
    pub pretrain_grid: usize,
}

impl VitEmbeddings {
    /// Pixels [b, 3, S, S] → tokens [b, g·g, C].
    pub fn forward(&self, pixels: Tensor<4>) -> Tensor<3> {
        let patches = self.patch_embeddings.projection.forward(pixels);
        let [b, c, gh, gw] = patches.dims();
        // [b, C, gh, gw] → [b, C, gh·gw] → [b, gh·gw, C]
        let tokens = patches.reshape([b, c, gh * gw]).swap_dims(1, 2);
        tokens + self.tiled_positions(gh, gw)
    }

    /// The p×p table repeated over gh×gw: token (r, c) gets entry (r mod p, c mod p). [1, gh·gw, C].
    fn tiled_positions(&self, gh: usize, gw: usize) -> Tensor<3> {
        let table = self.position_embeddings.val();
        let [_, _, c] = table.dims();
        let p = self.pretrain_grid;
        // [1, p·p, C] → [1, p, p, C]
        let grid = table.reshape([1, p, p, c]);
        let tiled = grid.repeat(&[1, gh / p + 1, gw / p + 1, 1]);
        let cropped = tiled.slice([0..1, 0..gh, 0..gw, 0..c]);
        // [1, gh, gw, C] → [1, gh·gw, C]
        cropped.reshape([1, gh * gw, c])
    }
}

/// HF `Sam3ViTRoPEAttention`.
#[derive(Module, Debug)]
pub struct VitAttention {
    pub q_proj: burn::nn::Linear,
    pub k_proj: burn::nn::Linear,
    pub v_proj: burn::nn::Linear,
    pub o_proj: burn::nn::Linear,
    pub num_heads: usize,
}

impl VitAttention {
    /// `x` [n, h, w, C] (n = batch × windows) → [n, h, w, C], RoPE tables for h·w tokens.
    pub fn forward(&self, x: Tensor<4>, tables: &RopeTables) -> Tensor<4> {
        let [n, h, w, c] = x.dims();
        // [n, h, w, C] → [n, h·w, C]
        let tokens = x.reshape([n, h * w, c]);
        let q = split_heads(self.q_proj.forward(tokens.clone()), self.num_heads);
        let k = split_heads(self.k_proj.forward(tokens.clone()), self.num_heads);
        let v = split_heads(self.v_proj.forward(tokens), self.num_heads);
        let q = rope::apply(q, tables);
        let k = rope::apply(k, tables);
        let out = merge_heads(attend(q, k, v, None, None, false));
        // [n, h·w, C] → [n, h, w, C]
        self.o_proj.forward(out).reshape([n, h, w, c])
    }
}

/// HF `Sam3ViTLayer`: pre-norm block, windowed (window > 0) or global attention.
#[derive(Module, Debug)]
pub struct VitLayer {
    pub layer_norm1: LayerNorm,
    pub attention: VitAttention,
    pub layer_norm2: LayerNorm,
    pub mlp: Mlp,
    /// Window side in tokens; 0 = global attention.
    pub window_size: usize,
    pub rope: RopeTables,
}

impl VitLayer {
    /// `x` [b, g, g, C] → [b, g, g, C].
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let normed = self.layer_norm1.forward(x.clone());
        let attended = if self.window_size > 0 {
            let [_, h, w, _] = normed.dims();
            let windows = window_partition(normed, self.window_size);
            let out = self.attention.forward(windows, &self.rope);
            window_unpartition(out, self.window_size, h, w)
        } else {
            self.attention.forward(normed, &self.rope)
        };
        let x = x + attended;
        let mlp_out = self.mlp.forward(self.layer_norm2.forward(x.clone()));
        x + mlp_out
    }
}

/// [b, h, w, C] → [b·nh·nw, ws, ws, C], zero-padding bottom/right to a multiple of ws.
fn window_partition(x: Tensor<4>, ws: usize) -> Tensor<4> {
    let [b, h, w, c] = x.dims();
    let ph = h.div_ceil(ws) * ws;
    let pw = w.div_ceil(ws) * ws;
    let device = x.device();
    let mut x = x;
    if pw > w {
        let pad = Tensor::zeros([b, h, pw - w, c], (&device, x.dtype()));
        x = Tensor::cat(vec![x, pad], 2);
    }
    if ph > h {
        let pad = Tensor::zeros([b, ph - h, pw, c], (&device, x.dtype()));
        x = Tensor::cat(vec![x, pad], 1);
    }
    // [b, nh, ws, nw, ws, C] → [b, nh, nw, ws, ws, C] → [b·nh·nw, ws, ws, C]
    x.reshape([b, ph / ws, ws, pw / ws, ws, c])
        .permute([0, 1, 3, 2, 4, 5])
        .reshape([b * (ph / ws) * (pw / ws), ws, ws, c])
}

/// Inverse of [`window_partition`], cropping the padding: → [b, h, w, C].
fn window_unpartition(windows: Tensor<4>, ws: usize, h: usize, w: usize) -> Tensor<4> {
    let [n, _, _, c] = windows.dims();
    let (nh, nw) = (h.div_ceil(ws), w.div_ceil(ws));
    let b = n / (nh * nw);
    // [b, nh, nw, ws, ws, C] → [b, nh, ws, nw, ws, C] → [b, nh·ws, nw·ws, C]
    let x = windows
        .reshape([b, nh, nw, ws, ws, c])
        .permute([0, 1, 3, 2, 4, 5])
        .reshape([b, nh * ws, nw * ws, c]);
    if nh * ws == h && nw * ws == w {
        x
    } else {
        x.slice([0..b, 0..h, 0..w, 0..c])
    }
}

/// HF `Sam3ViTModel`.
#[derive(Module, Debug)]
pub struct Vit {
    pub embeddings: VitEmbeddings,
    /// `ln_pre`.
    pub layer_norm: LayerNorm,
    pub layers: Vec<VitLayer>,
}

impl VitConfig {
    /// Builds the backbone with placeholder weights (load a checkpoint afterwards).
    pub fn init(&self, device: &Device) -> Vit {
        let c = self.hidden_size;
        let p = self.pretrain_grid();
        let projection =
            Conv2dConfig::new([self.num_channels, c], [self.patch_size, self.patch_size])
                .with_stride([self.patch_size, self.patch_size])
                .with_bias(false)
                .init(device);
        let position_embeddings = Initializer::Zeros.init([1, p * p, c], device);
        let head_dim = c / self.num_attention_heads;
        let grid = self.grid();
        let theta = self.theta() as f32;
        let layers = (0..self.num_hidden_layers)
            .map(|i| {
                let global = self.global_attn_indexes.contains(&i);
                let window_size = if global { 0 } else { self.window_size };
                let side = if global { grid } else { self.window_size };
                let scale = self.window_size as f32 / side as f32;
                VitLayer {
                    layer_norm1: layer_norm(c, self.layer_norm_eps, device),
                    attention: VitAttention {
                        q_proj: linear(c, c, device),
                        k_proj: linear(c, c, device),
                        v_proj: linear(c, c, device),
                        o_proj: linear(c, c, device),
                        num_heads: self.num_attention_heads,
                    },
                    layer_norm2: layer_norm(c, self.layer_norm_eps, device),
                    mlp: Mlp::new(c, self.intermediate_size, self.hidden_act, device),
                    window_size,
                    rope: rope::axial_tables(head_dim, side, side, scale, theta, device),
                }
            })
            .collect();
        Vit {
            embeddings: VitEmbeddings {
                patch_embeddings: PatchEmbeddings { projection },
                position_embeddings,
                pretrain_grid: p,
            },
            layer_norm: layer_norm(c, self.layer_norm_eps, device),
            layers,
        }
    }
}

impl Vit {
    /// Pixels [b, 3, S, S] → backbone output [b, g, g, C] (channels last).
    pub fn forward(&self, pixels: Tensor<4>) -> Tensor<4> {
        let [b, _, s_h, s_w] = pixels.dims();
        let tokens = self.embeddings.forward(pixels);
        let [_, _, c] = tokens.dims();
        let patch = self.patch_size();
        // [b, g·g, C] → [b, g, g, C]
        let mut x = self
            .layer_norm
            .forward(tokens.reshape([b, s_h / patch, s_w / patch, c]));
        for layer in &self.layers {
            x = layer.forward(x);
        }
        x
    }

    fn patch_size(&self) -> usize {
        self.embeddings.patch_embeddings.projection.stride[0]
    }
}
