//! `m2c segment --weights W --text "polyp" IMAGE... --out DIR`: SAM3 with a text prompt on each
//! image; writes `DIR/<stem>.png` (union of the kept instance masks, 0/255, at the image's
//! size) and `DIR/instances.json` (per image: mask file, size, seconds, and each instance's
//! query, score and box in pixels).
//!
//! `--box x1,y1,x2,y2` (image pixels) adds the interactive head: the object in the box, the best
//! of three candidates by predicted IoU. Alone, its mask is `DIR/<stem>.png`; with `--text` it is
//! `DIR/<stem>_box.png`. Both prompts share one ViT pass per image.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};
use serde::Serialize;

use crate::study::mask_path_for;

use super::Cli;
use super::model::{load_segmenter_at, write_binary_mask};

/// Name of the instances file written into the output folder.
pub const INSTANCES_FILE: &str = "instances.json";

#[derive(Debug, clap::Args)]
pub struct SegmentArgs {
    /// Images to segment (PNG, JPEG, BMP, TIFF).
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<PathBuf>,
    /// The concept to find, e.g. "polyp".
    #[arg(long, value_name = "TEXT", required_unless_present = "box_xyxy")]
    pub text: Option<String>,
    /// Segment the object in this box, x1,y1,x2,y2 in image pixels (needs the tracker weights:
    /// the full facebook/sam3 checkpoint, or sam3_tracker_model.safetensors beside the weights).
    #[arg(long = "box", value_name = "X1,Y1,X2,Y2", value_parser = parse_box)]
    pub box_xyxy: Option<[f32; 4]>,
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
    /// The text prompt's mask (or the box mask without `--text`).
    mask: PathBuf,
    width: usize,
    height: usize,
    seconds: f64,
    instances: Vec<InstanceReport>,
    #[serde(rename = "box", skip_serializing_if = "Option::is_none")]
    boxed: Option<BoxReport>,
}

#[derive(Serialize)]
struct BoxReport {
    mask: PathBuf,
    /// The prompt (x1, y1, x2, y2) in image pixels.
    box_xyxy: [f32; 4],
    /// Predicted IoU of the returned candidate, and of all three.
    iou: f32,
    candidate: usize,
    candidate_iou: Vec<f32>,
    object_score_logit: f32,
    foreground_px: usize,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tracker: Option<&'a str>,
    threshold: f32,
    config: &'a str,
    tokenizer: &'a str,
    images: Vec<ImageReport<'a>>,
}

pub fn run(cli: &Cli, args: &SegmentArgs) -> anyhow::Result<i32> {
    check_distinct_stems(&args.images)?;
    let (mut segmenter, weights) = load_segmenter_at(cli, args.config.as_deref())?;
    if args.box_xyxy.is_some() {
        let start = Instant::now();
        segmenter
            .load_tracker(&weights, args.config.as_deref())
            .with_context(|| {
                format!(
                    "cannot load the interactive (box) head from {}",
                    weights.display()
                )
            })?;
        println!(
            "tracker: {} loaded in {:.2} s",
            segmenter.tracker_source.as_deref().unwrap_or("?"),
            start.elapsed().as_secs_f64()
        );
    }
    let text = match &args.text {
        Some(text) => Some(
            segmenter
                .encode_text(text)
                .with_context(|| format!("cannot encode the prompt {text:?}"))?,
        ),
        None => None,
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output folder {}", args.out.display()))?;
    let mut images = Vec::with_capacity(args.images.len());
    for path in &args.images {
        let start = Instant::now();
        let result = segmenter
            .run_file(
                path,
                text.as_ref().map(|t| (t, args.threshold)),
                args.box_xyxy,
            )
            .with_context(|| format!("cannot segment {}", path.display()))?;
        let seconds = start.elapsed().as_secs_f64();
        let mask = mask_path_for(path, None, &args.out);
        let mut report = ImageReport {
            image: path,
            mask: mask.clone(),
            width: 0,
            height: 0,
            seconds,
            instances: Vec::new(),
            boxed: None,
        };
        if let Some(seg) = &result.text {
            write_binary_mask(&mask, seg.width, seg.height, &seg.mask)?;
            println!(
                "{}: {} instance(s), {} foreground px, {seconds:.2} s -> {}",
                path.display(),
                seg.instances.len(),
                seg.mask.iter().filter(|m| **m).count(),
                mask.display()
            );
            report.width = seg.width;
            report.height = seg.height;
            report.instances = seg
                .instances
                .iter()
                .map(|i| InstanceReport {
                    query: i.query,
                    score: i.score,
                    box_xyxy: i.box_xyxy,
                })
                .collect();
        }
        if let Some(boxed) = &result.boxed {
            let box_path = if result.text.is_some() {
                box_mask_path(&mask)
            } else {
                mask.clone()
            };
            write_binary_mask(&box_path, boxed.width, boxed.height, &boxed.mask)?;
            let foreground_px = boxed.mask.iter().filter(|m| **m).count();
            println!(
                "{}: box {:?}, candidate {} of 3 (predicted IoU {:.3}), {foreground_px} foreground px, \
                 {seconds:.2} s -> {}",
                path.display(),
                boxed.box_xyxy,
                boxed.best + 1,
                boxed.iou,
                box_path.display()
            );
            report.width = boxed.width;
            report.height = boxed.height;
            report.boxed = Some(BoxReport {
                mask: box_path,
                box_xyxy: boxed.box_xyxy,
                iou: boxed.iou,
                candidate: boxed.best,
                candidate_iou: boxed.candidate_iou.clone(),
                object_score_logit: boxed.object_score_logit,
                foreground_px,
            });
        }
        images.push(report);
    }
    let report = Report {
        text: args.text.as_deref(),
        tracker: segmenter.tracker_source.as_deref(),
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

/// `DIR/<stem>.png` → `DIR/<stem>_box.png`.
fn box_mask_path(mask: &Path) -> PathBuf {
    let stem = mask
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "mask".to_owned());
    mask.with_file_name(format!("{stem}_box.png"))
}

/// `x1,y1,x2,y2` in image pixels: four finite numbers with x1 < x2 and y1 < y2.
fn parse_box(text: &str) -> Result<[f32; 4], String> {
    let values: Vec<f32> = text
        .split(',')
        .map(|part| {
            part.trim()
                .parse::<f32>()
                .map_err(|_| format!("{:?} is not a number", part.trim()))
        })
        .collect::<Result<_, _>>()?;
    let [x1, y1, x2, y2] = values[..] else {
        return Err(format!(
            "expected 4 comma-separated numbers x1,y1,x2,y2, got {}",
            values.len()
        ));
    };
    if values.iter().any(|v| !v.is_finite()) {
        return Err("box coordinates must be finite".to_owned());
    }
    if x1 >= x2 || y1 >= y2 {
        return Err(format!(
            "need x1 < x2 and y1 < y2 (top-left, then bottom-right corner), got {x1},{y1},{x2},{y2}"
        ));
    }
    Ok([x1, y1, x2, y2])
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_boxes() {
        assert_eq!(parse_box("1,2.5, 30,40"), Ok([1.0, 2.5, 30.0, 40.0]));
        assert!(parse_box("1,2,3").is_err());
        assert!(parse_box("1,2,3,x").is_err());
        assert!(parse_box("10,2,3,40").is_err());
        assert!(parse_box("1,2,3,inf").is_err());
    }
}
