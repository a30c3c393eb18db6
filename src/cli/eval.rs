//! `m2c eval --pred DIR --gt DIR`: Dice and IoU per image and their means, pairing files by
//! stem (`x.png` in one folder with `x.jpg` or `x.png` in the other). Masks are read as
//! grayscale and thresholded at 127 (value > 127 is foreground), so JPEG masks with compression
//! noise work.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::concept::metrics::{mean_std, overlap};

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Folder of predicted masks.
    #[arg(long, value_name = "DIR")]
    pub pred: PathBuf,
    /// Folder of ground-truth masks.
    #[arg(long, value_name = "DIR")]
    pub gt: PathBuf,
    /// Also write the per-image table as CSV.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
}

const MASK_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp", "tif", "tiff"];

fn masks_by_stem(dir: &Path) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read mask folder {}", dir.display()))?;
    let mut out = BTreeMap::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot list {}", dir.display()))?
            .path();
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if !path.is_file() || !MASK_EXTENSIONS.contains(&ext.as_str()) {
            continue;
        }
        if let Some(stem) = path.file_stem() {
            out.insert(stem.to_string_lossy().into_owned(), path);
        }
    }
    Ok(out)
}

/// Reads a mask as foreground flags (grayscale value > 127) with its size.
pub fn read_binary_mask(path: &Path) -> anyhow::Result<(Vec<bool>, u32, u32)> {
    let img = image::open(path)
        .with_context(|| format!("cannot decode mask {}", path.display()))?
        .to_luma8();
    let (w, h) = img.dimensions();
    Ok((img.into_raw().into_iter().map(|v| v > 127).collect(), w, h))
}

pub fn run(args: &EvalArgs) -> anyhow::Result<i32> {
    let preds = masks_by_stem(&args.pred)?;
    let gts = masks_by_stem(&args.gt)?;
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for (stem, gt_path) in &gts {
        let Some(pred_path) = preds.get(stem) else {
            problems.push(format!("{stem}: no prediction"));
            continue;
        };
        let (gt, gw, gh) = read_binary_mask(gt_path)?;
        let (pred, pw, ph) = read_binary_mask(pred_path)?;
        if (gw, gh) != (pw, ph) {
            problems.push(format!(
                "{stem}: prediction is {pw}x{ph}, ground truth {gw}x{gh}"
            ));
            continue;
        }
        rows.push((stem.clone(), overlap(&pred, &gt)));
    }
    let extra = preds.keys().filter(|s| !gts.contains_key(*s)).count();
    if rows.is_empty() {
        bail!(
            "no prediction/ground-truth pairs to compare ({} predictions, {} ground truths; \
             files are paired by name without extension)",
            preds.len(),
            gts.len()
        );
    }
    println!("image\tdice\tiou");
    for (stem, o) in &rows {
        println!("{stem}\t{:.4}\t{:.4}", o.dice, o.iou);
    }
    let dice: Vec<f64> = rows.iter().map(|(_, o)| o.dice).collect();
    let iou: Vec<f64> = rows.iter().map(|(_, o)| o.iou).collect();
    let (dm, ds) = mean_std(&dice);
    let (im, is) = mean_std(&iou);
    println!("mean\t{dm:.4}\t{im:.4}");
    println!(
        "images: {}  mean Dice {dm:.4} ± {ds:.4}  mean IoU {im:.4} ± {is:.4}",
        rows.len()
    );
    for p in &problems {
        println!("skipped: {p}");
    }
    if extra > 0 {
        println!("note: {extra} predictions have no ground truth and were ignored");
    }
    if let Some(csv) = &args.csv {
        let mut f = std::fs::File::create(csv)
            .with_context(|| format!("cannot write {}", csv.display()))?;
        writeln!(f, "image,dice,iou")?;
        for (stem, o) in &rows {
            writeln!(f, "{stem},{},{}", o.dice, o.iou)?;
        }
    }
    Ok(if problems.is_empty() { 0 } else { 1 })
}
