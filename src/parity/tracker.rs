//! Parity stages of the interactive head (scenario C `tracker_box`: HF `Sam3TrackerModel` with
//! two boxes per image, `multimask_output` True and False).

use burn::tensor::{Device, Tensor};

use super::{Comparison, Fixtures, ParityError};
use crate::model::tracker::{Sam3Tracker, Sam3TrackerConfig, TrackerFeatures, TrackerPrompt};
use crate::model::{Sam3, WeightPrecision};

/// The tracker's reference file.
pub const TRACKER_FILE: &str = "tracker_box.safetensors";
/// The tracker's config and weights in a fixture folder.
pub const TRACKER_CONFIG: &str = "sam3_tracker_config.json";
pub const TRACKER_WEIGHTS: &str = "sam3_tracker_model.safetensors";

impl Fixtures {
    /// Whether the folder holds the tracker scenario (config, weights and reference tensors).
    pub fn has_tracker(&self) -> bool {
        [TRACKER_CONFIG, TRACKER_WEIGHTS, TRACKER_FILE]
            .iter()
            .all(|f| self.dir.join(f).is_file())
    }

    /// `sam3_tracker_config.json`.
    pub fn tracker_config(&self) -> Result<Sam3TrackerConfig, ParityError> {
        Ok(Sam3TrackerConfig::from_file(
            &self.dir.join(TRACKER_CONFIG),
        )?)
    }

    /// The fixture tracker (`sam3_tracker_model.safetensors`, f32) on `device`.
    pub fn tracker_model(&self, device: &Device) -> Result<Sam3Tracker, ParityError> {
        let config = self.tracker_config()?;
        let path = self.dir.join(TRACKER_WEIGHTS);
        Ok(Sam3Tracker::load(
            &config,
            &path,
            WeightPrecision::F32,
            device,
        )?)
    }

    /// Reference tracker neck levels 0–2 of scenario C.
    fn tracker_levels(&self, device: &Device) -> Result<[Tensor<4>; 3], ParityError> {
        Ok([
            self.float(TRACKER_FILE, "tracker.fpn0", device)?,
            self.float(TRACKER_FILE, "tracker.fpn1", device)?,
            self.float(TRACKER_FILE, "tracker.fpn2", device)?,
        ])
    }
}

/// Reference backbone tokens [b, C, g, g] (`vision.backbone_output`).
fn reference_backbone(fx: &Fixtures, device: &Device) -> Result<Tensor<4>, ParityError> {
    let tokens = fx.float::<3>("vision.safetensors", "vision.backbone_output", device)?;
    let [b, n, c] = tokens.dims();
    let g = (n as f64).sqrt() as usize;
    // [b, g·g, C] → [b, g, g, C] → [b, C, g, g]
    Ok(tokens.reshape([b, g, g, c]).permute([0, 3, 1, 2]))
}

/// Boxes prompt of scenario C: [b, nb, 4] in pixels of the model input.
fn reference_prompt(fx: &Fixtures, device: &Device) -> Result<TrackerPrompt, ParityError> {
    Ok(TrackerPrompt {
        boxes: Some(fx.float::<3>("inputs.safetensors", "tracker_input_boxes", device)?),
        ..TrackerPrompt::default()
    })
}

/// Tracker neck (all 4 levels) from the reference backbone output; the high-resolution path and
/// grid encoding from the reference neck levels; prompt encoder, two-way transformer and both
/// output modes from the reference features.
pub fn tracker(
    fx: &Fixtures,
    tracker: &Sam3Tracker,
    device: &Device,
) -> Result<Vec<Comparison>, ParityError> {
    let file = TRACKER_FILE;
    let label = |key: &str| format!("tracker_box:{key}");
    let mut out = Vec::new();
    for (i, level) in tracker
        .neck_levels(reference_backbone(fx, device)?)
        .into_iter()
        .enumerate()
    {
        let key = format!("tracker.fpn{i}");
        out.push(fx.compare(&label(&key), level, file, &key)?);
    }
    let features = tracker.features_from_levels(fx.tracker_levels(device)?);
    for (t, key) in [
        (features.s0.clone(), "tracker.image_embeddings0"),
        (features.s1.clone(), "tracker.image_embeddings1"),
        (features.image.clone(), "tracker.image_embeddings2"),
        (features.pos.clone(), "tracker.image_positional_embeddings"),
    ] {
        out.push(fx.compare(&label(key), t, file, key)?);
    }
    let result = tracker.predict(&features, &reference_prompt(fx, device)?)?;
    let [b, nb] = result.batch;
    out.push(fx.compare(
        &label("tracker.sparse_embeddings"),
        result.sparse.clone(),
        file,
        "tracker.sparse_embeddings",
    )?);
    out.push(fx.compare(
        &label("tracker.dense_embeddings"),
        result.dense.clone(),
        file,
        "tracker.dense_embeddings",
    )?);
    let [big, n, d] = result.decoder.tokens.dims();
    out.push(fx.compare(
        &label("tracker.transformer_queries"),
        result.decoder.tokens.clone().reshape([b, nb, n, d]),
        file,
        "tracker.transformer_queries",
    )?);
    let [_, hw, _] = result.decoder.image_tokens.dims();
    out.push(fx.compare(
        &label("tracker.transformer_keys"),
        result.decoder.image_tokens.clone().reshape([big, 1, hw, d]),
        file,
        "tracker.transformer_keys",
    )?);
    out.extend(outputs(fx, tracker, &result, "tracker_box")?);
    Ok(out)
}

/// Both output modes of a prediction against the scenario's outputs.
fn outputs(
    fx: &Fixtures,
    tracker: &Sam3Tracker,
    result: &crate::model::tracker::TrackerOutput,
    scenario: &str,
) -> Result<Vec<Comparison>, ParityError> {
    let file = TRACKER_FILE;
    let label = |key: &str| format!("{scenario}:{key}");
    let [b, nb] = result.batch;
    let (masks, iou) = result.multimask();
    let objects = result.object_score_logits();
    let (single, single_iou) = tracker
        .mask_decoder
        .select_single(result.decoder.masks.clone(), result.decoder.iou.clone());
    let [_, _, h, w] = single.dims();
    Ok(vec![
        fx.compare(
            &label("tracker.multimask.pred_masks"),
            masks,
            file,
            "tracker.multimask.pred_masks",
        )?,
        fx.compare(
            &label("tracker.multimask.iou_scores"),
            iou,
            file,
            "tracker.multimask.iou_scores",
        )?,
        fx.compare(
            &label("tracker.multimask.object_score_logits"),
            objects.clone(),
            file,
            "tracker.multimask.object_score_logits",
        )?,
        fx.compare(
            &label("tracker.single.pred_masks"),
            single.reshape([b, nb, 1, h, w]),
            file,
            "tracker.single.pred_masks",
        )?,
        fx.compare(
            &label("tracker.single.iou_scores"),
            single_iou.reshape([b, nb, 1]),
            file,
            "tracker.single.iou_scores",
        )?,
        fx.compare(
            &label("tracker.single.object_score_logits"),
            objects,
            file,
            "tracker.single.object_score_logits",
        )?,
    ])
}

/// Pixels through the detector's backbone, then the tracker (one ViT pass): scenario C's outputs.
pub fn tracker_end_to_end(
    fx: &Fixtures,
    model: &Sam3,
    tracker: &Sam3Tracker,
    device: &Device,
) -> Result<Vec<Comparison>, ParityError> {
    let pixels = fx.float::<4>("inputs.safetensors", "pixel_values", device)?;
    let backbone = model.encode_backbone(pixels)?;
    let features: TrackerFeatures = tracker.image_features(backbone)?;
    let result = tracker.predict(&features, &reference_prompt(fx, device)?)?;
    outputs(fx, tracker, &result, "tracker_e2e")
}

/// Every tracker stage, or `None` when the folder has no tracker files.
pub fn run_tracker(
    fx: &Fixtures,
    model: &Sam3,
    device: &Device,
) -> Result<Option<Vec<Comparison>>, ParityError> {
    if !fx.has_tracker() {
        return Ok(None);
    }
    let config = fx.tracker_config()?;
    config.check_backbone(&fx.config()?.vision_config)?;
    let tracker = fx.tracker_model(device)?;
    let mut out = self::tracker(fx, &tracker, device)?;
    out.extend(tracker_end_to_end(fx, model, &tracker, device)?);
    Ok(Some(out))
}
