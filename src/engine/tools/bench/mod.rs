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

mod memory;
mod report;
mod stages;

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module as _;
use serde::Serialize;

use crate::concept::ConceptError;
use crate::concept::file::SearchSettings;
use crate::engine::device::{DeviceError, DevicePlan, open};
use crate::engine::error::CheckpointError;
use crate::engine::weights::{CHECKPOINT_FILE, inspect_checkpoint};
use crate::model::{ModelError, Sam3, Sam3Config, WeightPrecision};
use memory::{
    default_memory_limit, device_reserved, fits, peak_rss, reset_peak_rss, resident_bytes_per_image,
};
use report::{estimated_reencode_row, estimated_search_row};
use stages::{Bench, WeightBytes, prepare, sync};

pub use report::{BenchReport, BenchRow, RowStatus, build_profile};
/// Errors that stop a benchmark before it measures anything.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
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
        let row = match fits(k, &cached_peaks, resident, memory_limit_bytes) {
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
            match fits(k, &reencode_peaks, None, memory_limit_bytes) {
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
            match fits(k, &cached_peaks, resident, memory_limit_bytes) {
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
        Ok(_) | Err(CheckpointError::NotSam3 { .. }) => Ok(file),
        Err(err) => Err(err.into()),
    }
}
