//! `m2c search --weights W --support MANIFEST_OR_DIR --out C.m2c`: learns a concept from
//! labelled images (concept search on cached features) and writes the concept file. Prints
//! the loss of every step.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::concept::SearchControl;
use crate::concept::file::{ConceptFile, EmbeddingSite, SearchSettings};
use crate::engine::concept::{CachedImage, ConceptSpec, OwnedRgb, TrainingImage};
use crate::engine::inference::Segmenter;
use crate::engine::tools::dataset::{LabelledItem, labelled_items, read_mask};

use super::Cli;
use super::model::load_segmenter;

/// The authors' base prompt (m2c-method.md §1), used when `--text` is not given.
pub const DEFAULT_BASE_TEXT: &str = "A polyp in a colonoscopy image";

/// Where φ is added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Site {
    /// The text encoder's input token embeddings (the authors' code).
    TextInput,
    /// The projected text tokens (the paper figure's variant; for ablation).
    ProjectedText,
}

impl From<Site> for EmbeddingSite {
    fn from(site: Site) -> Self {
        match site {
            Site::TextInput => Self::TextInput,
            Site::ProjectedText => Self::ProjectedText,
        }
    }
}

/// Optimiser and prompt options shared by `search` and `loop`.
#[derive(Debug, Clone, clap::Args)]
pub struct SearchOptions {
    /// Base prompt the learned offset is added to.
    #[arg(long, value_name = "TEXT", default_value = DEFAULT_BASE_TEXT)]
    pub text: String,
    /// Where the learned offset is added.
    #[arg(long, value_enum, default_value = "text-input")]
    pub site: Site,
    /// Optimiser steps (AdamW, cosine learning rate).
    #[arg(long, default_value_t = 60)]
    pub steps: u32,
    /// Learning rate at the first step.
    #[arg(long, value_name = "LR", default_value_t = 5e-4)]
    pub lr: f64,
    /// Learning rate the cosine schedule ends at.
    #[arg(long, value_name = "LR", default_value_t = 5e-6)]
    pub lr_end: f64,
    /// Seed of the device's random generator (and of the augmentation).
    #[arg(long, default_value_t = 123)]
    pub seed: u64,
    /// The authors' training transform: squash each labelled image to a random square and pad
    /// it at a random offset, drawn once per search (one extra encoder pass per image).
    #[arg(long)]
    pub augment: bool,
    /// Model config (HF `Sam3Config` JSON). Default: config.json beside the weights, else the
    /// released model's configuration.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl SearchOptions {
    pub fn settings(&self) -> SearchSettings {
        SearchSettings {
            steps: self.steps,
            lr_start: self.lr,
            lr_end: self.lr_end,
            seed: self.seed,
            resize_augment: self.augment,
            ..SearchSettings::default()
        }
    }

    pub fn spec(&self, name: &str) -> ConceptSpec {
        ConceptSpec {
            name: name.to_owned(),
            base_text: self.text.clone(),
            site: self.site.into(),
            settings: self.settings(),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    /// Labelled images: a manifest (`file`, `mask`[, `split`] columns, tab-separated) or a
    /// folder with `images/` and `masks/` paired by name.
    #[arg(long, value_name = "MANIFEST_OR_DIR")]
    pub support: PathBuf,
    /// Use only the manifest rows of this split. Default: `support` when the manifest has
    /// such rows, else every row.
    #[arg(long, value_name = "NAME")]
    pub split: Option<String>,
    /// Use at most this many labelled images (the first ones).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Concept file to write (`.m2c`, JSON).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Name of the concept.
    #[arg(long, default_value = "concept")]
    pub name: String,
    /// Start from this concept's embedding instead of zeros (same checkpoint and base text).
    #[arg(long, value_name = "FILE")]
    pub warm_start: Option<PathBuf>,
    #[command(flatten)]
    pub options: SearchOptions,
}

/// The manifest rows to use: `split` when given, else `support` rows when there are any.
pub fn select_split(
    items: Vec<LabelledItem>,
    split: Option<&str>,
) -> anyhow::Result<Vec<LabelledItem>> {
    let wanted = match split {
        Some(s) => Some(s.to_owned()),
        None if items.iter().any(|i| i.split.as_deref() == Some("support")) => {
            Some("support".to_owned())
        }
        None => None,
    };
    let Some(wanted) = wanted else {
        return Ok(items);
    };
    let chosen: Vec<LabelledItem> = items
        .into_iter()
        .filter(|i| i.split.as_deref() == Some(wanted.as_str()))
        .collect();
    if chosen.is_empty() {
        bail!("no manifest row has split {wanted:?}");
    }
    Ok(chosen)
}

/// A labelled image read and encoded: features, mask, pixels.
pub type Labelled = (CachedImage, Vec<bool>, OwnedRgb);

/// Reads and encodes the labelled images, checking each mask matches its image's size.
pub fn encode_labelled(
    segmenter: &Segmenter,
    items: &[LabelledItem],
) -> anyhow::Result<Vec<Labelled>> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let image = OwnedRgb::open(&item.image)
            .with_context(|| format!("cannot read {}", item.image.display()))?;
        let (mask, w, h) = read_mask(&item.mask)?;
        if (w, h) != (image.width, image.height) {
            bail!(
                "mask {} is {w}×{h} but image {} is {}×{}",
                item.mask.display(),
                item.image.display(),
                image.width,
                image.height
            );
        }
        let cached = segmenter
            .encode_image(&image.view())
            .with_context(|| format!("cannot encode {}", item.image.display()))?;
        out.push((cached, mask, image));
    }
    Ok(out)
}

/// Runs a search, printing one line per step.
pub fn learn_printing(
    segmenter: &Segmenter,
    spec: &ConceptSpec,
    labelled: &[Labelled],
    warm_start: Option<&[f32]>,
) -> anyhow::Result<ConceptFile> {
    let training: Vec<TrainingImage<'_>> = labelled
        .iter()
        .map(|(image, mask, pixels)| TrainingImage {
            image,
            mask,
            pixels: Some(pixels),
        })
        .collect();
    let (tx, rx) = mpsc::channel();
    let control = SearchControl {
        progress: Some(tx),
        ..SearchControl::default()
    };
    let learned = std::thread::scope(|scope| {
        let printer = scope.spawn(move || {
            for p in rx {
                println!(
                    "step {:>3}/{}  loss {:>10.4}  {:.1} s  eta {:.1} s",
                    p.step,
                    p.steps,
                    p.loss,
                    p.elapsed.as_secs_f64(),
                    p.eta.as_secs_f64()
                );
            }
        });
        let learned = segmenter.learn(spec, &training, warm_start, &control);
        drop(control);
        // The printer ends when the channel closes; it cannot panic on plain prints.
        let _ = printer.join();
        learned
    })?;
    Ok(learned.concept)
}

pub fn run(cli: &Cli, args: &SearchArgs) -> anyhow::Result<i32> {
    let items = labelled_items(&args.support)?;
    let mut items = select_split(items, args.split.as_deref())?;
    if let Some(limit) = args.limit {
        items.truncate(limit.max(1));
    }
    let segmenter = load_segmenter(cli, args.options.config.as_deref())?;
    let warm = match &args.warm_start {
        Some(path) => Some(ConceptFile::load_for_checkpoint(
            path,
            segmenter.checkpoint_id(),
        )?),
        None => None,
    };
    let start = Instant::now();
    let labelled = encode_labelled(&segmenter, &items)?;
    println!(
        "encoded {} labelled image(s) in {:.2} s",
        labelled.len(),
        start.elapsed().as_secs_f64()
    );
    let spec = args.options.spec(&args.name);
    let start = Instant::now();
    let concept = learn_printing(
        &segmenter,
        &spec,
        &labelled,
        warm.as_ref().map(|c| c.phi.as_slice()),
    )?;
    write_concept(&concept, &args.out)?;
    println!(
        "searched {} step(s) in {:.2} s; final loss {}; wrote {}",
        spec.settings.steps,
        start.elapsed().as_secs_f64(),
        concept
            .final_loss
            .map_or_else(|| "n/a".to_owned(), |l| format!("{l:.4}")),
        args.out.display()
    );
    Ok(0)
}

fn write_concept(concept: &ConceptFile, path: &Path) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    concept.save(path)?;
    Ok(())
}
