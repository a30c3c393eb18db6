//! `Sam3Config` and its sub-configs, read from a Hugging Face `config.json` (HF transformers
//! `Sam3Config`, `Sam3VisionConfig`, `Sam3ViTConfig`, `CLIPTextConfig`, `Sam3GeometryEncoderConfig`,
//! `Sam3DETREncoderConfig`, `Sam3DETRDecoderConfig`, `Sam3MaskDecoderConfig`).
//!
//! Field names are the HF names so serde reads the file directly; unknown keys are ignored and
//! absent keys take the HF defaults, which are the released `facebook/sam3` hyper-parameters
//! ([`Sam3Config::full`]). [`Sam3Config::tiny`] is the preset of `tests/fixtures/sam3-tiny`.
//! The hub file is a `sam3_video` config; its `detector_config` section is the image model.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::ModelError;

/// Activation functions named in HF configs (`hidden_act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// Exact (erf) GELU.
    #[serde(rename = "gelu")]
    Gelu,
    /// CLIP's `x * sigmoid(1.702 x)`.
    #[serde(rename = "quick_gelu")]
    QuickGelu,
    #[serde(rename = "relu")]
    Relu,
}

/// RoPE parameters as transformers ≥ 5 writes them (`rope_parameters`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RopeParameters {
    pub rope_theta: f64,
}

impl Default for RopeParameters {
    fn default() -> Self {
        Self {
            rope_theta: 10_000.0,
        }
    }
}

/// HF `Sam3ViTConfig`: the Perception-Encoder ViT backbone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VitConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_channels: usize,
    /// Input side in pixels (square input).
    pub image_size: usize,
    pub patch_size: usize,
    pub hidden_act: Activation,
    pub layer_norm_eps: f64,
    /// Older configs store the RoPE base here; newer ones in `rope_parameters`.
    pub rope_theta: Option<f64>,
    pub rope_parameters: RopeParameters,
    /// Side of the attention windows, in tokens.
    pub window_size: usize,
    /// Blocks with global (full-grid) attention.
    pub global_attn_indexes: Vec<usize>,
    /// Side in pixels of the pre-training input; fixes the position-table grid.
    pub pretrain_image_size: usize,
}

impl Default for VitConfig {
    fn default() -> Self {
        Self {
            hidden_size: 1024,
            intermediate_size: 4736,
            num_hidden_layers: 32,
            num_attention_heads: 16,
            num_channels: 3,
            image_size: 1008,
            patch_size: 14,
            hidden_act: Activation::Gelu,
            layer_norm_eps: 1e-6,
            rope_theta: None,
            rope_parameters: RopeParameters::default(),
            window_size: 24,
            global_attn_indexes: vec![7, 15, 23, 31],
            pretrain_image_size: 336,
        }
    }
}

impl VitConfig {
    /// RoPE base frequency, wherever the config stored it.
    pub fn theta(&self) -> f64 {
        self.rope_theta.unwrap_or(self.rope_parameters.rope_theta)
    }

    /// Token grid side (`image_size / patch_size`).
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size.max(1)
    }

    /// Position-table grid side (`pretrain_image_size / patch_size`).
    pub fn pretrain_grid(&self) -> usize {
        self.pretrain_image_size / self.patch_size.max(1)
    }
}

/// HF `Sam3VisionConfig`: backbone plus FPN neck.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VisionConfig {
    pub backbone_config: VitConfig,
    pub fpn_hidden_size: usize,
    /// Neck output sides `[h, w]`, finest first (the detector uses these three levels).
    pub backbone_feature_sizes: Vec<[usize; 2]>,
    /// Up/down-sampling factor of each neck branch (4, 2, 1, 0.5).
    pub scale_factors: Vec<f64>,
}

impl Default for VisionConfig {
    fn default() -> Self {
        Self {
            backbone_config: VitConfig::default(),
            fpn_hidden_size: 256,
            backbone_feature_sizes: vec![[288, 288], [144, 144], [72, 72]],
            scale_factors: vec![4.0, 2.0, 1.0, 0.5],
        }
    }
}

/// HF `CLIPTextConfig` as SAM3 configures it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    /// Width of CLIP's own (unused) `text_projection`.
    pub projection_dim: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// Context length T.
    pub max_position_embeddings: usize,
    pub hidden_act: Activation,
    pub layer_norm_eps: f64,
    pub pad_token_id: i64,
    pub bos_token_id: i64,
    pub eos_token_id: i64,
}

impl Default for TextConfig {
    fn default() -> Self {
        Self {
            vocab_size: 49408,
            hidden_size: 1024,
            intermediate_size: 4096,
            projection_dim: 512,
            num_hidden_layers: 24,
            num_attention_heads: 16,
            max_position_embeddings: 32,
            hidden_act: Activation::Gelu,
            layer_norm_eps: 1e-5,
            pad_token_id: 1,
            bos_token_id: 49406,
            eos_token_id: 49407,
        }
    }
}

/// Shared shape of the detector transformers (HF `Sam3GeometryEncoderConfig`,
/// `Sam3DETREncoderConfig`, `Sam3DETRDecoderConfig`). Their LayerNorms use PyTorch's default
/// eps 1e-5 whatever `layer_norm_eps` says (HF builds them without it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DetrConfig {
    pub hidden_size: usize,
    pub num_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: Activation,
    /// Decoder only: number of object queries.
    pub num_queries: usize,
    /// Geometry encoder only: ROI-align output side.
    pub roi_size: usize,
}

impl DetrConfig {
    fn with_layers(num_layers: usize) -> Self {
        Self {
            hidden_size: 256,
            num_layers,
            num_attention_heads: 8,
            intermediate_size: 2048,
            hidden_act: Activation::Relu,
            num_queries: 200,
            roi_size: 7,
        }
    }
}

impl Default for DetrConfig {
    fn default() -> Self {
        Self::with_layers(6)
    }
}

fn default_geometry() -> DetrConfig {
    DetrConfig::with_layers(3)
}

/// HF `Sam3MaskDecoderConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MaskDecoderConfig {
    pub hidden_size: usize,
    /// Conv/GroupNorm stages in the checkpoint; the pixel decoder uses `levels - 1` of them.
    pub num_upsampling_stages: usize,
    pub num_attention_heads: usize,
}

impl Default for MaskDecoderConfig {
    fn default() -> Self {
        Self {
            hidden_size: 256,
            num_upsampling_stages: 3,
            num_attention_heads: 8,
        }
    }
}

/// HF `Sam3Config`: the whole image detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Sam3Config {
    pub vision_config: VisionConfig,
    pub text_config: TextConfig,
    #[serde(default = "default_geometry")]
    pub geometry_encoder_config: DetrConfig,
    pub detr_encoder_config: DetrConfig,
    pub detr_decoder_config: DetrConfig,
    pub mask_decoder_config: MaskDecoderConfig,
}

impl Default for Sam3Config {
    fn default() -> Self {
        Self::full()
    }
}

impl Sam3Config {
    /// The released `facebook/sam3` detector (HF defaults).
    pub fn full() -> Self {
        Self {
            vision_config: VisionConfig::default(),
            text_config: TextConfig::default(),
            geometry_encoder_config: default_geometry(),
            detr_encoder_config: DetrConfig::default(),
            detr_decoder_config: DetrConfig::default(),
            mask_decoder_config: MaskDecoderConfig::default(),
        }
    }

    /// The `tiny` preset of `tests/fixtures/sam3-tiny` (`tests/reference/make_reference.py
    /// --preset tiny`; the same as `shared/fixtures/sam3-tiny`).
    pub fn tiny() -> Self {
        let fusion = DetrConfig {
            hidden_size: 64,
            num_layers: 2,
            num_attention_heads: 4,
            intermediate_size: 128,
            hidden_act: Activation::Relu,
            num_queries: 10,
            roi_size: 7,
        };
        Self {
            vision_config: VisionConfig {
                backbone_config: VitConfig {
                    hidden_size: 96,
                    intermediate_size: 192,
                    num_hidden_layers: 4,
                    num_attention_heads: 2,
                    image_size: 168,
                    pretrain_image_size: 56,
                    window_size: 4,
                    global_attn_indexes: vec![1, 3],
                    ..VitConfig::default()
                },
                fpn_hidden_size: 64,
                backbone_feature_sizes: vec![[48, 48], [24, 24], [12, 12]],
                scale_factors: vec![4.0, 2.0, 1.0, 0.5],
            },
            text_config: TextConfig {
                vocab_size: 512,
                hidden_size: 80,
                intermediate_size: 160,
                projection_dim: 48,
                num_hidden_layers: 2,
                num_attention_heads: 2,
                max_position_embeddings: 16,
                hidden_act: Activation::Gelu,
                layer_norm_eps: 1e-5,
                pad_token_id: 1,
                bos_token_id: 510,
                eos_token_id: 511,
            },
            // `num_queries` is read only by the decoder; the others keep the HF default.
            geometry_encoder_config: DetrConfig {
                num_queries: 200,
                ..fusion.clone()
            },
            detr_encoder_config: DetrConfig {
                num_queries: 200,
                ..fusion.clone()
            },
            detr_decoder_config: fusion,
            mask_decoder_config: MaskDecoderConfig {
                hidden_size: 64,
                num_upsampling_stages: 3,
                num_attention_heads: 4,
            },
        }
    }

    /// Reads an HF `config.json` (a `sam3` config, or a `sam3_video` one with `detector_config`)
    /// and validates it.
    pub fn from_file(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::ReadConfig {
            path: path.to_owned(),
            source,
        })?;
        Self::from_json(&text).map_err(|err| match err {
            ConfigJsonError::Json(source) => ModelError::ParseConfig {
                path: path.to_owned(),
                source,
            },
            ConfigJsonError::Invalid(e) => e,
        })
    }

    /// Parses and validates the JSON text of an HF config.
    pub fn from_json_str(text: &str) -> Result<Self, ModelError> {
        Self::from_json(text).map_err(|err| match err {
            ConfigJsonError::Json(source) => ModelError::InvalidConfig {
                reason: format!("not a SAM3 config.json: {source}"),
            },
            ConfigJsonError::Invalid(e) => e,
        })
    }

    fn from_json(text: &str) -> Result<Self, ConfigJsonError> {
        let mut value: serde_json::Value =
            serde_json::from_str(text).map_err(ConfigJsonError::Json)?;
        if let Some(detector) = value
            .get_mut("detector_config")
            .map(serde_json::Value::take)
        {
            value = detector;
        }
        let config: Self = serde_json::from_value(value).map_err(ConfigJsonError::Json)?;
        config.validate().map_err(ConfigJsonError::Invalid)?;
        Ok(config)
    }

    /// Checks every invariant the modules rely on, so that `init` and the forward passes can
    /// index and reshape without further checks.
    pub fn validate(&self) -> Result<(), ModelError> {
        let invalid = |reason: String| Err(ModelError::InvalidConfig { reason });
        let vit = &self.vision_config.backbone_config;
        if vit.patch_size == 0 || !vit.image_size.is_multiple_of(vit.patch_size) {
            return invalid(format!(
                "image_size {} is not a multiple of patch_size {}",
                vit.image_size, vit.patch_size
            ));
        }
        if vit.pretrain_grid() == 0 || !vit.pretrain_image_size.is_multiple_of(vit.patch_size) {
            return invalid(format!(
                "pretrain_image_size {} is not a positive multiple of patch_size",
                vit.pretrain_image_size
            ));
        }
        check_heads("vision backbone", vit.hidden_size, vit.num_attention_heads)?;
        if !(vit.hidden_size / vit.num_attention_heads).is_multiple_of(4) {
            return invalid("ViT head dimension must be a multiple of 4 for axial RoPE".to_owned());
        }
        if vit.window_size == 0 || !vit.hidden_size.is_multiple_of(4) {
            return invalid(
                "ViT window_size must be positive and hidden_size a multiple of 4".to_owned(),
            );
        }
        if let Some(i) = vit
            .global_attn_indexes
            .iter()
            .find(|&&i| i >= vit.num_hidden_layers)
        {
            return invalid(format!(
                "global attention index {i} ≥ {} layers",
                vit.num_hidden_layers
            ));
        }
        let vision = &self.vision_config;
        let factors = [4.0, 2.0, 1.0, 0.5];
        if vision.scale_factors.len() < 3
            || vision.scale_factors.iter().any(|f| !factors.contains(f))
        {
            return invalid(format!(
                "scale_factors {:?}: need ≥ 3 of 4, 2, 1, 0.5",
                vision.scale_factors
            ));
        }
        if vision.scale_factors[..3] != factors[..3] {
            return invalid(format!(
                "scale_factors {:?} must start with 4, 2, 1",
                vision.scale_factors
            ));
        }
        let text = &self.text_config;
        check_heads("text encoder", text.hidden_size, text.num_attention_heads)?;
        let d = vision.fpn_hidden_size;
        for (name, c) in [
            ("geometry encoder", &self.geometry_encoder_config),
            ("DETR encoder", &self.detr_encoder_config),
            ("DETR decoder", &self.detr_decoder_config),
        ] {
            check_heads(name, c.hidden_size, c.num_attention_heads)?;
            if c.hidden_size != d {
                return invalid(format!(
                    "{name} width {} differs from fpn_hidden_size {d}",
                    c.hidden_size
                ));
            }
            if !c.hidden_size.is_multiple_of(4) {
                return invalid(format!("{name} width must be a multiple of 4"));
            }
        }
        let mask = &self.mask_decoder_config;
        check_heads("mask decoder", mask.hidden_size, mask.num_attention_heads)?;
        if mask.hidden_size != d
            || !mask.hidden_size.is_multiple_of(8)
            || mask.num_upsampling_stages < 2
        {
            return invalid("mask decoder: width must equal fpn_hidden_size, be a multiple of 8 (GroupNorm), with ≥ 2 stages".to_owned());
        }
        if self.geometry_encoder_config.roi_size == 0 || self.detr_decoder_config.num_queries == 0 {
            return invalid("roi_size and num_queries must be positive".to_owned());
        }
        Ok(())
    }
}

enum ConfigJsonError {
    Json(serde_json::Error),
    Invalid(ModelError),
}

fn check_heads(name: &str, width: usize, heads: usize) -> Result<(), ModelError> {
    if heads == 0 || width == 0 || !width.is_multiple_of(heads) {
        return Err(ModelError::InvalidConfig {
            reason: format!("{name}: width {width} is not divisible by {heads} heads"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_validate() {
        assert!(Sam3Config::full().validate().is_ok());
        assert!(Sam3Config::tiny().validate().is_ok());
    }

    #[test]
    fn video_config_uses_detector_section() {
        let json = r#"{"model_type":"sam3_video","detector_config":{"detr_decoder_config":{"num_queries":7}}}"#;
        let config = Sam3Config::from_json_str(json).expect("valid config");
        assert_eq!(config.detr_decoder_config.num_queries, 7);
        assert_eq!(config.geometry_encoder_config.num_layers, 3);
    }

    #[test]
    fn rejects_indivisible_heads() {
        let json = r#"{"text_config":{"hidden_size":100,"num_attention_heads":3}}"#;
        assert!(matches!(
            Sam3Config::from_json_str(json),
            Err(ModelError::InvalidConfig { .. })
        ));
    }
}
