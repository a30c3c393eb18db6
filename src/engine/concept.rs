//! Concepts on a loaded SAM3: encode images once, learn φ from a few labelled masks on the
//! cached features, and predict with a learned concept plus its hybrid uncertainty (HUE).
//!
//! What leaves this module is plain data (flags, probabilities, boxes, scores, concept files);
//! the image features stay on the model's device inside [`CachedImage`].
//!
//! HUE follows the authors (m2c-method.md §4): the concept's kept boxes (normalised cxcywh)
//! go back to SAM3 as positive box exemplars, all in one prompt with the dummy caption
//! [`VISUAL_CAPTION`] and no concept embedding, on the *same* cached features (the authors
//! re-run the backbone; the result is the same); the consistency mask is the union of that
//! pass's kept masks.

use std::path::Path;

use burn::tensor::activation::sigmoid;
use burn::tensor::{Tensor, TensorData};

use super::error::EngineError;
use super::inference::{Instance, Segmenter, host_flags, kept_instances};
use crate::concept::embedding::phi_tensor;
use crate::concept::file::{FORMAT_VERSION, sha256_hex};
use crate::concept::uncertainty::{HueConfig, HueScore, hue};
use crate::concept::{
    BasePrompt, BinaryMask, ConceptError, ImageTargets, SearchControl, SearchOutcome,
    SearchProblem, search,
};
use crate::model::postprocess::{instance_mask_logits, instances};
use crate::model::preprocess::{Placement, RgbImage, pixels_tensor, placed_chw};
use crate::model::{ExemplarBox, ImageFeatures, ModelError, Prompt, TextPrompt};

/// Concept-file types the app and the command line use through the engine.
pub use crate::concept::file::{ConceptFile, EmbeddingSite, SearchSettings};

/// SAM3's caption for prompts made of box exemplars only.
pub const VISUAL_CAPTION: &str = "visual";

/// An RGB image owned by the caller, row-major, 3 bytes per pixel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRgb {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl OwnedRgb {
    /// Reads any image file the `image` crate decodes, as RGB.
    pub fn open(path: &Path) -> Result<Self, EngineError> {
        let rgb = image::open(path)
            .map_err(|source| EngineError::ReadImage {
                path: path.to_owned(),
                source,
            })?
            .to_rgb8();
        let (w, h) = rgb.dimensions();
        Ok(Self {
            width: usize::try_from(w).unwrap_or(0),
            height: usize::try_from(h).unwrap_or(0),
            data: rgb.into_raw(),
        })
    }

    pub fn view(&self) -> RgbImage<'_> {
        RgbImage {
            width: self.width,
            height: self.height,
            data: &self.data,
        }
    }
}

/// One image's SAM3 features, computed once and reused by every search and prediction.
#[derive(Debug, Clone)]
pub struct CachedImage {
    /// Original size in pixels (predictions come back at this size).
    pub width: usize,
    pub height: usize,
    features: ImageFeatures,
}

impl CachedImage {
    /// Device memory the features take (f32), for cache budgets.
    pub fn feature_bytes(&self) -> usize {
        let elems: usize = self
            .features
            .fpn
            .iter()
            .map(|t| t.dims().iter().product::<usize>())
            .sum();
        elems * std::mem::size_of::<f32>()
    }
}

/// What to learn.
#[derive(Debug, Clone, PartialEq)]
pub struct ConceptSpec {
    /// Human name (e.g. the label class).
    pub name: String,
    /// The base prompt φ is added to, e.g. "A polyp in a colonoscopy image".
    pub base_text: String,
    pub site: EmbeddingSite,
    pub settings: SearchSettings,
}

/// A labelled training image: its features and its binary mask at the image's size.
#[derive(Debug, Clone, Copy)]
pub struct TrainingImage<'a> {
    pub image: &'a CachedImage,
    /// Row-major foreground flags, `width · height`.
    pub mask: &'a [bool],
    /// The pixels, needed only for the resize augmentation (which encodes them anew).
    pub pixels: Option<&'a OwnedRgb>,
}

/// The result of learning: the concept file and the search's trace.
#[derive(Debug, Clone)]
pub struct Learned {
    pub concept: ConceptFile,
    pub outcome: SearchOutcome,
}

/// A concept prepared for prediction: its text tokens (base ⊕ φ) through the frozen text
/// tower once, and the dummy caption for the HUE pass.
#[derive(Debug, Clone)]
pub struct PreparedConcept {
    text: TextPrompt,
    visual: TextPrompt,
    pub file: ConceptFile,
}

/// Options of a prediction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PredictOptions {
    /// Keep instances whose `sigmoid(logit)·sigmoid(presence)` exceeds this (0.5).
    pub threshold: f32,
    pub hue: HueConfig,
}

impl Default for PredictOptions {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            hue: HueConfig::default(),
        }
    }
}

/// A concept's prediction on one image, at the image's size.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub width: usize,
    pub height: usize,
    /// Union of the kept instance masks.
    pub mask: Vec<bool>,
    /// Per pixel, the largest probability over the kept instances (0 where none is kept).
    pub probability: Vec<f32>,
    pub instances: Vec<Instance>,
    /// The box-exemplar pass's mask (`None` when the concept kept no box).
    pub consistency_mask: Option<Vec<bool>>,
    pub hue: HueScore,
}

/// A short, stable id of a concept for provenance: its name and the start of its embedding's
/// SHA-256.
pub fn concept_id(concept: &ConceptFile) -> String {
    let bytes: Vec<u8> = concept.phi.iter().flat_map(|v| v.to_le_bytes()).collect();
    let hash = sha256_hex(&bytes);
    format!("{}:{}", concept.name, hash.get(..12).unwrap_or(&hash))
}

/// SHA-256 of a training mask: its size and its flags, one byte per pixel.
pub fn mask_hash(width: usize, height: usize, mask: &[bool]) -> String {
    let mut bytes = Vec::with_capacity(16 + mask.len());
    bytes.extend((width as u64).to_le_bytes());
    bytes.extend((height as u64).to_le_bytes());
    bytes.extend(mask.iter().map(|&m| u8::from(m)));
    sha256_hex(&bytes)
}

impl Segmenter {
    /// Runs the frozen image encoder once; the features stay on the model's device.
    pub fn encode_image(&self, image: &RgbImage<'_>) -> Result<CachedImage, EngineError> {
        let pixels = pixels_tensor(&[*image], self.model.image_size, &self.device)?;
        Ok(CachedImage {
            width: image.width,
            height: image.height,
            features: self.model.encode_image(pixels)?,
        })
    }

    /// Learns a concept from labelled images by concept search on their cached features,
    /// from `warm_start` (a previous φ of the same shape) or zeros. Progress and cancellation
    /// go through `control`; a cancelled search still returns the φ reached so far.
    pub fn learn(
        &self,
        spec: &ConceptSpec,
        training: &[TrainingImage<'_>],
        warm_start: Option<&[f32]>,
        control: &SearchControl,
    ) -> Result<Learned, EngineError> {
        if training.is_empty() {
            return Err(ConceptError::InvalidTargets {
                reason: "no labelled image to learn from".to_owned(),
            }
            .into());
        }
        let size = self.model.image_size;
        let placements = if spec.settings.resize_augment {
            Some(augment_placements(size, training.len(), spec.settings.seed))
        } else {
            None
        };
        let mut targets = Vec::with_capacity(training.len());
        let mut hashes = Vec::with_capacity(training.len());
        let mut augmented = Vec::new();
        for (k, t) in training.iter().enumerate() {
            let mask = BinaryMask {
                width: t.image.width,
                height: t.image.height,
                data: t.mask,
            };
            let place = placements.as_ref().and_then(|p| p.get(k).copied());
            targets.push(ImageTargets::from_mask_placed(mask, size, place)?);
            hashes.push(mask_hash(t.image.width, t.image.height, t.mask));
            if let Some(place) = place {
                // The augmented input is drawn once per search: one more encoder pass.
                let pixels = t.pixels.ok_or_else(|| ConceptError::InvalidSettings {
                    reason: "resize augmentation needs the training images' pixels".to_owned(),
                })?;
                let values = placed_chw(&pixels.view(), size, place)?;
                let input =
                    Tensor::from_data(TensorData::new(values, [1, 3, size, size]), &self.device);
                augmented.push(self.model.encode_image(input)?);
            }
        }
        let features = if augmented.is_empty() {
            stack_features(training.iter().map(|t| &t.image.features))?
        } else {
            stack_features(augmented.iter())?
        };
        let (ids, valid) = self.token_tensors(&spec.base_text)?;
        let base = BasePrompt::new(&self.model, ids, valid, spec.site)?;
        let problem = SearchProblem::new(&self.model, base, features, &targets, &self.device)?;
        let outcome = search(&problem, &spec.settings, warm_start, control)?;
        let concept = ConceptFile {
            format_version: FORMAT_VERSION,
            name: spec.name.clone(),
            base_text: spec.base_text.clone(),
            site: spec.site,
            shape: outcome.shape,
            phi: outcome.phi.clone(),
            checkpoint: self.checkpoint.clone(),
            training_masks: hashes,
            settings: spec.settings.clone(),
            final_loss: outcome.losses.last().copied(),
        };
        Ok(Learned { concept, outcome })
    }

    /// Prepares a concept for prediction; refuses one learned with another checkpoint.
    pub fn prepare(&self, file: &ConceptFile) -> Result<PreparedConcept, EngineError> {
        if file.checkpoint != self.checkpoint {
            return Err(ConceptError::CheckpointMismatch {
                path: file.name.clone().into(),
                learned: file.checkpoint.clone(),
                loaded: self.checkpoint.clone(),
            }
            .into());
        }
        let (ids, valid) = self.token_tensors(&file.base_text)?;
        let base = BasePrompt::new(&self.model, ids, valid, file.site)?;
        let phi = phi_tensor(&file.phi, file.shape, &self.device)?;
        if base.phi_shape() != file.shape {
            return Err(ConceptError::InvalidEmbedding {
                reason: format!(
                    "concept {:?} has φ of shape {:?} but its base text gives {:?} with this model",
                    file.name,
                    file.shape,
                    base.phi_shape()
                ),
            }
            .into());
        }
        let text = base.text_prompt(&self.model, phi, 1)?;
        let (ids, valid) = self.token_tensors(VISUAL_CAPTION)?;
        let visual = self.model.encode_text(ids, valid)?;
        Ok(PreparedConcept {
            text,
            visual,
            file: file.clone(),
        })
    }

    /// The concept's mask on one image, its probability map, instances and HUE score.
    pub fn predict(
        &self,
        concept: &PreparedConcept,
        image: &CachedImage,
        options: &PredictOptions,
    ) -> Result<Prediction, EngineError> {
        let size = [image.height, image.width];
        let prompt = Prompt {
            text: concept.text.clone(),
            boxes: vec![Vec::new()],
        };
        let det = self.model.decode(&image.features, &prompt)?;
        let kept = instances(&det, 0, size, options.threshold)?;
        let pixels = image.width * image.height;
        let (mask, probability) = match instance_mask_logits(&det, 0, &kept.queries, size)? {
            Some(logits) => {
                let mask = host_flags(logits.clone().greater_elem(0.0).int().max_dim(0))?;
                let prob = host_floats(sigmoid(logits).max_dim(0))?;
                (mask, prob)
            }
            None => (vec![false; pixels], vec![0.0; pixels]),
        };
        let instances = kept_instances(&kept);
        let consistency_mask = if instances.is_empty() {
            None
        } else {
            Some(self.box_exemplar_mask(concept, image, &instances, options.threshold)?)
        };
        let hue = hue(
            &probability,
            &mask,
            consistency_mask.as_deref(),
            &options.hue,
        );
        Ok(Prediction {
            width: image.width,
            height: image.height,
            mask,
            probability,
            instances,
            consistency_mask,
            hue,
        })
    }

    /// SAM3's mask when `instances`' boxes are its only prompt (positive exemplars, caption
    /// "visual"): the union of the kept masks.
    fn box_exemplar_mask(
        &self,
        concept: &PreparedConcept,
        image: &CachedImage,
        kept_by_concept: &[Instance],
        threshold: f32,
    ) -> Result<Vec<bool>, EngineError> {
        let (w, h) = (image.width as f32, image.height as f32);
        let boxes = kept_by_concept
            .iter()
            .map(|i| positive_exemplar(i.box_xyxy, w, h))
            .collect();
        let prompt = Prompt {
            text: concept.visual.clone(),
            boxes: vec![boxes],
        };
        let det = self.model.decode(&image.features, &prompt)?;
        let size = [image.height, image.width];
        let kept = instances(&det, 0, size, threshold)?;
        match kept.masks {
            Some(masks) => host_flags(masks.int().max_dim(0)),
            None => Ok(vec![false; image.width * image.height]),
        }
    }
}

/// The authors' training squares (480, 512, …, 992 of a 1008 input, scaled to `size`) and
/// random offsets that keep each inside the input, one per image, reproducible from `seed`.
pub fn augment_placements(size: usize, images: usize, seed: u64) -> Vec<Placement> {
    let mut state = seed ^ 0xA076_1D64_78BD_642F;
    let mut next = |n: usize| {
        // SplitMix64
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        usize::try_from((z ^ (z >> 31)) % n.max(1) as u64).unwrap_or(0)
    };
    (0..images)
        .map(|_| {
            let full = 480 + 32 * next(17); // 480, 512, …, 992
            let side = ((full * size) as f64 / 1008.0)
                .round()
                .clamp(1.0, size as f64) as usize;
            let x0 = next(size - side + 1);
            let y0 = next(size - side + 1);
            Placement { side, x0, y0 }
        })
        .collect()
}

/// A box in image pixels (x0, y0, x1, y1) of a `w × h` image as a positive exemplar.
fn positive_exemplar(b: [f32; 4], w: f32, h: f32) -> ExemplarBox {
    let [x0, y0, x1, y1] = b;
    ExemplarBox {
        cxcywh: [
            (x0 + x1) / (2.0 * w),
            (y0 + y1) / (2.0 * h),
            (x1 - x0) / w,
            (y1 - y0) / h,
        ],
        positive: true,
    }
}

/// Concatenates cached features along the batch.
fn stack_features<'a>(
    features: impl Iterator<Item = &'a ImageFeatures>,
) -> Result<ImageFeatures, EngineError> {
    let all: Vec<&ImageFeatures> = features.collect();
    let Some(first) = all.first() else {
        return Err(ModelError::InvalidInput {
            reason: "no image features to stack".to_owned(),
        }
        .into());
    };
    let level = |k: usize| Tensor::cat(all.iter().map(|f| f.fpn[k].clone()).collect(), 0);
    Ok(ImageFeatures {
        fpn: [level(0), level(1), level(2)],
        pos: first.pos.clone(),
    })
}

fn host_floats<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, EngineError> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| read_back("probability map", &e))
}

fn read_back(what: &'static str, e: &impl std::fmt::Debug) -> EngineError {
    ConceptError::ReadBack {
        what,
        reason: format!("{e:?}"),
    }
    .into()
}

/// IoU of two (x0, y0, x1, y1) boxes; 0 when either is empty.
pub fn box_iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let area = |r: [f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let inter = [
        a[0].max(b[0]),
        a[1].max(b[1]),
        a[2].min(b[2]),
        a[3].min(b[3]),
    ];
    let i = area(inter);
    let union = area(a) + area(b) - i;
    if union > 0.0 { i / union } else { 0.0 }
}

/// The object a box prompt picked, at the image's size.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxSegmentation {
    pub width: usize,
    pub height: usize,
    pub mask: Vec<bool>,
    /// The model's confidence in the mask (detector score or tracker IoU prediction).
    pub score: f32,
    /// Which head produced it, for the user.
    pub source: &'static str,
}

impl Segmenter {
    /// The one object inside `box_xyxy` (image pixels) with SAM3's detector: the box is a
    /// positive exemplar (caption "visual"), and of the instances that finds, the one whose
    /// box best matches the drawn box (score × box IoU) is returned. `None` when no instance
    /// overlaps the box.
    pub fn segment_box_exemplar(
        &self,
        image: &CachedImage,
        box_xyxy: [f32; 4],
    ) -> Result<Option<BoxSegmentation>, EngineError> {
        let (w, h) = (image.width as f32, image.height as f32);
        let [x0, y0, x1, y1] = box_xyxy;
        let (x0, x1) = (x0.min(x1).clamp(0.0, w), x0.max(x1).clamp(0.0, w));
        let (y0, y1) = (y0.min(y1).clamp(0.0, h), y0.max(y1).clamp(0.0, h));
        if x1 - x0 < 1.0 || y1 - y0 < 1.0 {
            return Err(ModelError::InvalidInput {
                reason: format!("the box {box_xyxy:?} is empty inside the {w}×{h} image"),
            }
            .into());
        }
        let drawn = [x0, y0, x1, y1];
        let (ids, valid) = self.token_tensors(VISUAL_CAPTION)?;
        let visual = self.model.encode_text(ids, valid)?;
        let prompt = Prompt {
            text: visual,
            boxes: vec![vec![positive_exemplar(drawn, w, h)]],
        };
        let det = self.model.decode(&image.features, &prompt)?;
        let size = [image.height, image.width];
        let all = instances(&det, 0, size, f32::NEG_INFINITY)?;
        let best = all
            .queries
            .iter()
            .zip(&all.scores)
            .zip(&all.boxes)
            .map(|((&q, &score), &b)| (q, score, score * box_iou(b, drawn)))
            .filter(|&(_, _, rank)| rank > 0.0)
            .max_by(|a, b| a.2.total_cmp(&b.2));
        let Some((query, score, _)) = best else {
            return Ok(None);
        };
        let Some(logits) = instance_mask_logits(&det, 0, &[query], size)? else {
            return Ok(None);
        };
        let mut mask = host_flags(logits.greater_elem(0.0).int())?;
        // The object is the one in the box: nothing outside it.
        for (i, m) in mask.iter_mut().enumerate() {
            let (x, y) = (
                (i % image.width) as f32 + 0.5,
                (i / image.width) as f32 + 0.5,
            );
            if x < x0 || x > x1 || y < y0 || y > y1 {
                *m = false;
            }
        }
        Ok(Some(BoxSegmentation {
            width: image.width,
            height: image.height,
            mask,
            score,
            source: "SAM3 detector (box exemplar)",
        }))
    }
}

impl Segmenter {
    /// HUE of `prediction` with the consistency mask taken from the interactive head instead
    /// of the detector: the union of the head's best mask for each of the concept's kept boxes
    /// (clipped to the image). `None` without the head (see `Segmenter::load_tracker`). Runs
    /// the image encoder again on `image`.
    pub fn tracker_hue(
        &self,
        image: &RgbImage<'_>,
        prediction: &Prediction,
        cfg: &HueConfig,
    ) -> Result<Option<HueScore>, EngineError> {
        if !self.has_tracker() {
            return Ok(None);
        }
        let (w, h) = (image.width as f32, image.height as f32);
        let boxes: Vec<[f32; 4]> = prediction
            .instances
            .iter()
            .map(|i| {
                let [x0, y0, x1, y1] = i.box_xyxy;
                [
                    x0.clamp(0.0, w),
                    y0.clamp(0.0, h),
                    x1.clamp(0.0, w),
                    y1.clamp(0.0, h),
                ]
            })
            .filter(|b| b[2] - b[0] >= 1.0 && b[3] - b[1] >= 1.0)
            .collect();
        let mask = if boxes.is_empty() {
            None
        } else {
            Some(self.consistency_mask(image, &boxes)?)
        };
        Ok(Some(hue(
            &prediction.probability,
            &prediction.mask,
            mask.as_deref(),
            cfg,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn augmentation_squares_are_the_authors_sizes_and_fit() {
        let full = augment_placements(1008, 200, 7);
        assert_eq!(full, augment_placements(1008, 200, 7));
        assert_ne!(full, augment_placements(1008, 200, 8));
        let sides: std::collections::BTreeSet<usize> = full.iter().map(|p| p.side).collect();
        assert_eq!(sides.first(), Some(&480));
        assert_eq!(sides.last(), Some(&992));
        assert!(sides.iter().all(|s| (s - 480) % 32 == 0), "{sides:?}");
        for p in augment_placements(168, 100, 1) {
            assert!((80..=166).contains(&p.side), "{p:?}");
            assert!(p.x0 + p.side <= 168 && p.y0 + p.side <= 168, "{p:?}");
        }
    }

    #[test]
    fn box_iou_of_hand_made_boxes() {
        assert_eq!(
            box_iou([0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0]),
            1.0 / 7.0
        );
        assert_eq!(box_iou([0.0, 0.0, 1.0, 1.0], [2.0, 2.0, 3.0, 3.0]), 0.0);
        assert_eq!(box_iou([0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0]), 0.0);
    }
}
