//! SAM3 loaded on a device ([`Segmenter`]): the engine thread's model handle, and the command
//! line's headless runs (text-prompted segmentation, and box-prompted segmentation with the
//! interactive (tracker) head; one ViT pass per image serves both). What leaves this module is
//! plain data (numbers, masks as flags); the model, its tensors and the device stay here.

use std::path::Path;

use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

use super::device::{DevicePlan, open};
use super::error::EngineError;
use super::weights::{CHECKPOINT_FILE, check_checkpoint, checkpoint_identity};
use crate::model::postprocess::{Instances, instances, mask_at_size};
use crate::model::preprocess::{RgbImage, pixels_tensor};
use crate::model::tokenizer::ClipTokenizer;
use crate::model::tracker::TrackerFeatures;
use crate::model::{
    ModelError, Prompt, Sam3, Sam3Config, Sam3Tracker, Sam3TrackerConfig, TextPrompt,
    WeightPrecision,
};

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

/// The interactive head's result for one box, at image size.
#[derive(Debug, Clone)]
pub struct BoxMask {
    pub width: usize,
    pub height: usize,
    /// The box prompt (x0, y0, x1, y1) in image pixels.
    pub box_xyxy: [f32; 4],
    /// Row-major foreground flags of the best candidate, `width · height` of them.
    pub mask: Vec<bool>,
    /// Predicted IoU of the returned mask (the highest of the three candidates).
    pub iou: f32,
    /// Index (0–2) of the returned candidate.
    pub best: usize,
    /// Predicted IoU of every candidate.
    pub candidate_iou: Vec<f32>,
    /// Object-score logit (> 0: an object is predicted inside the box).
    pub object_score_logit: f32,
}

/// What one image gave: text-prompted instances and/or the box mask.
#[derive(Debug, Clone)]
pub struct ImageResult {
    pub text: Option<Segmentation>,
    pub boxed: Option<BoxMask>,
}

/// An encoded text prompt, reusable across images.
#[derive(Debug, Clone)]
pub struct EncodedText {
    prompt: TextPrompt,
}

/// SAM3 loaded for text-prompted segmentation.
#[derive(Debug)]
pub struct Segmenter {
    pub(super) model: Sam3,
    pub(super) device: Device,
    tokenizer: ClipTokenizer,
    vocab: usize,
    /// Identity of the loaded checkpoint (see `concept::file::checkpoint_id`).
    pub(super) checkpoint: String,
    config: Sam3Config,
    /// The interactive head, once [`Segmenter::load_tracker`] succeeded.
    tracker: Option<Sam3Tracker>,
    /// Where the config and the tokenizer came from, for the user.
    pub config_source: String,
    pub tokenizer_source: String,
    /// Where the tracker's weights and config came from.
    pub tracker_source: Option<String>,
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
    ) -> Result<Self, EngineError> {
        Self::load_with_precision(weights, config, plan, WeightPrecision::F32)
    }

    /// [`Segmenter::load`] with the weights held in `precision` on the device (f16 halves
    /// their memory; activations stay f32).
    pub fn load_with_precision(
        weights: &Path,
        config: Option<&Path>,
        plan: &DevicePlan,
        precision: WeightPrecision,
    ) -> Result<Self, EngineError> {
        let weights = if weights.is_dir() {
            weights.join(CHECKPOINT_FILE)
        } else {
            weights.to_owned()
        };
        // Header check first: a missing, truncated or foreign file, or tensors of another size
        // than the config, fail in milliseconds (bare `Sam3Model` names are accepted).
        check_checkpoint(&weights, config)?;
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
        let checkpoint = checkpoint_identity(&weights)?;
        let device = open(plan)?;
        let model = Sam3::load(&config, &weights, precision, &device)?;
        Ok(Self {
            model,
            device,
            tokenizer,
            vocab: config.text_config.vocab_size,
            checkpoint,
            config,
            tracker: None,
            config_source,
            tokenizer_source,
            tracker_source: None,
        })
    }

    /// Loads the interactive head for box prompts. Weights: `weights` itself when it holds
    /// tracker tensors (the hub checkpoint), else `sam3_tracker_model.safetensors` beside it (a
    /// `Sam3TrackerModel` file, as in the fixtures). Config: `config` when it is a tracker or
    /// `sam3_video` config, else the folder's `sam3_tracker_config.json`, else its `config.json`
    /// when that has a tracker section, else the full preset. The backbone is the detector's.
    pub fn load_tracker(
        &mut self,
        weights: &Path,
        config: Option<&Path>,
    ) -> Result<(), EngineError> {
        let weights = if weights.is_dir() {
            weights.join(CHECKPOINT_FILE)
        } else {
            weights.to_owned()
        };
        let folder = weights.parent().unwrap_or(Path::new("."));
        let beside = folder.join(TRACKER_WEIGHTS_FILE);
        let tracker_weights = if Sam3Tracker::file_has_weights(&weights)? {
            weights.clone()
        } else if beside.is_file() {
            beside
        } else {
            return Err(ModelError::NoTrackerWeights { path: weights }.into());
        };
        let is_tracker_config = |path: &Path| {
            std::fs::read_to_string(path)
                .is_ok_and(|text| Sam3TrackerConfig::is_tracker_json(&text))
        };
        let candidates = [
            config.map(Path::to_owned),
            Some(folder.join(TRACKER_CONFIG_FILE)),
            Some(folder.join("config.json")),
        ];
        let found = candidates
            .into_iter()
            .flatten()
            .find(|path| path.is_file() && is_tracker_config(path));
        let (tracker_config, config_source) = match found {
            Some(path) => (
                Sam3TrackerConfig::from_file(&path)?,
                path.display().to_string(),
            ),
            None => (Sam3TrackerConfig::full(), "built-in full preset".to_owned()),
        };
        tracker_config.check_backbone(&self.config.vision_config)?;
        let tracker = Sam3Tracker::load(
            &tracker_config,
            &tracker_weights,
            WeightPrecision::F32,
            &self.device,
        )?;
        self.tracker = Some(tracker);
        self.tracker_source = Some(format!(
            "{} (config: {config_source})",
            tracker_weights.display()
        ));
        Ok(())
    }

    /// Tokenises and encodes `text` once for every image.
    pub fn encode_text(&self, text: &str) -> Result<EncodedText, EngineError> {
        let (ids, valid) = self.token_tensors(text)?;
        Ok(EncodedText {
            prompt: self.model.encode_text(ids, valid)?,
        })
    }

    /// `text` as token ids [1, T] and their validity [1, T] on the model's device; refuses ids
    /// outside the model's vocabulary.
    pub(super) fn token_tensors(
        &self,
        text: &str,
    ) -> Result<(Tensor<2, Int>, Tensor<2, Bool>), EngineError> {
        let tokens = self.tokenizer.tokenize(text);
        let out_of_range = tokens
            .ids
            .iter()
            .find(|id| usize::try_from(**id).map_or(true, |id| id >= self.vocab));
        if let Some(&id) = out_of_range {
            return Err(EngineError::TokenOutOfVocabulary {
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
        Ok((ids, valid))
    }

    /// Identity of the loaded checkpoint, recorded in concept files learned with it.
    /// Estimated peak memory (bytes) of encoding one image: one image-encoder layer's
    /// activations (attention inputs and outputs, MLP), one global attention's score matrix,
    /// and the feature pyramid it produces. Checked against the engine's memory limit before
    /// an encode starts.
    pub fn encode_bytes_estimate(&self) -> u64 {
        let vit = &self.config.vision_config.backbone_config;
        let side = (vit.image_size / vit.patch_size.max(1)) as u64;
        let tokens = side * side;
        let layer = tokens * (4 * vit.hidden_size as u64 + vit.intermediate_size as u64);
        let scores = tokens * tokens * vit.num_attention_heads as u64;
        (layer + scores) * 4 + self.feature_bytes_estimate()
    }

    /// Estimated bytes of one image's cached features (the feature pyramid, f32).
    pub fn feature_bytes_estimate(&self) -> u64 {
        let vision = &self.config.vision_config;
        let channels = vision.fpn_hidden_size as u64;
        let pyramid: u64 = vision
            .backbone_feature_sizes
            .iter()
            .map(|[h, w]| (*h as u64) * (*w as u64))
            .sum();
        channels * pyramid * 4
    }

    pub fn checkpoint_id(&self) -> &str {
        &self.checkpoint
    }

    /// The model's input side S in pixels.
    pub fn image_size(&self) -> usize {
        self.model.image_size
    }

    /// Reads an image file (any format the `image` crate decodes) as RGB and segments it.
    pub fn segment_file(
        &self,
        path: &Path,
        text: &EncodedText,
        threshold: f32,
    ) -> Result<Segmentation, EngineError> {
        let rgb = read_rgb(path)?;
        self.segment(&rgb_view(&rgb), text, threshold)
    }

    /// Segments one RGB image: instances scoring above `threshold`, masks at image size.
    pub fn segment(
        &self,
        image: &RgbImage<'_>,
        text: &EncodedText,
        threshold: f32,
    ) -> Result<Segmentation, EngineError> {
        let result = self.run(image, Some((text, threshold)), None)?;
        result.text.ok_or_else(|| missing_result("text"))
    }

    /// Reads an image file as RGB and segments the object in `box_xyxy` (image pixels).
    pub fn segment_box_file(
        &self,
        path: &Path,
        box_xyxy: [f32; 4],
    ) -> Result<BoxMask, EngineError> {
        let rgb = read_rgb(path)?;
        self.segment_box(&rgb_view(&rgb), box_xyxy)
    }

    /// The object inside `box_xyxy` (x0, y0, x1, y1 in image pixels) with the interactive
    /// head: the best of its three candidates by predicted IoU, at image size. Needs
    /// [`Segmenter::load_tracker`].
    pub fn segment_box(
        &self,
        image: &RgbImage<'_>,
        box_xyxy: [f32; 4],
    ) -> Result<BoxMask, EngineError> {
        let result = self.run(image, None, Some(box_xyxy))?;
        result.boxed.ok_or_else(|| missing_result("box"))
    }

    /// Reads an image file and runs [`Segmenter::run`] on it.
    pub fn run_file(
        &self,
        path: &Path,
        text: Option<(&EncodedText, f32)>,
        box_xyxy: Option<[f32; 4]>,
    ) -> Result<ImageResult, EngineError> {
        let rgb = read_rgb(path)?;
        self.run(&rgb_view(&rgb), text, box_xyxy)
    }

    /// One ViT pass on `image`, then the detector with the text prompt (and its threshold)
    /// and/or the interactive head with the box (image pixels), whichever are given.
    pub fn run(
        &self,
        image: &RgbImage<'_>,
        text: Option<(&EncodedText, f32)>,
        box_xyxy: Option<[f32; 4]>,
    ) -> Result<ImageResult, EngineError> {
        let (width, height) = (image.width, image.height);
        if let Some(b) = box_xyxy {
            check_box(b, width, height)?;
        }
        let tracker = match (box_xyxy, &self.tracker) {
            (Some(_), None) => {
                return Err(ModelError::InvalidInput {
                    reason: "box prompts need the tracker head: call load_tracker first".to_owned(),
                }
                .into());
            }
            (_, tracker) => tracker.as_ref(),
        };
        let pixels = pixels_tensor(&[*image], self.model.image_size, &self.device)?;
        let backbone = self.model.encode_backbone(pixels)?;
        let text = match text {
            Some((text, threshold)) => {
                let features = self.model.features_from_backbone(backbone.clone())?;
                Some(self.segment_features(&features, text, threshold, [height, width])?)
            }
            None => None,
        };
        let boxed = match (box_xyxy, tracker) {
            (Some(b), Some(tracker)) => {
                Some(self.box_mask(tracker, backbone, b, [height, width])?)
            }
            _ => None,
        };
        Ok(ImageResult { text, boxed })
    }

    /// HUE's box-prompted consistency mask taken from the interactive head instead of the
    /// detector: the union of the best mask of every box (x0, y0, x1, y1 in image pixels), at
    /// image size, row-major; all false when `boxes` is empty. Needs
    /// [`Segmenter::load_tracker`].
    pub fn consistency_mask(
        &self,
        image: &RgbImage<'_>,
        boxes: &[[f32; 4]],
    ) -> Result<Vec<bool>, EngineError> {
        let (width, height) = (image.width, image.height);
        let mut union = vec![false; width * height];
        if boxes.is_empty() {
            return Ok(union);
        }
        let Some(tracker) = &self.tracker else {
            return Err(ModelError::InvalidInput {
                reason: "box prompts need the tracker head: call load_tracker first".to_owned(),
            }
            .into());
        };
        let pixels = pixels_tensor(&[*image], self.model.image_size, &self.device)?;
        let features = tracker.image_features(self.model.encode_backbone(pixels)?)?;
        let scaled: Vec<[f32; 4]> = boxes
            .iter()
            .map(|&b| self.to_model_pixels(b, [height, width]))
            .collect();
        for seg in tracker.segment_boxes(&features, &scaled)? {
            let mask = mask_at_size(seg.mask, [height, width])?;
            let flags = host_flags(mask.int().reshape([1, height, width]))?;
            for (u, m) in union.iter_mut().zip(flags) {
                *u |= m;
            }
        }
        Ok(union)
    }

    /// A box in image pixels → pixels of the S×S model input (the resize ignores the aspect
    /// ratio).
    fn to_model_pixels(&self, box_xyxy: [f32; 4], size: [usize; 2]) -> [f32; 4] {
        let [height, width] = size;
        let s = self.model.image_size as f32;
        let (sx, sy) = (s / width as f32, s / height as f32);
        let [x0, y0, x1, y1] = box_xyxy;
        [x0 * sx, y0 * sy, x1 * sx, y1 * sy]
    }

    fn segment_features(
        &self,
        features: &crate::model::ImageFeatures,
        text: &EncodedText,
        threshold: f32,
        size: [usize; 2],
    ) -> Result<Segmentation, EngineError> {
        let prompt = Prompt {
            text: text.prompt.clone(),
            boxes: vec![Vec::new()],
        };
        let det = self.model.decode(features, &prompt)?;
        let [height, width] = size;
        let kept = instances(&det, 0, [height, width], threshold)?;
        let instances = kept_instances(&kept);
        let mask = match kept.masks {
            // [n, h, w] → any over n → [h, w]
            Some(masks) => host_flags(masks.int().max_dim(0))?,
            None => vec![false; width * height],
        };
        Ok(Segmentation {
            width,
            height,
            mask,
            instances,
        })
    }

    fn box_mask(
        &self,
        tracker: &Sam3Tracker,
        backbone: Tensor<4>,
        box_xyxy: [f32; 4],
        size: [usize; 2],
    ) -> Result<BoxMask, EngineError> {
        let features = tracker.image_features(backbone)?;
        self.box_mask_on(tracker, &features, box_xyxy, size)
    }

    fn box_mask_on(
        &self,
        tracker: &Sam3Tracker,
        features: &TrackerFeatures,
        box_xyxy: [f32; 4],
        size: [usize; 2],
    ) -> Result<BoxMask, EngineError> {
        let [height, width] = size;
        let seg = tracker.segment_box(features, self.to_model_pixels(box_xyxy, size))?;
        let mask = mask_at_size(seg.mask, [height, width])?;
        // [h, w] bool → [1, h, w] int for the shared reader
        let mask = host_flags(mask.int().reshape([1, height, width]))?;
        Ok(BoxMask {
            width,
            height,
            box_xyxy,
            mask,
            iou: seg.iou,
            best: seg.best,
            candidate_iou: seg.candidate_iou,
            object_score_logit: seg.object_score_logit,
        })
    }

    /// Whether the interactive head is loaded.
    pub fn has_tracker(&self) -> bool {
        self.tracker.is_some()
    }

    /// The interactive head's features of one image (ViT + tracker neck), to answer several
    /// boxes on it without re-encoding. Needs [`Segmenter::load_tracker`].
    pub fn encode_tracker_image(&self, image: &RgbImage<'_>) -> Result<TrackerImage, EngineError> {
        let tracker = self.tracker.as_ref().ok_or_else(no_tracker)?;
        let pixels = pixels_tensor(&[*image], self.model.image_size, &self.device)?;
        Ok(TrackerImage {
            width: image.width,
            height: image.height,
            features: tracker.image_features(self.model.encode_backbone(pixels)?)?,
        })
    }

    /// The object in `box_xyxy` (image pixels) on an image encoded by
    /// [`Segmenter::encode_tracker_image`].
    pub fn segment_box_on(
        &self,
        image: &TrackerImage,
        box_xyxy: [f32; 4],
    ) -> Result<BoxMask, EngineError> {
        let tracker = self.tracker.as_ref().ok_or_else(no_tracker)?;
        check_box(box_xyxy, image.width, image.height)?;
        self.box_mask_on(
            tracker,
            &image.features,
            box_xyxy,
            [image.height, image.width],
        )
    }
}

/// The interactive head's cached features of one image.
#[derive(Debug, Clone)]
pub struct TrackerImage {
    pub width: usize,
    pub height: usize,
    features: TrackerFeatures,
}

fn no_tracker() -> EngineError {
    ModelError::InvalidInput {
        reason: "box prompts need the tracker head: call load_tracker first".to_owned(),
    }
    .into()
}

/// File name of a `Sam3TrackerModel` checkpoint beside the detector's (fixture layout).
pub const TRACKER_WEIGHTS_FILE: &str = "sam3_tracker_model.safetensors";
/// File name of a `Sam3TrackerConfig` beside the weights (fixture layout).
pub const TRACKER_CONFIG_FILE: &str = "sam3_tracker_config.json";

/// The kept detections as plain data.
pub(super) fn kept_instances(kept: &Instances) -> Vec<Instance> {
    kept.queries
        .iter()
        .zip(&kept.scores)
        .zip(&kept.boxes)
        .map(|((&query, &score), &box_xyxy)| Instance {
            query,
            score,
            box_xyxy,
        })
        .collect()
}

/// A box must be finite, non-empty, and overlap the image.
fn check_box(b: [f32; 4], width: usize, height: usize) -> Result<(), EngineError> {
    let [x0, y0, x1, y1] = b;
    let ok = b.iter().all(|v| v.is_finite())
        && x0 < x1
        && y0 < y1
        && x1 > 0.0
        && y1 > 0.0
        && x0 < width as f32
        && y0 < height as f32;
    if ok {
        Ok(())
    } else {
        Err(ModelError::InvalidInput {
            reason: format!(
                "box ({x0}, {y0}, {x1}, {y1}) must have x0 < x1, y0 < y1 and overlap the \
                 {width}×{height} image"
            ),
        }
        .into())
    }
}

fn missing_result(what: &str) -> EngineError {
    ModelError::InvalidInput {
        reason: format!("no {what} result was produced"),
    }
    .into()
}

/// An integer tensor's values as flags (> 0), row-major.
pub(super) fn host_flags<const D: usize>(t: Tensor<D, Int>) -> Result<Vec<bool>, EngineError> {
    Ok(t.into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .map_err(|e| ModelError::InvalidInput {
            reason: format!("reading masks: {e}"),
        })?
        .into_iter()
        .map(|v| v > 0)
        .collect())
}

fn read_rgb(path: &Path) -> Result<image::RgbImage, EngineError> {
    Ok(image::open(path)
        .map_err(|source| EngineError::ReadImage {
            path: path.to_owned(),
            source,
        })?
        .to_rgb8())
}

fn rgb_view(rgb: &image::RgbImage) -> RgbImage<'_> {
    let (width, height) = rgb.dimensions();
    RgbImage {
        width: usize::try_from(width).unwrap_or(0),
        height: usize::try_from(height).unwrap_or(0),
        data: rgb.as_raw(),
    }
}

/// The checkpoint folder's tokenizer files, else the bundled CLIP vocabulary; with its source.
fn folder_tokenizer(folder: &Path, context: usize) -> Result<(ClipTokenizer, String), EngineError> {
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
