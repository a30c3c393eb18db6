//! The concept-search loss: SAM3's detection + segmentation training loss as the M2C authors
//! run it (m2c-method.md §2.4), for the one-to-one (o2o) queries.
//!
//! Per decoder layer and image, queries are Hungarian-matched to the ground-truth instances on
//! detached values ([`super::matching`]). Then, with N = max(1, instances in the batch):
//!
//! | term | layers | weight | definition |
//! |---|---|---|---|
//! | box L1 | all | 5 | Σ‖cxcywh − target‖₁ / N |
//! | box GIoU | all | 2 | Σ(1 − GIoU) / N |
//! | class (IABCEMdetr) | all | 20 | matched: 10 · BCE(x, t), t = max(p^0.25 · IoU^0.75, 0.01) detached; unmatched: BCE(x, 0) · p²; mean over B·Q; 0 for images without instances |
//! | presence | all | 20 | 0.5 · BCE(presence logit, image has an instance), mean over B |
//! | mask focal | last | 200 | focal (α 0.25, γ 2) of the matched mask logits upsampled bilinearly to S×S, mean over pixels, Σ / N |
//! | mask dice | last | 10 | 1 − (2Σpt + 1)/(Σp + Σt + 1), Σ / N |
//! | semantic focal | semantic head | 20 | focal (α 0.6, γ 2) upsampled to S×S, mean per image, averaged over images with foreground |
//! | semantic dice | semantic head | 30 | dice per image, averaged likewise |
//!
//! The total is multiplied by √B. Not here: the one-to-many (o2m / DAC) branch, weighted 2 in
//! the authors' run. It exists only in SAM3's training mode; the eval-mode decoder we port has
//! just the o2o queries, so the o2m terms cannot be formed.

use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::boxes::{CxCyWh, Xyxy};
use super::embedding::host_values;
use super::error::ConceptError;
use super::loss_terms::{bce_with_logits, dice, focal, giou_diag, row_sums, upsample};
use super::matching::{MatchCostWeights, hungarian_match};
use super::targets::TargetBatch;
use crate::model::Detections;

/// Loss weights and shape parameters (defaults: the authors' values).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossWeights {
    pub bbox_l1: f32,
    pub giou: f32,
    pub class: f32,
    /// Weight of matched queries inside the classification term.
    pub class_pos_weight: f32,
    /// Exponent α of the soft target p^α · IoU^(1−α).
    pub class_soft_alpha: f32,
    /// Exponent γ of the p^γ factor on unmatched queries.
    pub class_neg_gamma: f32,
    pub presence: f32,
    pub mask_focal: f32,
    pub mask_dice: f32,
    pub mask_alpha: f32,
    pub mask_gamma: f32,
    pub semantic_focal: f32,
    pub semantic_dice: f32,
    pub semantic_alpha: f32,
    pub semantic_gamma: f32,
}

impl Default for LossWeights {
    fn default() -> Self {
        Self {
            bbox_l1: 5.0,
            giou: 2.0,
            class: 20.0,
            class_pos_weight: 10.0,
            class_soft_alpha: 0.25,
            class_neg_gamma: 2.0,
            presence: 20.0,
            mask_focal: 200.0,
            mask_dice: 10.0,
            mask_alpha: 0.25,
            mask_gamma: 2.0,
            semantic_focal: 20.0,
            semantic_dice: 30.0,
            semantic_alpha: 0.6,
            semantic_gamma: 2.0,
        }
    }
}

/// The loss and its weighted terms (each [1], before the √B factor).
#[derive(Debug, Clone)]
pub struct ConceptLoss {
    /// [1] the objective.
    pub total: Tensor<1>,
    /// (name, weighted term) in table order.
    pub terms: Vec<(&'static str, Tensor<1>)>,
}

/// Which queries supervise what, and the soft class targets: everything the loss takes from
/// detached predictions. Holding a plan fixed turns the loss into the smooth surrogate whose
/// gradient autodiff computes (what a finite-difference check must compare against).
#[derive(Debug, Clone, Default)]
pub struct MatchPlan {
    /// Flat index into [L·B·Q] of each matched query, all layers.
    box_query: Vec<i64>,
    /// Matched targets [M, 4] in centre form and in corner form.
    box_cxcywh: Vec<f32>,
    box_xyxy: Vec<f32>,
    /// [L·B·Q]: 1 for matched queries; the detached soft target there; image has instances.
    class_pos: Vec<f32>,
    class_soft: Vec<f32>,
    class_keep: Vec<f32>,
    /// [L·B]: presence target.
    presence: Vec<f32>,
    /// Last layer: flat index into [B·Q] and the matched instance's index into [N].
    mask_query: Vec<i64>,
    mask_instance: Vec<i64>,
}

fn sigmoid_f32(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn plan(
    logits: &[f32],
    boxes_xyxy: &[f32],
    [layers, batch, queries]: [usize; 3],
    targets: &TargetBatch,
    soft_alpha: f32,
) -> Result<MatchPlan, ConceptError> {
    let n = layers * batch * queries;
    let mut p = MatchPlan {
        class_pos: vec![0.0; n],
        class_soft: vec![0.0; n],
        class_keep: vec![0.0; n],
        presence: vec![0.0; layers * batch],
        ..MatchPlan::default()
    };
    let cost = MatchCostWeights::default();
    for l in 0..layers {
        for (b, gts) in targets.boxes.iter().enumerate() {
            let first = (l * batch + b) * queries;
            let has_gt = if gts.is_empty() { 0.0 } else { 1.0 };
            p.presence[l * batch + b] = has_gt;
            p.class_keep[first..first + queries].fill(has_gt);
            let lg = &logits[first..first + queries];
            let preds: Vec<Xyxy> = boxes_xyxy[4 * first..4 * (first + queries)]
                .chunks_exact(4)
                .map(|c| Xyxy {
                    x1: c[0],
                    y1: c[1],
                    x2: c[2],
                    y2: c[3],
                })
                .collect();
            let centre: Vec<CxCyWh> = preds.iter().map(|x| x.to_cxcywh()).collect();
            for m in hungarian_match(lg, &centre, gts, &cost)? {
                let (q, gt) = (first + m.query, gts[m.target]);
                let gt_xyxy = gt.to_xyxy();
                let iou = preds[m.query].iou(gt_xyxy);
                let prob = sigmoid_f32(logits[q]);
                p.class_pos[q] = 1.0;
                p.class_soft[q] = (prob.powf(soft_alpha) * iou.powf(1.0 - soft_alpha)).max(0.01);
                p.box_query.push(q as i64);
                p.box_cxcywh.extend([gt.cx, gt.cy, gt.w, gt.h]);
                p.box_xyxy
                    .extend([gt_xyxy.x1, gt_xyxy.y1, gt_xyxy.x2, gt_xyxy.y2]);
                if l + 1 == layers {
                    p.mask_query.push((b * queries + m.query) as i64);
                    p.mask_instance.push((targets.offsets[b] + m.target) as i64);
                }
            }
        }
    }
    Ok(p)
}

/// The authors' loss of `det` against `targets` (see the module doc).
pub fn concept_loss(
    det: &Detections,
    targets: &TargetBatch,
    w: &LossWeights,
) -> Result<ConceptLoss, ConceptError> {
    let plan = match_plan(det, targets, w)?;
    planned_loss(det, targets, plan, w)
}

/// Matches `det` to `targets` on detached values (one host read-back of logits and boxes).
pub fn match_plan(
    det: &Detections,
    targets: &TargetBatch,
    w: &LossWeights,
) -> Result<MatchPlan, ConceptError> {
    let [layers, batch, queries] = det.all_pred_logits.dims();
    if batch != targets.batch() {
        return Err(ConceptError::InvalidTargets {
            reason: format!("{} target images for {batch} predictions", targets.batch()),
        });
    }
    let logits = host_values(det.all_pred_logits.clone().detach(), "logits")?;
    let boxes = host_values(det.all_pred_boxes.clone().detach(), "boxes")?;
    plan(
        &logits,
        &boxes,
        [layers, batch, queries],
        targets,
        w.class_soft_alpha,
    )
}

/// The batch-wide normalisers of the loss: the image count B (class and presence means, the
/// √B factor), the instance count N and the number of images with foreground (semantic
/// means). Every term is a sum over images divided by these, so the loss of a batch is the sum
/// of its images' losses taken with the batch's scale: what lets a search differentiate one
/// image at a time and add the gradients (see `search.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LossScale {
    pub images: usize,
    pub instances: usize,
    pub foreground_images: usize,
}

impl LossScale {
    /// The scale of `targets` taken as one batch.
    pub fn of(targets: &TargetBatch) -> Self {
        Self {
            images: targets.batch(),
            instances: targets.instances(),
            foreground_images: targets.boxes.iter().filter(|b| !b.is_empty()).count(),
        }
    }
}

/// The loss with a given plan (from [`match_plan`] on the same shapes).
pub fn planned_loss(
    det: &Detections,
    targets: &TargetBatch,
    p: MatchPlan,
    w: &LossWeights,
) -> Result<ConceptLoss, ConceptError> {
    planned_loss_scaled(det, targets, p, w, LossScale::of(targets))
}

/// [`planned_loss`] of a part of a batch (e.g. one image) normalised by the whole batch's
/// `scale`.
pub fn planned_loss_scaled(
    det: &Detections,
    targets: &TargetBatch,
    p: MatchPlan,
    w: &LossWeights,
    scale: LossScale,
) -> Result<ConceptLoss, ConceptError> {
    let [layers, batch, queries] = det.all_pred_logits.dims();
    let n = layers * batch * queries;
    if batch != targets.batch() || p.class_pos.len() != n || p.presence.len() != layers * batch {
        return Err(ConceptError::InvalidTargets {
            reason: format!("plan does not fit predictions [{layers}, {batch}, {queries}]"),
        });
    }
    let device = det.pred_logits.device();
    let num_boxes = scale.instances.max(1) as f32;
    let images = scale.images.max(1);
    let zero = || Tensor::<1>::zeros([1], &device);

    // Boxes, all layers: [L·B·Q, 4] → matched [M, 4] (x0, y0, x1, y1).
    let m = p.box_query.len();
    let (l1, giou) = if m == 0 {
        (zero(), zero())
    } else {
        let pred = det
            .all_pred_boxes
            .clone()
            .reshape([layers * batch * queries, 4])
            .select(0, int1(p.box_query, &device));
        let to_cxcywh = float2(
            vec![
                0.5, 0.0, -1.0, 0.0, //
                0.0, 0.5, 0.0, -1.0, //
                0.5, 0.0, 1.0, 0.0, //
                0.0, 0.5, 0.0, 1.0,
            ],
            [4, 4],
            &device,
        );
        let l1 = (pred.clone().matmul(to_cxcywh) - float2(p.box_cxcywh, [m, 4], &device))
            .abs()
            .sum();
        let g = giou_diag(pred, float2(p.box_xyxy, [m, 4], &device));
        (l1, g.neg().add_scalar(1.0).sum())
    };

    // Classification, all layers: [L·B·Q].
    let x = det
        .all_pred_logits
        .clone()
        .reshape([layers * batch * queries]);
    let pos = float1(p.class_pos, &device);
    let pos_term = bce_with_logits(x.clone(), float1(p.class_soft, &device))
        * pos.clone()
        * w.class_pos_weight;
    let neg_term = bce_with_logits(x.clone(), x.zeros_like())
        * pos.neg().add_scalar(1.0)
        * sigmoid(x).powf_scalar(w.class_neg_gamma);
    let class = ((pos_term + neg_term) * float1(p.class_keep, &device))
        .sum()
        .div_scalar((images * queries) as f32);

    // Presence, all layers: [L·B].
    let presence = bce_with_logits(
        det.all_presence_logits.clone().reshape([layers * batch]),
        float1(p.presence, &device),
    )
    .sum()
    .mul_scalar(0.5 / images as f32);

    // Instance masks, last layer: [B·Q, h, w] → matched [M', 1, h, w] → [M', S·S].
    let size = targets.size;
    let (mask_focal, mask_dice) = match &targets.instance_masks {
        Some(all) if !p.mask_query.is_empty() => {
            let [_, _, h, wd] = det.pred_masks.dims();
            let k = p.mask_query.len();
            let pred = det
                .pred_masks
                .clone()
                .reshape([batch * queries, h, wd])
                .select(0, int1(p.mask_query, &device))
                .reshape([k, 1, h, wd]);
            let pred = upsample(pred, size).reshape([k, size * size]);
            let target = all.clone().select(0, int1(p.mask_instance, &device));
            (
                row_sums(focal(
                    pred.clone(),
                    target.clone(),
                    w.mask_alpha,
                    w.mask_gamma,
                ))
                .div_scalar((size * size) as f32)
                .sum(),
                dice(pred, target).sum(),
            )
        }
        _ => (zero(), zero()),
    };

    // Semantic head: [B, 1, h, w] → [B, S·S].
    let sem = upsample(det.semantic_seg.clone(), size).reshape([batch, size * size]);
    let fg: Vec<f32> = targets
        .boxes
        .iter()
        .map(|b| if b.is_empty() { 0.0 } else { 1.0 })
        .collect();
    let valid = scale.foreground_images as f32 + 1e-6;
    let fg = float1(fg, &device);
    let sem_focal = (row_sums(focal(
        sem.clone(),
        targets.semantic.clone(),
        w.semantic_alpha,
        w.semantic_gamma,
    ))
    .div_scalar((size * size) as f32)
        * fg.clone())
    .sum()
    .div_scalar(valid);
    let sem_dice = (dice(sem, targets.semantic.clone()) * fg)
        .sum()
        .div_scalar(valid);

    let terms = vec![
        ("box_l1", l1.div_scalar(num_boxes).mul_scalar(w.bbox_l1)),
        ("box_giou", giou.div_scalar(num_boxes).mul_scalar(w.giou)),
        ("class", class.mul_scalar(w.class)),
        ("presence", presence.mul_scalar(w.presence)),
        (
            "mask_focal",
            mask_focal.div_scalar(num_boxes).mul_scalar(w.mask_focal),
        ),
        (
            "mask_dice",
            mask_dice.div_scalar(num_boxes).mul_scalar(w.mask_dice),
        ),
        ("semantic_focal", sem_focal.mul_scalar(w.semantic_focal)),
        ("semantic_dice", sem_dice.mul_scalar(w.semantic_dice)),
    ];
    let total = terms
        .iter()
        .map(|(_, t)| t.clone())
        .reduce(|a, b| a + b)
        .unwrap_or_else(zero)
        .mul_scalar((images as f32).sqrt());
    Ok(ConceptLoss { total, terms })
}

fn float1(values: Vec<f32>, device: &Device) -> Tensor<1> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}

fn float2(values: Vec<f32>, shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

fn int1(values: Vec<i64>, device: &Device) -> Tensor<1, Int> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}
