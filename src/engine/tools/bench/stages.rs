//! The stages under test: the model and device, synthetic images, prompts and targets, and one
//! timed stage (warm-up, timed runs, panics and errors turned into rows).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use burn::module::{ModuleVisitor, Param};
use burn::tensor::{Bool, Device, Distribution, Int, Tensor, TensorData};

use super::BenchError;
use super::memory::{device_reserved, peak_rss, reset_peak_rss};
use super::report::{BenchRow, RowStatus, median};
use crate::concept::file::{EmbeddingSite, SearchSettings};
use crate::concept::{
    BasePrompt, BinaryMask, ConceptError, ImageTargets, SearchControl, SearchProblem, search,
};
use crate::engine::error::{Failure, recognise};
use crate::model::config::TextConfig;
use crate::model::neck::sine_position_encoding;
use crate::model::{ImageFeatures, ModelError, Prompt, Sam3, Sam3Config};

/// Counts (and thereby materialises) every float parameter.
#[derive(Debug, Default)]
pub(super) struct WeightBytes {
    pub(super) params: u64,
    pub(super) bytes: u64,
}

impl ModuleVisitor for WeightBytes {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        let n = value.shape().num_elements() as u64;
        self.params += n;
        self.bytes += n * value.dtype().size() as u64;
    }
}

/// Why a stage closure failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum StageError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Concept(#[from] ConceptError),
    #[error("device: {0}")]
    Device(String),
}

/// The model and device under test.
pub(super) struct Bench {
    pub(super) model: Sam3,
    /// Special token ids and context length of the text tower.
    pub(super) text: TextConfig,
    pub(super) device: Device,
    pub(super) warmup: usize,
    pub(super) runs: usize,
}

impl Bench {
    /// Runs `body` `warmup + runs` times and times the last `runs`; panics become rows.
    pub(super) fn stage(
        &self,
        stage: String,
        images: usize,
        mut body: impl FnMut(&Self) -> Result<(), StageError>,
    ) -> BenchRow {
        self.device.memory_cleanup();
        reset_peak_rss();
        let mut row = BenchRow::new(stage, images);
        let mut times = Vec::with_capacity(self.runs);
        let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<(), StageError> {
            for run in 0..self.warmup + self.runs {
                let start = Instant::now();
                body(self)?;
                sync(&self.device).map_err(|e| StageError::Device(e.to_string()))?;
                if run >= self.warmup {
                    times.push(start.elapsed().as_secs_f64() * 1e3);
                }
            }
            Ok(())
        }));
        row.peak_rss_bytes = peak_rss();
        row.device_reserved_bytes = device_reserved(&self.device);
        row.status = match outcome {
            Ok(Ok(())) => RowStatus::Measured,
            Ok(Err(err)) => classify(err.to_string()),
            Err(payload) => classify(panic_message(payload.as_ref())),
        };
        if !times.is_empty() {
            times.sort_by(f64::total_cmp);
            row.runs = times.len();
            row.median_ms = Some(median(&times));
            row.min_ms = times.first().copied();
            row.max_ms = times.last().copied();
        }
        row
    }

    /// Features of `k` synthetic images, encoded one at a time (the ViT's activations for one
    /// image are the large transient; batching would multiply them by K).
    pub(super) fn encode(&self, k: usize) -> Result<ImageFeatures, StageError> {
        self.encode_images(&self.images(k))
    }

    /// The first `k` test images.
    pub(super) fn images(&self, k: usize) -> Vec<Tensor<4>> {
        (0..k).map(|i| self.pixels(i)).collect()
    }

    pub(super) fn encode_images(&self, images: &[Tensor<4>]) -> Result<ImageFeatures, StageError> {
        let mut parts = Vec::with_capacity(images.len());
        for image in images {
            parts.push(self.model.encode_image(image.clone())?);
        }
        let pos = parts
            .first()
            .map(|f| f.pos.clone())
            .ok_or_else(|| StageError::Device("no image to encode".to_owned()))?;
        let level = |l: usize| Tensor::cat(parts.iter().map(|f| f.fpn[l].clone()).collect(), 0);
        Ok(ImageFeatures {
            fpn: [level(0), level(1), level(2)],
            pos,
        })
    }

    /// Random features with the shapes `encode_image` gives for one image.
    pub(super) fn synthetic_features(&self, config: &Sam3Config) -> ImageFeatures {
        let d = config.vision_config.fpn_hidden_size;
        let sizes = &config.vision_config.backbone_feature_sizes;
        let level = |i: usize| {
            let [h, w] = sizes.get(i).copied().unwrap_or([1, 1]);
            Tensor::<4>::random([1, d, h, w], Distribution::Normal(0.0, 1.0), &self.device)
        };
        let [gh, gw] = sizes.get(2).copied().unwrap_or([1, 1]);
        ImageFeatures {
            fpn: [level(0), level(1), level(2)],
            pos: sine_position_encoding(d, gh, gw, &self.device),
        }
    }

    /// A deterministic smooth test image [1, 3, S, S] in [−1, 1], different for each `index`.
    pub(super) fn pixels(&self, index: usize) -> Tensor<4> {
        let s = self.model.image_size;
        let phase = index as f32 * 0.7;
        let mut values = Vec::with_capacity(3 * s * s);
        for c in 0..3 {
            for y in 0..s {
                for x in 0..s {
                    let (u, v) = (x as f32 / s as f32, y as f32 / s as f32);
                    values.push(
                        ((u * 6.0 + v * 3.0 + c as f32 + phase).sin() * 0.8).clamp(-1.0, 1.0),
                    );
                }
            }
        }
        Tensor::from_data(TensorData::new(values, [1, 3, s, s]), &self.device)
    }

    /// Synthetic token ids [1, T]: start, eight word pieces, end, padding; and their validity.
    pub(super) fn prompt_ids(&self) -> (Tensor<2, Int>, Tensor<2, Bool>) {
        let text = &self.text;
        let t = text.max_position_embeddings;
        let words = 8.min(t.saturating_sub(2));
        let mut ids = vec![text.pad_token_id; t];
        let mut flags = vec![0i64; t];
        if let Some(slot) = ids.first_mut() {
            *slot = text.bos_token_id;
        }
        // Ordinary word pieces: small ids, below the special ones of both presets.
        let pieces = i64::try_from(text.vocab_size)
            .unwrap_or(i64::MAX)
            .clamp(1, 500);
        for (i, id) in ids.iter_mut().enumerate().skip(1).take(words) {
            *id = (i as i64 * 37) % pieces;
        }
        if let Some(slot) = ids.get_mut(words + 1) {
            *slot = text.eos_token_id;
        }
        for flag in flags.iter_mut().take(words + 2) {
            *flag = 1;
        }
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, t]), &self.device);
        let valid =
            Tensor::<2, Int>::from_data(TensorData::new(flags, [1, t]), &self.device).equal_elem(1);
        (ids, valid)
    }

    pub(super) fn decode(&self, features: &ImageFeatures) -> Result<(), StageError> {
        let (ids, valid) = self.prompt_ids();
        let text = self.model.encode_text(ids, valid)?;
        let prompt = Prompt {
            text,
            boxes: vec![Vec::new(); features.batch()],
        };
        let det = self.model.decode(features, &prompt)?;
        // Reading one number closes the lazy graph on every backend.
        det.pred_logits
            .sum()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| StageError::Device(format!("{e:?}")))?;
        Ok(())
    }

    /// Targets for `k` images: one or two discs each, at the model's side.
    pub(super) fn targets(&self, k: usize) -> Result<Vec<ImageTargets>, StageError> {
        let s = self.model.image_size;
        (0..k)
            .map(|i| {
                let sf = s as f32;
                let mut discs = vec![(0.3 + 0.05 * (i % 5) as f32, 0.4, 0.15)];
                if i % 2 == 1 {
                    discs.push((0.7, 0.65, 0.1));
                }
                let data: Vec<bool> = (0..s * s)
                    .map(|p| {
                        let (x, y) = ((p % s) as f32 + 0.5, (p / s) as f32 + 0.5);
                        discs.iter().any(|&(cx, cy, r)| {
                            (x - cx * sf).powi(2) + (y - cy * sf).powi(2) <= (r * sf).powi(2)
                        })
                    })
                    .collect();
                let mask = BinaryMask {
                    width: s,
                    height: s,
                    data: &data,
                };
                Ok(ImageTargets::from_mask(mask, s)?)
            })
            .collect()
    }

    pub(super) fn base_prompt(&self) -> Result<BasePrompt, StageError> {
        let (ids, valid) = self.prompt_ids();
        Ok(BasePrompt::new(
            &self.model,
            ids,
            valid,
            EmbeddingSite::TextInput,
        )?)
    }

    pub(super) fn problem(
        &self,
        features: ImageFeatures,
        k: usize,
    ) -> Result<SearchProblem, StageError> {
        Ok(SearchProblem::new(
            &self.model,
            self.base_prompt()?,
            features,
            &self.targets(k)?,
            &self.device,
        )?)
    }

    /// The re-encoding step: the K images through the ViT, then the step on their features.
    /// Test images, masks and the base prompt are made before the clock starts.
    pub(super) fn reencode_step_row(&self, stage: String, k: usize) -> BenchRow {
        let prepared = prepare(|| Ok((self.images(k), self.targets(k)?, self.base_prompt()?)));
        let (images, targets, base) = match prepared {
            Ok(prepared) => prepared,
            Err(status) => return BenchRow::new(stage, k).with_status(status),
        };
        self.stage(stage, k, |b| {
            let features = b.encode_images(&images)?;
            let problem =
                SearchProblem::new(&b.model, base.clone(), features, &targets, &b.device)?;
            problem.loss_and_grad(&Self::phi(&problem))?;
            Ok(())
        })
    }

    /// A small non-zero φ, as in the middle of a search.
    pub(super) fn phi(problem: &SearchProblem) -> Vec<f32> {
        let [t, w] = problem.phi_shape();
        (0..t * w)
            .map(|i| ((i as f32 * 0.618).fract() - 0.5) * 1e-2)
            .collect()
    }

    /// The search problem on `k` copies of `cached` (one image's features) with `k` different
    /// target masks.
    pub(super) fn cached_problem(
        &self,
        cached: &Result<ImageFeatures, RowStatus>,
        k: usize,
    ) -> Result<SearchProblem, RowStatus> {
        let features = cached.as_ref().map_err(Clone::clone)?;
        prepare(|| {
            let copies = ImageFeatures {
                fpn: features.fpn.clone().map(|t| t.repeat_dim(0, k)),
                pos: features.pos.clone(),
            };
            self.problem(copies, k)
        })
    }

    pub(super) fn cached_step_row(
        &self,
        stage: String,
        cached: &Result<ImageFeatures, RowStatus>,
        k: usize,
    ) -> BenchRow {
        let problem = match self.cached_problem(cached, k) {
            Ok(problem) => problem,
            Err(status) => return BenchRow::new(stage, k).with_status(status),
        };
        let phi = Self::phi(&problem);
        self.stage(stage, k, |_| {
            problem.loss_and_grad(&phi)?;
            Ok(())
        })
    }

    pub(super) fn whole_search_row(
        &self,
        stage: String,
        cached: &Result<ImageFeatures, RowStatus>,
        k: usize,
        steps: u32,
    ) -> BenchRow {
        let problem = match self.cached_problem(cached, k) {
            Ok(problem) => problem,
            Err(status) => return BenchRow::new(stage, k).with_status(status),
        };
        let settings = SearchSettings {
            steps,
            ..SearchSettings::default()
        };
        // One run of the whole search; the step rows above already warmed the device up.
        let once = Self {
            model: self.model.clone(),
            text: self.text.clone(),
            device: self.device.clone(),
            warmup: 0,
            runs: 1,
        };
        once.stage(stage, k, |_| {
            search(&problem, &settings, None, &SearchControl::default())?;
            Ok(())
        })
    }
}

/// Runs the untimed preparation of a stage, turning an error or a panic into a row status.
pub(super) fn prepare<T>(body: impl FnOnce() -> Result<T, StageError>) -> Result<T, RowStatus> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(classify(format!("preparing the stage: {err}"))),
        Err(payload) => Err(classify(format!(
            "preparing the stage: {}",
            panic_message(payload.as_ref())
        ))),
    }
}

pub(super) fn sync(device: &Device) -> Result<(), BenchError> {
    device.sync().map_err(|e| {
        BenchError::Model(ModelError::InvalidInput {
            reason: format!("device sync failed: {e}"),
        })
    })
}

/// "out of memory" when the message says so (the engine's recognition), else "failed".
pub(super) fn classify(message: String) -> RowStatus {
    match recognise(&message) {
        Failure::OutOfMemory => RowStatus::OutOfMemory { message },
        Failure::DeviceLost | Failure::Other => RowStatus::Failed { message },
    }
}

pub(super) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        format!("panicked: {s}")
    } else if let Some(s) = payload.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_failures() {
        assert!(matches!(
            classify("Buffer allocation: Out of memory".to_owned()),
            RowStatus::OutOfMemory { .. }
        ));
        assert!(matches!(
            classify("An IO error happened\ncan't allocate buffer of size: 859963392".to_owned()),
            RowStatus::OutOfMemory { .. }
        ));
        assert!(matches!(
            classify("shape mismatch".to_owned()),
            RowStatus::Failed { .. }
        ));
    }
}
