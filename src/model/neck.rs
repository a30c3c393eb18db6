//! SAM3 detector FPN neck and its sine position encoding (HF `Sam3VisionNeck`, `Sam3FPNLayer`,
//! `Sam3SinePositionEmbedding(normalize=True)`; official `necks.py` `Sam3DualViTDetNeck`,
//! `position_encoding.py` `PositionEmbeddingSine`), spec §4.
//!
//! Backbone tokens [b, C, g, g] → one map per scale factor: ×4 [b, D, 4g, 4g], ×2 [b, D, 2g, 2g],
//! ×1 [b, D, g, g], ×0.5 [b, D, g/2, g/2] (computed by HF, unused by the detector).

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::tensor::activation::gelu;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Tensor, TensorData};

use super::config::VisionConfig;
use super::layers::sine_divisors;

/// HF `Sam3FPNLayer`. `scale_layers.{0,1,2}` of the checkpoint are ConvT / GELU / ConvT; the two
/// convolutions are stored as `scale_layers_0` / `scale_layers_2` (remapped in `weights.rs`).
#[derive(Module, Debug)]
pub struct FpnLayer {
    /// ×4 and ×2: ConvT C → C/2, kernel 2, stride 2.
    pub scale_layers_0: Option<ConvTranspose2d>,
    /// ×4 only: ConvT C/2 → C/4 after a GELU.
    pub scale_layers_2: Option<ConvTranspose2d>,
    /// ×0.5: max-pool 2×2.
    pub max_pool: bool,
    /// 1×1 conv to D.
    pub proj1: Conv2d,
    /// 3×3 conv D → D, padding 1.
    pub proj2: Conv2d,
}

impl FpnLayer {
    fn new(channels: usize, d: usize, scale: f64, device: &Device) -> Self {
        let convt = |c_in: usize, c_out: usize| {
            ConvTranspose2dConfig::new([c_in, c_out], [2, 2])
                .with_stride([2, 2])
                .init(device)
        };
        let (scale_layers_0, scale_layers_2, max_pool, c_mid) = if scale == 4.0 {
            (
                Some(convt(channels, channels / 2)),
                Some(convt(channels / 2, channels / 4)),
                false,
                channels / 4,
            )
        } else if scale == 2.0 {
            (
                Some(convt(channels, channels / 2)),
                None,
                false,
                channels / 2,
            )
        } else if scale == 0.5 {
            (None, None, true, channels)
        } else {
            (None, None, false, channels)
        };
        Self {
            scale_layers_0,
            scale_layers_2,
            max_pool,
            proj1: Conv2dConfig::new([c_mid, d], [1, 1]).init(device),
            proj2: Conv2dConfig::new([d, d], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device),
        }
    }

    /// [b, C, g, g] → [b, D, g·s, g·s].
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut x = x;
        if let Some(conv) = &self.scale_layers_0 {
            x = conv.forward(x);
        }
        if let Some(conv) = &self.scale_layers_2 {
            x = conv.forward(gelu(x));
        }
        if self.max_pool {
            let options = MaxPoolOptions {
                kernel_size: [2, 2],
                stride: [2, 2],
                padding: [(0, 0), (0, 0)],
                dilation: [1, 1],
                ceil_mode: false,
            };
            x = max_pool2d(x, options);
        }
        self.proj2.forward(self.proj1.forward(x))
    }
}

/// HF `Sam3VisionNeck` (without the position encoding, which is input independent: see
/// [`sine_position_encoding`]).
#[derive(Module, Debug)]
pub struct Neck {
    pub fpn_layers: Vec<FpnLayer>,
}

impl VisionConfig {
    /// Builds the detector neck.
    pub fn init_neck(&self, device: &Device) -> Neck {
        let c = self.backbone_config.hidden_size;
        let fpn_layers = self
            .scale_factors
            .iter()
            .map(|&s| FpnLayer::new(c, self.fpn_hidden_size, s, device))
            .collect();
        Neck { fpn_layers }
    }
}

impl Neck {
    /// Backbone output [b, C, g, g] → one map per scale factor, finest first.
    pub fn forward(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        self.fpn_layers
            .iter()
            .map(|layer| layer.forward(x.clone()))
            .collect()
    }
}

/// `PositionEmbeddingSine(num_pos_feats = d/2, normalize = True)` for an h×w map: [1, d, h, w],
/// channels 0..d/2 encode the row, d/2..d the column. Computed on the host in f32 in torch's
/// order of operations.
pub fn sine_position_encoding(d: usize, h: usize, w: usize, device: &Device) -> Tensor<4> {
    const EPS: f32 = 1e-6;
    let half = d / 2;
    let scale = 2.0 * std::f32::consts::PI;
    let divisors = sine_divisors(half);
    let encode = |position: f32, extent: f32, k: usize| {
        let embed = position / (extent + EPS) * scale;
        let angle = embed / divisors[k];
        if k.is_multiple_of(2) {
            angle.sin()
        } else {
            angle.cos()
        }
    };
    let mut values = Vec::with_capacity(d * h * w);
    for k in 0..half {
        for i in 0..h {
            let v = encode((i + 1) as f32, h as f32, k);
            values.extend(std::iter::repeat_n(v, w));
        }
    }
    for k in 0..half {
        for _ in 0..h {
            values.extend((0..w).map(|j| encode((j + 1) as f32, w as f32, k)));
        }
    }
    Tensor::from_data(TensorData::new(values, [1, d, h, w]), device)
}
