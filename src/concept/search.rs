//! Concept search: the optimiser loop that learns φ through the frozen SAM3 detector
//! (m2c-method.md §2.3).
//!
//! - AdamW (β 0.9/0.999, ε 1e-8, weight decay from the settings, 0 by default), written out
//!   on the single parameter on the host (φ is at most 32 × 1024 floats), as PyTorch does it.
//! - Cosine learning rate from `lr_start` to `lr_end`, set before each step from
//!   `step / steps` (step 0 uses `lr_start`).
//! - Global gradient-norm clipping (PyTorch `clip_grad_norm_`), 1.0 by default.
//! - Every labelled image in every step. The image features are computed once by the caller on
//!   the plain device and lifted into the autodiff graph as constants, so the frozen ViT never
//!   runs under autodiff. The authors re-run the ViT in train mode each step (drop-path noise);
//!   caching is the deterministic equivalent without that noise, and with no dropout or
//!   augmentation here the loop draws no random numbers at all (the device is still seeded).
//! - Each step adds the gradients of the images one by one (the authors' batch loss is a sum
//!   over images with batch-wide normalisers, so this is the same gradient), and differentiates
//!   each image with the fusion encoder checkpointed: memory is one image's decode whatever K
//!   is. Measured at 1008² on the CPU (`m2c bench`): a K = 1 step peaks at 7.3 GB of resident
//!   memory, 3.4 GB of it the weights; a single graph passed 18 GB on the same image.
//! - Cancellation is checked between steps; progress goes out on an `mpsc` channel.
//!
//! The caller owns the device: [`SearchProblem::new`] takes the plain device the model lives on
//! and works on its autodiff variant; nothing here names a backend.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Device, Tensor};

use super::embedding::{BasePrompt, check_phi, host_values, phi_tensor};
use super::error::ConceptError;
use super::file::SearchSettings;
use super::loss::{
    LossScale, LossWeights, MatchPlan, concept_loss, match_plan, planned_loss_scaled,
};
use super::targets::{ImageTargets, TargetBatch};
use crate::model::sam3::SCORE_BLOCK_BYTES;
use crate::model::{Detections, ImageFeatures, Prompt, Sam3, TextPrompt};

/// Lifts every float parameter onto the autodiff variant of its device, frozen.
struct LiftFrozen;

impl ModuleMapper for LiftFrozen {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(Tensor::autodiff).set_require_grad(false)
    }
}

/// Everything one search differentiates through, prepared once: the frozen model, the base
/// prompt, the cached image features and the targets, all on the autodiff device.
///
/// The images are differentiated one at a time and their gradients added (the loss is a sum
/// over images with batch-wide normalisers, [`LossScale`]), each with the fusion encoder
/// checkpointed ([`Sam3::backward_checkpointed`]): memory stays that of one image's decode
/// whatever K is, which is what lets a 1008² search fit on a workstation GPU. The text tower
/// runs once per step for all images.
#[derive(Debug, Clone)]
pub struct SearchProblem {
    model: Sam3,
    base: BasePrompt,
    /// One entry per image (batch 1 each): its features and targets.
    images: Vec<(ImageFeatures, TargetBatch)>,
    scale: LossScale,
    weights: LossWeights,
    /// Query rows per attention block in the checkpointed backward pass (`None`: as many as
    /// fit `SCORE_BLOCK_BYTES`).
    score_rows: Option<usize>,
    device: Device,
}

/// The matching of every image (see [`MatchPlan`]), for holding it fixed.
#[derive(Debug, Clone, Default)]
pub struct SearchPlan(pub Vec<MatchPlan>);

impl SearchProblem {
    /// `features` [B, …] come from `model.encode_image` on `device`; `targets` holds one entry
    /// per image. Images without any instance are dropped, as the authors do.
    pub fn new(
        model: &Sam3,
        base: BasePrompt,
        features: ImageFeatures,
        targets: &[ImageTargets],
        device: &Device,
    ) -> Result<Self, ConceptError> {
        if targets.len() != features.batch() {
            return Err(ConceptError::InvalidTargets {
                reason: format!("{} masks for {} images", targets.len(), features.batch()),
            });
        }
        let ad = device.clone().autodiff();
        let pos = features.pos.detach().autodiff();
        let mut images = Vec::new();
        for (i, target) in targets.iter().enumerate() {
            if target.is_empty() {
                continue;
            }
            let one = ImageFeatures {
                fpn: features
                    .fpn
                    .clone()
                    .map(|t| t.narrow(0, i, 1).detach().autodiff()),
                pos: pos.clone(),
            };
            images.push((one, TargetBatch::new(std::slice::from_ref(target), &ad)?));
        }
        if images.is_empty() {
            return Err(ConceptError::InvalidTargets {
                reason: "no mask has a component of at least 30 pixels".to_owned(),
            });
        }
        let scale = LossScale {
            images: images.len(),
            instances: images.iter().map(|(_, t)| t.instances()).sum(),
            foreground_images: images.len(),
        };
        Ok(Self {
            model: model.clone().map(&mut LiftFrozen),
            base: base.autodiff(),
            images,
            scale,
            weights: LossWeights::default(),
            score_rows: None,
            device: ad,
        })
    }

    /// Replaces the loss weights (default: the authors').
    #[must_use]
    pub fn with_weights(mut self, weights: LossWeights) -> Self {
        self.weights = weights;
        self
    }

    /// Differentiates the fusion encoder's self-attention `rows` query rows at a time
    /// (default: as many as keep a score block within 64 MiB; tests force small blocks).
    #[must_use]
    pub fn with_score_rows(mut self, rows: usize) -> Self {
        self.score_rows = Some(rows.max(1));
        self
    }

    /// Shape of φ: `[T, width]`.
    pub fn phi_shape(&self) -> [usize; 2] {
        self.base.phi_shape()
    }

    /// Number of images that take part (those with at least one instance).
    pub fn images(&self) -> usize {
        self.images.len()
    }

    fn prompt(text: TextPrompt) -> Prompt {
        Prompt {
            text,
            boxes: Vec::new(),
        }
    }

    /// The text prompt `base ⊕ φ` for one image.
    fn text(&self, phi: Tensor<2>) -> Result<TextPrompt, ConceptError> {
        self.base.text_prompt(&self.model, phi, 1)
    }

    /// Σ over images of `per_image(detections, targets)`, evaluated outside any graph.
    fn sum_over_images(
        &self,
        phi: &[f32],
        mut per_image: impl FnMut(usize, &Detections, &TargetBatch) -> Result<f32, ConceptError>,
    ) -> Result<f32, ConceptError> {
        let text = self.text(phi_tensor(phi, self.phi_shape(), &self.device)?)?;
        let mut total = 0.0f32;
        for (i, (features, targets)) in self.images.iter().enumerate() {
            let det = self.model.decode(features, &Self::prompt(text.clone()))?;
            total += per_image(i, &det, targets)?;
        }
        Ok(total)
    }

    /// The matching and soft targets at `phi` (see [`MatchPlan`]).
    pub fn plan(&self, phi: &[f32]) -> Result<SearchPlan, ConceptError> {
        let mut plans = Vec::with_capacity(self.images());
        self.sum_over_images(phi, |_, det, targets| {
            plans.push(match_plan(det, targets, &self.weights)?);
            Ok(0.0)
        })?;
        Ok(SearchPlan(plans))
    }

    /// The loss at `phi` with the detached quantities taken from `plan` instead of from the
    /// predictions at `phi`: the smooth surrogate whose gradient [`Self::loss_and_grad`] returns.
    pub fn planned_loss(&self, phi: &[f32], plan: &SearchPlan) -> Result<f32, ConceptError> {
        if plan.0.len() != self.images() {
            return Err(ConceptError::InvalidTargets {
                reason: format!("a plan of {} images for {}", plan.0.len(), self.images()),
            });
        }
        self.sum_over_images(phi, |i, det, targets| {
            let loss =
                planned_loss_scaled(det, targets, plan.0[i].clone(), &self.weights, self.scale)?;
            scalar(loss.total)
        })
    }

    /// The loss at `phi` (row-major, [`SearchProblem::phi_shape`]).
    pub fn loss(&self, phi: &[f32]) -> Result<f32, ConceptError> {
        self.sum_over_images(phi, |_, det, targets| {
            self.image_loss(det, targets).and_then(scalar)
        })
    }

    fn image_loss(
        &self,
        det: &Detections,
        targets: &TargetBatch,
    ) -> Result<Tensor<1>, ConceptError> {
        let plan = match_plan(det, targets, &self.weights)?;
        Ok(planned_loss_scaled(det, targets, plan, &self.weights, self.scale)?.total)
    }

    /// The loss at `phi` and its gradient with respect to φ (row-major): one image at a time,
    /// the fusion encoder checkpointed (see the type's doc).
    pub fn loss_and_grad(&self, phi: &[f32]) -> Result<(f32, Vec<f32>), ConceptError> {
        let phi = phi_tensor(phi, self.phi_shape(), &self.device)?.require_grad();
        let text = self.text(phi.clone())?;
        let detached = TextPrompt {
            features: text.features.clone().detach(),
            valid: text.valid.clone(),
        };
        let mut loss = 0.0f32;
        let mut text_grad: Option<Tensor<3>> = None;
        for (features, targets) in &self.images {
            let rows = self
                .score_rows
                .unwrap_or_else(|| self.model.score_rows(features, SCORE_BLOCK_BYTES));
            let (value, grad) = self.model.backward_checkpointed_in_blocks(
                features,
                &Self::prompt(detached.clone()),
                rows,
                |det| self.image_loss(det, targets),
            )?;
            loss += value;
            text_grad = Some(match text_grad {
                Some(sum) => sum + grad,
                None => grad,
            });
        }
        let text_grad = text_grad.ok_or_else(|| ConceptError::InvalidTargets {
            reason: "no training images".to_owned(),
        })?;
        // Finish the chain through the text tower: ∂/∂φ of ⟨text(φ), Σ ∂loss/∂text⟩.
        let grads = (text.features * text_grad.autodiff()).sum().backward();
        Ok((loss, phi_grad(&phi, &grads)?))
    }

    /// [`Self::loss_and_grad`] as one autodiff graph over the whole batch, nothing
    /// checkpointed: the reference the memory-saving path is tested against. Its memory grows
    /// with K and keeps every fusion-encoder layer's attention scores (> 18 GB for one 1008²
    /// image), so use it only on small models.
    pub fn loss_and_grad_whole_graph(&self, phi: &[f32]) -> Result<(f32, Vec<f32>), ConceptError> {
        let phi = phi_tensor(phi, self.phi_shape(), &self.device)?.require_grad();
        let b = self.images();
        let text = self.base.text_prompt(&self.model, phi.clone(), b)?;
        let features = ImageFeatures {
            fpn: std::array::from_fn(|l| {
                Tensor::cat(
                    self.images.iter().map(|(f, _)| f.fpn[l].clone()).collect(),
                    0,
                )
            }),
            pos: self.images[0].0.pos.clone(),
        };
        let targets = TargetBatch::concat(self.images.iter().map(|(_, t)| t))?;
        let det = self.model.decode(&features, &Self::prompt(text))?;
        let loss = concept_loss(&det, &targets, &self.weights)?.total;
        let grads = loss.backward();
        Ok((scalar(loss)?, phi_grad(&phi, &grads)?))
    }
}

fn phi_grad(phi: &Tensor<2>, grads: &burn::tensor::Gradients) -> Result<Vec<f32>, ConceptError> {
    let grad = phi.grad(grads).ok_or_else(|| ConceptError::ReadBack {
        what: "gradient of φ",
        reason: "φ is not part of the loss graph".to_owned(),
    })?;
    host_values(grad, "gradient of φ")
}

fn scalar(t: Tensor<1>) -> Result<f32, ConceptError> {
    host_values(t, "loss")?
        .first()
        .copied()
        .ok_or_else(|| ConceptError::ReadBack {
            what: "loss",
            reason: "empty tensor".to_owned(),
        })
}

/// Sent after every step.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchProgress {
    /// Steps done (1-based).
    pub step: usize,
    pub steps: usize,
    /// Loss of this step (before its update).
    pub loss: f32,
    pub elapsed: Duration,
    /// Estimated time left, from the mean step time so far.
    pub eta: Duration,
}

/// Cancellation flag and progress channel of a running search.
#[derive(Debug, Clone, Default)]
pub struct SearchControl {
    /// Set to stop after the current step.
    pub cancel: Arc<AtomicBool>,
    pub progress: Option<Sender<SearchProgress>>,
}

/// What a search produced.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchOutcome {
    /// φ after the last completed step, row-major.
    pub phi: Vec<f32>,
    /// `[T, width]`.
    pub shape: [usize; 2],
    /// Loss of each completed step, evaluated before its update.
    pub losses: Vec<f32>,
    /// Whether the search stopped early on request.
    pub cancelled: bool,
}

/// The cosine learning rate of `step` out of `steps` (SAM3's `CosineParamScheduler`).
pub fn cosine_lr(settings: &SearchSettings, step: usize) -> f64 {
    let progress = step as f64 / f64::from(settings.steps.max(1));
    settings.lr_end
        + 0.5
            * (settings.lr_start - settings.lr_end)
            * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// Runs the search from `warm_start` (or zeros).
pub fn search(
    problem: &SearchProblem,
    settings: &SearchSettings,
    warm_start: Option<&[f32]>,
    control: &SearchControl,
) -> Result<SearchOutcome, ConceptError> {
    check_settings(settings)?;
    let shape = problem.phi_shape();
    let mut phi = match warm_start {
        Some(values) => {
            check_phi(values, shape)?;
            values.to_vec()
        }
        None => vec![0.0; shape[0] * shape[1]],
    };
    problem.device.seed(settings.seed);
    let steps = settings.steps as usize;
    let mut adam = AdamW::new(phi.len(), settings.weight_decay);
    let mut losses = Vec::with_capacity(steps);
    let start = Instant::now();
    for step in 0..steps {
        if control.cancel.load(Ordering::Relaxed) {
            return Ok(SearchOutcome {
                phi,
                shape,
                losses,
                cancelled: true,
            });
        }
        let (loss, mut grad) = problem.loss_and_grad(&phi)?;
        if !loss.is_finite() || grad.iter().any(|g| !g.is_finite()) {
            return Err(ConceptError::NonFiniteLoss { step, loss });
        }
        clip_grad_norm(&mut grad, settings.grad_clip);
        adam.step(&mut phi, &grad, cosine_lr(settings, step));
        losses.push(loss);
        if let Some(tx) = &control.progress {
            let elapsed = start.elapsed();
            let done = step + 1;
            let eta = elapsed.mul_f64((steps - done) as f64 / done as f64);
            // A dropped receiver only means nobody is watching.
            let _ = tx.send(SearchProgress {
                step: done,
                steps,
                loss,
                elapsed,
                eta,
            });
        }
    }
    Ok(SearchOutcome {
        phi,
        shape,
        losses,
        cancelled: false,
    })
}

fn check_settings(s: &SearchSettings) -> Result<(), ConceptError> {
    let ok = |v: f64| v.is_finite() && v >= 0.0;
    if ok(s.lr_start) && ok(s.lr_end) && ok(s.weight_decay) && ok(s.grad_clip) {
        Ok(())
    } else {
        Err(ConceptError::InvalidSettings {
            reason: format!("{s:?}: rates, weight decay and clip must be finite and ≥ 0"),
        })
    }
}

/// Scales `grad` so its L2 norm is at most `max_norm` (0 = no clipping), as PyTorch's
/// `clip_grad_norm_`: factor `max_norm / (norm + 1e-6)`, applied only when below 1.
pub fn clip_grad_norm(grad: &mut [f32], max_norm: f64) {
    if max_norm <= 0.0 {
        return;
    }
    let norm = grad
        .iter()
        .map(|&g| f64::from(g) * f64::from(g))
        .sum::<f64>()
        .sqrt();
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        for g in grad {
            *g = (f64::from(*g) * coef) as f32;
        }
    }
}

/// PyTorch's AdamW on one flat parameter (β 0.9/0.999, ε 1e-8).
#[derive(Debug, Clone)]
struct AdamW {
    m: Vec<f32>,
    v: Vec<f32>,
    t: i32,
    weight_decay: f64,
}

impl AdamW {
    const BETA1: f64 = 0.9;
    const BETA2: f64 = 0.999;
    const EPS: f64 = 1e-8;

    fn new(len: usize, weight_decay: f64) -> Self {
        Self {
            m: vec![0.0; len],
            v: vec![0.0; len],
            t: 0,
            weight_decay,
        }
    }

    fn step(&mut self, param: &mut [f32], grad: &[f32], lr: f64) {
        self.t += 1;
        let bias1 = 1.0 - Self::BETA1.powi(self.t);
        let bias2_sqrt = (1.0 - Self::BETA2.powi(self.t)).sqrt();
        let decay = 1.0 - lr * self.weight_decay;
        for (((p, &g), m), v) in param.iter_mut().zip(grad).zip(&mut self.m).zip(&mut self.v) {
            let g = f64::from(g);
            let mm = Self::BETA1 * f64::from(*m) + (1.0 - Self::BETA1) * g;
            let vv = Self::BETA2 * f64::from(*v) + (1.0 - Self::BETA2) * g * g;
            *m = mm as f32;
            *v = vv as f32;
            let denom = vv.sqrt() / bias2_sqrt + Self::EPS;
            *p = (f64::from(*p) * decay - lr / bias1 * mm / denom) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_schedule_matches_the_authors_endpoints() {
        let s = SearchSettings::default();
        assert!((cosine_lr(&s, 0) - 5e-4).abs() < 1e-12);
        // Last of 60 steps ≈ 5.3e-6 (m2c-method.md §2.3).
        assert!(
            (cosine_lr(&s, 59) - 5.339e-6).abs() < 1e-8,
            "{}",
            cosine_lr(&s, 59)
        );
        assert!((cosine_lr(&s, 30) - 2.525e-4).abs() < 1e-9);
    }

    #[test]
    fn clipping_scales_only_large_gradients() {
        let mut g = vec![3.0, 4.0];
        clip_grad_norm(&mut g, 1.0);
        assert!((g[0] - 0.6).abs() < 1e-6 && (g[1] - 0.8).abs() < 1e-6);
        let mut small = vec![0.3, 0.4];
        clip_grad_norm(&mut small, 1.0);
        assert_eq!(small, vec![0.3, 0.4]);
    }

    #[test]
    fn adamw_first_step_moves_by_lr_times_sign() {
        // Bias correction makes the first step exactly lr · g / (|g| + ε).
        let mut p = vec![1.0f32, -1.0, 0.0];
        let mut opt = AdamW::new(3, 0.0);
        opt.step(&mut p, &[2.0, -0.5, 0.0], 0.1);
        assert!((p[0] - 0.9).abs() < 1e-6 && (p[1] + 0.9).abs() < 1e-6 && p[2] == 0.0);
        // Weight decay shrinks the parameter first: p · (1 − lr · wd).
        let mut q = vec![1.0f32];
        AdamW::new(1, 0.5).step(&mut q, &[0.0], 0.1);
        assert!((q[0] - 0.95).abs() < 1e-6);
    }
}
