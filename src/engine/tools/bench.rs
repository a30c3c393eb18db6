//! `m2c bench`: wall-clock timings and peak memory of the SAM3 stages and of concept search, on
//! the planned device, with random weights (or a checkpoint). What leaves this module is plain
//! numbers ([`BenchRow`]); the model and its tensors stay here.
//!
//! Stages, each with warm-up runs and then timed runs (median, min, max):
//! - building the model (random weights, or loading the checkpoint): once;
//! - `encode_image` on one image at the model's side S;
//! - `decode` with a text prompt on cached features;
//! - one concept-search step (loss, matching, backward: `SearchProblem::loss_and_grad`) on K
//!   images with cached features, and the same step when the K images are re-encoded first, as
//!   the authors' code does at every step;
//! - a whole search (60 steps by default) on one K with cached features.
//!
//! Memory: the process's peak resident set (`VmHWM`), reset before each stage through
//! `/proc/self/clear_refs` where the kernel allows it (Linux ≥ 4.0; otherwise the figure is the
//! high-water mark since the process started, and [`BenchReport::rss_peak_per_stage`] says so).
//! On a wgpu device the allocator's reserved bytes after the stage are reported too (the pools
//! are cleaned before each stage, so this approximates the stage's peak); burn's CPU backend does
//! not report its allocator.
//!
//! A stage that panics (a GPU allocation failure surfaces as a panic in the runtime) becomes a
//! row "out of memory" or "failed" instead of ending the run. An allocation failure on the CPU
//! aborts the process and cannot be caught, so a search step whose memory need, extrapolated from
//! the smaller K already measured, exceeds the memory limit is reported as not fitting and not
//! run.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::{Module as _, ModuleVisitor, Param};
use burn::tensor::{Bool, Device, Distribution, Int, Tensor, TensorData};
use serde::Serialize;

use crate::concept::file::{EmbeddingSite, SearchSettings};
use crate::concept::{
    BasePrompt, BinaryMask, ConceptError, ImageTargets, SearchControl, SearchProblem, search,
};
use crate::engine::device::{DeviceError, DevicePlan, open};
use crate::engine::error::EngineError;
use crate::engine::weights::{CHECKPOINT_FILE, inspect_checkpoint};
use crate::model::config::TextConfig;
use crate::model::neck::sine_position_encoding;
use crate::model::{ImageFeatures, ModelError, Prompt, Sam3, Sam3Config, WeightPrecision};

/// Errors that stop a benchmark before it measures anything.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Checkpoint(#[from] EngineError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Concept(#[from] ConceptError),
    #[error("invalid benchmark options: {reason}")]
    InvalidOptions { reason: String },
}

/// Model size used when no checkpoint is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchPreset {
    /// The released architecture (1008² input, 32-block ViT).
    #[default]
    Full,
    /// The fixtures' tiny configuration (168² input).
    Tiny,
}

/// What to measure.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchOptions {
    pub preset: BenchPreset,
    /// A checkpoint to load instead of random weights.
    pub weights: Option<PathBuf>,
    /// Config for the checkpoint (default: `config.json` beside it, else the preset).
    pub config: Option<PathBuf>,
    /// Untimed runs before the timed ones.
    pub warmup: usize,
    /// Timed runs per stage.
    pub runs: usize,
    /// Image counts K of the search-step rows.
    pub ks: Vec<usize>,
    /// Re-encoding rows are measured up to this K; larger K are derived as
    /// K × encode + cached step and marked as estimates. `None` = measure all.
    pub reencode_max_k: Option<usize>,
    /// K of the whole-search row; `None` skips it.
    pub search_k: Option<usize>,
    /// Steps of the whole-search row.
    pub search_steps: u32,
    /// Skip `encode_image` and give the decode and search rows random features of the
    /// encoder's output shapes (their cost does not depend on the values).
    pub synthetic_features: bool,
    /// Derive the whole-search row as steps × the cached step of that K instead of running it
    /// (a full-size search on a few CPU cores takes hours).
    pub estimate_search: bool,
    /// Bytes the process may reach; a search step extrapolated past it is not run.
    /// `None` = 80 % of what is available when the benchmark starts.
    pub memory_limit_bytes: Option<u64>,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            preset: BenchPreset::Full,
            weights: None,
            config: None,
            warmup: 1,
            runs: 3,
            ks: vec![1, 5, 10],
            reencode_max_k: None,
            search_k: Some(1),
            search_steps: SearchSettings::default().steps,
            estimate_search: false,
            synthetic_features: false,
            memory_limit_bytes: None,
        }
    }
}

/// How a row was obtained.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RowStatus {
    /// Timed as described.
    Measured,
    /// Computed from other rows, not run.
    Estimated { basis: String },
    /// The stage ran out of memory (caught).
    OutOfMemory { message: String },
    /// Not run on request.
    Skipped { reason: String },
    /// Not run: the extrapolated need exceeds the limit.
    DoesNotFit { need_bytes: u64, limit_bytes: u64 },
    /// The stage failed for another reason.
    Failed { message: String },
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchRow {
    pub stage: String,
    /// Images the stage works on (0 where it does not apply).
    pub images: usize,
    /// Timed runs behind the figures.
    pub runs: usize,
    pub median_ms: Option<f64>,
    pub min_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// Peak resident set of the process during the stage (see the module doc).
    pub peak_rss_bytes: Option<u64>,
    /// wgpu allocator reservation after the stage; `None` where the backend does not report it.
    pub device_reserved_bytes: Option<u64>,
    #[serde(flatten)]
    pub status: RowStatus,
}

impl BenchRow {
    fn new(stage: String, images: usize) -> Self {
        Self {
            stage,
            images,
            runs: 0,
            median_ms: None,
            min_ms: None,
            max_ms: None,
            peak_rss_bytes: None,
            device_reserved_bytes: None,
            status: RowStatus::Measured,
        }
    }

    fn with_status(mut self, status: RowStatus) -> Self {
        self.status = status;
        self
    }
}

/// Everything a benchmark run measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// `m2c doctor`'s device line.
    pub device: String,
    /// Cargo profile the binary was built with (`dev` or `release`).
    pub profile: &'static str,
    pub preset: BenchPreset,
    /// Where the weights came from.
    pub weights: String,
    /// Input side S.
    pub image_size: usize,
    pub warmup: usize,
    /// Float parameters of the model and the bytes they occupy.
    pub weight_params: u64,
    pub weight_bytes: u64,
    /// Whether the peak RSS was reset before each stage (else: since the process started).
    pub rss_peak_per_stage: bool,
    pub memory_limit_bytes: u64,
    pub rows: Vec<BenchRow>,
}

/// The Cargo profile of this build.
pub const fn build_profile() -> &'static str {
    if cfg!(debug_assertions) {
        "dev"
    } else {
        "release"
    }
}

/// Runs the benchmark on the planned device; `on_row` sees each row as soon as it is known
/// (a full-size run takes minutes).
pub fn run_bench(
    plan: &DevicePlan,
    options: &BenchOptions,
    mut on_row: impl FnMut(&BenchRow),
) -> Result<BenchReport, BenchError> {
    check_options(options)?;
    let device = open(plan)?;
    let rss_peak_per_stage = reset_peak_rss();
    let memory_limit_bytes = options
        .memory_limit_bytes
        .or_else(default_memory_limit)
        .unwrap_or(u64::MAX);
    let mut rows = Vec::new();
    let mut emit = |row: BenchRow, rows: &mut Vec<BenchRow>| {
        on_row(&row);
        rows.push(row);
    };

    // Model.
    let (config, weights_source) = bench_config(options)?;
    let start = Instant::now();
    let model = match &options.weights {
        Some(path) => Sam3::load(
            &config,
            &checkpoint_file(path)?,
            WeightPrecision::F32,
            &device,
        )?,
        None => {
            config.validate()?;
            config.init(&device)
        }
    };
    // Parameters are initialised lazily on first use; do it here so encode is timed alone.
    // With synthetic features the ViT never runs, and its weights (over half the model) stay
    // uninitialised: that keeps a full-size run inside a small machine's memory.
    let mut weights = WeightBytes::default();
    if options.synthetic_features {
        model.vision_encoder.neck.visit(&mut weights);
        model.text_encoder.visit(&mut weights);
        model.text_projection.visit(&mut weights);
        model.geometry_encoder.visit(&mut weights);
        model.detr_encoder.visit(&mut weights);
        model.detr_decoder.visit(&mut weights);
        model.mask_decoder.visit(&mut weights);
        model.dot_product_scoring.visit(&mut weights);
    } else {
        model.visit(&mut weights);
    }
    sync(&device)?;
    let mut row = BenchRow::new(
        format!(
            "build model ({} params, {:.2} GB{})",
            weights.params,
            weights.bytes as f64 / 1e9,
            if options.synthetic_features {
                ", no ViT"
            } else {
                ""
            }
        ),
        0,
    );
    let ms = start.elapsed().as_secs_f64() * 1e3;
    row.runs = 1;
    (row.median_ms, row.min_ms, row.max_ms) = (Some(ms), Some(ms), Some(ms));
    row.peak_rss_bytes = peak_rss();
    row.device_reserved_bytes = device_reserved(&device);
    emit(row, &mut rows);

    let bench = Bench {
        model,
        text: config.text_config.clone(),
        device,
        warmup: options.warmup,
        runs: options.runs,
    };
    let size = bench.model.image_size;

    // encode_image and decode.
    // The last run's features serve every cached-feature row: the cost of decoding does not
    // depend on the values, and encoding K images at full size would take K ViT passes.
    let mut last = None;
    let encode = if options.synthetic_features {
        BenchRow::new("encode_image, 1 image".to_owned(), 1).with_status(RowStatus::Skipped {
            reason: "synthetic features of the encoder's shapes (--synthetic-features)".to_owned(),
        })
    } else {
        bench.stage("encode_image, 1 image".to_owned(), 1, |b| {
            last = Some(b.encode(1)?);
            Ok(())
        })
    };
    let encode_ms = encode.median_ms;
    let cached = match (last, &encode.status) {
        (Some(features), RowStatus::Measured) => Ok(features),
        (_, RowStatus::Measured) => prepare(|| bench.encode(1)),
        (_, RowStatus::Skipped { .. }) => prepare(|| Ok(bench.synthetic_features(&config))),
        (_, status) => Err(status.clone()),
    };
    emit(encode, &mut rows);
    let stage = "decode, text prompt, cached features".to_owned();
    let decode = match &cached {
        Ok(features) => bench.stage(stage, 1, |b| b.decode(features)),
        Err(status) => BenchRow::new(stage, 1).with_status(status.clone()),
    };
    emit(decode, &mut rows);

    // Search steps, cached and re-encoding.
    let mut cached_peaks: Vec<(usize, u64)> = Vec::new();
    let mut cached_ms: Vec<(usize, f64)> = Vec::new();
    // A step that needs more memory than the cached one cannot run where that one did not fit.
    let mut cached_misfits: Vec<(usize, RowStatus)> = Vec::new();
    for &k in &options.ks {
        let stage = format!("search step, K={k}, cached features");
        let resident = cached
            .as_ref()
            .ok()
            .map(|f| resident_bytes_per_image(f, size));
        let row = match bench.fits(k, &cached_peaks, resident, memory_limit_bytes) {
            Err(status) => BenchRow::new(stage, k).with_status(status),
            Ok(()) => bench.cached_step_row(stage, &cached, k),
        };
        if let (RowStatus::Measured, Some(peak)) = (&row.status, row.peak_rss_bytes) {
            cached_peaks.push((k, peak));
        }
        if let (RowStatus::Measured, Some(ms)) = (&row.status, row.median_ms) {
            cached_ms.push((k, ms));
        }
        if matches!(
            row.status,
            RowStatus::DoesNotFit { .. } | RowStatus::OutOfMemory { .. }
        ) {
            cached_misfits.push((k, row.status.clone()));
        }
        emit(row, &mut rows);
    }
    let mut reencode_peaks: Vec<(usize, u64)> = Vec::new();
    for &k in &options.ks {
        let stage = format!("search step, K={k}, re-encoding");
        let derive = options.reencode_max_k.is_some_and(|max| k > max);
        let misfit = cached_misfits.iter().find(|(m, _)| *m == k);
        let row = if let Some((_, status)) = misfit {
            BenchRow::new(stage, k).with_status(status.clone())
        } else if derive {
            estimated_reencode_row(stage, k, encode_ms, &cached_ms)
        } else {
            match bench.fits(k, &reencode_peaks, None, memory_limit_bytes) {
                Err(status) => BenchRow::new(stage, k).with_status(status),
                Ok(()) => bench.reencode_step_row(stage, k),
            }
        };
        if let (RowStatus::Measured, Some(peak)) = (&row.status, row.peak_rss_bytes) {
            reencode_peaks.push((k, peak));
        }
        emit(row, &mut rows);
    }

    // A whole search.
    if let Some(k) = options.search_k {
        let steps = options.search_steps;
        let stage = format!("search {steps} steps, K={k}, cached features");
        let misfit = cached_misfits.iter().find(|(m, _)| *m == k);
        let row = if let Some((_, status)) = misfit {
            BenchRow::new(stage, k).with_status(status.clone())
        } else if options.estimate_search {
            estimated_search_row(stage, k, steps, &cached_ms)
        } else {
            let resident = cached
                .as_ref()
                .ok()
                .map(|f| resident_bytes_per_image(f, size));
            match bench.fits(k, &cached_peaks, resident, memory_limit_bytes) {
                Err(status) => BenchRow::new(stage, k).with_status(status),
                Ok(()) => bench.whole_search_row(stage, &cached, k, steps),
            }
        };
        emit(row, &mut rows);
    }

    Ok(BenchReport {
        device: plan.device_line(),
        profile: build_profile(),
        preset: options.preset,
        weights: weights_source,
        image_size: size,
        warmup: options.warmup,
        weight_params: weights.params,
        weight_bytes: weights.bytes,
        rss_peak_per_stage,
        memory_limit_bytes,
        rows,
    })
}

fn check_options(options: &BenchOptions) -> Result<(), BenchError> {
    let invalid = |reason: &str| {
        Err(BenchError::InvalidOptions {
            reason: reason.to_owned(),
        })
    };
    if options.runs == 0 {
        return invalid("at least one timed run is needed");
    }
    if options.ks.contains(&0) || options.search_k == Some(0) {
        return invalid("K must be at least 1");
    }
    if options.search_steps == 0 {
        return invalid("a search needs at least one step");
    }
    Ok(())
}

/// The model configuration and a description of the weights.
fn bench_config(options: &BenchOptions) -> Result<(Sam3Config, String), BenchError> {
    let preset = || match options.preset {
        BenchPreset::Full => Sam3Config::full(),
        BenchPreset::Tiny => Sam3Config::tiny(),
    };
    let preset_name = match options.preset {
        BenchPreset::Full => "full",
        BenchPreset::Tiny => "tiny",
    };
    match &options.weights {
        None => Ok((preset(), format!("random weights, {preset_name} preset"))),
        Some(path) => {
            let file = checkpoint_file(path)?;
            let beside = file.parent().map(|dir| dir.join("config.json"));
            let config = match (&options.config, beside) {
                (Some(config), _) => Sam3Config::from_file(config)?,
                (None, Some(beside)) if beside.is_file() => Sam3Config::from_file(&beside)?,
                _ => preset(),
            };
            Ok((config, file.display().to_string()))
        }
    }
}

/// `path` or `path/model.safetensors`, after a header check that names a wrong file early.
fn checkpoint_file(path: &Path) -> Result<PathBuf, BenchError> {
    let file = if path.is_dir() {
        path.join(CHECKPOINT_FILE)
    } else {
        path.to_owned()
    };
    match inspect_checkpoint(&file) {
        // bare `Sam3Model` names (no `detector_model.` prefix) may still load
        Ok(_) | Err(EngineError::NotSam3 { .. }) => Ok(file),
        Err(err) => Err(err.into()),
    }
}

/// Counts (and thereby materialises) every float parameter.
#[derive(Debug, Default)]
struct WeightBytes {
    params: u64,
    bytes: u64,
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
enum StageError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Concept(#[from] ConceptError),
    #[error("device: {0}")]
    Device(String),
}

/// The model and device under test.
struct Bench {
    model: Sam3,
    /// Special token ids and context length of the text tower.
    text: TextConfig,
    device: Device,
    warmup: usize,
    runs: usize,
}

impl Bench {
    /// Runs `body` `warmup + runs` times and times the last `runs`; panics become rows.
    fn stage(
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
    fn encode(&self, k: usize) -> Result<ImageFeatures, StageError> {
        self.encode_images(&self.images(k))
    }

    /// The first `k` test images.
    fn images(&self, k: usize) -> Vec<Tensor<4>> {
        (0..k).map(|i| self.pixels(i)).collect()
    }

    fn encode_images(&self, images: &[Tensor<4>]) -> Result<ImageFeatures, StageError> {
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
    fn synthetic_features(&self, config: &Sam3Config) -> ImageFeatures {
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
    fn pixels(&self, index: usize) -> Tensor<4> {
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
    fn prompt_ids(&self) -> (Tensor<2, Int>, Tensor<2, Bool>) {
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

    fn decode(&self, features: &ImageFeatures) -> Result<(), StageError> {
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
    fn targets(&self, k: usize) -> Result<Vec<ImageTargets>, StageError> {
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

    fn base_prompt(&self) -> Result<BasePrompt, StageError> {
        let (ids, valid) = self.prompt_ids();
        Ok(BasePrompt::new(
            &self.model,
            ids,
            valid,
            EmbeddingSite::TextInput,
        )?)
    }

    fn problem(&self, features: ImageFeatures, k: usize) -> Result<SearchProblem, StageError> {
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
    fn reencode_step_row(&self, stage: String, k: usize) -> BenchRow {
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
    fn phi(problem: &SearchProblem) -> Vec<f32> {
        let [t, w] = problem.phi_shape();
        (0..t * w)
            .map(|i| ((i as f32 * 0.618).fract() - 0.5) * 1e-2)
            .collect()
    }

    /// The search problem on `k` copies of `cached` (one image's features) with `k` different
    /// target masks.
    fn cached_problem(
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

    fn cached_step_row(
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

    fn whole_search_row(
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

    /// `Ok` when a step on `k` images should fit in `limit`, judged from the peaks measured on
    /// smaller K (see [`extrapolate_need`]).
    fn fits(
        &self,
        k: usize,
        measured: &[(usize, u64)],
        resident_per_image: Option<u64>,
        limit: u64,
    ) -> Result<(), RowStatus> {
        let baseline = current_rss().unwrap_or(0);
        let Some(need) = extrapolate_need(k, measured, baseline, resident_per_image) else {
            return Ok(());
        };
        if need > limit {
            Err(RowStatus::DoesNotFit {
                need_bytes: need,
                limit_bytes: limit,
            })
        } else {
            Ok(())
        }
    }
}

/// The memory a step on `k` images needs, from peaks measured at other K; `None` when nothing
/// was measured or `k` is not above every measured K (those run anyway). Linear in K: through
/// the last two points; from one point, each further image adds `resident_per_image` when given
/// (a cached search step differentiates one image at a time, so only the images' features and
/// targets accumulate), else everything above `baseline` scales with K (a re-encoding step
/// runs the ViT on all K at once).
fn extrapolate_need(
    k: usize,
    measured: &[(usize, u64)],
    baseline: u64,
    resident_per_image: Option<u64>,
) -> Option<u64> {
    let mut points: Vec<(usize, u64)> = measured.iter().copied().filter(|&(m, _)| m < k).collect();
    points.sort_unstable();
    let &(k1, p1) = points.last()?;
    let per_image = match (points.len(), resident_per_image) {
        (1, Some(bytes)) => bytes as f64,
        (1, None) => p1.saturating_sub(baseline) as f64 / k1 as f64,
        (n, _) => {
            let (k0, p0) = points[n - 2];
            (p1 as f64 - p0 as f64).max(0.0) / (k1 - k0) as f64
        }
    };
    Some((p1 as f64 + per_image * (k - k1) as f64) as u64)
}

/// What one more image keeps resident during a cached search step: its features (counted
/// twice: the bench's repeated copy and the search's lifted slice) and three mask-sized
/// targets (semantic and instances, S² floats each).
fn resident_bytes_per_image(features: &ImageFeatures, size: usize) -> u64 {
    let floats: usize = features
        .fpn
        .iter()
        .map(|t| t.dims().iter().skip(1).product::<usize>())
        .sum();
    (2 * floats * 4 + 3 * size * size * 4) as u64
}

/// A re-encoding step derived as K encodes plus the cached step of the same K.
fn estimated_reencode_row(
    stage: String,
    k: usize,
    encode_ms: Option<f64>,
    cached_ms: &[(usize, f64)],
) -> BenchRow {
    let cached = cached_ms.iter().find(|(m, _)| *m == k).map(|(_, ms)| *ms);
    match (encode_ms, cached) {
        (Some(encode), Some(cached)) => {
            let ms = k as f64 * encode + cached;
            let mut row = BenchRow::new(stage, k).with_status(RowStatus::Estimated {
                basis: format!("{k} × encode_image median + cached step K={k}"),
            });
            row.median_ms = Some(ms);
            row
        }
        _ => BenchRow::new(stage, k).with_status(RowStatus::Failed {
            message: "not measured, and the encode or cached-step figure to derive it is missing"
                .to_owned(),
        }),
    }
}

/// Runs the untimed preparation of a stage, turning an error or a panic into a row status.
fn prepare<T>(body: impl FnOnce() -> Result<T, StageError>) -> Result<T, RowStatus> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(classify(format!("preparing the stage: {err}"))),
        Err(payload) => Err(classify(format!(
            "preparing the stage: {}",
            panic_message(payload.as_ref())
        ))),
    }
}

/// A whole search derived as `steps` × the cached step of the same K.
fn estimated_search_row(
    stage: String,
    k: usize,
    steps: u32,
    cached_ms: &[(usize, f64)],
) -> BenchRow {
    match cached_ms.iter().find(|(m, _)| *m == k) {
        Some((_, step)) => {
            let mut row = BenchRow::new(stage, k).with_status(RowStatus::Estimated {
                basis: format!("{steps} × cached step K={k}"),
            });
            row.median_ms = Some(f64::from(steps) * step);
            row
        }
        None => BenchRow::new(stage, k).with_status(RowStatus::Failed {
            message: format!("not run, and no measured cached step K={k} to derive it from"),
        }),
    }
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn sync(device: &Device) -> Result<(), BenchError> {
    device.sync().map_err(|e| {
        BenchError::Model(ModelError::InvalidInput {
            reason: format!("device sync failed: {e}"),
        })
    })
}

/// "out of memory" when the message says so, else "failed".
fn classify(message: String) -> RowStatus {
    let lower = message.to_ascii_lowercase();
    let oom = [
        "out of memory",
        "outofmemory",
        "memory allocation",
        "allocation failed",
        "can't allocate",
    ]
    .iter()
    .any(|needle| lower.contains(needle));
    if oom {
        RowStatus::OutOfMemory { message }
    } else {
        RowStatus::Failed { message }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        format!("panicked: {s}")
    } else if let Some(s) = payload.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked".to_owned()
    }
}

fn device_reserved(device: &Device) -> Option<u64> {
    device.memory_pool_usage().map(|u| u.bytes_reserved)
}

/// Resets the kernel's peak-RSS counter of this process to its current RSS (Linux ≥ 4.0).
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// `VmHWM`: the process's peak resident set, in bytes.
fn peak_rss() -> Option<u64> {
    status_kib("VmHWM:").map(|kib| kib * 1024)
}

/// `VmRSS`: the current resident set, in bytes.
fn current_rss() -> Option<u64> {
    status_kib("VmRSS:").map(|kib| kib * 1024)
}

fn status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    kib_field(&status, key)
}

fn kib_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// 80 % of (available memory + what this process already holds).
fn default_memory_limit() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let available = kib_field(&meminfo, "MemAvailable:")? * 1024;
    let own = current_rss().unwrap_or(0);
    Some((available + own) / 5 * 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[1.0, 2.0, 9.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 4.0, 9.0]), 3.0);
    }

    #[test]
    fn extrapolates_memory_linearly_in_k() {
        // Nothing measured below K: run it.
        assert_eq!(extrapolate_need(1, &[], 100, None), None);
        assert_eq!(extrapolate_need(1, &[(1, 500)], 100, None), None);
        // One point: everything above the baseline scales with K …
        assert_eq!(
            extrapolate_need(5, &[(1, 500)], 100, None),
            Some(500 + 4 * 400)
        );
        // … or, when known, only each image's resident data.
        assert_eq!(
            extrapolate_need(5, &[(1, 500)], 100, Some(30)),
            Some(500 + 4 * 30)
        );
        // Two points: the line through them.
        assert_eq!(
            extrapolate_need(10, &[(1, 500), (5, 900)], 100, Some(30)),
            Some(900 + 5 * 100)
        );
    }

    #[test]
    fn reads_kib_fields_and_classifies_failures() {
        let text = "Name:\tm2c\nVmHWM:\t  123456 kB\nVmRSS:\t 42 kB\n";
        assert_eq!(kib_field(text, "VmHWM:"), Some(123_456));
        assert_eq!(kib_field(text, "VmSwap:"), None);
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
