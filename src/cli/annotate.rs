//! `m2c annotate --weights W --concept C.m2c IMAGES_OR_DIR... --out DIR`: segments every image
//! with a learned concept; writes `DIR/<stem>.png` (0/255) and `DIR/hue.csv` (one row per
//! image: instances, foreground pixels, HUE entropy, box-consistency IoU, score, whether it is
//! auto-accepted), sorted as given; the review order is by score, highest first.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::concept::file::ConceptFile;
use crate::concept::uncertainty::{HueConfig, HueScore};
use crate::engine::concept::{OwnedRgb, PredictOptions, Prediction};
use crate::engine::tools::dataset::image_files;
use crate::study::mask_path_for;

use super::Cli;
use super::model::{load_segmenter_at, write_binary_mask};

/// Name of the per-image uncertainty table written into the output folder.
pub const HUE_FILE: &str = "hue.csv";

/// Thresholds of prediction and auto-accept, shared by `annotate` and `loop`.
#[derive(Debug, Clone, clap::Args)]
pub struct PredictArgs {
    /// Keep instances whose score (sigmoid(logit)·sigmoid(presence)) exceeds this.
    #[arg(long, value_name = "SCORE", default_value_t = 0.5)]
    pub threshold: f32,
    /// Auto-accept needs a HUE score below this …
    #[arg(long, value_name = "SCORE", default_value_t = 0.6)]
    pub easy_score: f32,
    /// … and a box-consistency IoU above this.
    #[arg(long, value_name = "IOU", default_value_t = 0.9)]
    pub easy_iou: f32,
}

impl PredictArgs {
    pub fn options(&self) -> PredictOptions {
        PredictOptions {
            threshold: self.threshold,
            hue: HueConfig {
                easy_score: self.easy_score,
                easy_iou: self.easy_iou,
                ..HueConfig::default()
            },
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct AnnotateArgs {
    /// Images, or folders of images (PNG, JPEG, BMP, TIFF; not recursive).
    #[arg(value_name = "IMAGES_OR_DIR", required = true)]
    pub inputs: Vec<PathBuf>,
    /// Concept file from `m2c search` (learned with the same checkpoint).
    #[arg(long, value_name = "FILE")]
    pub concept: PathBuf,
    /// Output folder for the masks and hue.csv (created if needed).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Also write each probability map as `<stem>_prob.png` (0–255).
    #[arg(long)]
    pub probability: bool,
    /// Model config (HF `Sam3Config` JSON); default as for `m2c segment`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where HUE's box-consistency mask comes from: the detector with the concept's boxes as
    /// exemplars (the authors'), SAM3's interactive head, or both (the detector decides;
    /// hue.csv gets the head's IoU and score too, for comparison).
    #[arg(long, value_enum, default_value = "detector")]
    pub consistency: Consistency,
    #[command(flatten)]
    pub predict: PredictArgs,
}

/// Source of HUE's consistency mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Consistency {
    Detector,
    Tracker,
    Both,
}

/// Files given directly, plus the image files of given folders.
pub fn expand_inputs(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for input in inputs {
        if input.is_dir() {
            out.extend(image_files(input)?);
        } else if input.is_file() {
            out.push(input.clone());
        } else {
            bail!("{} does not exist", input.display());
        }
    }
    if out.is_empty() {
        bail!("no image files found in the given folders");
    }
    let mut stems = BTreeSet::new();
    for path in &out {
        if !stems.insert(path.file_stem().unwrap_or_default().to_owned()) {
            bail!(
                "two images share the name {:?}; their masks would overwrite each other",
                path.file_stem().unwrap_or_default()
            );
        }
    }
    Ok(out)
}

/// One hue.csv row; `tracker` is the interactive head's HUE when it was computed.
pub fn csv_row(
    image: &Path,
    mask: &Path,
    p: &Prediction,
    tracker: Option<&HueScore>,
    seconds: f64,
) -> String {
    let (t_iou, t_hue) = tracker.map_or((String::new(), String::new()), |t| {
        (
            format!("{:.6}", t.consistency_iou),
            format!("{:.6}", t.score),
        )
    });
    format!(
        "{},{},{},{},{:.6},{:.6},{:.6},{},{},{t_iou},{t_hue},{seconds:.3}",
        csv_field(&image.display().to_string()),
        csv_field(&mask.display().to_string()),
        p.instances.len(),
        p.mask.iter().filter(|m| **m).count(),
        p.hue.entropy,
        p.hue.consistency_iou,
        p.hue.score,
        p.hue.empty,
        p.hue.easy,
    )
}

pub const CSV_HEADER: &str = "image,mask,instances,foreground_px,entropy,consistency_iou,hue,\
                              empty,auto_accept,tracker_iou,tracker_hue,seconds";

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

pub fn run(cli: &Cli, args: &AnnotateArgs) -> anyhow::Result<i32> {
    let images = expand_inputs(&args.inputs)?;
    // A broken concept file fails before the model loads; a foreign checkpoint right after.
    ConceptFile::load(&args.concept)?;
    let (mut segmenter, weights) = load_segmenter_at(cli, args.config.as_deref())?;
    if args.consistency != Consistency::Detector {
        segmenter
            .load_tracker(&weights, None)
            .context("--consistency tracker/both needs SAM3's interactive head")?;
    }
    let concept = ConceptFile::load_for_checkpoint(&args.concept, segmenter.checkpoint_id())?;
    let prepared = segmenter
        .prepare(&concept)
        .with_context(|| format!("cannot use concept {}", args.concept.display()))?;
    println!(
        "concept {:?} (base text {:?}, φ {:?})",
        concept.name, concept.base_text, concept.shape
    );
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output folder {}", args.out.display()))?;
    let options = args.predict.options();
    let mut rows = Vec::with_capacity(images.len());
    let (mut easy, mut empty) = (0usize, 0usize);
    for path in &images {
        let start = Instant::now();
        let image = OwnedRgb::open(path)?;
        let cached = segmenter
            .encode_image(&image.view())
            .with_context(|| format!("cannot encode {}", path.display()))?;
        let mut p = segmenter
            .predict(&prepared, &cached, &options)
            .with_context(|| format!("cannot segment {}", path.display()))?;
        let tracker = match args.consistency {
            Consistency::Detector => None,
            _ => segmenter.tracker_hue(&image.view(), &p, &options.hue)?,
        };
        if let (Consistency::Tracker, Some(t)) = (args.consistency, tracker) {
            p.hue = t;
        }
        let seconds = start.elapsed().as_secs_f64();
        let mask = mask_path_for(path, None, &args.out);
        write_binary_mask(&mask, p.width, p.height, &p.mask)?;
        if args.probability {
            write_probability(&args.out, path, &p)?;
        }
        easy += usize::from(p.hue.easy);
        empty += usize::from(p.hue.empty);
        println!(
            "{}: {} instance(s), HUE {:.3} (entropy {:.3}, box IoU {:.3}){}, {seconds:.2} s",
            path.display(),
            p.instances.len(),
            p.hue.score,
            p.hue.entropy,
            p.hue.consistency_iou,
            if p.hue.easy { ", auto-accept" } else { "" }
        );
        rows.push(csv_row(path, &mask, &p, tracker.as_ref(), seconds));
    }
    let csv_path = args.out.join(HUE_FILE);
    let mut csv = std::fs::File::create(&csv_path)
        .with_context(|| format!("cannot write {}", csv_path.display()))?;
    writeln!(csv, "{CSV_HEADER}")?;
    for row in &rows {
        writeln!(csv, "{row}")?;
    }
    println!(
        "wrote {} mask(s) and {}: {easy} auto-accepted, {} to review ({empty} empty)",
        rows.len(),
        csv_path.display(),
        rows.len() - easy
    );
    Ok(0)
}

fn write_probability(out: &Path, source: &Path, p: &Prediction) -> anyhow::Result<()> {
    let stem = source.file_stem().unwrap_or_default().to_string_lossy();
    let path = out.join(format!("{stem}_prob.png"));
    let (Ok(w), Ok(h)) = (u32::try_from(p.width), u32::try_from(p.height)) else {
        bail!("image of {}×{} pixels is too large", p.width, p.height);
    };
    let bytes: Vec<u8> = p
        .probability
        .iter()
        .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    let Some(img) = image::GrayImage::from_raw(w, h, bytes) else {
        bail!("probability map does not fill {w}×{h}");
    };
    img.save(&path)
        .with_context(|| format!("cannot write {}", path.display()))
}
