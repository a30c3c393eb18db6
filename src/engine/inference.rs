//! Headless model runs for the command line: the reference-fixture parity check and
//! text-prompted segmentation of images. What leaves this module is plain data (numbers, masks
//! as flags); the model, its tensors and the device stay here.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};

use super::device::{DeviceError, DevicePlan, open};
use super::error::EngineError;
use super::weights::{CHECKPOINT_FILE, inspect_checkpoint};
use crate::model::parity::{self, Fixtures, ParityError};
use crate::model::postprocess::instances;
use crate::model::preprocess::{RgbImage, pixels_tensor};
use crate::model::tokenizer::ClipTokenizer;
use crate::model::{ModelError, Prompt, Sam3, Sam3Config, TextPrompt, WeightPrecision};

pub use crate::model::parity::{Comparison, DEFAULT_TOLERANCE};

/// Failures of a headless run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InferenceError {
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The weights file is missing, truncated or not a checkpoint.
    #[error(transparent)]
    Checkpoint(#[from] EngineError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Parity(#[from] ParityError),
    /// The tokenizer produced an id the model's text embedding does not have.
    #[error(
        "prompt {text:?} gives token id {id}, outside the model's text vocabulary of {vocab} \
         (tokenizer: {tokenizer})"
    )]
    TokenOutOfVocabulary {
        text: String,
        id: i64,
        vocab: usize,
        tokenizer: String,
    },
    #[error("cannot read image {path}")]
    ReadImage {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
}

/// The parity stages named in `only` (all when empty, names in [`parity::STAGES`]) of the
/// fixtures in `dir` on the planned device; `progress(stage, comparisons)` after each stage.
pub fn run_parity(
    dir: &Path,
    plan: &DevicePlan,
    only: &[String],
    progress: impl FnMut(&str, &[Comparison]),
) -> Result<Vec<Comparison>, InferenceError> {
    let device = open(plan)?;
    Ok(parity::run_all_with(
        &Fixtures::new(dir),
        &device,
        only,
        progress,
    )?)
}

/// One kept detection, in image pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// Detector query that produced it.
    pub query: usize,
    /// `sigmoid(logit)·sigmoid(presence)`.
    pub score: f32,
    /// (x0, y0, x1, y1) in pixels of the input image.
    pub box_xyxy: [f32; 4],
}

/// The result for one image: the union of the kept masks, and the instances.
#[derive(Debug, Clone)]
pub struct Segmentation {
    pub width: usize,
    pub height: usize,
    /// Row-major foreground flags, `width · height` of them.
    pub mask: Vec<bool>,
    pub instances: Vec<Instance>,
}

/// An encoded text prompt, reusable across images.
#[derive(Debug, Clone)]
pub struct EncodedText {
    prompt: TextPrompt,
}

/// SAM3 loaded for text-prompted segmentation.
#[derive(Debug)]
pub struct Segmenter {
    model: Sam3,
    device: Device,
    tokenizer: ClipTokenizer,
    vocab: usize,
    /// Where the config and the tokenizer came from, for the user.
    pub config_source: String,
    pub tokenizer_source: String,
}

impl Segmenter {
    /// Loads `weights` (a `.safetensors` file or a folder holding `model.safetensors`) with
    /// `config` or the folder's `config.json` (else the full preset), and the folder's
    /// tokenizer files (`tokenizer.json`, or `vocab.json` + `merges.txt`; else the bundled
    /// CLIP vocabulary).
    pub fn load(
        weights: &Path,
        config: Option<&Path>,
        plan: &DevicePlan,
    ) -> Result<Self, InferenceError> {
        let weights = if weights.is_dir() {
            weights.join(CHECKPOINT_FILE)
        } else {
            weights.to_owned()
        };
        // Header check first: a missing, truncated or foreign file fails in milliseconds.
        let not_sam3 = match inspect_checkpoint(&weights) {
            Ok(_) => None,
            // bare `Sam3Model` names (no `detector_model.` prefix) may still load
            Err(err @ EngineError::NotSam3 { .. }) => Some(err),
            Err(err) => return Err(err.into()),
        };
        let folder = weights.parent().unwrap_or(Path::new("."));
        let (config, config_source) = match config {
            Some(path) => (Sam3Config::from_file(path)?, path.display().to_string()),
            None if folder.join("config.json").is_file() => {
                let path = folder.join("config.json");
                (Sam3Config::from_file(&path)?, path.display().to_string())
            }
            None => (Sam3Config::full(), "built-in full preset".to_owned()),
        };
        let context = config.text_config.max_position_embeddings;
        let (tokenizer, tokenizer_source) = folder_tokenizer(folder, context)?;
        let device = open(plan)?;
        let model = match Sam3::load(&config, &weights, WeightPrecision::F32, &device) {
            Ok(model) => model,
            Err(err) => return Err(not_sam3.map_or_else(|| err.into(), Into::into)),
        };
        Ok(Self {
            model,
            device,
            tokenizer,
            vocab: config.text_config.vocab_size,
            config_source,
            tokenizer_source,
        })
    }

    /// Tokenises and encodes `text` once for every image.
    pub fn encode_text(&self, text: &str) -> Result<EncodedText, InferenceError> {
        let tokens = self.tokenizer.tokenize(text);
        let out_of_range = tokens
            .ids
            .iter()
            .find(|id| usize::try_from(**id).map_or(true, |id| id >= self.vocab));
        if let Some(&id) = out_of_range {
            return Err(InferenceError::TokenOutOfVocabulary {
                text: text.to_owned(),
                id,
                vocab: self.vocab,
                tokenizer: self.tokenizer_source.clone(),
            });
        }
        let n = tokens.ids.len();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(tokens.ids, [1, n]), &self.device);
        let flags: Vec<i64> = tokens.valid.iter().map(|v| i64::from(*v)).collect();
        let valid =
            Tensor::<2, Int>::from_data(TensorData::new(flags, [1, n]), &self.device).equal_elem(1);
        Ok(EncodedText {
            prompt: self.model.encode_text(ids, valid)?,
        })
    }

    /// Reads an image file (any format the `image` crate decodes) as RGB and segments it.
    pub fn segment_file(
        &self,
        path: &Path,
        text: &EncodedText,
        threshold: f32,
    ) -> Result<Segmentation, InferenceError> {
        let rgb = image::open(path)
            .map_err(|source| InferenceError::ReadImage {
                path: path.to_owned(),
                source,
            })?
            .to_rgb8();
        let (width, height) = rgb.dimensions();
        let image = RgbImage {
            width: usize::try_from(width).unwrap_or(0),
            height: usize::try_from(height).unwrap_or(0),
            data: rgb.as_raw(),
        };
        self.segment(&image, text, threshold)
    }

    /// Segments one RGB image: instances scoring above `threshold`, masks at image size.
    pub fn segment(
        &self,
        image: &RgbImage<'_>,
        text: &EncodedText,
        threshold: f32,
    ) -> Result<Segmentation, InferenceError> {
        let pixels = pixels_tensor(&[*image], self.model.image_size, &self.device)?;
        let features = self.model.encode_image(pixels)?;
        let prompt = Prompt {
            text: text.prompt.clone(),
            boxes: vec![Vec::new()],
        };
        let det = self.model.decode(&features, &prompt)?;
        let (width, height) = (image.width, image.height);
        let kept = instances(&det, 0, [height, width], threshold)?;
        let mask = match kept.masks {
            // [n, h, w] → any over n → [h, w]
            Some(masks) => masks
                .int()
                .max_dim(0)
                .into_data()
                .convert::<i64>()
                .try_to_vec::<i64>()
                .map_err(|e| ModelError::InvalidInput {
                    reason: format!("reading masks: {e}"),
                })?
                .into_iter()
                .map(|v| v > 0)
                .collect(),
            None => vec![false; width * height],
        };
        let instances = kept
            .queries
            .iter()
            .zip(&kept.scores)
            .zip(&kept.boxes)
            .map(|((&query, &score), &box_xyxy)| Instance {
                query,
                score,
                box_xyxy,
            })
            .collect();
        Ok(Segmentation {
            width,
            height,
            mask,
            instances,
        })
    }
}

/// The checkpoint folder's tokenizer files, else the bundled CLIP vocabulary; with its source.
fn folder_tokenizer(
    folder: &Path,
    context: usize,
) -> Result<(ClipTokenizer, String), InferenceError> {
    let json = folder.join("tokenizer.json");
    let (vocab, merges) = (folder.join("vocab.json"), folder.join("merges.txt"));
    Ok(if json.is_file() {
        (
            ClipTokenizer::from_tokenizer_json(&json, context)?,
            json.display().to_string(),
        )
    } else if vocab.is_file() && merges.is_file() {
        (
            ClipTokenizer::from_vocab_merges(&vocab, &merges, context)?,
            vocab.display().to_string(),
        )
    } else {
        (
            ClipTokenizer::bundled()?.with_context(context)?,
            "bundled CLIP vocabulary".to_owned(),
        )
    })
}
