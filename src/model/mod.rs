//! SAM 3 image detector (Meta's "Segment Anything with Concepts") in burn, matching the Hugging
//! Face transformers `Sam3Model` number for number (design: `shared/design/sam3-architecture.md`).
//!
//! Pure tensors in, tensors out: this module uses burn and nothing else of ours. The caller owns
//! the device; nothing here names a backend. Flow: [`preprocess`] → [`Sam3::encode_image`]
//! (cacheable) → [`Sam3::encode_text`] or a learned prompt → [`Sam3::decode`].

pub mod config;
pub mod decoder;
pub mod error;
pub mod fusion_encoder;
pub mod geometry_encoder;
pub mod layers;
pub mod mask_decoder;
pub mod neck;
pub mod postprocess;
pub mod preprocess;
pub mod rope;
pub mod sam3;
pub mod scoring;
pub mod text_encoder;
pub mod tokenizer;
pub mod tracker;
pub mod vit;
pub mod weights;

pub use config::Sam3Config;
pub use error::ModelError;
pub use geometry_encoder::ExemplarBox;
pub use sam3::{DecodeTrace, Detections, ImageFeatures, Prompt, Sam3, TextPrompt};
pub use tracker::{BoxSegmentation, Sam3Tracker, Sam3TrackerConfig, TrackerFeatures};
pub use weights::WeightPrecision;
