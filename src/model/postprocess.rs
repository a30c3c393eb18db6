//! Post-processing of detector outputs into per-image instances (official `Sam3Processor`
//! `_forward_grounding`; HF `Sam3ImageProcessor.post_process_instance_segmentation`), spec §10.
//!
//! `score = sigmoid(logit)·sigmoid(presence)`; queries above the threshold are kept (no NMS);
//! boxes are scaled to image pixels; mask logits [4g, 4g] are bilinearly upsampled
//! (align_corners = false) to the image size and thresholded at logit 0 (probability 0.5),
//! upsample-then-threshold as in the official code.

use burn::tensor::activation::sigmoid;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Bool, Int, Tensor, TensorData};

use super::error::ModelError;
use super::sam3::Detections;

/// Kept instances of one image.
#[derive(Debug, Clone)]
pub struct Instances {
    /// Index of each kept query.
    pub queries: Vec<usize>,
    /// `sigmoid(logit)·sigmoid(presence)` per kept query.
    pub scores: Vec<f32>,
    /// (x0, y0, x1, y1) in image pixels.
    pub boxes: Vec<[f32; 4]>,
    /// [n, height, width] binary masks (absent when nothing is kept).
    pub masks: Option<Tensor<3, Bool>>,
}

/// Instances of image `index` of the batch, for an original image of `[height, width]` pixels.
pub fn instances(
    det: &Detections,
    index: usize,
    size: [usize; 2],
    threshold: f32,
) -> Result<Instances, ModelError> {
    let [b, q] = det.pred_logits.dims();
    let [height, width] = size;
    if index >= b || height == 0 || width == 0 {
        return Err(ModelError::InvalidInput {
            reason: format!("image {index} of {b}, size {height}×{width}"),
        });
    }
    let logits = det.pred_logits.clone().narrow(0, index, 1).reshape([q]);
    let presence = det.presence_logits.clone().narrow(0, index, 1).reshape([1]);
    let scores = sigmoid(logits) * sigmoid(presence);
    let scores = host_f32(scores.into_data())?;
    let boxes = host_f32(det.pred_boxes.clone().narrow(0, index, 1).into_data())?;
    let mut kept = Instances {
        queries: Vec::new(),
        scores: Vec::new(),
        boxes: Vec::new(),
        masks: None,
    };
    let scale = [width as f32, height as f32, width as f32, height as f32];
    for (query, (&score, coords)) in scores.iter().zip(boxes.chunks_exact(4)).enumerate() {
        if score > threshold {
            kept.queries.push(query);
            kept.scores.push(score);
            kept.boxes
                .push([0, 1, 2, 3].map(|k| coords.get(k).copied().unwrap_or(0.0) * scale[k]));
        }
    }
    if kept.queries.is_empty() {
        return Ok(kept);
    }
    let upsampled = instance_mask_logits(det, index, &kept.queries, size)?;
    kept.masks = upsampled.map(|logits| logits.greater_elem(0.0));
    Ok(kept)
}

fn host_f32(data: TensorData) -> Result<Vec<f32>, ModelError> {
    data.convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| ModelError::InvalidInput {
            reason: format!("reading detector outputs: {e:?}"),
        })
}

/// Kept instances' masks of image `index` upsampled to `[height, width]` as logits
/// [n, height, width] (bilinear, align_corners = false, as [`instances`]); `None` when
/// `queries` is empty. A pixel belongs to an instance iff its logit is > 0, and its
/// probability is the sigmoid of the logit.
pub fn instance_mask_logits(
    det: &Detections,
    index: usize,
    queries: &[usize],
    size: [usize; 2],
) -> Result<Option<Tensor<3>>, ModelError> {
    let [b, q, mh, mw] = det.pred_masks.dims();
    let [height, width] = size;
    if index >= b || height == 0 || width == 0 || queries.iter().any(|&i| i >= q) {
        return Err(ModelError::InvalidInput {
            reason: format!("image {index} of {b}, size {height}×{width}, queries {queries:?}"),
        });
    }
    if queries.is_empty() {
        return Ok(None);
    }
    let device = det.pred_masks.device();
    let ids: Vec<i64> = queries
        .iter()
        .filter_map(|&i| i64::try_from(i).ok())
        .collect();
    let n = ids.len();
    let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [n]), &device);
    let masks = det
        .pred_masks
        .clone()
        .narrow(0, index, 1)
        .reshape([q, mh, mw])
        .select(0, ids)
        .reshape([n, 1, mh, mw]);
    let options = InterpolateOptions {
        mode: InterpolateMode::Bilinear,
        align_corners: false,
        output_size: Some([height, width]),
        ..InterpolateOptions::new(InterpolateMode::Bilinear)
    };
    Ok(Some(
        interpolate(masks, options).reshape([n, height, width]),
    ))
}

/// One mask's logits [mh, mw] → foreground flags [height, width]: bilinear upsampling
/// (align_corners = false) to the image size, then logit > 0 (the tracker's post-processing).
pub fn mask_at_size(logits: Tensor<2>, size: [usize; 2]) -> Result<Tensor<2, Bool>, ModelError> {
    let [height, width] = size;
    if height == 0 || width == 0 {
        return Err(ModelError::InvalidInput {
            reason: format!("mask size {height}×{width}"),
        });
    }
    let [mh, mw] = logits.dims();
    let options = InterpolateOptions {
        mode: InterpolateMode::Bilinear,
        align_corners: false,
        output_size: Some([height, width]),
        ..InterpolateOptions::new(InterpolateMode::Bilinear)
    };
    // [mh, mw] → [1, 1, mh, mw] → [1, 1, height, width] → [height, width]
    let upsampled = interpolate(logits.reshape([1, 1, mh, mw]), options);
    Ok(upsampled.reshape([height, width]).greater_elem(0.0))
}
