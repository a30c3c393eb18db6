//! `Sam3TrackerConfig` and its sub-configs, read from a Hugging Face config (HF transformers
//! `Sam3TrackerConfig`, `Sam3TrackerPromptEncoderConfig`, `Sam3TrackerMaskDecoderConfig`).
//!
//! Field names are the HF names; absent keys take the HF defaults, which are the released
//! `facebook/sam3` tracker ([`Sam3TrackerConfig::full`]). The hub `config.json` is a `sam3_video`
//! config whose `tracker_config` section is read; a bare `sam3_tracker` config (the fixtures'
//! `sam3_tracker_config.json`) is read as is. [`Sam3TrackerConfig::tiny`] is the fixture preset.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::model::config::{Activation, VisionConfig, VitConfig};
use crate::model::error::ModelError;

/// HF `Sam3TrackerPromptEncoderConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrackerPromptEncoderConfig {
    /// Width D of the prompt tokens.
    pub hidden_size: usize,
    /// Input side S in pixels: point and box coordinates are normalised by it.
    pub image_size: usize,
    pub patch_size: usize,
    /// Channels of the mask-input encoder's second conv (its first has a quarter of them).
    pub mask_input_channels: usize,
    /// Rows of `point_embed`: negative point, positive point, box corner 1, box corner 2.
    pub num_point_embeddings: usize,
    pub hidden_act: Activation,
    /// eps of the mask-input encoder's channel LayerNorms.
    pub layer_norm_eps: f64,
    /// Std of the random Fourier matrix at init (the checkpoint stores the matrix itself).
    pub scale: f64,
}

impl Default for TrackerPromptEncoderConfig {
    fn default() -> Self {
        Self {
            hidden_size: 256,
            image_size: 1008,
            patch_size: 14,
            mask_input_channels: 16,
            num_point_embeddings: 4,
            hidden_act: Activation::Gelu,
            layer_norm_eps: 1e-6,
            scale: 1.0,
        }
    }
}

impl TrackerPromptEncoderConfig {
    /// Side g of the image-embedding grid (`image_size / patch_size`).
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size.max(1)
    }
}

/// HF `Sam3TrackerMaskDecoderConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrackerMaskDecoderConfig {
    pub hidden_size: usize,
    /// Activation of the upscaling path (the MLPs use ReLU whatever this says, as HF does).
    pub hidden_act: Activation,
    /// Hidden width of the two-way transformer's MLP.
    pub mlp_dim: usize,
    /// Two-way blocks; HF also uses it as the depth of each block's MLP.
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// Cross-attentions project to `hidden_size / attention_downsample_rate`.
    pub attention_downsample_rate: usize,
    /// Candidate masks besides the single-mask token (3).
    pub num_multimask_outputs: usize,
    pub iou_head_depth: usize,
    pub iou_head_hidden_dim: usize,
    /// Single-mask mode falls back to the best candidate when mask 0 is unstable.
    pub dynamic_multimask_via_stability: bool,
    pub dynamic_multimask_stability_delta: f32,
    pub dynamic_multimask_stability_thresh: f32,
}

impl Default for TrackerMaskDecoderConfig {
    fn default() -> Self {
        Self {
            hidden_size: 256,
            hidden_act: Activation::Gelu,
            mlp_dim: 2048,
            num_hidden_layers: 2,
            num_attention_heads: 8,
            attention_downsample_rate: 2,
            num_multimask_outputs: 3,
            iou_head_depth: 3,
            iou_head_hidden_dim: 256,
            dynamic_multimask_via_stability: true,
            dynamic_multimask_stability_delta: 0.05,
            dynamic_multimask_stability_thresh: 0.98,
        }
    }
}

/// HF `Sam3TrackerConfig`: the interactive (SAM 2 style) head on SAM3's shared ViT.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Sam3TrackerConfig {
    /// Backbone (shared with the detector, not built here) and the tracker's own neck.
    pub vision_config: VisionConfig,
    pub prompt_encoder_config: TrackerPromptEncoderConfig,
    pub mask_decoder_config: TrackerMaskDecoderConfig,
}

impl Default for Sam3TrackerConfig {
    fn default() -> Self {
        Self::full()
    }
}

impl Sam3TrackerConfig {
    /// The released `facebook/sam3` tracker (HF defaults).
    pub fn full() -> Self {
        Self {
            vision_config: VisionConfig::default(),
            prompt_encoder_config: TrackerPromptEncoderConfig::default(),
            mask_decoder_config: TrackerMaskDecoderConfig::default(),
        }
    }

    /// The `tiny` preset of `shared/fixtures/sam3-tiny` (`sam3_tracker_config.json`).
    pub fn tiny() -> Self {
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
            prompt_encoder_config: TrackerPromptEncoderConfig {
                hidden_size: 64,
                image_size: 168,
                ..TrackerPromptEncoderConfig::default()
            },
            mask_decoder_config: TrackerMaskDecoderConfig {
                hidden_size: 64,
                mlp_dim: 128,
                num_attention_heads: 2,
                iou_head_hidden_dim: 64,
                ..TrackerMaskDecoderConfig::default()
            },
        }
    }

    /// Reads an HF config file: a `sam3_tracker` config, or a `sam3_video` one with a
    /// `tracker_config` section; validates it.
    pub fn from_file(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::ReadConfig {
            path: path.to_owned(),
            source,
        })?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| ModelError::ParseConfig {
                path: path.to_owned(),
                source,
            })?;
        Self::from_value(value).map_err(|err| match err {
            TrackerJsonError::Json(source) => ModelError::ParseConfig {
                path: path.to_owned(),
                source,
            },
            TrackerJsonError::Invalid(e) => e,
        })
    }

    /// Parses and validates the JSON text of an HF config.
    pub fn from_json_str(text: &str) -> Result<Self, ModelError> {
        let invalid = |source: serde_json::Error| ModelError::InvalidConfig {
            reason: format!("not a SAM3 tracker config: {source}"),
        };
        let value: serde_json::Value = serde_json::from_str(text).map_err(invalid)?;
        Self::from_value(value).map_err(|err| match err {
            TrackerJsonError::Json(source) => invalid(source),
            TrackerJsonError::Invalid(e) => e,
        })
    }

    /// Whether an HF config JSON describes a tracker: a `sam3_tracker` config or a `sam3_video`
    /// one with a `tracker_config` section. A bare `sam3` (detector) config does not.
    pub fn is_tracker_json(text: &str) -> bool {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
            return false;
        };
        value.get("tracker_config").is_some_and(|v| !v.is_null())
            || value.get("model_type").and_then(|v| v.as_str()) == Some("sam3_tracker")
    }

    fn from_value(mut value: serde_json::Value) -> Result<Self, TrackerJsonError> {
        if let Some(tracker) = value
            .get_mut("tracker_config")
            .map(serde_json::Value::take)
            .filter(|v| !v.is_null())
        {
            value = tracker;
        }
        let config: Self = serde_json::from_value(value).map_err(TrackerJsonError::Json)?;
        config.validate().map_err(TrackerJsonError::Invalid)?;
        Ok(config)
    }

    /// Checks every invariant the tracker modules rely on.
    pub fn validate(&self) -> Result<(), ModelError> {
        let invalid = |reason: String| Err(ModelError::InvalidConfig { reason });
        let vision = &self.vision_config;
        let prompt = &self.prompt_encoder_config;
        let mask = &self.mask_decoder_config;
        let d = vision.fpn_hidden_size;
        if vision.scale_factors.len() < 3 || vision.scale_factors[..3] != [4.0, 2.0, 1.0] {
            return invalid(format!(
                "tracker scale_factors {:?} must start with 4, 2, 1",
                vision.scale_factors
            ));
        }
        if vision
            .scale_factors
            .iter()
            .any(|f| ![4.0, 2.0, 1.0, 0.5].contains(f))
        {
            return invalid(format!(
                "tracker scale_factors {:?}: only 4, 2, 1, 0.5 exist",
                vision.scale_factors
            ));
        }
        if prompt.hidden_size != d || mask.hidden_size != d {
            return invalid(format!(
                "tracker widths differ: neck {d}, prompt encoder {}, mask decoder {}",
                prompt.hidden_size, mask.hidden_size
            ));
        }
        if d == 0 || !d.is_multiple_of(8) {
            return invalid(format!(
                "tracker width {d} must be a positive multiple of 8"
            ));
        }
        if prompt.patch_size == 0
            || prompt.grid() == 0
            || prompt.image_size != vision.backbone_config.image_size
            || prompt.patch_size != vision.backbone_config.patch_size
        {
            return invalid(format!(
                "tracker prompt grid {}/{} differs from the backbone's {}/{}",
                prompt.image_size,
                prompt.patch_size,
                vision.backbone_config.image_size,
                vision.backbone_config.patch_size
            ));
        }
        if prompt.num_point_embeddings < 4 || !prompt.mask_input_channels.is_multiple_of(4) {
            return invalid(
                "tracker prompt encoder: need 4 point embeddings and mask_input_channels % 4 == 0"
                    .to_owned(),
            );
        }
        let rate = mask.attention_downsample_rate;
        let heads = mask.num_attention_heads;
        if heads == 0
            || rate == 0
            || !d.is_multiple_of(heads)
            || !d.is_multiple_of(rate)
            || !(d / rate).is_multiple_of(heads)
        {
            return invalid(format!(
                "tracker mask decoder: width {d} with {heads} heads and downsample rate {rate}"
            ));
        }
        if mask.num_hidden_layers < 2 || mask.iou_head_depth < 2 || mask.num_multimask_outputs == 0
        {
            return invalid(
                "tracker mask decoder: need ≥ 2 layers, IoU head depth ≥ 2 and ≥ 1 multimask output"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

enum TrackerJsonError {
    Json(serde_json::Error),
    Invalid(ModelError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_validate() {
        assert!(Sam3TrackerConfig::full().validate().is_ok());
        assert!(Sam3TrackerConfig::tiny().validate().is_ok());
    }

    #[test]
    fn video_config_uses_tracker_section() {
        let json = r#"{"model_type":"sam3_video","detector_config":{},
            "tracker_config":{"mask_decoder_config":{"num_attention_heads":4}}}"#;
        assert!(Sam3TrackerConfig::is_tracker_json(json));
        let config = Sam3TrackerConfig::from_json_str(json).expect("valid config");
        assert_eq!(config.mask_decoder_config.num_attention_heads, 4);
        assert_eq!(config.prompt_encoder_config.image_size, 1008);
    }

    #[test]
    fn detector_config_is_not_a_tracker_config() {
        assert!(!Sam3TrackerConfig::is_tracker_json(
            r#"{"model_type":"sam3","vision_config":{}}"#
        ));
    }

    #[test]
    fn rejects_mismatched_widths() {
        let json = r#"{"prompt_encoder_config":{"hidden_size":128}}"#;
        assert!(matches!(
            Sam3TrackerConfig::from_json_str(json),
            Err(ModelError::InvalidConfig { .. })
        ));
    }
}
