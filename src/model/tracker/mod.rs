//! SAM3's interactive head: the SAM 2 style box/point prompt decoder (HF `Sam3TrackerModel`;
//! official `sam1_task_predictor.py` on `sam3_tracker_base.py`), spec §11.
//!
//! It runs on the ViT output the detector already computed ([`Sam3::encode_backbone`]): one
//! backbone pass feeds both heads. Flow: backbone [b, C, g, g] → [`Sam3Tracker::image_features`]
//! (own FPN neck, `conv_s0`/`conv_s1` high-resolution path; cacheable) → [`Sam3Tracker::predict`]
//! or [`Sam3Tracker::segment_box`] per prompt.
//!
//! Where transformers departs from the original, this module follows transformers (the fixtures
//! are made with it):
//! - `no_memory_embedding` is added to the *last* neck level (the 0.5× one), which is then
//!   dropped; so it changes nothing, and the image embedding is neck level 2 as is. The original
//!   adds it to level 2. The parameter is loaded (the checkpoint has it) but unused, and the
//!   0.5× level is not computed outside the parity check.
//! - A box is encoded as two corner tokens plus one `not_a_point_embed` padding token.
//! - The grid PE uses `shared_image_embedding`, a second copy of the prompt encoder's Gaussian
//!   matrix (equal values in the released checkpoint; the fixtures' random copies differ, and
//!   each is used where HF uses it).
//! - Each two-way block's MLP has `num_hidden_layers` Linears (2: no hidden layer), ReLU.
//! - Single-mask mode (`TrackerMaskDecoder::select_single`) keeps mask 0 only when its stability
//!   (area of logits > δ / area of logits > −δ, 1 when the latter is empty) is ≥ the threshold,
//!   else takes the candidate with the highest predicted IoU (first one on ties).
//! - With no prompt at all, the padding point gets padded again: two `not_a_point` tokens.
//!
//! [`Sam3::encode_backbone`]: crate::model::Sam3::encode_backbone

pub mod config;
pub mod mask_decoder;
pub mod prompt_encoder;
pub mod two_way;
pub mod weights;

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};

use super::config::VisionConfig;
use super::error::ModelError;
use super::neck::Neck;

pub use config::{Sam3TrackerConfig, TrackerMaskDecoderConfig, TrackerPromptEncoderConfig};
pub use mask_decoder::{DecoderOutput, TrackerMaskDecoder};
pub use prompt_encoder::{PointPrompt, PositionalEmbedding, PromptEncoder};

/// HF `Sam3TrackerModel.vision_encoder` without the backbone (shared with the detector).
#[derive(Module, Debug)]
pub struct TrackerVision {
    /// The tracker's own FPN neck (`tracker_neck.*` in the hub checkpoint).
    pub neck: Neck,
}

/// HF `Sam3TrackerModel` minus the ViT. Field names are the checkpoint's keys.
#[derive(Module, Debug)]
pub struct Sam3Tracker {
    pub vision_encoder: TrackerVision,
    /// Random-Fourier encoding of the image grid (same values as the prompt encoder's).
    pub shared_image_embedding: PositionalEmbedding,
    pub prompt_encoder: PromptEncoder,
    pub mask_decoder: TrackerMaskDecoder,
    /// [1, 1, D]: loaded, unused (see the module doc).
    pub no_memory_embedding: Param<Tensor<3>>,
    /// Input side S in pixels.
    pub image_size: usize,
    /// Backbone width C the neck expects.
    pub backbone_width: usize,
}

/// Per-image tracker features; independent of the prompt.
#[derive(Debug, Clone)]
pub struct TrackerFeatures {
    /// Image embedding [b, D, g, g]: tracker neck level 2.
    pub image: Tensor<4>,
    /// `conv_s0(level 0)` [b, D/8, 4g, 4g].
    pub s0: Tensor<4>,
    /// `conv_s1(level 1)` [b, D/4, 2g, 2g].
    pub s1: Tensor<4>,
    /// Positional encoding of the grid [1, D, g, g].
    pub pos: Tensor<4>,
}

impl TrackerFeatures {
    /// Batch size b.
    pub fn batch(&self) -> usize {
        self.image.dims()[0]
    }
}

/// A tracker prompt for every image of a feature batch.
#[derive(Debug, Clone, Default)]
pub struct TrackerPrompt {
    /// [b, nb, 4] boxes (x0, y0, x1, y1) in pixels of the S×S model input.
    pub boxes: Option<Tensor<3>>,
    pub points: Option<PointPrompt>,
    /// [b, 1, 4g, 4g] mask logits of a previous prediction.
    pub masks: Option<Tensor<4>>,
}

/// Tracker outputs for B = b·nb (image, prompt) pairs, with the prompt encoder's tokens.
#[derive(Debug, Clone)]
pub struct TrackerOutput {
    /// [b, nb, n, D] sparse prompt tokens.
    pub sparse: Tensor<4>,
    /// [b, D, g, g] dense prompt embedding.
    pub dense: Tensor<4>,
    pub decoder: DecoderOutput,
    /// Images b and prompts per image nb.
    pub batch: [usize; 2],
}

impl TrackerOutput {
    /// Multimask output (masks 1…): ([b, nb, 3, 4g, 4g], [b, nb, 3]).
    pub fn multimask(&self) -> (Tensor<5>, Tensor<3>) {
        let [b, nb] = self.batch;
        let [_, n, h, w] = self.decoder.masks.dims();
        let masks = self.decoder.masks.clone().narrow(1, 1, n - 1);
        let iou = self.decoder.iou.clone().narrow(1, 1, n - 1);
        (
            masks.reshape([b, nb, n - 1, h, w]),
            iou.reshape([b, nb, n - 1]),
        )
    }

    /// Object-score logits [b, nb, 1].
    pub fn object_score_logits(&self) -> Tensor<3> {
        let [b, nb] = self.batch;
        self.decoder.object_score_logits.clone().reshape([b, nb, 1])
    }
}

/// The result of one box on one image.
#[derive(Debug, Clone)]
pub struct BoxSegmentation {
    /// Logits [4g, 4g] of the candidate with the highest predicted IoU.
    pub mask: Tensor<2>,
    /// Its predicted IoU.
    pub iou: f32,
    /// Index of that candidate in `candidates`.
    pub best: usize,
    /// All candidate logits [3, 4g, 4g] (masks 1–3 of the decoder).
    pub candidates: Tensor<3>,
    /// Predicted IoU of each candidate.
    pub candidate_iou: Vec<f32>,
    /// Object-score logit (> 0: the model thinks an object is there).
    pub object_score_logit: f32,
}

impl Sam3TrackerConfig {
    /// Builds the tracker with placeholder weights. Call `validate` first.
    pub fn init(&self, device: &Device) -> Sam3Tracker {
        let d = self.vision_config.fpn_hidden_size;
        let prompt = &self.prompt_encoder_config;
        Sam3Tracker {
            vision_encoder: TrackerVision {
                neck: self.vision_config.init_neck(device),
            },
            shared_image_embedding: PositionalEmbedding::new(d, prompt.scale, device),
            prompt_encoder: prompt.init(device),
            mask_decoder: self.mask_decoder_config.init(device),
            no_memory_embedding: Param::from_tensor(Tensor::zeros([1, 1, d], device)),
            image_size: prompt.image_size,
            backbone_width: self.vision_config.backbone_config.hidden_size,
        }
    }

    /// Whether the tracker can run on the backbone of a detector with `vision` config.
    pub fn check_backbone(&self, vision: &VisionConfig) -> Result<(), ModelError> {
        let ours = &self.vision_config.backbone_config;
        let theirs = &vision.backbone_config;
        if ours.hidden_size != theirs.hidden_size
            || ours.image_size != theirs.image_size
            || ours.patch_size != theirs.patch_size
        {
            return Err(ModelError::InvalidConfig {
                reason: format!(
                    "tracker expects a backbone of width {} at {}/{} px, the detector's is {} at {}/{}",
                    ours.hidden_size,
                    ours.image_size,
                    ours.patch_size,
                    theirs.hidden_size,
                    theirs.image_size,
                    theirs.patch_size
                ),
            });
        }
        Ok(())
    }
}

impl Sam3Tracker {
    /// Every tracker neck level from backbone tokens [b, C, g, g], finest first (4 levels;
    /// the 0.5× one is only used by the parity check).
    pub fn neck_levels(&self, backbone: Tensor<4>) -> Vec<Tensor<4>> {
        self.vision_encoder.neck.forward(backbone)
    }

    /// Backbone tokens [b, C, g, g] (see `Sam3::encode_backbone`) → tracker features. Runs the
    /// first three neck levels only and detaches the result.
    pub fn image_features(&self, backbone: Tensor<4>) -> Result<TrackerFeatures, ModelError> {
        let [_, c, _, _] = backbone.dims();
        if c != self.backbone_width {
            return Err(ModelError::InvalidInput {
                reason: format!(
                    "backbone features have {c} channels, the tracker neck expects {}",
                    self.backbone_width
                ),
            });
        }
        let _stage = tracing::debug_span!("tracker_neck").entered();
        let layers = &self.vision_encoder.neck.fpn_layers;
        let (Some(l0), Some(l1), Some(l2)) = (layers.first(), layers.get(1), layers.get(2)) else {
            return Err(ModelError::InvalidInput {
                reason: "tracker neck has fewer than 3 levels".to_owned(),
            });
        };
        let levels = [
            l0.forward(backbone.clone()),
            l1.forward(backbone.clone()),
            l2.forward(backbone),
        ];
        Ok(self.features_from_levels(levels.map(Tensor::detach)))
    }

    /// Neck levels 0–2 → tracker features (`conv_s0`/`conv_s1` applied, grid PE computed).
    pub fn features_from_levels(&self, levels: [Tensor<4>; 3]) -> TrackerFeatures {
        let [l0, l1, l2] = levels;
        let [_, _, g_h, g_w] = l2.dims();
        let pos = self.shared_image_embedding.grid(g_h, g_w, &l2.device());
        TrackerFeatures {
            s0: self.mask_decoder.conv_s0.forward(l0),
            s1: self.mask_decoder.conv_s1.forward(l1),
            image: l2,
            pos,
        }
    }

    /// Runs the prompt encoder and the mask decoder on cached features.
    pub fn predict(
        &self,
        features: &TrackerFeatures,
        prompt: &TrackerPrompt,
    ) -> Result<TrackerOutput, ModelError> {
        self.check_prompt(features, prompt)?;
        let _stage = tracing::debug_span!("tracker_prompt_and_mask_decoder").entered();
        let b = features.batch();
        let device = features.image.device();
        let (sparse, dense) = self.prompt_encoder.forward(
            prompt.points.as_ref(),
            prompt.boxes.clone(),
            prompt.masks.clone(),
            b,
            &device,
        );
        let nb = sparse.dims()[1];
        let decoder = self.mask_decoder.forward(
            features.image.clone(),
            features.pos.clone(),
            sparse.clone(),
            dense.clone(),
            features.s0.clone(),
            features.s1.clone(),
        );
        Ok(TrackerOutput {
            sparse,
            dense,
            decoder,
            batch: [b, nb],
        })
    }

    /// One box (x0, y0, x1, y1) in pixels of the S×S model input on the single image of
    /// `features` → the candidate with the highest predicted IoU, plus all three.
    pub fn segment_box(
        &self,
        features: &TrackerFeatures,
        box_xyxy: [f32; 4],
    ) -> Result<BoxSegmentation, ModelError> {
        let mut all = self.segment_boxes(features, &[box_xyxy])?;
        all.pop().ok_or_else(|| ModelError::InvalidInput {
            reason: "the tracker returned no mask".to_owned(),
        })
    }

    /// Several boxes on the single image of `features`, decoded together (one batch of
    /// `boxes.len()` prompts) → one [`BoxSegmentation`] per box, in order. This is what a
    /// box-prompted consistency mask (HUE) needs for a concept's predicted boxes.
    pub fn segment_boxes(
        &self,
        features: &TrackerFeatures,
        boxes: &[[f32; 4]],
    ) -> Result<Vec<BoxSegmentation>, ModelError> {
        let invalid = |reason: String| Err(ModelError::InvalidInput { reason });
        if features.batch() != 1 {
            return invalid(format!(
                "segment_box takes features of one image, got {}",
                features.batch()
            ));
        }
        if boxes.is_empty() {
            return Ok(Vec::new());
        }
        for &[x0, y0, x1, y1] in boxes {
            if [x0, y0, x1, y1].iter().any(|v| !v.is_finite()) || x1 < x0 || y1 < y0 {
                return invalid(format!(
                    "box {:?} must be finite with x0 ≤ x1 and y0 ≤ y1",
                    [x0, y0, x1, y1]
                ));
            }
        }
        let nb = boxes.len();
        let device = features.image.device();
        let flat: Vec<f32> = boxes.iter().flatten().copied().collect();
        let boxes = Tensor::<3>::from_data(TensorData::new(flat, [1, nb, 4]), &device);
        let out = self.predict(
            features,
            &TrackerPrompt {
                boxes: Some(boxes),
                ..TrackerPrompt::default()
            },
        )?;
        let (masks, iou) = out.multimask();
        let [_, _, n, h, w] = masks.dims();
        let all_iou = read_f32(iou)?;
        let objects = read_f32(out.object_score_logits())?;
        let masks = masks.reshape([nb, n, h, w]);
        (0..nb)
            .map(|k| {
                let candidate_iou: Vec<f32> =
                    all_iou.get(k * n..(k + 1) * n).unwrap_or_default().to_vec();
                let best = candidate_iou
                    .iter()
                    .enumerate()
                    .fold(
                        (0, f32::NEG_INFINITY),
                        |acc, (i, &v)| {
                            if v > acc.1 { (i, v) } else { acc }
                        },
                    )
                    .0;
                let candidates = masks.clone().narrow(0, k, 1).reshape([n, h, w]);
                Ok(BoxSegmentation {
                    mask: candidates.clone().narrow(0, best, 1).reshape([h, w]),
                    iou: candidate_iou.get(best).copied().unwrap_or(f32::NAN),
                    best,
                    candidates,
                    candidate_iou,
                    object_score_logit: objects.get(k).copied().unwrap_or(f32::NAN),
                })
            })
            .collect()
    }

    fn check_prompt(
        &self,
        features: &TrackerFeatures,
        prompt: &TrackerPrompt,
    ) -> Result<(), ModelError> {
        let b = features.batch();
        let d = features.image.dims()[1];
        let g = self.prompt_encoder.grid;
        let invalid = |reason: String| Err(ModelError::InvalidInput { reason });
        let [_, _, g_h, g_w] = features.image.dims();
        if g_h != g || g_w != g || features.s0.dims()[0] != b || features.s1.dims()[0] != b {
            return invalid(format!(
                "tracker features {:?} do not fit the {g}×{g} grid of the model",
                features.image.dims()
            ));
        }
        let mut per_image = None;
        if let Some(boxes) = &prompt.boxes {
            let [bb, nb, four] = boxes.dims();
            if bb != b || four != 4 {
                return invalid(format!("boxes {:?} for {b} images", boxes.dims()));
            }
            per_image = Some(nb);
        }
        if let Some(points) = &prompt.points {
            let [pb, nb, np, two] = points.coords.dims();
            if pb != b || two != 2 || points.labels.dims() != [pb, nb, np] {
                return invalid(format!(
                    "points {:?} / labels {:?} for {b} images",
                    points.coords.dims(),
                    points.labels.dims()
                ));
            }
            if per_image.is_some_and(|n| n != nb) {
                return invalid("as many point groups as boxes are needed per image".to_owned());
            }
        }
        if let Some(masks) = &prompt.masks {
            let side = 4 * g;
            if masks.dims() != [b, 1, side, side] {
                return invalid(format!(
                    "mask prompt {:?}, expected [{b}, 1, {side}, {side}]",
                    masks.dims()
                ));
            }
        }
        if d != self.prompt_encoder.no_mask_embed.weight.dims()[1] {
            return invalid(format!("tracker features of width {d}"));
        }
        Ok(())
    }
}

/// A small tensor's values on the host.
fn read_f32<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, ModelError> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| ModelError::InvalidInput {
            reason: format!("reading tracker output: {e}"),
        })
}
