//! `m2c segment --weights W --text "polyp" IMAGE... --out DIR`: SAM3 with a text prompt on each
//! image; writes `DIR/<stem>.png` (union of the kept instance masks, 0/255, at the image's
//! size) and `DIR/instances.json` (per image: mask file, size, seconds, and each instance's
//! query, score and box in pixels).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};
use serde::Serialize;

use crate::engine::device::plan_for;
use crate::engine::inference::{Segmentation, Segmenter};
use crate::engine::weights::locate;
use crate::study::{LabelMap, MaskEncoding, mask_path_for, write_mask_png};

use super::Cli;

/// Name of the instances file written into the output folder.
pub const INSTANCES_FILE: &str = "instances.json";

#[derive(Debug, clap::Args)]
pub struct SegmentArgs {
    /// Images to segment (PNG, JPEG, BMP, TIFF).
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<PathBuf>,
    /// The concept to find, e.g. "polyp".
    #[arg(long, value_name = "TEXT")]
    pub text: String,
    /// Output folder for the masks and instances.json (created if needed).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Model config (HF `Sam3Config` JSON). Default: config.json beside the weights, else the
    /// released model's configuration.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Keep instances whose score (sigmoid(logit)·sigmoid(presence)) exceeds this.
    #[arg(long, value_name = "SCORE", default_value_t = 0.5)]
    pub threshold: f32,
}

#[derive(Serialize)]
struct ImageReport<'a> {
    image: &'a Path,
    mask: PathBuf,
    width: usize,
    height: usize,
    seconds: f64,
    instances: Vec<InstanceReport>,
}

#[derive(Serialize)]
struct InstanceReport {
    query: usize,
    score: f32,
    /// (x0, y0, x1, y1) in image pixels, as the model gives it (not clamped to the image).
    box_xyxy: [f32; 4],
}

#[derive(Serialize)]
struct Report<'a> {
    text: &'a str,
    threshold: f32,
    config: &'a str,
    tokenizer: &'a str,
    images: Vec<ImageReport<'a>>,
}

pub fn run(cli: &Cli, args: &SegmentArgs) -> anyhow::Result<i32> {
    let search = locate(cli.weights.as_deref());
    let Some(weights) = search.found else {
        let looked: Vec<String> = search
            .looked
            .iter()
            .map(|p| format!("  {}", p.display()))
            .collect();
        bail!(
            "SAM3 weights not found; pass --weights PATH (or set M2C_WEIGHTS). Looked in:\n{}",
            looked.join("\n")
        );
    };
    check_distinct_stems(&args.images)?;
    let plan = plan_for(cli.device);
    println!("{}", plan.device_line());
    let start = Instant::now();
    let segmenter = Segmenter::load(&weights, args.config.as_deref(), &plan)
        .with_context(|| format!("cannot load the SAM3 model from {}", weights.display()))?;
    println!(
        "model: {} (config: {}; tokenizer: {}) loaded in {:.2} s",
        weights.display(),
        segmenter.config_source,
        segmenter.tokenizer_source,
        start.elapsed().as_secs_f64()
    );
    let text = segmenter
        .encode_text(&args.text)
        .with_context(|| format!("cannot encode the prompt {:?}", args.text))?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output folder {}", args.out.display()))?;
    let mut images = Vec::with_capacity(args.images.len());
    for path in &args.images {
        let start = Instant::now();
        let seg = segmenter
            .segment_file(path, &text, args.threshold)
            .with_context(|| format!("cannot segment {}", path.display()))?;
        let seconds = start.elapsed().as_secs_f64();
        let mask = mask_path_for(path, None, &args.out);
        write_mask_png(&mask, &label_map(&seg)?, MaskEncoding::Binary)
            .with_context(|| format!("cannot write mask {}", mask.display()))?;
        println!(
            "{}: {} instance(s), {} foreground px, {seconds:.2} s -> {}",
            path.display(),
            seg.instances.len(),
            seg.mask.iter().filter(|m| **m).count(),
            mask.display()
        );
        images.push(ImageReport {
            image: path,
            mask,
            width: seg.width,
            height: seg.height,
            seconds,
            instances: seg
                .instances
                .iter()
                .map(|i| InstanceReport {
                    query: i.query,
                    score: i.score,
                    box_xyxy: i.box_xyxy,
                })
                .collect(),
        });
    }
    let report = Report {
        text: &args.text,
        threshold: args.threshold,
        config: &segmenter.config_source,
        tokenizer: &segmenter.tokenizer_source,
        images,
    };
    let json_path = args.out.join(INSTANCES_FILE);
    let json = serde_json::to_string_pretty(&report)?;
    std::fs::write(&json_path, json)
        .with_context(|| format!("cannot write {}", json_path.display()))?;
    println!(
        "wrote {} mask(s) and {}",
        report.images.len(),
        json_path.display()
    );
    Ok(0)
}

/// Masks are named by stem, so two inputs with one stem would overwrite each other.
fn check_distinct_stems(images: &[PathBuf]) -> anyhow::Result<()> {
    let mut seen = BTreeSet::new();
    for path in images {
        let stem = path.file_stem().unwrap_or_default().to_owned();
        if !seen.insert(stem) {
            bail!(
                "two images share the name {:?}; their masks would overwrite each other",
                path.file_stem().unwrap_or_default()
            );
        }
    }
    Ok(())
}

fn label_map(seg: &Segmentation) -> anyhow::Result<LabelMap> {
    let (Ok(width), Ok(height)) = (u32::try_from(seg.width), u32::try_from(seg.height)) else {
        bail!("image of {}×{} pixels is too large", seg.width, seg.height);
    };
    let mut map = LabelMap::new(width, height);
    map.labels = seg.mask.iter().map(|m| u16::from(*m)).collect();
    Ok(map)
}
