//! `m2c bench`: times SAM3 (encode_image, decode) and concept search (one step on K images with
//! cached features or re-encoding them, and a whole search) on the chosen device, with random
//! weights by default, and prints one table row per stage as it finishes: median, min and max
//! milliseconds, peak resident memory of the process, and the GPU allocator's reservation.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::engine::device::plan_for;
use crate::engine::tools::bench::{
    BenchOptions, BenchPreset, BenchReport, BenchRow, RowStatus, run_bench,
};

use super::Cli;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PresetArg {
    /// The released architecture (1008² input).
    Full,
    /// The fixtures' tiny configuration (168² input).
    Tiny,
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Model size with random weights (ignored when --weights is given).
    #[arg(long, value_enum, default_value_t = PresetArg::Full)]
    pub preset: PresetArg,
    /// Model config for --weights (default: config.json beside the weights, else the preset).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Timed runs per stage.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Untimed warm-up runs per stage (shader compilation and autotuning on a GPU).
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Image counts K of the search-step rows, comma-separated.
    #[arg(
        long,
        value_name = "K,...",
        value_delimiter = ',',
        default_value = "1,5,10"
    )]
    pub k: Vec<usize>,
    /// Measure the re-encoding step only up to this K; larger K are derived from the encode
    /// and cached-step figures and marked as estimates (a full-size ViT pass takes minutes on
    /// a CPU).
    #[arg(long, value_name = "K")]
    pub reencode_max_k: Option<usize>,
    /// K of the whole-search row (0 skips it).
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub search_k: usize,
    /// Steps of the whole-search row.
    #[arg(long, default_value_t = 60)]
    pub search_steps: u32,
    /// Derive the whole-search row from the cached step instead of running it (marked as an
    /// estimate; a full-size search takes hours on a few CPU cores).
    #[arg(long)]
    pub estimate_search: bool,
    /// Skip encode_image and feed the decode and search rows random features of the
    /// encoder's output shapes (their cost does not depend on the values).
    #[arg(long)]
    pub synthetic_features: bool,
    /// Memory the process may reach, in GB; search steps extrapolated past it are reported as
    /// not fitting instead of run. Default: 80 % of the memory available at the start.
    #[arg(long, value_name = "GB")]
    pub memory_limit_gb: Option<f64>,
    /// Also write the figures as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

pub fn run(cli: &Cli, args: &BenchArgs) -> anyhow::Result<i32> {
    let options = BenchOptions {
        preset: match args.preset {
            PresetArg::Full => BenchPreset::Full,
            PresetArg::Tiny => BenchPreset::Tiny,
        },
        weights: cli.weights.clone(),
        config: args.config.clone(),
        warmup: args.warmup,
        runs: args.runs,
        ks: args.k.clone(),
        reencode_max_k: args.reencode_max_k,
        search_k: (args.search_k > 0).then_some(args.search_k),
        search_steps: args.search_steps,
        estimate_search: args.estimate_search,
        synthetic_features: args.synthetic_features,
        memory_limit_bytes: args
            .memory_limit_gb
            .filter(|gb| gb.is_finite() && *gb > 0.0)
            .map(|gb| (gb * 1e9) as u64),
    };
    let plan = plan_for(cli.device);
    println!("{}", plan.device_line());
    println!(
        "build profile: {}; {} warm-up + {} timed run(s) per stage",
        crate::engine::tools::bench::build_profile(),
        args.warmup,
        args.runs
    );
    println!("{}", header());
    let report = run_bench(&plan, &options, |row| println!("{}", format_row(row)))
        .context("benchmark failed")?;
    println!("{}", footer(&report));
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(0)
}

const STAGE_WIDTH: usize = 52;

fn header() -> String {
    format!(
        "{:<STAGE_WIDTH$} {:>4} {:>11} {:>11} {:>11} {:>9} {:>9}  status",
        "stage", "runs", "median ms", "min ms", "max ms", "peak RSS", "GPU res."
    )
}

fn format_row(row: &BenchRow) -> String {
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
    let gb = |v: Option<u64>| {
        v.map_or_else(|| "n/a".to_owned(), |b| format!("{:.2} GB", b as f64 / 1e9))
    };
    // The table keeps the first line of a message; the JSON has all of it.
    // The table keeps the end of the root cause (the last line that is not one of cubecl's
    // backtrace notes); the JSON has the whole message.
    let first = |m: &str| {
        let noise = |l: &str| {
            let l = l.trim();
            l.is_empty() || l.starts_with("No backtrace") || l.starts_with("Asked at")
        };
        let last = m
            .lines()
            .rev()
            .find(|l| !noise(l))
            .unwrap_or_default()
            .trim();
        let chars: Vec<char> = last.chars().collect();
        match chars.len().checked_sub(160) {
            Some(skip) if skip > 0 => format!("…{}", chars[skip..].iter().collect::<String>()),
            _ => last.to_owned(),
        }
    };
    let status = match &row.status {
        RowStatus::Measured => "ok".to_owned(),
        RowStatus::Estimated { basis } => format!("estimated: {basis}"),
        RowStatus::Skipped { reason } => format!("skipped: {reason}"),
        RowStatus::OutOfMemory { message } => format!("out of memory: {}", first(message)),
        RowStatus::DoesNotFit {
            need_bytes,
            limit_bytes,
        } => format!(
            "does not fit: needs ≈{:.1} GB, limit {:.1} GB",
            *need_bytes as f64 / 1e9,
            *limit_bytes as f64 / 1e9
        ),
        RowStatus::Failed { message } => format!("failed: {}", first(message)),
    };
    format!(
        "{:<STAGE_WIDTH$} {:>4} {:>11} {:>11} {:>11} {:>9} {:>9}  {status}",
        row.stage,
        row.runs,
        ms(row.median_ms),
        ms(row.min_ms),
        ms(row.max_ms),
        gb(row.peak_rss_bytes),
        gb(row.device_reserved_bytes),
    )
}

fn footer(report: &BenchReport) -> String {
    let rss = if report.rss_peak_per_stage {
        "peak RSS: the process's high-water mark during each stage (reset before it)"
    } else {
        "peak RSS: the process's high-water mark since it started (the kernel refused a reset)"
    };
    format!(
        "input {0}×{0}, {1}; {rss}; GPU res.: the wgpu allocator's reserved bytes after the \
         stage (n/a: the CPU backend does not report it)",
        report.image_size, report.weights
    )
}
