//! Loading SAM3 for the model subcommands: find the weights (flag, environment, usual places),
//! load them on the chosen device and say what was loaded.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::engine::device::plan_for;
use crate::engine::inference::Segmenter;
use crate::engine::weights::locate;
use crate::study::{LabelMap, MaskEncoding, write_mask_png};

use super::Cli;

/// The model from `--weights` (or where `m2c doctor` looks), announced on stdout.
pub fn load_segmenter(cli: &Cli, config: Option<&Path>) -> anyhow::Result<Segmenter> {
    load_segmenter_at(cli, config).map(|(segmenter, _)| segmenter)
}

/// [`load_segmenter`], also returning the weights file it loaded.
pub fn load_segmenter_at(
    cli: &Cli,
    config: Option<&Path>,
) -> anyhow::Result<(Segmenter, std::path::PathBuf)> {
    let search = locate(super::chosen_weights(cli).as_deref());
    let Some(weights) = search.found else {
        let looked: Vec<String> = search
            .looked
            .iter()
            .map(|p| format!("  {}", p.display()))
            .collect();
        bail!(
            "SAM3 weights not found; pass --weights PATH (or set M2C_WEIGHTS), or install them with `m2c weights install PATH`. Looked in:\n{}",
            looked.join("\n")
        );
    };
    let plan = plan_for(cli.device);
    println!("{}", plan.device_line());
    let start = Instant::now();
    let segmenter = Segmenter::load(&weights, config, &plan)
        .with_context(|| format!("cannot load the SAM3 model from {}", weights.display()))?;
    let loaded = weights.clone();
    println!(
        "model: {} (config: {}; tokenizer: {}) loaded in {:.2} s",
        weights.display(),
        segmenter.config_source,
        segmenter.tokenizer_source,
        start.elapsed().as_secs_f64()
    );
    Ok((segmenter, loaded))
}

/// Writes foreground flags of a `width × height` image as a 0/255 PNG mask.
pub fn write_binary_mask(
    path: &Path,
    width: usize,
    height: usize,
    mask: &[bool],
) -> anyhow::Result<()> {
    let (Ok(w), Ok(h)) = (u32::try_from(width), u32::try_from(height)) else {
        bail!("image of {width}×{height} pixels is too large");
    };
    let mut map = LabelMap::new(w, h);
    map.labels = mask.iter().map(|m| u16::from(*m)).collect();
    write_mask_png(path, &map, MaskEncoding::Binary)
        .with_context(|| format!("cannot write mask {}", path.display()))
}
